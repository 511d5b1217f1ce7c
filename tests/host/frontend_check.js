// Drive ComfyUI's real frontend (headless Chromium); print what the page saw as one JSON line.
//   node frontend_check.js SERVER_URL CHROMIUM load WORKFLOW.json
//   node frontend_check.js SERVER_URL CHROMIUM app WORKFLOW.json NAME
//   node frontend_check.js SERVER_URL CHROMIUM blueprint NAME WIDGETS.json
//   node frontend_check.js SERVER_URL CHROMIUM names NODE_TYPE...
// (needs playwright-core). The frontend's stores are read through its Vue app's pinia.
const { chromium } = require('playwright-core');
const fs = require('fs');

const nodesOf = () => window.app.graph._nodes.map(n => ({
  id: n.id, type: n.type, registered: !!(window.LiteGraph.registered_node_types[n.type]),
  errors: !!n.has_errors, widgets: (n.widgets || []).map(w => [w.name, w.value]) }));

// a UI workflow as the frontend loads it: its nodes, and any dialog it opened
async function load(page, wfPath) {
  const wf = JSON.parse(fs.readFileSync(wfPath, 'utf8'));
  const nodes = await page.evaluate(async ([wf, nodesOf]) => {
    await window.app.loadGraphData(wf);
    return eval(nodesOf)();
  }, [wf, nodesOf.toString()]);
  await page.waitForTimeout(1500);
  const dialogs = await page.evaluate(() =>
    Array.from(document.querySelectorAll('.p-dialog')).map(d => d.innerText));
  return { nodes, dialogs };
}

// a template opened as the templates menu opens it (by name): its mode and App Mode selections
async function app(page, wfPath, name) {
  const wf = JSON.parse(fs.readFileSync(wfPath, 'utf8'));
  return await page.evaluate(async ([wf, name, nodesOf]) => {
    await window.app.loadGraphData(wf, true, true, name);
    await new Promise(r => setTimeout(r, 1500));
    const pinia = document.querySelector('#vue-app').__vue_app__.config.globalProperties.$pinia;
    const active = pinia._s.get('workflow').activeWorkflow;
    const appMode = pinia._s.get('appMode');
    return { mode: active.activeMode ?? active.initialMode, initialMode: active.initialMode,
             inputs: JSON.parse(JSON.stringify(appMode.selectedInputs)),
             outputs: JSON.parse(JSON.stringify(appMode.selectedOutputs)),
             nodes: eval(nodesOf)() };
  }, [wf, name, nodesOf.toString()]);
}

// a blueprint from the node library dropped on an empty canvas, wired Load Image -> it -> Save
// Video, its widgets set; the API prompt the frontend would queue
async function blueprint(page, name, widgetsPath) {
  const widgets = JSON.parse(fs.readFileSync(widgetsPath, 'utf8'));
  return await page.evaluate(async ([name, widgets]) => {
    const pinia = document.querySelector('#vue-app').__vue_app__.config.globalProperties.$pinia;
    const store = pinia._s.get('subgraph');
    let def;
    for (let i = 0; i < 120 && !def; i++) {
      def = store.subgraphBlueprints.find(d => d.display_name === name);
      if (!def) await new Promise(r => setTimeout(r, 500));
    }
    const library = store.subgraphBlueprints.map(d => [d.display_name, d.category]);
    if (!def) return { library };
    const app = window.app, LG = window.LiteGraph;
    app.graph.clear();
    const bp = store.getBlueprint(def.name);
    const placed = app.canvas._deserializeItems({ nodes: bp.nodes, subgraphs: bp.definitions?.subgraphs },
                                                { position: [400, 100] });
    const sg = placed.nodes.values().next().value;
    const load = LG.createNode('LoadImage'); load.pos = [40, 100]; app.graph.add(load);
    load.widgets.find(w => w.name === 'image').value = widgets.__image;
    const save = LG.createNode('SaveVideo'); save.pos = [900, 100]; app.graph.add(save);
    save.widgets.find(w => w.name === 'filename_prefix').value = widgets.__prefix;
    for (const [slot, input] of sg.inputs.entries()) {
      if (input.type !== 'IMAGE') continue;
      if (input.name === 'low_res') {             // a low-res "video": the image, repeated
        const rep = LG.createNode('RepeatImageBatch'); rep.pos = [40, 500]; app.graph.add(rep);
        rep.widgets.find(w => w.name === 'amount').value = widgets.__repeat;
        load.connect(0, rep, 0); rep.connect(0, sg, slot);
      } else load.connect(0, sg, slot);
    }
    sg.connect(sg.outputs.findIndex(o => o.type === 'VIDEO'), save, 0);
    for (const w of sg.widgets || []) if (w.name in widgets) w.value = widgets[w.name];
    const prompt = await app.graphToPrompt();
    return { library, category: def.category, inputs: sg.inputs.map(i => [i.name, i.type]),
             widgets: (sg.widgets || []).map(w => [w.name, w.value]), prompt: prompt.output };
  }, [name, widgets]);
}

// node display names as the frontend shows them (its locale setting applied)
async function names(page, types) {
  return await page.evaluate((types) => {
    const pinia = document.querySelector('#vue-app').__vue_app__.config.globalProperties.$pinia;
    const defs = pinia._s.get('nodeDef').nodeDefsByName;
    return Object.fromEntries(types.map(t => [t, { library: defs[t]?.display_name,
                                                   placed: window.LiteGraph.createNode(t)?.title }]));
  }, types);
}

(async () => {
  const [url, exe, mode, ...args] = process.argv.slice(2);
  const browser = await chromium.launch({ executablePath: exe || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    const page = await browser.newPage();
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => window.app && window.app.graph, null, { timeout: 120000 });
    await page.waitForTimeout(2000);
    const run = { load, app, blueprint, names: (p, ...t) => names(p, t) }[mode];
    console.log(JSON.stringify(await run(page, ...args)));
  } finally {
    await browser.close();
  }
})();
