"""CSG sampling: small pure functions over a denoiser, in the manner of k-diffusion.

One loop, :func:`run_csg`, walks the CSG plan for every caller. What it calls per segment is a
*window sampler* ``sample_window(x, noise, segment, *, mask, reference, positions, on_step) ->
window``: ``x`` is the window [B, C, w, H, W] in time order with its context blocks final and its
segment blocks at the clean start point (the reference in ``refine``, zeros in ``swifti2v``),
``noise`` the window's slice of the one full-length noise, ``mask`` 0 on context and 1 on the
segment, ``reference`` the reference gathered at the window's blocks (``swifti2v``) or None,
``positions`` the RoPE time positions [w]; ``on_step(step, denoised)`` after every sampler step
(``denoised``: the current clean estimate of the segment's own blocks).
Two window samplers exist: :func:`torch_window_sampler` (plain torch over a denoiser: training
validation, benchmarks, oracle tests) and :func:`guider_window_sampler` (one call of a
ComfyUI-style guider's ``sample``: the node).

A *denoiser* is ``denoise(x, sigma, *, reference, positions) -> denoised`` where ``x`` is a window
[B, C, w, H, W], ``sigma`` is [B, w] (0 on context blocks); it returns its estimate of the clean
window (k-diffusion's convention).

A *sampler* is ``sampler(model, x, sigmas, callback=None) -> x`` over a model ``model(x, sigma[B])
-> denoised``; k-diffusion's and ComfyUI's samplers have this shape.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .plan import Segment, plan_segments, window_positions
from .rules import MODES, check, check_option


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


def flow_noised(noise, clean, sigma: float):
    """A rectified-flow start point: ``sigma * noise + (1 - sigma) * clean`` (core's
    ``noise_scaling`` for flow models, in the same operation order)."""
    return sigma * noise + (1.0 - sigma) * clean


def check_inputs(anchor, reference, noise, sigmas, mode: str) -> None:
    check_option(mode, "mode", MODES)
    check(noise.ndim == 5, f"noise: expected a latent [B, C, T', H', W'], got shape "
                           f"{tuple(noise.shape)}")
    b, c, _, h, w = noise.shape
    check(anchor.ndim == 5 and tuple(anchor.shape) == (b, c, 1, h, w),
          f"anchor: expected shape {(b, c, 1, h, w)} (one latent block), got {tuple(anchor.shape)}")
    check(tuple(reference.shape) == tuple(noise.shape),
          f"reference: expected the latent's shape {tuple(noise.shape)}, got "
          f"{tuple(reference.shape)}")
    check(sigmas.ndim == 1 and len(sigmas) >= 2,
          f"sigmas: expected a 1-D schedule of at least 2 values, got shape {tuple(sigmas.shape)}")


def window_latent(latent, reference, segment: Segment, mode: str):
    """The clean start of a segment's window, in time order [B, C, w, H, W].

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


def run_csg(anchor, reference, noise, sigmas, plan, sample_window, *, mode: str, rope: str,
            on_step: Optional[Callable] = None, on_segment: Optional[Callable] = None,
            on_error: Optional[Callable] = None, next_plan: Optional[Callable] = None):
    """Conditional Segment-wise Generation (paper Sec. 3.2): the loop every caller runs.

    Returns ``(latent, plan)``: the latent [B, C, T', H', W'] (``noise``'s shape) whose block 0 is
    ``anchor`` [B, C, 1, H', W'], bit for bit (no segment ever writes it), and the plan that ran
    (``plan``, or what ``on_error`` changed it to). Segments run in order: each
    window is built from the blocks finished so far, sampled by ``sample_window``, and only the
    segment's own blocks are written back; they are final and become later windows' context.
    ``on_step(segment, step, denoised)`` follows every sampler step (``step`` from 1);
    ``on_segment(segment, blocks)`` gets a segment's final blocks as soon as they are final.
    ``on_error(error, plan, k)``, when a window raises: a new plan to go on with from segment
    ``k`` (segments before ``k`` are final: e.g. :func:`replan_from` with a smaller M after an
    out-of-memory error), or None to let the error through. ``next_plan(plan, k)``, after
    segment ``k - 1`` is final: the plan to go on with from segment ``k`` (e.g.
    :class:`swift_core.fit.FirstWindowFit`: M from what the first window really used).
    """
    check_inputs(anchor, reference, noise, sigmas, mode)
    out = torch.zeros_like(noise)
    out[:, :, :1] = anchor
    plan, k = tuple(plan), 0
    while k < len(plan):
        seg = plan[k]
        win, cur, nc = list(seg.window), list(seg.current), len(seg.context)
        x = window_latent(out, reference, seg, mode)

        def step_cb(step, denoised, seg=seg):
            if on_step is not None:
                on_step(seg, step, denoised)

        try:
            x = sample_window(x, noise[:, :, win], seg, mask=window_mask(seg, x),
                              reference=reference[:, :, win] if mode == "swifti2v" else None,
                              positions=window_positions(seg, rope).to(out.device),
                              on_step=step_cb)
        except Exception as error:      # the window's tensors are freed once this block ends
            new_plan = on_error(error, plan, k) if on_error is not None else None
            if new_plan is None:
                raise
            plan = tuple(new_plan)
            continue
        out[:, :, cur] = x[:, :, nc:].to(out)
        if on_segment is not None:
            on_segment(seg, out[:, :, cur])
        k += 1
        if next_plan is not None and k < len(plan):
            plan = tuple(next_plan(plan, k))
    return out, plan


def segment_model(denoise, context_latent, reference, positions):
    """The k-diffusion model of one segment: denoises the segment's own blocks inside its window.

    The context blocks are prepended at sigma 0; what the denoiser returns for them is dropped.
    """
    nc = context_latent.shape[2]

    def model(x, sigma):
        b = x.shape[0]
        sig = torch.cat([sigma.new_zeros(b, nc), sigma[:, None].expand(b, x.shape[2])], dim=1)
        out = denoise(torch.cat([context_latent, x], dim=2), sig, reference=reference,
                      positions=positions)
        return out[:, :, nc:]

    return model


def torch_window_sampler(denoise, sigmas, sampler: Callable = sample_euler) -> Callable:
    """A window sampler in plain torch: ``sampler`` over the segment's blocks only, the context
    prepended at sigma 0 by :func:`segment_model`."""
    s0 = float(sigmas[0])

    def sample_window(x, noise, seg: Segment, *, mask, reference, positions, on_step):
        nc = len(seg.context)
        model = segment_model(denoise, x[:, :, :nc], reference, positions)
        start = flow_noised(noise[:, :, nc:], x[:, :, nc:], s0)
        cur = sampler(model, start, sigmas,
                      callback=lambda info: on_step(info["i"] + 1, info.get("denoised")))
        return torch.cat([x[:, :, :nc], cur], dim=2)

    return sample_window


def guider_window_sampler(make_guider: Callable, sampler, sigmas, seed: int) -> Callable:
    """A window sampler that is one masked-sampling call of a ComfyUI-style guider.

    ``make_guider(reference, positions)`` returns an object with ComfyUI's ``CFGGuider.sample(noise,
    latent_image, sampler, sigmas, denoise_mask=, callback=, disable_pbar=, seed=)``; the mask keeps
    the context blocks at their final values. Each segment gets ``seed + index`` for samplers that
    draw noise (ancestral, SDE).
    """

    def sample_window(x, noise, seg: Segment, *, mask, reference, positions, on_step):
        nc = len(seg.context)
        guider = make_guider(reference, positions)
        return guider.sample(noise, x, sampler, sigmas.clone(), denoise_mask=mask,
                             callback=lambda step, x0, xt, total: on_step(step + 1, x0[:, :, nc:]),
                             disable_pbar=True, seed=seed + seg.index)

    return sample_window


@torch.no_grad()
def sample_csg(denoise, noise, sigmas, *, anchor, reference, m: int = 3, n: int = 1,
               mode: str = "swifti2v", rope: str = "window", on_step=None, on_segment=None,
               sampler: Callable = sample_euler):
    """:func:`run_csg` over a plain-torch denoiser: returns the final latent [B, C, T', H', W'].

    Block 0 is ``anchor``; each segment starts from its slice of ``noise`` (``swifti2v``:
    sigmas[0] * noise; ``refine``: the reference noised to sigmas[0]).
    """
    plan = plan_segments(noise.shape[2], m, n)
    out, _ = run_csg(anchor, reference, noise, sigmas, plan,
                     torch_window_sampler(denoise, sigmas, sampler), mode=mode, rope=rope,
                     on_step=on_step, on_segment=on_segment)
    return out
