"""RoPE time positions of a gathered CSG window (``rope=absolute``), as a DIFFUSION_MODEL wrapper.

A uniform shift (core's ``rope_options``) cannot place the anchor at 0 and the segment at k..k+M.
The wrapper does not copy the model's forward: for the duration of one call it lets the model's
own ``rope_encode`` compute the frequencies of the whole video and gathers them at the window's
true block indices; every branch of the running version's forward still runs.
"""
from __future__ import annotations

import torch

import comfy.patcher_extension as pe

POSITIONS_KEY = "swifti2v_positions"
WRAPPER_KEY = "swifti2v_rope"


def gathered_rope(rope_encode, positions: list[int]):
    """``rope_encode`` whose time axis of a window of ``len(positions)`` frames is ``positions``."""
    full = max(positions) + 1

    def encode(t, h, w, *args, **kwargs):
        if t != len(positions) or args or kwargs.get("t_start", 0) or kwargs.get("source_id", 0):
            return rope_encode(t, h, w, *args, **kwargs)
        freqs = rope_encode(full, h, w, **kwargs)
        per_frame = freqs.shape[1] // full
        idx = torch.tensor(positions, device=freqs.device)
        return freqs.unflatten(1, (full, per_frame))[:, idx].flatten(1, 2)

    return encode


def absolute_rope_wrapper(executor, *args, **kwargs):
    transformer_options = args[5] if len(args) > 5 else kwargs.get("transformer_options", {})
    positions = transformer_options.get(POSITIONS_KEY)
    if positions is None:
        return executor(*args, **kwargs)
    dm = executor.class_obj
    dm.rope_encode = gathered_rope(type(dm).rope_encode.__get__(dm), list(positions))
    try:
        return executor(*args, **kwargs)
    finally:
        del dm.rope_encode          # back to the class's method


def set_window_positions(model_options: dict, positions) -> None:
    """Ask for absolute positions in these (cloned) model options: wrapper + the window's blocks."""
    model_options.setdefault("transformer_options", {})[POSITIONS_KEY] = [int(p) for p in positions]
    pe.add_wrapper_with_key(pe.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY, absolute_rope_wrapper,
                            model_options, is_model_options=True)
