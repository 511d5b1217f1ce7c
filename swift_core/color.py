"""Colour match of generated frames to the input image (off by default in the nodes).

Wan 2.2 TI2V 5B drifts in colour away from its first frame; with an exact anchor frame the jump
at frame 1 shows. ``lab`` is the classic statistics transfer (Reinhard et al. 2001): each frame's
per-channel mean and standard deviation in CIE L*a*b* are set to the reference image's, with
kornia's colour conversions.
"""
from __future__ import annotations

import kornia
import torch

from .rules import COLOR_MATCH, check_option


def _lab(frames: torch.Tensor) -> torch.Tensor:
    """IMAGE [N, H, W, 3] (0..1) -> L*a*b* [N, 3, H, W]."""
    return kornia.color.rgb_to_lab(frames[..., :3].movedim(-1, 1).float().clamp(0, 1))


def _stats(lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame, per-channel mean and standard deviation of L*a*b* [N, 3, H, W]."""
    return lab.mean(dim=(2, 3), keepdim=True), lab.std(dim=(2, 3), keepdim=True)


def lab_stats(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return _stats(_lab(frames))


def match_color(frames: torch.Tensor, reference: torch.Tensor, method: str = "lab",
                strength: float = 1.0) -> torch.Tensor:
    """``frames`` [N, H, W, 3] with the colour statistics of ``reference`` [1, h, w, 3] (any size).

    ``strength`` blends between the frames as they are (0) and fully matched (1).
    """
    check_option(method, "color_match", COLOR_MATCH)
    if method == "off" or strength == 0:
        return frames
    ref_mean, ref_std = lab_stats(reference[:1])
    lab = _lab(frames)
    mean, std = _stats(lab)
    matched = (lab - mean) / std.clamp_min(1e-5) * ref_std + ref_mean
    lab = lab + strength * (matched - lab)
    rgb = kornia.color.lab_to_rgb(lab, clip=True).movedim(1, -1)
    return rgb.to(frames.dtype)
