"""Flow-matching schedules: the timestep shift of Wan-family models, its inverse, and the
timestep loss weighting of the paper's framework (DiffSynth-Studio).

A flow model's timestep ``t`` in [0, 1] maps to the sigma its noise is scaled by through the shift
``sigma = shift t / (1 + (shift - 1) t)``: core's ``ModelSamplingDiscreteFlow.sigma`` (its
``time_snr_shift``) and DiffSynth-Studio's ``FlowMatchScheduler`` use this same formula.
"""
from __future__ import annotations

import math

import torch

#: The shift the pack trains Stage II with by default (DiffSynth-Studio's Wan default). ComfyUI
#: loads a Wan 2.2 TI2V file with its own default (8.0, inherited from Wan 2.1): the templates
#: set the trained shift with core's ModelSamplingSD3.
WAN_SHIFT = 5.0
WEIGHTINGS = ("none", "bell")


def shifted_sigma(t, shift: float = WAN_SHIFT):
    """The sigma of timestep ``t`` (a float or a tensor in [0, 1]) under ``shift``."""
    return shift * t / (1 + (shift - 1) * t)


def unshifted(sigma, shift: float = WAN_SHIFT):
    """The timestep in [0, 1] whose shifted sigma is ``sigma`` (inverse of :func:`shifted_sigma`)."""
    return sigma / (shift - (shift - 1) * sigma)


def flow_sigmas(steps: int, shift: float = WAN_SHIFT) -> torch.Tensor:
    """``steps`` evenly spaced timesteps from 1 to 0, shifted: the schedule core's ``simple``
    scheduler gives a flow model with this shift (and DiffSynth-Studio's sampler)."""
    return shifted_sigma(torch.linspace(1.0, 0.0, steps + 1), shift)


def _bell(sigma):
    return torch.exp(-2 * (sigma - 0.5) ** 2) - math.exp(-0.5)


def bell_weight(sigma: torch.Tensor, shift: float = WAN_SHIFT) -> torch.Tensor:
    """DiffSynth-Studio's training weight of a timestep: a bell over ``sigma`` (0 at sigma 0 and
    1, highest at 0.5), scaled so that its mean over the shifted 1000-step training grid is 1
    (the loss keeps its scale)."""
    grid = shifted_sigma((torch.arange(1000, dtype=torch.float64) + 0.5) / 1000, shift)
    return (_bell(sigma.double()) / _bell(grid).mean()).to(sigma.dtype)
