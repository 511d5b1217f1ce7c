"""SwiftI2V Hybrid Reference Builder: upsampled Stage I frames + the input image -> latents."""
from comfy_api.latest import io

from ..swift_core import hybrid_chunks, iter_hybrid_reference, size_from_image
from ..swift_core.reference import check_low_res_aspect
from ..swift_core.rules import RESIZE_METHODS, WAN22_SPATIAL
from .bridge import checks, fits, progress, run_card, vae_io
from .types import CATEGORY, SIZE_RULES, TILE_RULES, size_inputs, tile_inputs, validate


class SwiftI2VHybridReference(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VHybridReference",
            display_name="SwiftI2V Hybrid Reference Builder",
            category=CATEGORY,
            description="Resizes every low-res frame to the target size (Stage I's, or any video "
                        "of 4k+1 frames), puts the input image in as frame 0 (paper Eq. 2-3) and "
                        "encodes it with the Stage II VAE in time chunks, tiled, carrying the "
                        "VAE's causal state (equal to one-shot encoding). Outputs the reference "
                        "latent R as a LATENT whose block 0 is the anchor latent A.",
            inputs=[
                io.Image.Input("low_res", tooltip="Stage I frames (from the Stage I Sampler), or "
                                                  "any low-res video of 4k+1 frames (Load Video, "
                                                  "core's Wan 2.2 I2V A14B, ...): resized to the "
                                                  "target with the crop rule."),
                io.Image.Input("image", tooltip="The high-resolution input image."),
                io.Vae.Input("vae", tooltip="Stage II VAE: wan2.2_vae.safetensors (48 channels)."),
                *size_inputs(),
                io.Combo.Input("upscale_method", options=list(RESIZE_METHODS), default="bicubic",
                               tooltip="Upsampling of the Stage I frames (paper: bicubic)."),
                *tile_inputs(),
                io.Int.Input("blocks_per_chunk", default=2, min=1, max=64,
                             tooltip="Latent blocks (4 frames each) built and encoded at once; "
                                     "bounds host RAM."),
            ],
            outputs=[io.Latent.Output("reference", display_name="reference",
                                      tooltip="The reference latent R (Wan 2.2 VAE space); its "
                                              "block 0 is the anchor A, your image. A core "
                                              "LATENT: Save Latent / Load Latent / VAE Decode "
                                              "work on it.")],
        )

    RULES = SIZE_RULES | TILE_RULES

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    @run_card.measured("reference")
    def execute(cls, low_res, image, vae, width, height, crop, upscale_method, tile_size,
                overlap, blocks_per_chunk) -> io.NodeOutput:
        checks.check_image(low_res, "low_res")
        checks.check_image(image, "image")
        size = size_from_image(image.shape[2], image.shape[1], width, height, low_res.shape[0],
                               "low_res frame count")
        checks.check_stage2_vae(vae)
        check_low_res_aspect(low_res.shape[2], low_res.shape[1], size.width, size.height, crop)
        fits.check_chunk_fits(size.width, size.height, blocks_per_chunk)
        run_card.note(frames=size.frames, size=f"{size.width}x{size.height}", tile_size=tile_size)
        pbar = progress.progress_bar(len(hybrid_chunks(size.frames, blocks_per_chunk)))
        def chunks():                   # afresh for an out-of-memory retry with smaller tiles
            return iter_hybrid_reference(low_res, image, size.width, size.height,
                                         method=upscale_method, blocks_per_chunk=blocks_per_chunk,
                                         crop=crop)

        changes = []
        reference = vae_io.encode_chunks(vae, chunks, size.height // WAN22_SPATIAL,
                                         size.width // WAN22_SPATIAL, tile_size, overlap,
                                         pbar.update_absolute, changes)
        if changes:
            run_card.note(changes=changes)
        return io.NodeOutput({"samples": reference})
