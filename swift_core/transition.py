"""Stage-transition synthesis (paper Sec. 3.3, Eq. 12): the rules, as plain functions.

A ground-truth clip is brought down to Stage I's size, encoded, noised to strength ``s`` and
denoised ``k`` steps by Stage I, so Stage II learns from low-res clips with Stage I's artifacts
but the clip's own motion. Noising is flow matching's ``(1 - s) x + s e`` with one seeded noise.

How ``s`` is read (``reading``):

- ``before_shift`` (default): ``s`` is a denoising strength as the paper's framework
  (DiffSynth-Studio) reads it: a timestep, shifted by the Stage I model's schedule, so the clip is
  noised to ``sigma = shift s / (1 + (shift - 1) s)`` (shift 5: s = 0.1 starts at 0.357). The
  ``k`` steps are the model's own ``k``-step schedule taken back to timesteps, scaled to start at
  ``s`` and shifted again: for core's ``simple`` scheduler that is DiffSynth-Studio's schedule.
- ``raw_sigma``: ``s`` is the starting sigma itself; the model's ``k``-step schedule is scaled to
  start at ``s``.

Either way ``k = 1`` is one step from the start sigma to 0, and ``s = 1`` is exactly Stage I's
schedule: the synthesis is plain Stage I from noise.

Each clip gets its own noise and its own kind (synthesized or a plain downsample), both drawn from
a stable hash of the video's name and the clip's start, so re-runs and other servers agree.
"""
from __future__ import annotations

import hashlib

import torch

from .rules import (STRENGTH_READINGS, SwiftInputError, check_at_least, check_bounds,
                    check_frames, check_option, check_strength)
from .schedule import shifted_sigma, unshifted


def start_sigma(strength: float, shift: float, reading: str = "before_shift") -> float:
    """The sigma the clip is noised to for strength ``s`` (see the module's readings)."""
    s = check_strength(strength)
    check_option(reading, "strength_reading", STRENGTH_READINGS)
    return float(shifted_sigma(s, shift)) if reading == "before_shift" else s


def transition_sigmas(schedule: torch.Tensor, strength: float, shift: float = 1.0,
                      reading: str = "before_shift") -> torch.Tensor:
    """The model's full ``k``-step schedule (``schedule[0]`` = its sigma_max, last = 0) brought to
    start at :func:`start_sigma`: the ``k`` steps spread over [0, s] the way the model spreads
    them over [0, 1], in timesteps (``before_shift``, ``shift`` = the model's) or in sigmas."""
    s = check_strength(strength)
    check_option(reading, "strength_reading", STRENGTH_READINGS)
    if schedule.ndim != 1 or len(schedule) < 2 or float(schedule[0]) <= 0:
        raise SwiftInputError(f"schedule: expected a 1-D sigma schedule starting above 0, got "
                         f"{schedule.tolist()}")
    if reading == "raw_sigma":
        return schedule * (s / schedule[0])
    t = unshifted(schedule.double(), shift)
    return shifted_sigma(t * (s / t[0]), shift).to(schedule.dtype)


def _unit(*parts) -> float:
    """A number in [0, 1) from a stable hash of ``parts`` (the same on every machine and run)."""
    digest = hashlib.sha256("\0".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def clip_seed(seed: int, video: str, start: int) -> int:
    """The noise seed of one clip: from the run's ``seed``, the video's name and the clip's start."""
    return int(_unit("seed", int(seed), video, int(start)) * 2**63)


def clip_synthesized(fraction: float, video: str, start: int) -> bool:
    """Whether the clip is synthesized (else a plain downsample): true for a share ``fraction``
    of clips, drawn by a stable hash of the video's name and the clip's start."""
    f = check_bounds(fraction, "synthesize_fraction", 0.0, 1.0)
    return _unit("mix", video, int(start)) < f


def clip_span(length: int, frame_step: int = 1) -> int:
    """Source frames one clip of ``length`` frames covers when it takes every ``frame_step``-th."""
    check_at_least(frame_step, "frame_step")
    return (check_frames(length, "length") - 1) * frame_step + 1


def clip_starts(total: int, length: int, start: int = 0, stride: int = 0,
                max_clips: int = 1, frame_step: int = 1, name: str = "video") -> list[int]:
    """First frames of the clips of ``length`` frames a video of ``total`` frames yields.

    Clips begin at ``start``, ``start + stride``, ... (``stride`` 0: back to back), at most
    ``max_clips``, each wholly inside the video; a clip takes every ``frame_step``-th frame (2 turns
    a 48 fps video into a 24 fps clip). ``name`` names the video in the refusal.
    """
    span = clip_span(length, frame_step)
    if start < 0 or stride < 0 or max_clips < 1:
        raise SwiftInputError(f"start={start}, stride={stride}, max_clips={max_clips}: start and stride "
                         "must be >= 0 and max_clips >= 1")
    step = stride or span
    starts = [start + i * step for i in range(max_clips) if start + i * step + span <= total]
    if not starts:
        every = f" (one frame in {frame_step}: {span} source frames)" if frame_step > 1 else ""
        raise SwiftInputError(f"{name}: {total} frames; a clip of length={length}{every} from "
                         f"start={start} needs at least {start + span}")
    return starts


def frames_needed(length: int, start: int = 0, stride: int = 0, max_clips: int = 1,
                  frame_step: int = 1) -> int:
    """Frames to decode (from frame 0) to cut every clip :func:`clip_starts` may give."""
    span = clip_span(length, frame_step)
    return start + (max_clips - 1) * (stride or span) + span
