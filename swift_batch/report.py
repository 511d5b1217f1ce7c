"""``python -m swift_batch --report``: what the batch's runs cost (the run cards the batch
recorded: seconds per stage and per frame, peak memory, then the median and max), and the seam
report (paper App. C.9) of its videos.

Each video is read in chunks and measured by ``swift_core.seams.seam_report``, as the Seam Report
node does; its plan is the one the batch recorded from the Stage II sampler's plan output, else M
and N given here. Next to each video: ``<name>.seams.json`` and ``<name>.seams.png``. Needs torch
and kornia besides the batch requirements.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import av

from .state import BatchState


def report_video(path: Path, plan_text: str | None, m: int, n: int) -> dict:
    """Measure one video; write its JSON and PNG next to it (temporary name, then renamed)."""
    from PIL import Image

    from swift_core.seam_plot import plot
    from swift_core.seams import seam_report, video_chunks

    summary = seam_report(video_chunks(str(path), path.name), plan_text, m, n)
    summary["plan_from"] = "the Stage II sampler" if plan_text else f"m={m}, n={n}"
    stem = path.with_suffix("")
    tmp = Path(f"{stem}.seams.json.part")
    tmp.write_text(json.dumps(summary, indent=1))
    os.replace(tmp, f"{stem}.seams.json")
    img = (plot(summary, title=f"{path.name}: {summary['verdict']}")[0] * 255).round().byte()
    tmp = Path(f"{stem}.seams.png.part")
    Image.frombytes("RGB", (img.shape[1], img.shape[0]), img.contiguous().numpy().tobytes()) \
        .save(tmp, format="PNG")
    os.replace(tmp, f"{stem}.seams.png")
    return summary


def cost_report(rows: dict, log=print) -> int:
    """The cost table of the rows whose run card the batch recorded; how many rows it has."""
    from swift_core.cards import cost_table, read_card
    named = [(name, card) for name, r in sorted(rows.items())
             if r.get("status") == "done" and (card := read_card(r.get("card"))) is not None]
    if named:
        log(f"run cost of {len(named)} row(s), from their run cards:")
        for line in cost_table(named):
            log(line)
    return len(named)


def report(out: Path, m: int, n: int, log=print) -> int:
    """The cost table, then every video of the batch in ``out`` (the recorded rows, else every
    .mp4 there)."""
    cost_report(BatchState(out).rows, log)
    try:
        import kornia  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        log(f"error: --report needs torch and kornia ({e.name} is missing): "
            "pip install torch kornia")
        return 2
    from swift_core.rules import SwiftInputError

    rows = BatchState(out).rows
    videos = [(Path(r["output"]), r.get("plan")) for r in rows.values()
              if r.get("status") == "done" and str(r.get("output", "")).endswith(".mp4")]
    if not rows:
        videos = [(p, None) for p in sorted(Path(out).glob("*.mp4"))]
    if not videos:
        log(f"error: no finished videos in {out}")
        return 2
    failed = 0
    for path, plan_text in videos:
        try:
            summary = report_video(path, plan_text, m, n)
        except (SwiftInputError, OSError, av.error.FFmpegError) as e:
            log(f"{path.name}: no report ({e})")
            failed += 1
            continue
        log(f"{path.name}: {summary['verdict']}")
    return 1 if failed else 0
