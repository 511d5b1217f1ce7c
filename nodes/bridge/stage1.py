"""Stage I: core's Wan image-to-video conditioning and core's KSampler path."""
from __future__ import annotations

import comfy.sample
import latent_preview
from comfy_extras.nodes_wan import WanImageToVideo


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
