"""CSG sampling: small pure functions over a denoiser, in the manner of k-diffusion.

A *denoiser* is ``denoise(x, sigma, *, reference, positions) -> denoised`` where ``x`` is a window
[B, C, w, H, W] in time order, ``sigma`` is [B, w] (0 on context blocks), ``reference`` is the
reference latent gathered at the window's blocks (or None) and ``positions`` a LongTensor [w] of RoPE
time positions. It returns its estimate of the clean window (k-diffusion's convention).

A *sampler* is ``sampler(model, x, sigmas, callback=None) -> x`` over a model ``model(x, sigma[B])
-> denoised``; k-diffusion's and ComfyUI's samplers have this shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .plan import Segment, plan_segments, window_positions

MODES = ("swifti2v", "refine")


def euler_step(x, denoised, sigma: float, sigma_next: float):
    """One Euler step of the probability-flow ODE; lands on ``denoised`` when ``sigma_next`` is 0."""
    if sigma_next == 0:
        return denoised
    return x + (x - denoised) * ((sigma_next - sigma) / sigma)


def sample_steps(step: Callable = euler_step) -> Callable:
    """A sampler that applies ``step(x, denoised, sigma, sigma_next)`` along the schedule."""

    def sampler(model, x, sigmas, callback=None):
        sig = [float(s) for s in sigmas]  # one host read, none inside the loop
        s_in = x.new_ones(x.shape[0])
        for i in range(len(sig) - 1):
            denoised = model(x, s_in * sig[i])
            x = step(x, denoised, sig[i], sig[i + 1])
            if callback is not None:
                callback({"i": i, "x": x, "sigma": sig[i], "denoised": denoised})
        return x

    return sampler


sample_euler = sample_steps(euler_step)


@dataclass(frozen=True)
class CSGProgress:
    """What ``sample_csg`` tells its callback: after each step, and once per finished segment.

    ``latent`` (with ``blocks``) is set only on the segment-finished event and holds that segment's
    final blocks [B, C, len(blocks), H, W], ready to decode. ``denoised`` (step events) is the
    sampler's current clean estimate of the segment's blocks, for previews.
    """

    segment: int
    num_segments: int
    step: int
    num_steps: int
    blocks: Optional[tuple[int, ...]] = None
    latent: Optional[torch.Tensor] = None
    denoised: Optional[torch.Tensor] = None

    @property
    def finished(self) -> bool:
        return self.latent is not None

    @property
    def done(self) -> int:
        """Steps done over the whole run (for a progress bar of num_segments * num_steps)."""
        return self.segment * self.num_steps + self.step


def check_inputs(noise, sigmas, anchor, reference, mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode={mode!r}: must be one of {MODES}")
    if noise.ndim != 5:
        raise ValueError(f"noise: expected a latent [B, C, T', H', W'], got shape {tuple(noise.shape)}")
    b, c, t, h, w = noise.shape
    if anchor.ndim != 5 or tuple(anchor.shape) != (b, c, 1, h, w):
        raise ValueError(f"anchor: expected shape {(b, c, 1, h, w)} (one latent block), "
                         f"got {tuple(anchor.shape)}")
    if tuple(reference.shape) != tuple(noise.shape):
        raise ValueError(f"reference: expected the latent's shape {tuple(noise.shape)}, "
                         f"got {tuple(reference.shape)}")
    if sigmas.ndim != 1 or len(sigmas) < 2:
        raise ValueError(f"sigmas: expected a 1-D schedule of at least 2 values, got shape "
                         f"{tuple(sigmas.shape)}")


def window_latent(latent, reference, segment: Segment, mode: str):
    """The latent a segment's window starts from, in time order [B, C, w, H, W].

    Context blocks (anchor and neighbours) are taken from ``latent``, where they are final; the
    segment's own blocks are the reference (``refine``: it is noised from there) or zeros
    (``swifti2v``: they start from pure noise).
    """
    nc = len(segment.context)
    x = latent[:, :, list(segment.window)].clone()
    if mode == "refine":
        x[:, :, nc:] = reference[:, :, list(segment.current)]
    else:
        x[:, :, nc:] = 0
    return x


def window_mask(segment: Segment, like) -> torch.Tensor:
    """Denoise mask of a window [B, 1, w, H, W]: 0 on the read-only context, 1 on the segment."""
    b, _, _, h, w = like.shape
    mask = like.new_ones(b, 1, len(segment.window), h, w)
    mask[:, :, :len(segment.context)] = 0
    return mask


def segment_model(denoise, context_latent, segment: Segment, reference, positions):
    """The k-diffusion model of one segment: denoises the segment's own blocks inside its window.

    The context blocks are prepended at sigma 0; what the denoiser returns for them is dropped.
    """
    nc = len(segment.context)

    def model(x, sigma):
        b = x.shape[0]
        sig = torch.cat([sigma.new_zeros(b, nc), sigma[:, None].expand(b, x.shape[2])], dim=1)
        out = denoise(torch.cat([context_latent, x], dim=2), sig, reference=reference,
                      positions=positions)
        return out[:, :, nc:]

    return model


def sample_csg(denoise, noise, sigmas, *, anchor, reference, m: int = 3, n: int = 1,
               mode: str = "swifti2v", rope: str = "window", callback=None,
               sampler: Callable = sample_euler):
    """Conditional Segment-wise Generation (paper Sec. 3.2): returns the final latent [B,C,T',H,W].

    Block 0 is ``anchor``. Segments run in order; each starts from its slice of ``noise``
    (``swifti2v``: sigmas[0] * noise; ``refine``: the reference noised to sigmas[0]), is denoised
    over ``sigmas`` with ``sampler`` while the anchor and neighbour blocks stay as they are, and is
    then final: it becomes the next segments' context.
    """
    check_inputs(noise, sigmas, anchor, reference, mode)
    plan = plan_segments(noise.shape[2], m, n)
    num_steps = len(sigmas) - 1
    s0 = float(sigmas[0])
    latent = torch.empty_like(noise)
    latent[:, :, :1] = anchor
    for seg in plan:
        cur, win = list(seg.current), list(seg.window)
        start = noise[:, :, cur] * s0
        if mode == "refine":
            start = start + reference[:, :, cur] * (1.0 - s0)
        model = segment_model(
            denoise, latent[:, :, list(seg.context)], seg,
            reference[:, :, win] if mode == "swifti2v" else None,
            window_positions(seg, rope).to(noise.device))

        def on_step(info, seg=seg):
            if callback is not None:
                callback(CSGProgress(seg.index, len(plan), info["i"] + 1, num_steps,
                                     denoised=info.get("denoised")))

        latent[:, :, cur] = sampler(model, start, sigmas, callback=on_step)
        if callback is not None:
            callback(CSGProgress(seg.index, len(plan), num_steps, num_steps, seg.current,
                                 latent[:, :, cur]))
    return latent
