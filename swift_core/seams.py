"""Do CSG segment boundaries show? Measured on a finished video (paper App. C.9 and C.10).

Frames come in chunks (a 2K video is never whole in memory) and are measured at most
``ANALYSIS_SIDE`` pixels on their long side. For each pair of consecutive frames: the mean
absolute pixel *difference*, the *luma step* (change of mean BT.601 luma) and the *structure*
change (relative change of sharpness: the mean Sobel gradient of the luma, kornia; a blurred or
over-sharpened frame shows, a moving one does not). A pair that crosses from one segment into the next is a
*boundary* pair (the pair from frame 0, your image, into the first segment is left out of both
sets: it is reported as ``anchor``). As in C.9, each metric's boundary mean is set against the
other pairs' mean (``gap_ratio``); a metric flags a seam when the ratio is at least ``GAP_FLAG``
and at least half the boundaries stand out of the other pairs (above their median plus three
median absolute deviations). The autocorrelation of the luma steps at the segment length in
frames (of each metric's series; ``luma_autocorr`` for the luma steps) tells a periodic pulse. With the Stage I frames, each segment's PSNR against them
(downscaled to their size) is its fidelity along the video (C.10).
"""
from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F

from .plan import Segment, plan_segments, read_plan
from .rules import TEMPORAL_STRIDE, check
from .sizes import block_frame_range, latent_blocks, video_frames

METRICS = ("difference", "luma_step", "structure")
GAP_FLAG = 1.5          # boundary mean / other pairs' mean
STAND_OUT = 0.5         # share of boundaries above the other pairs' median + 3 MAD
PERIODIC_FLAG = 0.5     # autocorrelation of the luma steps at the segment length
EPS = 1e-3              # below this a metric is no change at all (0..1 units)
ANALYSIS_SIDE = 512
CHUNK = 4               # frames decoded and measured at once


def segment_frames(plan) -> list[tuple[int, int]]:
    """First and last frame of each segment: latent block b holds frames 4(b-1)+1 .. 4b."""
    return [(block_frame_range(s.current[0])[0], block_frame_range(s.current[-1])[1] - 1)
            for s in plan]


def boundary_frames(plan) -> list[int]:
    """Frame t of each boundary pair (t-1, t): the first frame of every segment but the first."""
    return [first for first, _ in segment_frames(plan)[1:]]


def _float_frames(frames: torch.Tensor, size=None):
    """IMAGE [n, H, W, 3] (0..1 float or uint8) -> [n, 3, h, w] float, area-downscaled to
    ``size`` (or so the long side is at most ANALYSIS_SIDE), one frame at a time: a 2K chunk is
    never converted to float whole."""
    out = []
    for f in frames:
        x = f[..., :3].movedim(-1, 0).unsqueeze(0)
        x = x.float().div_(255) if x.dtype == torch.uint8 else x.float()
        target = size
        if target is None:
            scale = ANALYSIS_SIDE / max(x.shape[-2:])
            target = (max(1, round(x.shape[-2] * scale)), max(1, round(x.shape[-1] * scale))) \
                if scale < 1 else None
        out.append(F.interpolate(x, size=tuple(target), mode="area") if target else x)
    return torch.cat(out)


class SeamMeter:
    """Feed frames in order (:meth:`add`, any chunk size); :meth:`summary` with the plan."""

    def __init__(self, stage1: torch.Tensor | None = None):
        self.stage1 = stage1                    # IMAGE [N, h1, w1, 3] or None
        self.prev = None
        self.frames = 0
        self.luma: list[float] = []
        self.pairs = {k: [] for k in METRICS}   # value of pair (t-1, t) at index t-1
        self.psnr: list[float] = []

    @torch.no_grad()
    def add(self, frames: torch.Tensor) -> None:
        check(frames.ndim == 4 and frames.shape[-1] >= 3,
              f"frames: expected IMAGE frames [n, H, W, 3], got shape {tuple(frames.shape)}")
        if self.stage1 is not None:
            self._fidelity(frames)
        x = _float_frames(frames)
        y = kornia.color.rgb_to_grayscale(x)                   # BT.601 luma
        sharp = kornia.filters.sobel(y).mean(dim=(1, 2, 3))
        self.luma += y.mean(dim=(1, 2, 3)).tolist()
        y = y.mean(dim=(1, 2, 3))
        if self.prev is not None:
            x, y, sharp = (torch.cat([p, c]) for p, c in zip(self.prev, (x, y, sharp)))
        if x.shape[0] > 1:
            self.pairs["difference"] += (x[1:] - x[:-1]).abs().mean(dim=(1, 2, 3)).tolist()
            self.pairs["luma_step"] += (y[1:] - y[:-1]).abs().tolist()
            rel = (sharp[1:] - sharp[:-1]).abs() / torch.maximum(sharp[1:], sharp[:-1]).clamp_min(1e-6)
            self.pairs["structure"] += rel.tolist()
        self.prev = (x[-1:], y[-1:], sharp[-1:])
        self.frames += frames.shape[0]

    def _fidelity(self, frames: torch.Tensor) -> None:
        t0, n = self.frames, frames.shape[0]
        check(t0 + n <= self.stage1.shape[0],
              f"stage1: {self.stage1.shape[0]} frames, but the video has more ({t0 + n}+)")
        ref = self.stage1[t0:t0 + n, ..., :3].movedim(-1, 1).float()
        x = _float_frames(frames, size=ref.shape[-2:])
        mse = (x.clamp(0, 1) - ref.clamp(0, 1)).square().mean(dim=(1, 2, 3)).clamp_min(1e-10)
        self.psnr += (-10 * torch.log10(mse)).tolist()

    def summary(self, plan: tuple[Segment, ...], windows: list[list[int]] | None = None) -> dict:
        """The report as plain data (JSON-ready); with Stage I's context ``windows`` (latent
        indices of each), their joins measured the same way (:func:`window_joins`)."""
        check(self.frames >= 2, "frames: the report needs at least 2 frames")
        expected = video_frames(plan[-1].current[-1] + 1)
        check(self.frames == expected,
              f"plan: its {plan[-1].current[-1] + 1} latent blocks make {expected} frames, but "
              f"the video has {self.frames}; give the plan (or m, n) the video was made with")
        bounds = boundary_frames(plan)
        other = [t for t in range(2, self.frames) if t not in bounds]   # pair (0, 1): anchor
        lengths = [last - first + 1 for first, last in segment_frames(plan)]
        lag = max(set(lengths), key=lengths.count)
        metrics = compare_pairs(self.pairs, bounds, other, lag)
        autocorr = metrics["luma_step"]["autocorr"]
        out = {"frames": self.frames, "segments": [list(s) for s in segment_frames(plan)],
               "boundaries": bounds, "metrics": metrics, "segment_length": lag,
               "luma_autocorr": autocorr,
               "periodic": [k for k in METRICS if (metrics[k]["autocorr"] or 0) >= PERIODIC_FLAG],
               "flagged": [k for k in METRICS if metrics[k]["flagged"]],
               "series": {"luma": self.luma, **self.pairs}}
        if windows and len(windows) > 1:
            windows = [window_span(w) for w in windows]
            joins = window_joins(windows, self.frames)
            rest = [t for t in range(2, self.frames) if t not in joins]
            out["stage1_windows"] = {
                "windows": [[block_frame_range(w[0])[0], block_frame_range(w[-1])[1] - 1]
                            for w in windows],
                "joins": joins, "metrics": compare_pairs(self.pairs, joins, rest, lag)}
            out["flagged_windows"] = [k for k in METRICS
                                      if out["stage1_windows"]["metrics"][k]["flagged"]]
        if self.psnr:
            per = [sum(self.psnr[a:b + 1]) / (b + 1 - a) for a, b in segment_frames(plan)]
            out["fidelity_psnr"] = per
            out["fidelity_drop"] = per[0] - per[-1]
        return out


def compare_pairs(pairs: dict, bounds: list[int], other: list[int], lag: int) -> dict:
    """Per metric: the mean of the pairs (t-1, t) at ``bounds`` against that at ``other``
    (``gap_ratio``), the share of ``bounds`` standing out of the others, the autocorrelation of
    the series at ``lag``, and whether that flags a seam."""
    metrics = {}
    for name in METRICS:
        v = torch.tensor(pairs[name], dtype=torch.float64)              # v[t - 1]: pair (t-1, t)
        b = v[[t - 1 for t in bounds]] if bounds else v[:0]
        o = v[[t - 1 for t in other]] if other else v[:0]
        med = float(o.median()) if len(o) else 0.0
        mad = float((o - med).abs().median()) if len(o) else 0.0
        b_mean, o_mean = float(b.mean()) if len(b) else 0.0, float(o.mean()) if len(o) else 0.0
        gap = (b_mean + EPS) / (o_mean + EPS)
        stand = float((b > med + 3 * mad + EPS).double().mean()) if len(b) else 0.0
        metrics[name] = {"boundary": b_mean, "other": o_mean, "gap_ratio": gap,
                         "stand_out": stand, "anchor": float(v[0]), "autocorr": _autocorr(v[1:], lag),
                         "flagged": bool(len(b) and gap >= GAP_FLAG and stand >= STAND_OUT)}
    return metrics


def window_span(window: list[int]) -> list[int]:
    """A context window's latent indices in order, without a first latent frame kept in a
    later window (core's retain-first-frame and causal fix): the stretch it samples."""
    w = sorted(window)
    return w[1:] if len(w) > 1 and w[0] == 0 and w[1] != 1 else w


def window_joins(windows: list[list[int]], frames: int) -> list[int]:
    """Frame t of each pair (t-1, t) where Stage I's context windows (lists of latent indices,
    in order) join: where a window starts and where the one before it ends, inside the video
    and after frame 1 (the pair from your image is the anchor)."""
    joins = set()
    for prev, cur in zip(windows, windows[1:]):
        joins.add(block_frame_range(cur[0])[0])               # the next window's first frame
        joins.add(block_frame_range(prev[-1])[1])             # the frame after the window's end
    return sorted(t for t in joins if 2 <= t < frames)


def _autocorr(x: torch.Tensor, lag: int):
    """Normalised autocorrelation of ``x`` (mean removed) at ``lag``; None when too short or
    flat."""
    if lag <= 0 or len(x) <= lag + 1:
        return None
    x = x - x.mean()
    den = float((x * x).sum())
    if den <= 1e-12:
        return None
    return float((x[:-lag] * x[lag:]).sum()) / den


def verdict(summary: dict) -> str:
    """One line for a log or the node's text."""
    gaps = ", ".join(f"{k} x{summary['metrics'][k]['gap_ratio']:.2f}" for k in METRICS)
    head = (f"seams at segment boundaries ({', '.join(summary['flagged'])})"
            if summary["flagged"] else "no seam at segment boundaries")
    periodic = summary["periodic"]
    tail = (f"; repeats every {summary['segment_length']} frames ({', '.join(periodic)})"
            if periodic else "")
    line = f"{head}: boundary / other pairs {gaps}{tail}"
    joins = summary.get("stage1_windows")
    if joins:
        flagged = summary["flagged_windows"]
        wgaps = ", ".join(f"{k} x{joins['metrics'][k]['gap_ratio']:.2f}" for k in METRICS)
        line += (f"; {'seams' if flagged else 'no seam'} at Stage I's {len(joins['windows'])} "
                 f"context-window joins{' (' + ', '.join(flagged) + ')' if flagged else ''}: "
                 f"{wgaps}")
    return line


def video_chunks(source, name: str = "video", chunk: int = CHUNK):
    """uint8 frames [n, H, W, 3] of a video file (a path or a file object), ``chunk`` at a time,
    decoded with PyAV (as ComfyUI reads videos): never the whole video at once."""
    import av
    with av.open(source) as container:
        check(len(container.streams.video) > 0, f"{name}: the file has no video stream")
        frames = []
        for frame in container.decode(container.streams.video[0]):
            frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
            if len(frames) == chunk:
                yield torch.stack(frames)
                frames = []
        if frames:
            yield torch.stack(frames)


def seam_report(chunks, plan_text: str | None = None, m: int = 3, n: int = 1, *,
                stage1: torch.Tensor | None = None, each_chunk=None,
                windows=None) -> dict:
    """The whole report of a video given as frame chunks: on the plan it was made with (a Stage II
    ``plan`` string, read before any frame), else on ``m`` and ``n``; with its ``verdict``.
    ``each_chunk()`` runs before every chunk (a Cancel check). ``windows(blocks)``: Stage I's
    context windows for a video of that many latent blocks (lists of latent indices), whose
    joins the report measures too."""
    segments = read_plan(plan_text) if plan_text else None
    meter = SeamMeter(stage1=stage1)
    for frames in chunks:
        if each_chunk is not None:
            each_chunk()
        meter.add(frames)
    if segments is None:
        check((meter.frames - 1) % TEMPORAL_STRIDE == 0,
              f"video: {meter.frames} frames is not 1 + {TEMPORAL_STRIDE}k, as a Wan video is; "
              "give the Stage II sampler's plan it was made with, or trim the video")
        segments = plan_segments(latent_blocks(meter.frames), m, n)
    blocks = segments[-1].current[-1] + 1
    summary = meter.summary(segments, windows(blocks) if windows is not None else None)
    summary["verdict"] = verdict(summary)
    return summary
