"""SwiftI2V Stage I Sampler: the low-resolution motion reference from a Wan 2.1 I2V model."""
from comfy_api.latest import io

from ..swift_core import check_frames, size_from_image
from ..swift_core.reference import stage1_image
from .bridge import checks, context_windows, fits, run_card, stage1, vae_protocol
from .types import CATEGORY, SIZE_RULES, sampling_inputs, size_inputs, validate


class SwiftI2VStage1Sampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VStage1Sampler",
            display_name="SwiftI2V Stage I Sampler",
            category=CATEGORY,
            description="Stage I: generates the low-resolution motion reference (W/4 x H/4) with a "
                        "Wan 2.1 I2V model, conditioned on the input image as ComfyUI's "
                        "WanImageToVideo does, then decodes it.",
            inputs=[
                io.Model.Input("model", tooltip="Wan 2.1 I2V 14B (480P) from Load Diffusion Model, "
                                                "with the LightX2V 4-step LoRA applied. Videos "
                                                "longer than 81 frames: patch it with core's Wan "
                                                "Context Windows node (81 frames a window)."),
                io.Conditioning.Input("positive", tooltip="Prompt (umt5 text encoder)."),
                io.Conditioning.Input("negative", tooltip="Negative prompt (used when cfg > 1)."),
                io.Vae.Input("vae", tooltip="Stage I VAE: wan_2.1_vae.safetensors (16 channels)."),
                io.Image.Input("image", tooltip="The high-resolution input image (first frame)."),
                *size_inputs(),
                io.Int.Input("length", default=81, min=5, max=1025, step=4,
                             tooltip="Frames of the video, 4k+1 (paper: 81)."),
                *sampling_inputs(),
                io.ClipVisionOutput.Input("clip_vision_output", optional=True,
                                          tooltip="CLIP Vision Encode of the image "
                                                  "(clip_vision_h), as Wan 2.1 I2V expects."),
            ],
            outputs=[
                io.Image.Output("low_res", display_name="low_res",
                                tooltip="The Stage I frames (W/4 x H/4)."),
                io.Latent.Output("latent", display_name="latent", tooltip="The Stage I latent."),
                io.Int.Output("target_width", display_name="width",
                              tooltip="The target width (from the image when width=0): link it "
                                      "to the Hybrid Reference Builder so the size is typed once."),
                io.Int.Output("target_height", display_name="height",
                              tooltip="The target height (from the image when height=0)."),
            ],
        )

    RULES = SIZE_RULES | {"length": check_frames}

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    @run_card.measured("stage1")
    def execute(cls, model, positive, negative, vae, image, width, height, crop, length, seed,
                steps, cfg, sampler_name, scheduler, clip_vision_output=None) -> io.NodeOutput:
        checks.check_image(image, "image")
        size = size_from_image(image.shape[2], image.shape[1], width, height, length, "length")
        checks.check_stage1_vae(vae)
        checks.check_stage1_model(model, vae)
        model = context_windows.stage1_windows(model, size.blocks)
        w1, h1 = size.stage1
        fits.check_stage1_fits(model, size, cfg)
        small = stage1_image(image[:1, ..., :3], size.width, size.height, crop=crop)
        pos, neg, latent = stage1.stage1_conditioning(positive, negative, vae, small, w1, h1,
                                                    length, clip_vision_output)
        run_card.note(frames=size.frames, size=f"{w1}x{h1}", steps=steps, sampler=sampler_name,
                      scheduler=scheduler, cfg=cfg)
        samples = stage1.ksample(model, latent, pos, neg, seed, steps, cfg, sampler_name, scheduler)
        frames = vae_protocol.vae_decode(vae, samples)
        return io.NodeOutput(frames, {"samples": samples}, size.width, size.height)
