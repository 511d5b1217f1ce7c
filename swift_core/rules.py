"""Input rules of the pack, in one place: the choices, the channel counts, and pure checks.

Every check is ``check_x(value, name, ...)``: it returns the value when it is allowed and otherwise
raises :class:`SwiftInputError` whose message names the input, what was given and what is allowed.
The nodes' ``validate_inputs``, their execute-time checks and the batch client's row checks all
call these functions; :func:`check_values` runs a table of them over a dict of inputs.
"""
from __future__ import annotations

import posixpath
import re
from typing import Callable, Mapping

#: Stage II modes: ``swifti2v`` (the paper's 96-channel weights), ``refine`` (public 48-channel 5B).
MODES = ("swifti2v", "refine")
#: The Stage II Sampler's ``mode`` input: ``auto`` reads the model's input channels.
MODE_CHOICES = ("auto",) + MODES
#: RoPE time positions of a CSG window: ``window`` (0..w-1) or ``absolute`` (block indices).
ROPE_MODES = ("window", "absolute")
#: Framing of a frame resized to another aspect ratio.
CROP_MODES = ("center", "disabled")
RESIZE_METHODS = ("bicubic", "bilinear", "area", "nearest-exact")
#: How the Stage Transition reads its strength s: ``before_shift`` (a timestep, shifted by the
#: Stage I model's schedule as DiffSynth-Studio reads a denoising strength) or ``raw_sigma``.
STRENGTH_READINGS = ("before_shift", "raw_sigma")
COLOR_MATCH = ("off", "lab")

#: Latent channels of the Wan 2.2 VAE (Stage II) and the Wan 2.1 VAE (Stage I).
WAN22_CHANNELS = 48
WAN21_CHANNELS = 16
#: Stage II DiT input channels -> the mode it runs in (96 = latent + concatenated reference).
STAGE2_CHANNELS = {2 * WAN22_CHANNELS: MODES[0], WAN22_CHANNELS: MODES[1]}
#: Pixels per latent unit of the Wan 2.2 VAE; the DiT's 2x2 patch makes sizes multiples of 32.
WAN22_SPATIAL = 16
STAGE2_MULTIPLE = 2 * WAN22_SPATIAL
#: Wan 2.1 VAE: 8x spatial, patch 2x2.
STAGE1_MULTIPLE = 16
#: Both Wan VAEs compress time 4x and encode the first frame on its own.
TEMPORAL_STRIDE = 4


class SwiftInputError(ValueError):
    """A user's input is wrong; the message names the input and the rule."""


def check(cond: bool, message: str) -> None:
    if not cond:
        raise SwiftInputError(message)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_option(value, name: str, options) -> str:
    options = list(options)
    if value not in options:
        shown = ", ".join(map(str, options[:12])) + (", ..." if len(options) > 12 else "")
        raise SwiftInputError(f"{name}={value!r}: must be one of {shown}")
    return value


def check_bounds(value, name: str, lo=None, hi=None):
    """A widget's own limits (ComfyUI does not check them for inputs ``validate_inputs`` takes)."""
    check(not isinstance(value, bool) and isinstance(value, (int, float)),
          f"{name}={value!r}: must be a number")
    check((lo is None or value >= lo) and (hi is None or value <= hi),
          f"{name}={value!r}: must be between {lo} and {hi}")
    return value


def check_at_least(value, name: str, lo: int = 1, why: str = "") -> int:
    check(_is_int(value) and value >= lo, f"{name}={value!r}: must be a whole number >= {lo}{why}")
    return value


def check_frames(frames, name: str = "frames") -> int:
    """``frames`` must be 4k+1 (1, 5, 9, ... 81)."""
    if not _is_int(frames) or frames < 1 or (frames - 1) % TEMPORAL_STRIDE:
        if _is_int(frames) and frames > 1:
            lo = (frames - 1) // TEMPORAL_STRIDE * TEMPORAL_STRIDE + 1
            hint = f", e.g. {lo} or {lo + TEMPORAL_STRIDE}"
        else:
            hint = ", e.g. 81"
        raise SwiftInputError(f"{name}={frames!r}: must be 4k+1 (1, 5, 9, ..., 81){hint}")
    return frames


def check_length(frames, name: str = "length") -> int:
    """A video's length: 4k+1 frames with at least one block after the anchor (>= 5)."""
    check_frames(frames, name)
    check(frames >= 1 + TEMPORAL_STRIDE, f"{name}={frames}: must be at least {1 + TEMPORAL_STRIDE} "
                                         "(the input image plus one latent block)")
    return frames


def check_multiple(value, name: str, multiple: int = STAGE2_MULTIPLE) -> int:
    """``value`` must be a positive multiple of ``multiple``."""
    if not _is_int(value) or value < multiple or value % multiple:
        hint = ""
        if _is_int(value) and value > 0:
            lo = max(multiple, value // multiple * multiple)
            hint = f", e.g. {lo} or {lo + multiple}"
        raise SwiftInputError(f"{name}={value!r}: must be a positive multiple of {multiple}{hint}")
    return value


def check_size_input(value, name: str) -> int:
    """A width/height input: 0 (take it from the image) or a positive multiple of 32."""
    return value if value == 0 and _is_int(value) else check_multiple(value, name)


def check_m(m, name: str = "m") -> int:
    return check_at_least(m, name, 1, " (the segment length M; paper: 3)")


def check_m_input(m, name: str = "m") -> int:
    """The m widget: 0 is auto (chosen from free memory), otherwise M itself."""
    return check_at_least(m, name, 0, " (0 = auto, else the segment length M; paper: 3)")


def check_n(n, name: str = "n") -> int:
    return check_at_least(n, name, 0, " (the neighbour count N; paper: 1)")


def check_denoise(denoise, mode: str, name: str = "denoise") -> float:
    """``refine`` starts each segment from the reference noised to ``denoise``: (0, 1]. (None: not
    known yet.)"""
    check(mode != "refine" or denoise is None or 0.0 < denoise <= 1.0,
          f"{name}={denoise}: must be in (0, 1] for refine mode")
    return denoise


def check_tile_px(value, name: str) -> int:
    """VAE tile sizes and overlaps are whole latent units: multiples of 16 px (0 allowed)."""
    if not _is_int(value) or value < 0 or value % WAN22_SPATIAL:
        lo = value // WAN22_SPATIAL * WAN22_SPATIAL if _is_int(value) else 0
        raise SwiftInputError(f"{name}={value!r}: must be a multiple of {WAN22_SPATIAL} pixels (one "
                              f"latent unit of the Wan 2.2 VAE), e.g. {lo} or {lo + WAN22_SPATIAL}")
    return value


def check_strength(s, name: str = "strength") -> float:
    check(not isinstance(s, bool) and isinstance(s, (int, float)) and 0.0 < float(s) <= 1.0,
          f"{name}={s!r}: must be in (0, 1] (paper: 0.1; 1 = plain Stage I from noise)")
    return float(s)


def check_transition_steps(k, name: str = "steps") -> int:
    return check_at_least(k, name, 1, " (paper: 1)")


def check_prefix(prefix, name: str = "filename_prefix") -> str:
    """A relative path that stays inside the folder it is joined to (no absolute path, no '..'
    leading out). ComfyUI refuses such a prefix too, but only when the file is written."""
    check(isinstance(prefix, str) and bool(prefix.strip()),
          f"{name}={prefix!r}: must be a non-empty relative path inside ComfyUI's output folder, "
          "e.g. 'SwiftI2V/video'")
    p = prefix.replace("\\", "/")
    check(not (p.startswith("/") or re.match(r"^[A-Za-z]:", p)),
          f"{name}={prefix!r}: must be a relative path inside ComfyUI's output folder, not an "
          "absolute path")
    norm = posixpath.normpath(p)
    check(not (norm == ".." or norm.startswith("../")),
          f"{name}={prefix!r}: must stay inside ComfyUI's output folder ('..' leads out of it)")
    return prefix


def check_name(name, input_name: str = "name") -> str:
    """A plain file name (no folder), e.g. a training sample's."""
    check(isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,199}", name)
          is not None,
          f"{input_name}={name!r}: must be a plain file name (letters, digits, '.', '_', '-', "
          "spaces; no '/' or '..'), e.g. 'clip_0001'")
    return name


Rules = Mapping[str, Callable]


def check_values(values: Mapping, rules: Rules, prefix: str = "") -> None:
    """Run ``rules[name](value, name)`` for every input of ``values`` that has a rule and is known
    (a None is a linked input, checked when the node runs); the first failure is raised, its
    message prefixed with ``prefix`` (e.g. ``"row 3: "``)."""
    for name, rule in rules.items():
        value = values.get(name)
        if value is None:
            continue
        try:
            rule(value, name)
        except SwiftInputError as e:
            raise SwiftInputError(f"{prefix}{e}") from None
