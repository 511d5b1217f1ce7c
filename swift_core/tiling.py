"""Spatial tiling with linear blending, for functions that keep per-tile state (causal VAEs).

``tiled_apply(x, fn, tile, overlap, scale, states)`` splits ``x`` [..., H, W] into tiles of
``tile`` pixels overlapping by ``overlap``, calls ``fn(tile_x, state)`` with one persistent
``state`` dict per tile position (kept in ``states`` across calls, so a causal cache carries
over time chunks), and blends the outputs, whose spatial size is the input's times ``scale``.
"""
from __future__ import annotations

import torch


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of ``tile``; [0] when one tile suffices."""
    if tile <= 0 or length <= tile:
        return [0]
    step = max(1, tile - overlap)
    return sorted(set(list(range(0, length - tile, step)) + [length - tile]))


def blend_ramp(size: int, overlap: int, at_start: bool, at_end: bool, device=None) -> torch.Tensor:
    """Weights 1 inside, ramping over ``overlap`` at the sides that touch another tile."""
    w = torch.ones(size, device=device)
    overlap = min(overlap, size // 2)
    if overlap > 0:
        ramp = torch.linspace(0, 1, overlap + 2, device=device)[1:-1]
        if not at_start:
            w[:overlap] = ramp
        if not at_end:
            w[-overlap:] = ramp.flip(0)
    return w


def tiled_apply(x: torch.Tensor, fn, tile: int, overlap: int, scale: float, states: dict):
    H, W = x.shape[-2:]
    overlap = max(0, min(overlap, tile // 2)) if tile > 0 else 0
    ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        return fn(x, states.setdefault((0, 0), {}))
    th, tw = min(tile, H), min(tile, W)
    out = acc = None
    for y in ys:
        for x0 in xs:
            o = fn(x[..., y:y + th, x0:x0 + tw], states.setdefault((y, x0), {}))
            if out is None:
                shape = tuple(o.shape[:-2]) + (round(H * scale), round(W * scale))
                out = torch.zeros(shape, device=o.device, dtype=torch.float32)
                acc = torch.zeros(shape[-2:], device=o.device, dtype=torch.float32)
            oy, ox = round(y * scale), round(x0 * scale)
            oh, ow = o.shape[-2:]
            ov = round(overlap * scale)
            wgt = (blend_ramp(oh, ov, y == 0, y + th >= H, o.device)[:, None]
                   * blend_ramp(ow, ov, x0 == 0, x0 + tw >= W, o.device)[None, :])
            out[..., oy:oy + oh, ox:ox + ow] += o.float() * wgt
            acc[oy:oy + oh, ox:ox + ow] += wgt
    return out / acc
