"""Queue SwiftI2V videos for many images through ComfyUI's HTTP API.

    python -m swift_batch --rows rows.csv --out videos/ [--server http://127.0.0.1:8188 ...]

rows.csv (or .jsonl): image, prompt, and optionally negative, seed, width, height, frames, name.
Each row: the image is uploaded, the API workflow is patched (prompt, seed, size, frames, output
prefix), queued under a prompt id of its own (stable across re-runs), followed over the
websocket, and its mp4 downloaded to OUT/<name>.mp4. A re-run skips rows whose output is
complete and attaches to prompts an earlier run queued (swift_batch.runner). A bad row is
reported and the batch goes on. With several servers, each runs one row at a time and the next
row goes to whichever is free. ``--status`` prints the batch's record (with the plan each video
ran with); ``--report`` prints what the rows cost and writes the seam report of the batch's videos
(swift_batch.report).

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
import sys
from pathlib import Path

from .client import ComfyClient, ComfyError, ServerUnreachable
from .jobs import samples_complete, video_complete
from .patch import WorkflowError, add_stage1_lora, apply_sets
from .rows import read_rows
from .runner import Batch, clients_for, plan, progress_bars
from .state import BatchState

API_DIR = Path(__file__).resolve().parents[1] / "workflows" / "api"
DEFAULT_WORKFLOW = API_DIR / "swifti2v_2k_api.json"
DATA_WORKFLOW = API_DIR / "swifti2v_training_data_api.json"
STAGE1_DATA_WORKFLOW = API_DIR / "swifti2v_stage1_data_api.json"
STAND_IN_DATA_WORKFLOW = API_DIR / "swifti2v_training_data_standin_api.json"


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
    ap.add_argument("--rows", type=Path, help="CSV or JSON-lines file of rows")
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
    ap.add_argument("--stand-in", action="store_true",
                    help="--data: Stage II samples without a Stage I model, references degraded "
                         "by the Stage I Stand-in (swifti2v_training_data_standin_api.json)")
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
    ap.add_argument("--retry-after", type=float, default=60.0,
                    help="seconds before a row whose server went away goes to another server")
    ap.add_argument("--status", action="store_true",
                    help="print the batch's record in --out (row, status, server, prompt id, "
                         "complete on disk) and exit")
    ap.add_argument("--json", action="store_true", help="--status as JSON")
    ap.add_argument("--report", action="store_true",
                    help="what the batch's runs cost (a table from their run cards: seconds "
                         "per stage and per frame, peak memory, median and max), then the seam "
                         "report of its videos in --out (segment boundaries, paper App. C.9): "
                         "<name>.seams.json and .png next to each, and exit")
    ap.add_argument("--m", type=int, default=3,
                    help="--report: M of videos with no recorded plan (default 3)")
    ap.add_argument("--n", type=int, default=1,
                    help="--report: N of videos with no recorded plan (default 1)")
    args = ap.parse_args(argv)
    if not (args.status or args.report) and args.rows is None:
        ap.error("the following arguments are required: --rows")
    if args.stage1 and not args.data:
        ap.error("--stage1 makes Stage I training samples: use it with --data")
    if args.stand_in and (not args.data or args.stage1):
        ap.error("--stand-in makes Stage II training samples: use it with --data, not --stage1")
    return args


def usable_clients(urls: list[str], workflow: dict, out: Path, log) -> list[ComfyClient]:
    """Servers that answer and have every node type the workflow needs (a server given twice
    runs two rows at once)."""
    found = []
    for c in clients_for(urls, out):
        try:
            filled = c.adopt(workflow)
            missing = c.missing_node_types(workflow)
        except ComfyError as e:
            log(f"server {c.url}: {e}")
            continue
        if missing:
            log(f"server {c.url}: missing node types {', '.join(missing)}: install the SwiftI2V "
                "pack (and update ComfyUI) on that server; it is left out")
            continue
        if filled:
            log(f"server {c.url}: the workflow leaves out inputs this ComfyUI requires; set to "
                f"their defaults: {', '.join(filled)}")
        found.append(c)
    return found


def run_batch(args, log=print) -> dict:
    bundled = ((STAGE1_DATA_WORKFLOW if args.stage1 else
                STAND_IN_DATA_WORKFLOW if args.stand_in else DATA_WORKFLOW) if args.data
               else DEFAULT_WORKFLOW)
    workflow = apply_sets(json.loads((args.workflow or bundled).read_text()), args.set)
    if args.stage1_lora:
        workflow = add_stage1_lora(workflow, args.stage1_lora)
    rows = read_rows(args.rows, args.images, data=args.data)
    args.out.mkdir(parents=True, exist_ok=True)
    state = BatchState(args.out)
    jobs, skipped, failed = plan(args, workflow, rows, state, log)
    if skipped:
        log(f"{len(skipped)} row(s) already done, skipped: {', '.join(skipped)}")
    summary = {"done": [], "skipped": skipped, "failed": failed}
    if not jobs:
        return summary
    clients = usable_clients(args.server or ["http://127.0.0.1:8188"], workflow, args.out, log)
    if not clients:
        raise ServerUnreachable("no usable ComfyUI server (see the messages above)")
    batch = Batch(args, workflow, clients, state, log)
    try:
        done = batch.run(jobs, progress_bars(args))
    except KeyboardInterrupt:
        batch.stop.set()
        log(batch.cancel())
        summary["interrupted"] = True
        return summary
    summary["done"] = done["done"]
    summary["failed"] += done["failed"]
    return summary


def status(args) -> int:
    """The batch's record beside what is on disk now (``--status``, ``--json``)."""
    rows = []
    for name, r in sorted(BatchState(args.out).rows.items()):
        out = Path(r.get("output", ""))
        on_disk = samples_complete(out) if out.is_dir() else video_complete(out, None)
        complete = bool(r.get("output")) and on_disk
        if r.get("status") == "done" and not complete:
            r = {**r, "status": "incomplete"}        # recorded done, since cut or removed
        rows.append({**r, "complete_on_disk": complete})
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(f"{'row':24} {'status':10} {'server':26} {'prompt id':36} complete")
        for r in rows:
            print(f"{r['name'][:24]:24} {r.get('status', ''):10} {str(r.get('server'))[:26]:26} "
                  f"{r.get('prompt_id', ''):36} {'yes' if r['complete_on_disk'] else 'no'}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if args.status:
        return status(args)
    if args.report:
        from .report import report
        return report(args.out, args.m, args.n, log)
    try:
        summary = run_batch(args, log)
    except (ComfyError, WorkflowError, OSError, ValueError) as e:
        log(f"error: {e}")
        return 2
    if summary.get("interrupted"):
        return 130
    log(f"done {len(summary['done'])}, skipped {len(summary['skipped'])}, "
        f"failed {len(summary['failed'])}")
    for f in summary["failed"]:
        log(f"  failed: {f}")
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
