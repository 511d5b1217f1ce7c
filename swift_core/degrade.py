"""A Stage-I-like degradation of a low-res clip, for training data made without a Stage I model.

The paper degrades each training clip's low-res version with Stage I itself (Eq. 12, the Stage
Transition node). Without the Stage I weights at hand (or for a quick first run), this model
stands in for it, with the three defects Stage II is trained to repair:

- **lost detail**: ``blur`` passes of the 3x3 binomial filter [1 2 1]/4 in each direction
  (each pass a Gaussian of variance 1/2 px^2);
- **residual noise**: Gaussian noise of standard deviation ``noise`` (pixel values in [0, 1]),
  drawn anew for every pixel of every frame;
- **flicker**: a brightness gain per frame, ``1 + flicker * N(0, 1)``.

Frame 0 is degraded like the others: the hybrid reference replaces it with the sharp image, as
at inference. All draws come from one generator (seeded per clip by the caller), so a clip's
degradation is the same on every run and machine.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .rules import check_at_least, check_bounds
from .transition import clip_seed


def binomial_blur(frames: torch.Tensor, passes: int) -> torch.Tensor:
    """``passes`` of the separable 3x3 binomial filter over [F, 3, h, w] (edges replicated)."""
    k = torch.tensor([1.0, 2.0, 1.0], dtype=frames.dtype, device=frames.device)
    k = (k[:, None] * k[None]) / 16
    kernel = k.expand(frames.shape[1], 1, 3, 3).contiguous()
    for _ in range(passes):
        frames = F.conv2d(F.pad(frames, (1, 1, 1, 1), mode="replicate"), kernel,
                          groups=frames.shape[1])
    return frames


def stage1_like(low: torch.Tensor, gen: torch.Generator, *, blur: int = 1, noise: float = 0.3,
                flicker: float = 0.4) -> torch.Tensor:
    """Low-res frames [F, h, w, 3] in [0, 1], degraded as above; the result is clamped to [0, 1]."""
    check_at_least(blur, "blur", 0)
    check_bounds(noise, "noise", 0.0, 1.0)
    check_bounds(flicker, "flicker", 0.0, 1.0)
    f = binomial_blur(low.permute(0, 3, 1, 2).float(), blur)
    gain = 1 + flicker * torch.randn(f.shape[0], 1, 1, 1, generator=gen)
    f = f * gain + noise * torch.randn(f.shape, generator=gen)
    return f.clamp(0, 1).permute(0, 2, 3, 1).to(low.dtype)


def degrade_clip(low: torch.Tensor, seed: int, name: str, start: int, **params) -> torch.Tensor:
    """:func:`stage1_like` with the clip's own generator, seeded as the data nodes seed a clip's
    noise (from ``seed``, its video's ``name`` and its ``start``)."""
    return stage1_like(low, torch.Generator().manual_seed(clip_seed(seed, name, start)), **params)
