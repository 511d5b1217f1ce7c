// Load a UI workflow in ComfyUI's real frontend (headless Chromium); print what the page saw.
// node frontend_check.js SERVER_URL WORKFLOW.json   (needs playwright-core and a chromium)
const { chromium } = require('playwright-core');
const fs = require('fs');
(async () => {
  const [url, wfPath, exe] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: exe || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const page = await browser.newPage();
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.app && window.app.graph, null, { timeout: 120000 });
    await page.waitForTimeout(2000);
    const wf = JSON.parse(fs.readFileSync(wfPath, 'utf8'));
    const nodes = await page.evaluate(async (wf) => {
      await window.app.loadGraphData(wf);
      return window.app.graph._nodes.map(n => ({
        id: n.id, type: n.type, registered: !!(window.LiteGraph.registered_node_types[n.type]),
        errors: !!n.has_errors,
        widgets: (n.widgets || []).map(w => [w.name, w.value]) }));
    }, wf);
    await page.waitForTimeout(1500);
    const dialogs = await page.evaluate(() =>
      Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText));
    console.log(JSON.stringify({ nodes, dialogs }));
  } finally {
    await browser.close();
  }
})();
