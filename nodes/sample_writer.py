"""SwiftI2V Training Sample Writer: one Stage II training sample (x0, R, text) per clip."""
from comfy_api.latest import io

from .. import swift_core
from ..swift_core import hybrid_chunks, iter_hybrid_reference, resize_frames, size_from_image
from ..swift_core.reference import check_low_res_aspect
from ..swift_core.rules import WAN22_SPATIAL, check_name, check_prefix
from ..swift_core.samples import DTYPES, write_sample
from .bridge import checks, fits, progress, run_card, samples_dir, vae_io
from .types import (CATEGORY, SIZE_RULES, TILE_RULES, TransitionInfo, size_inputs, tile_inputs,
                    validate)


class SwiftI2VSampleWriter(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VSampleWriter",
            display_name="SwiftI2V Training Sample Writer",
            category=f"{CATEGORY}/training",
            description="Writes one Stage II training sample: the clip's Wan 2.2 latent x0 (the "
                        "target; block 0 is the anchor), the hybrid reference R built from the "
                        "low-res clip exactly as at inference, and the caption's text embedding, "
                        "to <output>/<folder>/<name>_<start>.safetensors (README: sample "
                        "format). Encoded in time chunks with the VAE's causal state carried.",
            is_output_node=True,
            inputs=[
                io.Image.Input("clip", tooltip="The ground-truth clip (Load Clips)."),
                io.Image.Input("low_res", tooltip="The low-res clip: Stage Transition's output, "
                                                  "or a plain downsample."),
                io.Conditioning.Input("positive", tooltip="The caption's text embedding."),
                io.Vae.Input("vae", tooltip="Stage II VAE: wan2.2_vae.safetensors."),
                *size_inputs(),
                TransitionInfo.Input("info", optional=True,
                                     tooltip="From the Stage Transition node: s, k, seed."),
                io.Int.Input("start", default=0, min=0, max=1_000_000,
                             tooltip="The clip's first frame in its video (link Load Clips' "
                                     "start); part of the file name."),
                io.String.Input("name", default="clip", tooltip="Sample name (the source video's "
                                                               "name: link Load Clips' name)."),
                io.String.Input("folder", default="swifti2v_data",
                                tooltip="Folder inside ComfyUI's output folder."),
                io.Combo.Input("dtype", options=list(DTYPES), default="bfloat16",
                               tooltip="Storage type of x0 and R (bfloat16 halves the files)."),
                *tile_inputs(),
                io.Int.Input("blocks_per_chunk", default=2, min=1, max=64,
                             tooltip="Latent blocks encoded at once; bounds host RAM."),
            ],
            outputs=[],
        )

    RULES = SIZE_RULES | TILE_RULES | {"name": check_name, "folder": check_prefix}

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    @run_card.measured("training_sample")
    def execute(cls, clip, low_res, positive, vae, width, height, crop, start, name, folder,
                dtype, tile_size, overlap, blocks_per_chunk, info=None) -> io.NodeOutput:
        checks.check_image(clip, "clip")
        checks.check_image(low_res, "low_res")
        check_name(name, "name")
        target = samples_dir.sample_path(folder, f"{name}_{start:06d}.safetensors")
        size = size_from_image(clip.shape[2], clip.shape[1], width, height, clip.shape[0],
                               "clip frame count")
        checks.check(low_res.shape[0] == clip.shape[0],
                     f"low_res: {low_res.shape[0]} frames; the clip has {clip.shape[0]}")
        checks.check_stage2_vae(vae)
        check_low_res_aspect(low_res.shape[2], low_res.shape[1], size.width, size.height, crop)
        context = checks.text_embedding(positive, "positive")
        fits.check_chunk_fits(size.width, size.height, blocks_per_chunk)
        ranges = hybrid_chunks(size.frames, blocks_per_chunk)
        run_card.note(frames=size.frames, size=f"{size.width}x{size.height}", tile_size=tile_size)
        pbar = progress.progress_bar(2 * len(ranges))
        lh, lw = size.height // WAN22_SPATIAL, size.width // WAN22_SPATIAL
        x0 = vae_io.encode_chunks(
            vae, (resize_frames(clip[a:b, ..., :3], size.width, size.height, crop=crop)
                  for a, b in ranges), lh, lw, tile_size, overlap, pbar.update_absolute)
        reference = vae_io.encode_chunks(
            vae, iter_hybrid_reference(low_res, clip[:1], size.width, size.height,
                                       blocks_per_chunk=blocks_per_chunk, crop=crop),
            lh, lw, tile_size, overlap, lambda i: pbar.update_absolute(len(ranges) + i))
        info = info or {"strength": 0.0, "start_sigma": 0.0, "steps": 0, "seed": 0,
                        "synthesized": False}
        meta = {"width": size.width, "height": size.height, "frames": size.frames,
                "strength": info["strength"], "start_sigma": info.get("start_sigma", 0.0),
                "strength_reading": info.get("strength_reading", ""),
                "steps": info["steps"], "seed": info["seed"],
                "synthesized": str(bool(info["synthesized"])).lower(), "source": name,
                "start": start, "pack_version": swift_core.__version__}
        write_sample(target.path, vae_io.dit_latent(x0)[0],
                     vae_io.dit_latent(reference)[0], context, meta, dtype=dtype)
        return io.NodeOutput(ui={"swifti2v_samples": [target.ui]})
