"""SwiftI2V Stage I Sample Writer: one training sample of the Stage I 360P LoRA per clip."""
from comfy_api.latest import io

from .. import swift_core
from ..swift_core import size_from_image
from ..swift_core.reference import stage1_image
from ..swift_core.rules import check_name, check_prefix
from ..swift_core.stage1_samples import DTYPES, write_stage1_sample
from .bridge import checks, run_card, samples_dir, stage1
from .types import CATEGORY, SIZE_RULES, size_inputs, validate


class SwiftI2VStage1SampleWriter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VStage1SampleWriter",
            display_name="SwiftI2V Stage I Sample Writer (LoRA training data)",
            category=f"{CATEGORY}/training",
            description="Writes one training sample of the Stage I 360P LoRA: the clip trimmed to "
                        "W:H and resized to Stage I's size (W/4 x H/4, as the Stage I Sampler), "
                        "its Wan 2.1 latent, the image-to-video condition of its first frame "
                        "exactly as core builds it for sampling, CLIP vision of that frame and the "
                        "caption, to <output>/<folder>/<name>_<start>.safetensors.",
            is_output_node=True,
            inputs=[
                io.Model.Input("model", tooltip="The Stage I model (Wan 2.1 I2V 14B): its own "
                                                "latent format and conditioning are used."),
                io.Vae.Input("vae", tooltip="Stage I VAE: wan_2.1_vae.safetensors."),
                io.Conditioning.Input("positive", tooltip="The clip's caption (umt5)."),
                io.Image.Input("clip", tooltip="The clip, 4k+1 frames (Load Clips)."),
                *size_inputs(),
                io.Int.Input("start", default=0, min=0, max=1_000_000,
                             tooltip="The clip's first frame in its video (link Load Clips' "
                                     "start); part of the file name."),
                io.String.Input("name", default="clip",
                                tooltip="Sample name (link Load Clips' name)."),
                io.String.Input("folder", default="swifti2v_stage1_data",
                                tooltip="Folder inside ComfyUI's output folder."),
                io.Combo.Input("dtype", options=list(DTYPES), default="bfloat16",
                               tooltip="Storage type of the latents."),
                io.ClipVisionOutput.Input("clip_vision_output", optional=True,
                                          tooltip="CLIP Vision Encode of the clip's first frame "
                                                  "(Wan 2.1 I2V uses it)."),
            ],
            outputs=[],
        )

    RULES = SIZE_RULES | {"name": check_name, "folder": check_prefix}

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    @run_card.measured("stage1_sample")
    def execute(cls, model, vae, positive, clip, width, height, crop, start, name, folder, dtype,
                clip_vision_output=None) -> io.NodeOutput:
        checks.check_image(clip, "clip")
        check_name(name, "name")
        size = size_from_image(clip.shape[2], clip.shape[1], width, height, clip.shape[0],
                               "clip frame count")
        checks.check_stage1_vae(vae)
        checks.check_stage1_model(model, vae)
        context = checks.text_embedding(positive, "positive")
        target = samples_dir.sample_path(folder, f"{name}_{start:06d}.safetensors")
        small = stage1_image(clip[..., :3], size.width, size.height, crop=crop)
        x0, concat, image = stage1.training_tensors(model, vae, positive, small,
                                                    clip_vision_output)
        w1, h1 = size.stage1
        run_card.note(frames=size.frames, size=f"{w1}x{h1}")
        meta = {"width": w1, "height": h1, "target_width": size.width,
                "target_height": size.height, "frames": size.frames, "source": name,
                "start": start, "pack_version": swift_core.__version__}
        write_stage1_sample(target.path, x0, concat, context, image, meta, dtype=dtype)
        return io.NodeOutput(ui={"swifti2v_samples": [target.ui]})
