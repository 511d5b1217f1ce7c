"""Queue SwiftI2V videos for many images through ComfyUI's HTTP API.

    python -m swift_batch --rows rows.csv --out videos/ [--server http://127.0.0.1:8188 ...]

rows.csv (or .jsonl): image, prompt, and optionally negative, seed, width, height, frames, name.
Each row: the image is uploaded, the API workflow is patched (prompt, seed, size, frames, output
prefix), queued, followed over the websocket, and its mp4 downloaded to OUT/<name>.mp4.
A re-run skips rows whose output exists. A bad row is reported and the batch goes on.
With several servers, each runs one row at a time and the next row goes to whichever is free.

Training data (Stage II): ``--data`` runs the bundled training-data workflow over rows of
``video, caption`` (optionally start, stride, clips, frame_step, frames, seed, synthesize): each
video is
uploaded, cut into clips, each clip goes through the stage transition and the sample writer, and
the samples are downloaded to OUT/<name>/<video>_<start>.safetensors. A re-run skips videos whose
folder exists (it appears only when all its samples are in).
"""
from __future__ import annotations

import argparse
import json
import queue
import shutil
import sys
import threading
from pathlib import Path

from .client import ComfyClient, ComfyError, ServerUnreachable, output_files
from .patch import (WorkflowError, add_stage1_lora, apply_sets, patch_for_data_row,
                    patch_for_row)
from .rows import Row, RowError, check_image, check_video, read_rows

API_DIR = Path(__file__).resolve().parents[1] / "workflows" / "api"
DEFAULT_WORKFLOW = API_DIR / "swifti2v_2k_api.json"
DATA_WORKFLOW = API_DIR / "swifti2v_training_data_api.json"
STAGE1_DATA_WORKFLOW = API_DIR / "swifti2v_stage1_data_api.json"


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number from 0 to 1")
    return value


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m swift_batch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", required=True, type=Path, help="CSV or JSON-lines file of rows")
    ap.add_argument("--out", required=True, type=Path, help="folder for the finished videos")
    ap.add_argument("--server", action="append", default=[],
                    help="ComfyUI address (repeat for several); default http://127.0.0.1:8188")
    ap.add_argument("--workflow", type=Path, default=None,
                    help="API-format workflow (default: the bundled swifti2v_2k_api.json, or "
                         "swifti2v_training_data_api.json with --data)")
    ap.add_argument("--data", action="store_true",
                    help="training data: rows of video, caption; samples to OUT/<name>/")
    ap.add_argument("--stage1", action="store_true",
                    help="--data: samples of the Stage I 360P LoRA (swifti2v_stage1_data_api.json)")
    ap.add_argument("--stage1-lora", default=None, metavar="FILE",
                    help="a 360P LoRA in models/loras, loaded after the few-step LoRA")
    ap.add_argument("--start", type=int, default=None, help="--data: first frame of the first clip")
    ap.add_argument("--stride", type=int, default=None,
                    help="--data: frames between clip starts (0 = back to back)")
    ap.add_argument("--clips", type=int, default=None, help="--data: at most this many clips a video")
    ap.add_argument("--frame-step", type=int, default=None,
                    help="--data: take every n-th frame (2: 48 fps video -> 24 fps clips)")
    ap.add_argument("--plain-fraction", type=fraction, default=None,
                    help="--data: this share of clips (each drawn by its video and start, stable "
                         "across runs) get a plain downsample instead of the stage transition "
                         "(default: the workflow's, 0.5; the paper mixes both)")
    ap.add_argument("--images", type=Path, default=None,
                    help="folder that relative image or video paths are read from (default: the rows "
                         "file's folder)")
    ap.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                    help="override a workflow input, NODE = node id or title "
                         "(e.g. --set \"Load Stage II model (Wan 2.2 TI2V 5B or SwiftI2V)"
                         ".unet_name=my_stage2.safetensors\")")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per row")
    ap.add_argument("--prefix", default="swifti2v_batch",
                    help="subfolder of ComfyUI's output folder for the batch's files")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    if args.stage1 and not args.data:
        ap.error("--stage1 makes Stage I training samples: use it with --data")
    return args


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


def follow(client: ComfyClient, prompt: dict, row: Row, args, progress) -> dict:
    """Queue ``prompt``, show its progress, return its history entry."""
    bar = progress(row)

    def on_event(kind, data):
        if bar is not None and kind == "progress":
            node = prompt.get(str(data.get("node")), {})
            bar.set_description(f"{row.name}: {node.get('_meta', {}).get('title', data.get('node'))}")
            bar.total = data.get("max") or bar.total
            bar.n = data.get("value", 0)
            bar.refresh()

    try:
        return client.run(prompt, on_event=on_event, timeout=args.timeout)
    finally:
        if bar is not None:
            bar.close()


def run_row(client: ComfyClient, workflow: dict, row: Row, args, progress) -> Path:
    if args.data:
        return run_data_row(client, workflow, row, args, progress)
    check_image(row)
    name = client.upload_image(str(row.image))
    prompt = patch_for_row(workflow, row, name, args.prefix)
    entry = follow(client, prompt, row, args, progress)
    videos = [f for f in output_files(entry) if f["filename"].lower().endswith(".mp4")]
    if not videos:
        raise ComfyError(f"row {row.number}: the prompt finished but wrote no mp4")
    tmp_dir = args.out / ".incoming"
    got = Path(client.download(videos[-1], str(tmp_dir)))
    final = args.out / f"{row.name}.mp4"
    got.replace(final)
    return final


def run_data_row(client: ComfyClient, workflow: dict, row: Row, args, progress) -> Path:
    check_video(row)
    name = client.upload_image(str(row.video))
    defaults = {"start": args.start, "stride": args.stride, "clips": args.clips,
                "frame_step": args.frame_step,
                "synthesize_fraction": None if args.plain_fraction is None
                else 1.0 - args.plain_fraction}
    prompt = patch_for_data_row(workflow, row, name, f"{args.prefix}/{row.name}", defaults)
    entry = follow(client, prompt, row, args, progress)
    samples = [f for f in output_files(entry) if f["filename"].endswith(".safetensors")]
    if not samples:
        raise ComfyError(f"row {row.number}: the prompt finished but wrote no sample")
    tmp_dir = args.out / ".incoming" / row.name
    shutil.rmtree(tmp_dir, ignore_errors=True)
    for f in samples:
        client.download(f, str(tmp_dir))
    final = args.out / row.name
    tmp_dir.replace(final)                  # the folder appears only when complete
    return final


def done_path(args, row: Row) -> Path:
    return args.out / (row.name if args.data else f"{row.name}.mp4")


def run_batch(args, log=print) -> dict:
    bundled = (STAGE1_DATA_WORKFLOW if args.stage1 else DATA_WORKFLOW) if args.data \
        else DEFAULT_WORKFLOW
    workflow = apply_sets(json.loads((args.workflow or bundled).read_text()), args.set)
    if args.stage1_lora:
        workflow = add_stage1_lora(workflow, args.stage1_lora)
    rows = read_rows(args.rows, args.images, data=args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"done": [], "skipped": [], "failed": []}
    todo: "queue.Queue[Row]" = queue.Queue()
    for row in rows:
        if isinstance(row, RowError):
            log(f"skipping {row}")
            summary["failed"].append(str(row))
        elif done_path(args, row).exists():
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
