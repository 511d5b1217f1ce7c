"""Host RAM of the seam report on a 2K video: frames are read in chunks, never the whole video.

Writes an 81-frame 2560x1408 video (a panning texture; libx264), then runs the report on it in a
fresh process (``swift_batch.report``, the code the node and ``--report`` share) and prints that
process's peak resident memory beside what the frames alone would take held at once.

    python -m bench.seam_report [--frames 81] [--size 2560x1408]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MIB = 2**20


def write_video(path: Path, frames: int, w: int, h: int) -> None:
    import av
    import numpy as np
    rng = np.random.default_rng(0)
    tex = rng.random((h // 8 + 1, (w + frames * 8) // 8 + 1, 3))
    tex = np.kron(tex, np.ones((8, 8, 1)))[:h, :w + frames * 8]       # blocky, panning
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=16, options={"crf": "23", "preset": "ultrafast"})
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for t in range(frames):
            arr = (tex[:, t * 8:t * 8 + w] * 255).astype(np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(arr),
                                                      format="rgb24")))
        c.mux(s.encode())


def measure(path: Path) -> None:
    """In this (fresh) process: the report, then the peak resident memory (VmHWM)."""
    from swift_batch.report import report_video
    t0 = time.time()
    summary = report_video(path, None, 3, 1)
    peak = baseline = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    print("RESULT=" + json.dumps({"peak": peak, "baseline": baseline, "seconds": time.time() - t0,
                                  "frames": summary["frames"], "verdict": summary["verdict"]}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.seam_report", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--size", default="2560x1408")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        measure(args.measure)
        return 0
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "bench.mp4"
        t0 = time.time()
        write_video(video, args.frames, w, h)
        made = time.time() - t0
        # the import baseline: the same process with torch, kornia and av imported, no report
        base = subprocess.run([sys.executable, "-c", (
            "import torch, kornia, av, swift_batch.report, pathlib;"
            "print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines() "
            "if l.startswith('VmHWM')][0].split()[1])")], cwd=ROOT, capture_output=True,
            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True)
        r = subprocess.run([sys.executable, "-m", "bench.seam_report", "--measure", str(video)],
                           cwd=ROOT, capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
    res = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT=")][0][7:])
    baseline = int(base.stdout.strip()) * 1024
    whole_u8 = args.frames * w * h * 3
    print(f"Seam report of a {args.frames}-frame {w}x{h} video (written in {made:.0f} s), on "
          f"this machine, {time.strftime('%Y-%m-%d')}:\n")
    print("| peak RSS | after imports | the report's own | frames held at once (uint8 / "
          "float32) | time |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {res['peak'] / MIB:.0f} MiB | {baseline / MIB:.0f} MiB | "
          f"{(res['peak'] - baseline) / MIB:.0f} MiB | {whole_u8 / MIB:.0f} / "
          f"{4 * whole_u8 / MIB:.0f} MiB | {res['seconds']:.1f} s |")
    print(f"\n{res['verdict']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
