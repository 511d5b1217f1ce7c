"""The seam report as a picture: per-frame curves, segment boundaries as red lines (Pillow)."""
from __future__ import annotations

import torch
from PIL import Image, ImageDraw

from .seams import METRICS

WIDTH, PANEL, TOP, LEFT, RIGHT, GAP = 960, 150, 28, 90, 16, 18
BOUNDARY = (255, 0, 0)
CURVES = {"luma": (40, 90, 220), "difference": (20, 150, 60), "luma_step": (200, 120, 0),
          "structure": (120, 40, 160)}
LABELS = {"luma": "luma mean", "difference": "pixel diff.", "luma_step": "luma step",
          "structure": "sharpness chg."}


def plot_x(t: float, frames: int) -> int:
    """Pixel column of frame ``t`` (a boundary pair (t-1, t) is drawn at ``t - 0.5``)."""
    return LEFT + round(t * (WIDTH - LEFT - RIGHT) / max(frames - 1, 1))


def panels() -> list[str]:
    return ["luma", *METRICS]


def plot(summary: dict, title: str = "") -> torch.Tensor:
    """IMAGE [1, H, W, 3] (0..1): one panel per series, boundaries marked where the plan puts
    them, the verdict on top."""
    names = panels()
    height = TOP + len(names) * (PANEL + GAP)
    img = Image.new("RGB", (WIDTH, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    frames = summary["frames"]
    flagged = summary["flagged"]
    d.text((LEFT, 8), title or ("SEAMS: " + ", ".join(flagged) if flagged
                                else "no seam at segment boundaries"), fill=(0, 0, 0))
    for i, name in enumerate(names):
        y0 = TOP + i * (PANEL + GAP)
        y1 = y0 + PANEL
        d.rectangle([LEFT, y0, WIDTH - RIGHT, y1], outline=(160, 160, 160))
        values = [float(v) for v in summary["series"][name]]
        offset = 0 if name == "luma" else 1                 # pair (t-1, t) is drawn at t
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        span = hi - lo if hi > lo else 1.0
        d.text((6, y0 + 4), LABELS[name], fill=CURVES[name])
        d.text((6, y0 + 20), f"{hi:.3g}", fill=(90, 90, 90))
        d.text((6, y1 - 14), f"{lo:.3g}", fill=(90, 90, 90))
        pts = [(plot_x(t + offset, frames), y1 - 4 - (v - lo) / span * (PANEL - 8))
               for t, v in enumerate(values)]
        for t in summary["boundaries"]:
            x = plot_x(t - 0.5, frames)
            d.line([(x, y0 + 1), (x, y1 - 1)], fill=BOUNDARY, width=1)
        if len(pts) > 1:
            d.line(pts, fill=CURVES[name], width=2)
    arr = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return (arr.view(1, height, WIDTH, 3).float() / 255.0)
