"""Core's context windows on the Stage I model (``WanContextWindowsManual``): how many latent
frames one forward then holds, and whether this ComfyUI's windows cut Wan I2V's image
conditioning too (0.3.x's do not: the model would get a window of noise beside the whole video's
image latents and fail at its first step; there the Stage I Sampler gives them a handler that
cuts it)."""
from __future__ import annotations

import copy

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


def cutting_image_conditioning(h):
    """A copy of ``h`` whose ``get_resized_cond`` also cuts to the window every model cond that
    holds one tensor as long as the video along ``h.dim`` (Wan I2V's ``c_concat``), what core's
    handler does itself from 0.8 on."""
    own = h.get_resized_cond

    def get_resized_cond(cond_in, x_in, window, device=None):
        out = own(cond_in, x_in, window, device)
        for cond in out or []:
            conds = cond.get("model_conds")
            if not isinstance(conds, dict):
                continue
            conds = cond["model_conds"] = dict(conds)
            for key, value in conds.items():
                t = getattr(value, "cond", None)
                if isinstance(t, torch.Tensor) and h.dim < t.ndim and \
                        t.size(h.dim) == x_in.size(h.dim):
                    conds[key] = value._copy_with(window.get_tensor(t, device))
        return out

    patched = copy.copy(h)
    patched.get_resized_cond = get_resized_cond
    return patched


def stage1_windows(model, blocks: int):
    """``model`` ready for a Stage I longer than its context window: as it is where core's
    handler cuts Wan I2V's image conditioning, else a clone whose handler does
    (:func:`cutting_image_conditioning`, ComfyUI 0.3.x)."""
    h = handler(model)
    if h is None or forward_blocks(model, blocks) >= blocks or \
            cuts_image_conditioning(h) is not False:
        return model
    patched = cutting_image_conditioning(h)
    if cuts_image_conditioning(patched) is not True:
        raise SwiftInputError(
            "model: core's context windows in this ComfyUI do not cut Wan I2V's image "
            "conditioning to the window, so Stage I would fail at its first step; update "
            "ComfyUI, or remove the context-windows node and use at most its length in frames")
    model = model.clone()
    model.model_options["context_handler"] = patched
    return model


def windows_of(model, blocks: int) -> list[list[int]] | None:
    """The latent indices of each context window core's handler on ``model`` runs over a video
    of ``blocks`` latent frames (at the first step: uniform schedules move them per step), or
    None without a handler; a handler this ComfyUI's classes cannot ask is refused by name."""
    h = handler(model)
    if h is None:
        return None
    try:
        shape = [1] * max(h.dim + 1, 3)
        shape[h.dim] = blocks
        return [list(w.index_list) for w in
                h.get_context_windows(None, torch.zeros(shape), {"transformer_options": {}})]
    except Exception as e:                  # noqa: BLE001 - another version's handler
        raise SwiftInputError(
            f"stage1_model: cannot read the context windows of this ComfyUI's handler "
            f"({type(h).__name__}: {type(e).__name__}: {e}); disconnect stage1_model") from e
