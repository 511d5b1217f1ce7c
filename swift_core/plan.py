"""The CSG plan as data: which latent blocks each segment denoises and which it only reads.

Block 0 is the anchor (the encoded input image). Blocks 1..T'-1 are split into consecutive
segments of ``m`` blocks (the last may be shorter). Segment k's window is the anchor, the ``n``
blocks just before the segment, and the segment's own blocks, in time order, without duplicates.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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


def check_m(m: int) -> None:
    if not isinstance(m, int) or m < 1:
        raise ValueError(f"m={m!r}: the segment length M must be an integer >= 1 (paper: 3)")


def check_n(n: int) -> None:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n={n!r}: the neighbour count N must be an integer >= 0 (paper: 1)")


def check_segmentation(m: int, n: int) -> None:
    check_m(m)
    check_n(n)


def plan_segments(num_blocks: int, m: int = 3, n: int = 1) -> tuple[Segment, ...]:
    """Segments of the CSG schedule for ``num_blocks`` latent blocks (anchor included).

    ``m >= num_blocks - 1`` gives one window over everything: the "without CSG" baseline.
    """
    check_segmentation(m, n)
    if not isinstance(num_blocks, int) or num_blocks < 2:
        raise ValueError(f"num_blocks={num_blocks!r}: need the anchor block plus at least one block "
                         "to generate (frames >= 5)")
    segments = []
    for k, start in enumerate(range(1, num_blocks, m)):
        current = tuple(range(start, min(start + m, num_blocks)))
        neighbours = range(max(0, start - n), start)
        context = (0,) + tuple(b for b in neighbours if b != 0)
        segments.append(Segment(k, context, current))
    return tuple(segments)


ROPE_MODES = ("window", "absolute")


def window_positions(segment: Segment, rope: str = "window") -> torch.Tensor:
    """RoPE time positions of a segment's window: 0..w-1 (``window``) or true block indices."""
    if rope == "window":
        return torch.arange(len(segment.window))
    if rope == "absolute":
        return torch.tensor(segment.window)
    raise ValueError(f"rope={rope!r}: must be one of {ROPE_MODES}")
