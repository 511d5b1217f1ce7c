"""``m`` and ``tile_size`` on auto (0): the largest that fits the device, read from ComfyUI.

The choice itself is ``swift_core.fit`` (a function of free bytes, sizes and the model config);
this module reads the budget from ComfyUI's model management: free memory now, what ComfyUI
could unload, the weights that stay, its own reserve.
"""
from __future__ import annotations

import logging
import math

import comfy.model_management as mm

from ...swift_core.fit import M_CAP, FirstTileFit, Fit, FirstWindowFit, choose_m, choose_tile
from ...swift_core.memory import window_activation_bytes
from ...swift_core.rules import SwiftInputError
from .fits import dit_config
from .device_meter import WindowProbe

log = logging.getLogger("swifti2v")


def _held_on(device) -> int:
    """Bytes of the models ComfyUI holds on ``device`` (it can unload them); 0 where its
    model list changed shape (the choice then rests on what is free now)."""
    try:
        return sum(int(lm.model_loaded_memory()) for lm in mm.current_loaded_models
                   if getattr(lm, "device", None) == device)
    except (AttributeError, TypeError):
        return 0


def device_budgets(device, resident=()) -> list[tuple[int, str]]:
    """Bytes the device has for one forward's activations (or one VAE tile), as (bytes, note):
    first with ``resident`` (ModelPatchers) loaded whole: free now, plus what ComfyUI would free
    by unloading the models it holds there, minus the weights of ``resident``, minus ComfyUI's
    own reserve; then with those weights offloaded, as ComfyUI's partial loading does when they
    do not fit."""
    free = int(mm.get_free_memory(device))
    held = _held_on(device)
    reserve = int(getattr(mm, "extra_reserved_memory", lambda: 0)())
    weights = sum(int(p.model_size()) for p in resident)
    return [(max(0, free + held - weights - reserve), " (weights resident)"),
            (max(0, free + held - reserve), " (weights partly offloaded by ComfyUI)")]


def _first_fit(choose, budgets, where: str) -> Fit:
    """The choice with the weights loaded whole, else with them offloaded; the refusal names
    the larger budget."""
    for i, (budget, note) in enumerate(budgets):
        try:
            return choose(budget, where=f"{where}{note}")
        except SwiftInputError:
            if i == len(budgets) - 1:
                raise


def auto_m(model, latent_shape, n: int, cfg: float, resident=(), *, scale: float = 1.0,
           cap: int = M_CAP) -> Fit:
    """``m=auto``: the largest M (up to ``cap``) whose window fits the model's device with
    ``resident`` loaded; ``scale``: a measured window over its estimate (1: the estimate)."""
    blocks, lh, lw = latent_shape[2:]
    return _first_fit(
        lambda budget, where: choose_m(budget, dit_config(model), blocks, lh, lw, n,
                                       batch=1 if math.isclose(cfg, 1.0) else 2,
                                       dtype_bytes=mm.dtype_size(model.model_dtype()),
                                       where=where, scale=scale, cap=cap),
        device_budgets(model.load_device, resident), str(model.load_device))


def first_window_fit(model, latent_shape, m: int, n: int, cfg: float, resident, *,
                     explicit: bool, on_replan) -> FirstWindowFit:
    """The rest of a Stage II run planned on what its first window measured on the model's
    device (CUDA only; elsewhere it changes nothing): never above an ``explicit`` ``m``, nor
    above auto's cap."""
    blocks, lh, lw = latent_shape[2:]
    batch = 1 if math.isclose(cfg, 1.0) else 2

    def estimate(window_blocks: int) -> int:
        return window_activation_bytes(dit_config(model), window_blocks, lh, lw, batch=batch,
                                       dtype_bytes=mm.dtype_size(model.model_dtype()))

    return FirstWindowFit(
        WindowProbe(model.load_device), estimate,
        lambda scale, cap: auto_m(model, latent_shape, n, cfg, resident, scale=scale, cap=cap),
        n, planned_m=m, ceiling=m if explicit else M_CAP,
        log=lambda msg: log.info("SwiftI2V: %s", msg), on_replan=on_replan)


def auto_tile(vae, frame_h: int, frame_w: int, overlap: int, decode: bool,
              resident=(), *, scale: float = 1.0) -> Fit:
    """``tile_size=auto``: the largest VAE tile that fits the VAE's device with ``resident``
    (the VAE itself, and the Stage II model when streaming) loaded; ``scale``: a measured tile
    over its estimate (1: the estimate)."""
    return _first_fit(
        lambda budget, where: choose_tile(budget, frame_h, frame_w, decode=decode,
                                          dtype_bytes=mm.dtype_size(vae.vae_dtype),
                                          overlap=overlap, where=where, scale=scale),
        device_budgets(vae.device, (*resident, vae.patcher)), str(vae.device))


def first_tile_fit(vae, stream, overlap: int, resident, *, explicit: int) -> FirstTileFit:
    """The streaming decoder's tile planned, after its first full block, on what that block
    used on the VAE's device (CUDA only; elsewhere it changes nothing): never above an
    ``explicit`` ``tile_size`` (0: auto, up to the whole frame)."""
    def choose(scale: float) -> Fit:
        h, w = stream.frame_hw
        return auto_tile(vae, h, w, overlap, True, resident, scale=scale)

    return FirstTileFit(WindowProbe(vae.device, since_start=True), stream.tile_bytes, choose,
                        ceiling=explicit or 1 << 30,
                        log=lambda msg: log.info("SwiftI2V: %s", msg))


def resolve(fit: Fit) -> tuple[int, str]:
    """An auto choice, logged in one line: (value, why)."""
    log.info("SwiftI2V: %s", fit.reason)
    return fit.value, fit.reason


def tile_for(vae, tile_px: int, frame_h: int, frame_w: int, overlap: int, decode: bool,
             resident=()) -> tuple[int, str | None]:
    """A ``tile_size`` input as the VAE will use it: 0 (auto) chosen by :func:`auto_tile` and
    logged, (tile, why); any other value as given, (tile, None)."""
    if tile_px:
        return tile_px, None
    return resolve(auto_tile(vae, frame_h, frame_w, overlap, decode, resident))
