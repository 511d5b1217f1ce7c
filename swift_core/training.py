"""The CSG training step (paper Sec. 3.2, App. B.1) as small pure functions, like ``sample_csg``.

Teacher forcing: a segmentation (M, N) and one segment of its plan are drawn; the window is the
anchor, the N ground-truth neighbour blocks (clean, timestep 0) and the segment's M blocks noised
with flow matching at one sampled sigma, ``x_s = (1 - s) x0 + s e``; the reference is gathered at
the window's blocks; the target is the velocity ``e - x0``; the loss is the mean squared error on
the segment's blocks only.

Sigma follows Wan's shifted distribution: ``s = shift u / (1 + (shift - 1) u)`` with ``u``
uniform in (0, 1) and shift 5 by default. This is the continuous form of drawing a uniform
timestep from a shifted 1000-step flow-matching schedule, as DiffSynth-Studio's trainer does; its
bell-shaped loss weighting over timesteps is the ``weighting="bell"`` option.

A *velocity model* is ``velocity(x, sigma, *, reference, positions, context) -> v`` over a window
``x`` [B, C, w, H, W] with ``sigma`` [B, w] (0 on context blocks).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .plan import Segment, plan_segments, window_positions
from .rules import check_option
from .sampling import flow_noised
from .schedule import WAN_SHIFT, WEIGHTINGS, bell_weight, shifted_sigma

#: (M, N) pairs of the paper: M uniform in {2, 3}, N uniform in {1, 2}
PAIRS = ((2, 1), (2, 2), (3, 1), (3, 2))


def draw_pair(gen: torch.Generator, pairs=PAIRS) -> tuple[int, int]:
    return pairs[int(torch.randint(len(pairs), (1,), generator=gen))]


def draw_segment(num_blocks: int, m: int, n: int, gen: torch.Generator) -> Segment:
    """One segment of the (M, N) plan of a ``num_blocks`` latent, uniformly."""
    plan = plan_segments(num_blocks, m, n)
    return plan[int(torch.randint(len(plan), (1,), generator=gen))]


def draw_sigma(gen: torch.Generator, batch: int = 1, shift: float = WAN_SHIFT) -> torch.Tensor:
    u = torch.rand(batch, generator=gen).clamp(1e-4, 1 - 1e-4)
    return shifted_sigma(u, shift)


@dataclass(frozen=True)
class TrainingWindow:
    """Everything one teacher-forced step feeds the model and scores."""

    segment: Segment
    x: torch.Tensor             # [B, C, w, H, W]: clean context, noisy segment
    sigma: torch.Tensor         # [B, w]: 0 on context, the drawn sigma on the segment
    reference: Optional[torch.Tensor]   # [B, C, w, H, W] gathered at the window, or None
    positions: torch.Tensor     # [w] RoPE time positions
    target: torch.Tensor        # [B, C, w, H, W] velocity e - x0 (0 on context)
    mask: torch.Tensor          # [B, 1, w, 1, 1]: 1 on the segment's blocks, 0 on context


def window_runs(segment: Segment) -> list[tuple[int, int]]:
    """The window's blocks as contiguous [start, stop) runs (the anchor, then the neighbours and
    the segment): what a reader needs to load to train on this segment."""
    runs: list[list[int]] = []
    for b in segment.window:
        if runs and runs[-1][1] == b:
            runs[-1][1] = b + 1
        else:
            runs.append([b, b + 1])
    return [(a, b) for a, b in runs]


def training_window(x0: torch.Tensor, reference: Optional[torch.Tensor], segment: Segment,
                    sigma: torch.Tensor, noise: torch.Tensor, rope: str = "window",
                    cut: bool = False) -> TrainingWindow:
    """The teacher-forced window of ``segment``: ``x0`` [B, C, T', H, W] ground truth, ``sigma``
    [B], ``noise`` like ``x0`` (only the segment's blocks are used). ``cut``: ``x0``,
    ``reference`` and ``noise`` hold only the window's blocks, in window order."""
    if x0.ndim != 5 or (reference is not None and reference.shape != x0.shape):
        raise ValueError(f"x0 {tuple(x0.shape)} / reference "
                         f"{None if reference is None else tuple(reference.shape)}: expected "
                         "two latents [B, C, T', H, W] of one shape")
    if cut:
        win = list(range(len(segment.window)))
        cur = win[len(segment.context):]
    else:
        win, cur = list(segment.window), list(segment.current)
    nc = len(segment.context)
    b = x0.shape[0]
    s = sigma.to(x0.dtype).view(b, 1, 1, 1, 1)
    x = x0[:, :, win].clone()
    x[:, :, nc:] = flow_noised(noise[:, :, cur], x0[:, :, cur], s)
    sig = x0.new_zeros(b, len(win))
    sig[:, nc:] = sigma.to(x0.dtype)[:, None]
    target = torch.zeros_like(x)
    target[:, :, nc:] = noise[:, :, cur] - x0[:, :, cur]
    mask = x0.new_zeros(b, 1, len(win), 1, 1)
    mask[:, :, nc:] = 1
    ref = None if reference is None else reference[:, :, win]
    return TrainingWindow(segment, x, sig, ref, window_positions(segment, rope).to(x0.device),
                          target, mask)


def masked_velocity_loss(velocity: torch.Tensor, window: TrainingWindow,
                         weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean squared error of the predicted velocity on the segment's blocks only; ``weight``
    [B] scales each sample's error (a timestep weighting)."""
    err = (velocity.float() - window.target.float()) ** 2 * window.mask
    if weight is not None:
        err = err * weight.float().view(-1, 1, 1, 1, 1)
    per_block = err[0, :, 0].numel()                 # C * H * W values per block and sample
    return err.sum() / (window.mask.sum() * per_block)


def csg_training_loss(velocity: Callable, x0: torch.Tensor, reference: Optional[torch.Tensor],
                      context: torch.Tensor, gen: torch.Generator, *, rope: str = "window",
                      pairs=PAIRS, shift: float = WAN_SHIFT, weighting: str = "none",
                      pair: Optional[tuple[int, int]] = None,
                      segment: Optional[Segment] = None):
    """One teacher-forced CSG step on one clip: draws (M, N) (unless ``pair`` is given: a
    distributed step draws one for all its ranks), a segment, sigma and noise from ``gen`` (CPU),
    runs ``velocity`` on the window, returns (loss, window). ``weighting`` ``bell`` weights the
    loss by :func:`~swift_core.schedule.bell_weight` of the drawn sigma. ``segment`` given (a
    reader drew it and loaded only its window): ``x0`` and ``reference`` are that window's blocks
    and only sigma and noise are drawn here."""
    check_option(weighting, "weighting", WEIGHTINGS)
    cut = segment is not None
    if not cut:
        m, n = pair if pair is not None else draw_pair(gen, pairs)
        segment = draw_segment(x0.shape[2], m, n, gen)
    sigma = draw_sigma(gen, x0.shape[0], shift)
    noise = torch.randn(x0.shape, generator=gen).to(x0.device, x0.dtype)
    win = training_window(x0, reference, segment, sigma.to(x0.device), noise, rope, cut=cut)
    v = velocity(win.x, win.sigma, reference=win.reference, positions=win.positions,
                 context=context)
    weight = bell_weight(sigma, shift).to(x0.device) if weighting == "bell" else None
    return masked_velocity_loss(v, win, weight), win


def i2v_training_loss(velocity: Callable, x0: torch.Tensor, concat: torch.Tensor,
                      context: torch.Tensor, image: Optional[torch.Tensor],
                      gen: torch.Generator, *, shift: float = WAN_SHIFT,
                      weighting: str = "none"):
    """One flow-matching step of the Stage I LoRA (Wan 2.1 I2V): the whole clip's latent ``x0``
    [B, 16, T', h, w] noised at one sigma drawn from the shifted distribution, the velocity
    ``e - x0`` as target on every block, the condition ``concat`` as given; returns (loss, sigma)."""
    check_option(weighting, "weighting", WEIGHTINGS)
    sigma = draw_sigma(gen, x0.shape[0], shift)
    noise = torch.randn(x0.shape, generator=gen).to(x0.device, x0.dtype)
    s = sigma.to(x0.device, x0.dtype).view(-1, 1, 1, 1, 1)
    v = velocity(flow_noised(noise, x0, s), sigma.to(x0.device), concat=concat, context=context,
                 image=image)
    err = ((v.float() - (noise - x0).float()) ** 2).flatten(1).mean(1)
    if weighting == "bell":
        err = err * bell_weight(sigma, shift).to(err.device)
    return err.mean(), sigma


def i2v_x0_error(velocity: Callable, x0, concat, context, image, sigmas, noise) -> float:
    """Held-out error of a Stage I model: at each of ``sigmas`` (fixed), the relative squared error
    of its x0 estimate ``x_t - sigma v`` to the clip's latent."""
    errs = []
    for sig in sigmas:
        s = torch.full((x0.shape[0],), float(sig), device=x0.device)
        x_t = flow_noised(noise, x0, float(sig))
        v = velocity(x_t, s, concat=concat, context=context, image=image).float()
        errs.append(float(((x_t - float(sig) * v - x0) ** 2).mean() / (x0 ** 2).mean()))
    return sum(errs) / len(errs)
