"""Queue SwiftI2V videos for many images through ComfyUI's HTTP API.

    python -m swift_batch --rows rows.csv --out videos/ [--server http://127.0.0.1:8188 ...]

rows.csv (or .jsonl): image, prompt, and optionally negative, seed, width, height, frames, name.
Each row: the image is uploaded, the API workflow is patched (prompt, seed, size, frames, output
prefix), queued, followed over the websocket, and its mp4 downloaded to OUT/<name>.mp4.
A re-run skips rows whose output exists. A bad row is reported and the batch goes on.
With several servers, each runs one row at a time and the next row goes to whichever is free.
"""
from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
from pathlib import Path

from .client import ComfyClient, ComfyError, ServerUnreachable, output_files
from .patch import WorkflowError, apply_sets, patch_for_row
from .rows import Row, RowError, check_image, read_rows

DEFAULT_WORKFLOW = (Path(__file__).resolve().parents[1] / "example_workflows" / "api"
                    / "swifti2v_2k_api.json")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m swift_batch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", required=True, type=Path, help="CSV or JSON-lines file of rows")
    ap.add_argument("--out", required=True, type=Path, help="folder for the finished videos")
    ap.add_argument("--server", action="append", default=[],
                    help="ComfyUI address (repeat for several); default http://127.0.0.1:8188")
    ap.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW,
                    help="API-format workflow (default: the bundled swifti2v_2k_api.json)")
    ap.add_argument("--images", type=Path, default=None,
                    help="folder that relative image paths are read from (default: the rows "
                         "file's folder)")
    ap.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                    help="override a workflow input, NODE = node id or title "
                         "(e.g. --set \"Load Stage II model (Wan 2.2 TI2V 5B or SwiftI2V)"
                         ".unet_name=my_stage2.safetensors\")")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per row")
    ap.add_argument("--prefix", default="swifti2v_batch",
                    help="subfolder of ComfyUI's output folder for the batch's files")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap.parse_args(argv)


def usable_clients(urls: list[str], workflow: dict, log) -> list[ComfyClient]:
    """Servers that answer and have every node type the workflow needs."""
    out = []
    for url in urls:
        c = ComfyClient(url)
        try:
            missing = c.missing_node_types(workflow)
        except ComfyError as e:
            log(f"server {url}: {e}")
            continue
        if missing:
            log(f"server {url}: missing node types {', '.join(missing)}: install the SwiftI2V pack "
                "(and update ComfyUI) on that server; it is left out")
            continue
        out.append(c)
    return out


def run_row(client: ComfyClient, workflow: dict, row: Row, args, progress) -> Path:
    check_image(row)
    name = client.upload_image(str(row.image))
    prompt = patch_for_row(workflow, row, name, args.prefix)
    bar = progress(row)

    def on_event(kind, data):
        if bar is not None and kind == "progress":
            node = prompt.get(str(data.get("node")), {})
            bar.set_description(f"{row.name}: {node.get('_meta', {}).get('title', data.get('node'))}")
            bar.total = data.get("max") or bar.total
            bar.n = data.get("value", 0)
            bar.refresh()

    try:
        entry = client.run(prompt, on_event=on_event, timeout=args.timeout)
    finally:
        if bar is not None:
            bar.close()
    videos = [f for f in output_files(entry) if f["filename"].lower().endswith(".mp4")]
    if not videos:
        raise ComfyError(f"row {row.number}: the prompt finished but wrote no mp4")
    tmp_dir = args.out / ".incoming"
    got = Path(client.download(videos[-1], str(tmp_dir)))
    final = args.out / f"{row.name}.mp4"
    got.replace(final)
    return final


def run_batch(args, log=print) -> dict:
    workflow = apply_sets(json.loads(args.workflow.read_text()), args.set)
    rows = read_rows(args.rows, args.images)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"done": [], "skipped": [], "failed": []}
    todo: "queue.Queue[Row]" = queue.Queue()
    for row in rows:
        if isinstance(row, RowError):
            log(f"skipping {row}")
            summary["failed"].append(str(row))
        elif (args.out / f"{row.name}.mp4").exists():
            summary["skipped"].append(row.name)
        else:
            todo.put(row)
    if summary["skipped"]:
        log(f"{len(summary['skipped'])} row(s) already done, skipped: "
            f"{', '.join(summary['skipped'])}")
    if todo.empty():
        return summary
    clients = usable_clients(args.server or ["http://127.0.0.1:8188"], workflow, log)
    if not clients:
        raise ServerUnreachable("no usable ComfyUI server (see the messages above)")
    lock = threading.Lock()

    def progress(row):
        if args.no_progress:
            return None
        from tqdm import tqdm
        return tqdm(total=1, desc=row.name, leave=False, file=sys.stderr)

    def worker(client: ComfyClient):
        while True:
            try:
                row = todo.get_nowait()
            except queue.Empty:
                return
            try:
                path = run_row(client, workflow, row, args, progress)
                with lock:
                    summary["done"].append(str(path))
                log(f"row {row.number} ({row.name}): {path} [{client.url}]")
            except ServerUnreachable as e:
                todo.put(row)                      # another server may take it
                with lock:
                    log(f"server {client.url} went away ({e}); it takes no more rows")
                return
            except (ComfyError, RowError, WorkflowError, OSError) as e:
                with lock:
                    summary["failed"].append(f"row {row.number} ({row.name}): {e}")
                log(f"row {row.number} ({row.name}) failed: {e}")

    threads = [threading.Thread(target=worker, args=(c,), daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while not todo.empty():
        row = todo.get_nowait()
        summary["failed"].append(f"row {row.number} ({row.name}): no server left to run it")
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        summary = run_batch(args, log)
    except (ComfyError, WorkflowError, OSError, ValueError) as e:
        log(f"error: {e}")
        return 2
    log(f"done {len(summary['done'])}, skipped {len(summary['skipped'])}, "
        f"failed {len(summary['failed'])}")
    for f in summary["failed"]:
        log(f"  failed: {f}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
