"""Requests too large for the machine, refused before anything is allocated.

Host RAM is compared with what is free now (ComfyUI's own figure); a DiT forward's activations
(``swift_core.memory``'s model: weights can be offloaded, activations cannot) with all the memory
of the model's device.
"""
from __future__ import annotations

import math

import torch

import comfy.model_management as mm

from ...swift_core.memory import (WanDiTConfig, check_fits, frames_bytes, max_window_blocks,
                                  window_activation_bytes)
from ...swift_core.rules import TEMPORAL_STRIDE, WAN22_SPATIAL
from .checks import diffusion_model
from .context_windows import forward_blocks


def check_host_fits(need_bytes: int, **message) -> None:
    """Refuse what would not fit the host RAM free now (ComfyUI's own figure)."""
    free = int(mm.get_free_memory(torch.device("cpu")))
    check_fits(need_bytes, free, where="host RAM", **message)


def check_chunk_fits(width: int, height: int, blocks_per_chunk: int) -> None:
    """Building and encoding ``blocks_per_chunk`` latent blocks of frames at once (the frames and
    their resized copy) must fit host RAM."""
    frames = TEMPORAL_STRIDE * blocks_per_chunk + 1
    check_host_fits(2 * frames_bytes(frames, width, height),
                    inputs=f"width={width}, height={height}, blocks_per_chunk={blocks_per_chunk}",
                    what=f"building {frames} frames of {width}x{height} at once",
                    advice="lower blocks_per_chunk or the size")


def dit_config(model) -> WanDiTConfig:
    dm = diffusion_model(model)
    return WanDiTConfig(dim=dm.dim, heads=dm.num_heads, ffn=dm.ffn_dim, layers=dm.num_layers,
                        in_channels=int(dm.patch_embedding.weight.shape[1]),
                        out_channels=dm.out_dim, patch=tuple(dm.patch_size))


def check_activations_fit(model, blocks: int, latent_h: int, latent_w: int, cfg: float,
                          **message) -> None:
    """One forward's activations (swift_core's memory model; weights can be offloaded, these
    cannot) against all the memory of the model's device."""
    need = window_activation_bytes(dit_config(model), blocks, latent_h, latent_w,
                                   batch=1 if math.isclose(cfg, 1.0) else 2,
                                   dtype_bytes=mm.dtype_size(model.model_dtype()))
    total = int(mm.get_total_memory(model.load_device))
    check_fits(need, total, where=f"memory on {model.load_device}", **message)


def check_stage1_fits(model, size, cfg: float) -> None:
    """Stage I holds its padded start video and its decoded frames (float32) in host RAM, and
    denoises all its latent frames in one forward."""
    w1, h1 = size.stage1
    inputs = f"width={size.width}, height={size.height}, length={size.frames}"
    advice = "use fewer frames (length) or a smaller size (width/height)"
    check_host_fits(2 * frames_bytes(size.frames, w1, h1), inputs=inputs,
                    what=f"Stage I's {size.frames} frames of {w1}x{h1}", advice=advice)
    blocks = forward_blocks(model, size.blocks)        # one context window, where core cuts them
    check_activations_fit(model, blocks, h1 // 8, w1 // 8, cfg, inputs=inputs,
                          what=f"one Stage I forward over {blocks} latent frames",
                          advice=advice + ("" if blocks < size.blocks else
                                           ", or put core's Wan Context Windows on the model"))


def check_window_fits(model, latent_shape, m: int, n: int, cfg: float) -> None:
    blocks, lh, lw = latent_shape[2:]
    win = max_window_blocks(blocks, m, n)
    check_activations_fit(model, win, lh, lw, cfg,
                          inputs=f"m={m}, n={n} at {lw * WAN22_SPATIAL}x{lh * WAN22_SPATIAL}",
                          what=f"one CSG window of {win} latent blocks",
                          advice="lower m (or n), or the size")
