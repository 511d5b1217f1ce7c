"""Stage I: core's Wan image-to-video conditioning and core's KSampler path."""
from __future__ import annotations

import comfy.sample
import comfy.samplers
import latent_preview
from comfy_extras.nodes_wan import WanImageToVideo

from ...swift_core.rules import SwiftInputError
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


def flow_shift(model) -> float:
    """The timestep shift of the model's sampling (after any ModelSamplingSD3 patch)."""
    ms = model.get_model_object("model_sampling")
    shift = getattr(ms, "shift", None)
    if not isinstance(shift, (int, float)) or shift <= 0:
        raise SwiftInputError(f"model: its sampling ({type(ms).__name__}) has no flow shift; the "
                              "Stage Transition's strength_reading=before_shift needs a flow "
                              "model such as Wan 2.1 I2V (or use raw_sigma)")
    return float(shift)


def transition_schedule(model, steps: int, sampler_name: str, scheduler: str, strength: float,
                        reading: str):
    """The model's own ``steps``-step schedule (the one core's KSampler would use) brought to
    start at ``strength`` read by ``reading`` (swift_core.transition)."""
    sigmas = comfy.samplers.KSampler(model, steps, model.load_device, sampler_name, scheduler,
                                     1.0, model_options=model.model_options).sigmas
    shift = flow_shift(model) if reading == "before_shift" else 1.0
    return transition_sigmas(sigmas.cpu().float(), strength, shift, reading)


def stage_transition(model, latent, positive, negative, seed: int, cfg: float,
                     sampler_name: str, sigmas):
    """Eq. 12 through core sampling: ``latent`` (the encoded clip) noised to ``sigmas[0]`` with
    the seed's noise and denoised over ``sigmas`` (:func:`transition_schedule`)."""
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    callback = latent_preview.prepare_callback(model, len(sigmas) - 1)
    return comfy.sample.sample_custom(model, noise, cfg, comfy.samplers.sampler_object(sampler_name),
                                      sigmas, positive, negative, latent, callback=callback,
                                      disable_pbar=True, seed=seed)


def training_tensors(model, vae, positive, frames, clip_vision_output=None):
    """What the Stage I LoRA trains on, built by core exactly as Stage I sampling builds it: the
    clip's latent ``x0`` and the image-to-video condition of its first frame (core's
    WanImageToVideo, then the Wan 2.1 model's own ``concat_cond``), both in the model's input
    space, and CLIP vision's hidden states. ``frames`` [F, h, w, 3] at the Stage I size."""
    h, w = frames.shape[1:3]
    pos, _, _ = stage1_conditioning(positive, positive, vae, frames[:1], w, h, frames.shape[0],
                                    clip_vision_output)
    cond = pos[0][1]
    base = model.model
    x0 = base.process_latent_in(vae.encode(frames[..., :3]).float())
    concat = base.concat_cond(noise=x0, concat_latent_image=cond["concat_latent_image"],
                              concat_mask=cond["concat_mask"], device=x0.device)
    clip = cond.get("clip_vision_output")
    image = None if clip is None else clip.penultimate_hidden_states[0]
    return x0[0], concat[0], image
