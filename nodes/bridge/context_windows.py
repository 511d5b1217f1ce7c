"""Core's context windows on the Stage I model (``WanContextWindowsManual``): how many latent
frames one forward then holds, and whether this ComfyUI's windows cut Wan I2V's image
conditioning too (0.3.x's do not: the model would get a window of noise beside the whole video's
image latents and fail at its first step, after Stage I has loaded)."""
from __future__ import annotations

import torch

from ...swift_core.rules import SwiftInputError


def handler(model):
    """The context handler core's context-window nodes put on the MODEL, or None."""
    return (getattr(model, "model_options", None) or {}).get("context_handler")


def forward_blocks(model, blocks: int) -> int:
    """Latent frames one Stage I forward holds: a context window's (core's handler keeps the
    length in latent frames), else the whole video's."""
    h = handler(model)
    length = getattr(h, "context_length", None)
    return min(blocks, int(length) + 1) if isinstance(length, int) and length > 0 else blocks


def cuts_image_conditioning(h) -> bool | None:
    """Whether ``h`` cuts a Wan I2V image latent (``c_concat``, [B, C, T, H, W]) to its window;
    None when this ComfyUI's context-window classes cannot be probed (then nothing is refused)."""
    try:
        import comfy.conds
        from comfy.context_windows import IndexListContextWindow
        x = torch.zeros(1, 1, 4, 1, 1)
        window = IndexListContextWindow([0, 1], dim=h.dim)
        cond = [{"model_conds": {"c_concat": comfy.conds.CONDNoiseShape(torch.zeros(1, 2, 4, 1, 1))}}]
        out = h.get_resized_cond(cond, x, window)
        return out[0]["model_conds"]["c_concat"].cond.shape[2] == 2
    except Exception:                       # noqa: BLE001 - another version's classes
        return None


def check_stage1_windows(model, blocks: int) -> None:
    """Refuses, before anything loads, a Stage I longer than its context window on a ComfyUI
    whose context windows leave Wan I2V's image conditioning whole."""
    h = handler(model)
    if h is None or forward_blocks(model, blocks) >= blocks:
        return
    if cuts_image_conditioning(h) is False:
        raise SwiftInputError(
            "model: core's context windows in this ComfyUI do not cut Wan I2V's image "
            "conditioning to the window (ComfyUI 0.3.x), so Stage I would fail at its first "
            "step; update ComfyUI (0.8 or later) for Stage I longer than one window, or remove "
            "the context-windows node and use at most its length in frames")
