"""Stage-transition synthesis (paper Sec. 3.3, Eq. 12): the rules, as plain functions.

A ground-truth clip is brought down to Stage I's size, encoded, noised to strength ``s`` and
denoised ``k`` steps by Stage I, so Stage II learns from low-res clips with Stage I's artifacts
but the clip's own motion. Noising is flow matching's ``(1 - s) x + s e`` with one seeded noise.

The ``k`` steps are the Stage I model's own ``k``-step schedule (its scheduler and shift, as
Stage I inference uses them), scaled so that it starts at ``s`` and still ends at 0. With
``k = 1`` that is one step from ``s`` to 0; with ``s = 1`` it is exactly Stage I's schedule, and
the synthesis is plain Stage I from noise.
"""
from __future__ import annotations

import torch

from .rules import SwiftInputError, check_at_least, check_frames, check_strength


def transition_sigmas(schedule: torch.Tensor, strength: float) -> torch.Tensor:
    """The model's full ``k``-step schedule (``schedule[0]`` = its sigma_max, last = 0) scaled to
    start at ``strength``: the ``k`` steps spread over [0, s] the way the model spreads them over
    [0, 1]."""
    s = check_strength(strength)
    if schedule.ndim != 1 or len(schedule) < 2 or float(schedule[0]) <= 0:
        raise SwiftInputError(f"schedule: expected a 1-D sigma schedule starting above 0, got "
                         f"{schedule.tolist()}")
    return schedule * (s / schedule[0])


def clip_span(length: int, frame_step: int = 1) -> int:
    """Source frames one clip of ``length`` frames covers when it takes every ``frame_step``-th."""
    check_at_least(frame_step, "frame_step")
    return (check_frames(length, "length") - 1) * frame_step + 1


def clip_starts(total: int, length: int, start: int = 0, stride: int = 0,
                max_clips: int = 1, frame_step: int = 1) -> list[int]:
    """First frames of the clips of ``length`` frames a video of ``total`` frames yields.

    Clips begin at ``start``, ``start + stride``, ... (``stride`` 0: back to back), at most
    ``max_clips``, each wholly inside the video; a clip takes every ``frame_step``-th frame (2 turns
    a 48 fps video into a 24 fps clip).
    """
    span = clip_span(length, frame_step)
    if start < 0 or stride < 0 or max_clips < 1:
        raise SwiftInputError(f"start={start}, stride={stride}, max_clips={max_clips}: start and stride "
                         "must be >= 0 and max_clips >= 1")
    step = stride or span
    starts = [start + i * step for i in range(max_clips) if start + i * step + span <= total]
    if not starts:
        every = f" (one frame in {frame_step}: {span} source frames)" if frame_step > 1 else ""
        raise SwiftInputError(f"video: {total} frames; a clip of length={length}{every} from "
                         f"start={start} needs at least {start + span}")
    return starts


def frames_needed(length: int, start: int = 0, stride: int = 0, max_clips: int = 1,
                  frame_step: int = 1) -> int:
    """Frames to decode (from frame 0) to cut every clip :func:`clip_starts` may give."""
    span = clip_span(length, frame_step)
    return start + (max_clips - 1) * (stride or span) + span
