"""The CSG plan as data: which latent blocks each segment denoises and which it only reads.

Block 0 is the anchor (the encoded input image). Blocks 1..T'-1 are split into consecutive
segments of ``m`` blocks (the last may be shorter). Segment k's window is the anchor, the ``n``
blocks just before the segment, and the segment's own blocks, in time order, without duplicates.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch

from .rules import ROPE_MODES, SwiftInputError, check_m, check_n, check_option


@dataclass(frozen=True)
class Segment:
    """One CSG segment: ``context`` blocks are read-only, ``current`` blocks are denoised."""

    index: int
    context: tuple[int, ...]
    current: tuple[int, ...]

    @property
    def window(self) -> tuple[int, ...]:
        """All blocks the DiT sees, in time order (context first: it always precedes current)."""
        return self.context + self.current


def plan_segments(num_blocks: int, m: int = 3, n: int = 1, *, first: int = 1,
                  first_index: int = 0) -> tuple[Segment, ...]:
    """Segments of the CSG schedule for ``num_blocks`` latent blocks (anchor included).

    ``m >= num_blocks - 1`` gives one window over everything: the "without CSG" baseline.
    ``first``/``first_index``: plan only from block ``first`` on, numbering from ``first_index``
    (the rest of a plan, re-planned).
    """
    check_m(m)
    check_n(n)
    if not isinstance(num_blocks, int) or num_blocks < 2:
        raise SwiftInputError(f"num_blocks={num_blocks!r}: need the anchor block plus at least one block "
                         "to generate (frames >= 5)")
    return tuple(_segment(k, start, min(start + m, num_blocks), n)
                 for k, start in enumerate(range(first, num_blocks, m), start=first_index))


def _segment(index: int, start: int, stop: int, n: int) -> Segment:
    """Segment ``index`` denoising blocks ``start..stop-1``: the anchor and the ``n`` blocks just
    before ``start`` are its context."""
    neighbours = range(max(0, start - n), start)
    return Segment(index, (0,) + tuple(b for b in neighbours if b != 0), tuple(range(start, stop)))


def replan_from(plan, k: int, m: int, n: int) -> tuple[Segment, ...]:
    """``plan`` with its segments from ``k`` on re-planned in segments of ``m`` blocks (the ones
    before ``k`` are final and kept): what a window that did not fit is retried with."""
    num_blocks = plan[-1].current[-1] + 1
    return tuple(plan[:k]) + plan_segments(num_blocks, m, n, first=plan[k].current[0],
                                           first_index=k)


def largest_window(plan) -> int:
    """Blocks in the largest window of ``plan``: what one forward of the DiT really holds."""
    return max(len(s.window) for s in plan)


def window_positions(segment: Segment, rope: str = "window") -> torch.Tensor:
    """RoPE time positions of a segment's window: 0..w-1 (``window``) or true block indices."""
    if rope == "window":
        return torch.arange(len(segment.window))
    check_option(rope, "rope", ROPE_MODES)
    return torch.tensor(segment.window)


def describe_plan(plan, *, m: int, n: int, chosen: dict | None = None, tile_size=None,
                  changes=()) -> str:
    """The plan that ran as one JSON line: ``m``/``n`` asked (after auto), each segment's
    ``[first, last]`` block, what auto chose and why (``chosen``), the VAE ``tile_size`` and any
    out-of-memory ``changes``. :func:`read_plan` gives the segments back."""
    return json.dumps({"m": m, "n": n, "blocks": plan[-1].current[-1] + 1,
                       "segments": [[s.current[0], s.current[-1]] for s in plan],
                       "auto": dict(chosen or {}), "tile_size": tile_size,
                       "changes": list(changes)})


def read_plan(text: str) -> tuple[Segment, ...]:
    """The segments of a :func:`describe_plan` string (``n`` as it ran)."""
    try:
        info = json.loads(text)
        n, spans = int(info["n"]), [(int(a), int(b)) for a, b in info["segments"]]
    except (ValueError, KeyError, TypeError) as e:
        raise SwiftInputError(f"plan: expected the Stage II sampler's plan output (JSON with m, "
                              f"n and segments), got {text[:80]!r} ({e})") from None
    check_n(n)
    segments = []
    for k, (a, b) in enumerate(spans):
        if a < 1 or b < a or (segments and a != segments[-1].current[-1] + 1):
            raise SwiftInputError(f"plan: segment {k} spans blocks {a}..{b}; segments must be "
                                  "consecutive from block 1")
        segments.append(_segment(k, a, b + 1, n))
    if not segments:
        raise SwiftInputError("plan: no segments")
    return tuple(segments)
