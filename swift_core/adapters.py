"""Denoiser adapters: wrap a velocity-predicting Wan DiT as a CSG ``denoise`` callable.

These work on a model object and import no model library: the diffusers adapter takes any
``WanTransformer3DModel`` instance (diffusers itself is a test/bench dependency only).
"""
from __future__ import annotations

import contextlib

import torch


def flow_denoised(x, velocity, sigma):
    """x0 estimate of a flow-matching model: x - sigma * v, with sigma per block [B, w]."""
    return x - sigma[:, None, :, None, None].to(x.dtype) * velocity.to(x.dtype)


def positioned_rope(rope, hidden_states, positions):
    """diffusers ``WanRotaryPosEmbed`` output with the time axis at ``positions`` (not 0..f-1)."""
    _, _, f, h, w = hidden_states.shape
    p_t, p_h, p_w = rope.patch_size
    ppf, pph, ppw = f // p_t, h // p_h, w // p_w
    if positions.numel() != ppf:
        raise ValueError(f"positions: expected {ppf} entries (one per latent frame), got "
                         f"{positions.numel()}")
    sizes = [rope.t_dim, rope.h_dim, rope.w_dim]
    out = []
    for table in (rope.freqs_cos, rope.freqs_sin):
        t_tab, h_tab, w_tab = table.split(sizes, dim=1)
        parts = (t_tab[positions.to(table.device)].view(ppf, 1, 1, -1).expand(ppf, pph, ppw, -1),
                 h_tab[:pph].view(1, pph, 1, -1).expand(ppf, pph, ppw, -1),
                 w_tab[:ppw].view(1, 1, ppw, -1).expand(ppf, pph, ppw, -1))
        out.append(torch.cat(parts, dim=-1).reshape(1, ppf * pph * ppw, 1, -1))
    return tuple(out)


@contextlib.contextmanager
def rope_at(model, positions):
    """Within the block, ``model.rope`` places latent frames at ``positions``."""
    handle = model.rope.register_forward_hook(
        lambda mod, args, _out: positioned_rope(mod, args[0], positions))
    try:
        yield
    finally:
        handle.remove()


def diffusers_wan_velocity(model, *, timestep_scale: float = 1000.0):
    """``velocity(x, sigma, *, reference, positions, context)`` of a diffusers
    ``WanTransformer3DModel`` (Wan 2.2 TI2V style): timesteps are given per token (diffusers takes
    a [B, tokens] timestep for TI2V), so each block carries its own sigma; the reference, if any,
    is concatenated on the channel axis; ``positions`` place the blocks on RoPE's time axis."""
    p_t, p_h, p_w = model.config.patch_size
    dtype = next(model.parameters()).dtype

    def velocity(x, sigma, *, reference, positions, context):
        inp = x if reference is None else torch.cat([x, reference.to(x.dtype)], dim=1)
        tokens = (x.shape[3] // p_h) * (x.shape[4] // p_w)
        t = (sigma * timestep_scale).repeat_interleave(tokens, dim=1)
        with rope_at(model, positions):
            return model(inp.to(dtype), t, context.to(dtype), return_dict=False)[0]

    return velocity


def diffusers_wan_denoiser(model, encoder_hidden_states, *, timestep_scale: float = 1000.0):
    """A CSG denoiser over a diffusers ``WanTransformer3DModel``: its velocity as an x0 estimate."""
    velocity = diffusers_wan_velocity(model, timestep_scale=timestep_scale)

    def denoise(x, sigma, *, reference, positions):
        v = velocity(x, sigma, reference=reference, positions=positions,
                     context=encoder_hidden_states)
        return flow_denoised(x, v, sigma)

    return denoise


def diffusers_wan_i2v_velocity(model, *, timestep_scale: float = 1000.0):
    """``velocity(x, sigma, *, concat, context, image)`` of a diffusers Wan 2.1 I2V
    ``WanTransformer3DModel``: the noisy latent and the image-to-video condition concatenated on
    the channel axis (36 channels), one timestep per sample, the caption and CLIP vision states."""
    dtype = next(p for p in model.parameters()).dtype

    def velocity(x, sigma, *, concat, context, image=None):
        inp = torch.cat([x, concat.to(x.dtype)], dim=1).to(dtype)
        return model(inp, sigma.to(dtype) * timestep_scale, context.to(dtype),
                     encoder_hidden_states_image=None if image is None else image.to(dtype),
                     return_dict=False)[0]

    return velocity
