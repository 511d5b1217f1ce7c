"""Stage I: core's Wan image-to-video conditioning and core's KSampler path."""
from __future__ import annotations

import comfy.sample
import comfy.samplers
import latent_preview
from comfy_extras.nodes_wan import WanImageToVideo

from ...swift_core.transition import transition_sigmas


def stage1_conditioning(positive, negative, vae, image, width: int, height: int, length: int,
                        clip_vision_output=None):
    """Core's WanImageToVideo: the start image padded with grey, encoded, masked on block 0."""
    out = WanImageToVideo.execute(positive, negative, vae, width, height, length, 1,
                                  start_image=image[:1, ..., :3],
                                  clip_vision_output=clip_vision_output)
    positive, negative, latent = out.args
    return positive, negative, latent["samples"]


def ksample(model, latent, positive, negative, seed: int, steps: int, cfg: float,
            sampler_name: str, scheduler: str, denoise: float = 1.0):
    """ComfyUI's own sampling (what KSampler runs), with its progress bar, previews and Cancel."""
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    callback = latent_preview.prepare_callback(model, steps)
    return comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive,
                               negative, latent, denoise=denoise, callback=callback,
                               disable_pbar=True, seed=seed)


def stage_transition(model, latent, positive, negative, seed: int, steps: int, cfg: float,
                     sampler_name: str, scheduler: str, strength: float):
    """Eq. 12 through core sampling: ``latent`` (the encoded clip) noised to ``strength`` with the
    seed's noise and denoised over the model's own ``steps``-step schedule scaled to start there
    (the schedule core's KSampler would use; ``strength`` 1 is exactly Stage I from noise)."""
    sigmas = comfy.samplers.KSampler(model, steps, model.load_device, sampler_name, scheduler,
                                     1.0, model_options=model.model_options).sigmas
    sigmas = transition_sigmas(sigmas.cpu().float(), strength)
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    callback = latent_preview.prepare_callback(model, len(sigmas) - 1)
    return comfy.sample.sample_custom(model, noise, cfg, comfy.samplers.sampler_object(sampler_name),
                                      sigmas, positive, negative, latent, callback=callback,
                                      disable_pbar=True, seed=seed)
