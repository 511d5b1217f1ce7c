"""Stage II on ComfyUI's own sampling path: each CSG window is one core masked-sampling call.

For Wan 2.2 a ``denoise_mask`` of 0 on a latent frame gives that frame timestep 0
(``WAN22.process_timestep``) and keeps it at the given latent (``scale_latent_inpaint``): the
paper's rule for the anchor and the context blocks. So a window is sampled by core's CFGGuider
with the window latent, that mask, the window's slice of the one seeded full-length noise and,
for 96-channel models, the window's reference as ``concat_latent_image``. Every sampler, wrapper,
hook and MODEL patch of ComfyUI applies, and ComfyUI loads the model for the window it is given.
"""
from __future__ import annotations

from typing import Callable

import torch

import comfy.model_patcher
import comfy.sample
import comfy.samplers
import node_helpers

from ...swift_core import guider_window_sampler, run_csg
from ...swift_core.fit import FirstWindowFit
from .oom import WindowRetry
from .rope import set_window_positions

SAMPLER_NAMES = comfy.samplers.KSampler.SAMPLERS
SCHEDULER_NAMES = comfy.samplers.KSampler.SCHEDULERS


def stage2_sigmas(model, sampler_name: str, scheduler: str, steps: int,
                  denoise: float) -> torch.Tensor:
    """The schedule core's KSampler (every core sampler node) runs for this model, sampler,
    scheduler, steps and denoise: the model's shift, the penultimate sigma dropped for the
    samplers core drops it for, the tail of a longer schedule for denoise < 1."""
    ksampler = comfy.samplers.KSampler(model, steps=steps, device="cpu", sampler=sampler_name,
                                       scheduler=scheduler, denoise=denoise,
                                       model_options=model.model_options)
    return ksampler.sigmas.cpu()


def window_guider(model, positive, negative, cfg: float, reference=None, positions=None):
    """Core's CFGGuider for one window: its reference as ``concat_latent_image`` (raw VAE space,
    as core's Wan nodes give it) and, for ``rope=absolute``, the window's true block indices."""
    if reference is not None:
        values = {"concat_latent_image": reference}
        positive = node_helpers.conditioning_set_values(positive, values)
        negative = node_helpers.conditioning_set_values(negative, values)
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    if positions is not None:
        guider.model_options = comfy.model_patcher.create_model_options_clone(guider.model_options)
        set_window_positions(guider.model_options, positions)
    return guider


def run_stage2(model, positive, negative, reference, plan, *, seed: int, steps: int, cfg: float,
               sampler_name: str, scheduler: str, rope: str, mode: str, denoise: float,
               on_step: Callable, on_segment: Callable, retry: WindowRetry,
               measured: FirstWindowFit):
    """Stage II's sampling over ``plan``: raw VAE latents in; the raw 2K latent and the plan
    that ran out.

    swift_core's one CSG loop (:func:`run_csg`) with a window sampler that is one call of core's
    ``CFGGuider.sample`` on core's schedule; ``on_step``/``on_segment`` as there; a window that
    runs out of memory is re-planned by ``retry`` (:class:`WindowRetry`), and the segments after
    the first by ``measured`` (:class:`FirstWindowFit`: on what the first window really used).
    Block 0 of the result is the reference's block 0 (the anchor), bit for bit.
    """
    sigmas = stage2_sigmas(model, sampler_name, scheduler, steps,
                           denoise if mode == "refine" else 1.0)
    noise = comfy.sample.prepare_noise(reference, seed)       # one noise for the whole video

    def make_guider(window_reference, positions):
        retry.before_window()
        return window_guider(model, positive, negative, cfg, window_reference,
                             positions.tolist() if rope == "absolute" else None)

    sample_window = guider_window_sampler(make_guider, comfy.samplers.sampler_object(sampler_name),
                                          sigmas, seed)
    return run_csg(reference[:, :, :1], reference, noise, sigmas, plan,
                   measured.wrap(sample_window), mode=mode,
                   rope=rope, on_step=on_step, on_segment=on_segment, on_error=retry,
                   next_plan=measured)
