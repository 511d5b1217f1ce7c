"""SwiftI2V Stage Transition: a Stage-I-like low-res clip from a ground-truth clip (Eq. 12)."""
from comfy_api.latest import io

from ..swift_core import size_from_image
from ..swift_core.reference import stage1_image
from ..swift_core.rules import STRENGTH_READINGS, check_strength, check_transition_steps
from ..swift_core.transition import clip_seed, clip_synthesized
from .bridge import checks, fits, run_card, stage1, vae_protocol
from .types import (CATEGORY, SIZE_RULES, clip_identity_inputs, low_res_outputs,
                    sampling_inputs, size_inputs, validate)


def transition_inputs():
    seed, _, cfg, sampler, scheduler = sampling_inputs()
    return [
        io.Float.Input("strength", default=0.1, min=0.0, max=1.0, step=0.01,
                       tooltip="s in (0, 1] (paper: 0.1; 1 = plain Stage I from noise). The clip "
                               "is noised to (1-sigma) x + sigma e and denoised from sigma to 0; "
                               "sigma is s read by strength_reading."),
        io.Combo.Input("strength_reading", options=list(STRENGTH_READINGS),
                       default=STRENGTH_READINGS[0],
                       tooltip="before_shift (the paper's framework, DiffSynth-Studio): s is a "
                               "timestep, shifted by the Stage I model's schedule: sigma = shift "
                               "s / (1 + (shift-1) s), 0.357 at s = 0.1 with shift 5. raw_sigma: "
                               "sigma = s."),
        io.Int.Input("steps", default=1, min=1, max=100,
                     tooltip="k >= 1 denoising steps (paper: 1). They follow the model's own "
                             "k-step schedule (scheduler and shift) brought to start at sigma: "
                             "k = 1 is one step from sigma to 0."),
        io.Float.Input("synthesize_fraction", default=0.5, min=0.0, max=1.0, step=0.05,
                       tooltip="Share of clips synthesized by Stage I; the others are plain "
                               "bicubic downsamples (the paper mixes both). Each clip's kind is "
                               "drawn from its video name and start: stable across runs. 1 = "
                               "all synthesized, 0 = none."),
        seed, cfg, sampler, scheduler,
    ]


class SwiftI2VStageTransition(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VStageTransition",
            display_name="SwiftI2V Stage Transition (training data)",
            category=f"{CATEGORY}/training",
            description="Paper Eq. 12: the ground-truth clip is trimmed to W:H, downsampled to "
                        "Stage I's size (bicubic), encoded with the Stage I VAE, noised to "
                        "strength s and denoised k steps by the Stage I model conditioned on the "
                        "clip's first frame exactly as the Stage I Sampler is, then decoded: a "
                        "low-res clip with Stage I's artifacts and the clip's own motion.",
            inputs=[
                io.Model.Input("model", tooltip="The Stage I model (Wan 2.1 I2V 14B, with the "
                                                "LoRAs used at inference)."),
                io.Conditioning.Input("positive", tooltip="The clip's caption (umt5)."),
                io.Conditioning.Input("negative", tooltip="Negative prompt (used when cfg > 1)."),
                io.Vae.Input("vae", tooltip="Stage I VAE: wan_2.1_vae.safetensors."),
                io.Image.Input("clip", tooltip="The ground-truth clip, 4k+1 frames (Load Clips)."),
                *size_inputs(),
                *transition_inputs(),
                io.ClipVisionOutput.Input("clip_vision_output", optional=True,
                                          tooltip="CLIP Vision Encode of the clip's first frame, "
                                                  "as for the Stage I Sampler."),
                *clip_identity_inputs("The clip's video name (link Load Clips' name): with "
                                      "start, it picks the clip's noise and kind."),
            ],
            outputs=low_res_outputs("s, its start sigma, k, the clip's seed and kind, for the "
                                    "Sample Writer."),
        )

    RULES = SIZE_RULES | {"strength": check_strength, "steps": check_transition_steps}

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    @run_card.measured("transition")
    def execute(cls, model, positive, negative, vae, clip, width, height, crop, strength,
                strength_reading, steps, synthesize_fraction, seed, cfg, sampler_name, scheduler,
                clip_vision_output=None, name="clip", start=0) -> io.NodeOutput:
        checks.check_image(clip, "clip")
        size = size_from_image(clip.shape[2], clip.shape[1], width, height, clip.shape[0],
                               "clip frame count")
        check_strength(strength, "strength")
        check_transition_steps(steps, "steps")
        checks.check_stage1_vae(vae)
        checks.check_stage1_model(model, vae)
        small = stage1_image(clip[..., :3], size.width, size.height, crop=crop)
        seed = clip_seed(seed, name, start)
        if not clip_synthesized(synthesize_fraction, name, start):
            return io.NodeOutput(small, size.width, size.height, {
                "strength": 0.0, "start_sigma": 0.0, "strength_reading": strength_reading,
                "steps": 0, "seed": seed, "synthesized": False})
        sigmas = stage1.transition_schedule(model, steps, sampler_name, scheduler, strength,
                                            strength_reading)
        info = {"strength": float(strength), "start_sigma": float(sigmas[0]),
                "strength_reading": strength_reading, "steps": int(steps), "seed": seed,
                "synthesized": True, "sampler": sampler_name, "scheduler": scheduler}
        fits.check_stage1_fits(model, size, cfg)
        w1, h1 = size.stage1
        run_card.note(frames=size.frames, size=f"{w1}x{h1}", steps=int(steps),
                      sampler=sampler_name, scheduler=scheduler, cfg=cfg)
        pos, neg, _ = stage1.stage1_conditioning(positive, negative, vae, small[:1], w1, h1,
                                                 size.frames, clip_vision_output)
        latent = vae.encode(small)
        samples = stage1.stage_transition(model, latent, pos, neg, seed, cfg, sampler_name, sigmas)
        return io.NodeOutput(vae_protocol.vae_decode(vae, samples), size.width, size.height, info)
