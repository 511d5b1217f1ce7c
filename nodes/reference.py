"""SwiftI2V Hybrid Reference Builder: upsampled Stage I frames + the input image -> latents."""
import torch
from comfy_api.latest import io

from ..swift_core import check_size_input, iter_hybrid_reference, size_from_image
from ..swift_core.memory import frames_bytes
from ..swift_core.reference import RESIZE_METHODS
from .bridge import checks, fits, progress, vae_stream
from .types import CATEGORY, SwiftReference, size_inputs, validate


class SwiftI2VHybridReference(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VHybridReference",
            display_name="SwiftI2V Hybrid Reference Builder",
            category=CATEGORY,
            description="Upsamples every Stage I frame to the target size, puts the input image in "
                        "as frame 0 (paper Eq. 2-3) and encodes it with the Stage II VAE in time "
                        "chunks, tiled, carrying the VAE's causal state (equal to one-shot "
                        "encoding). Outputs the reference latent R and the anchor latent A.",
            inputs=[
                io.Image.Input("low_res", tooltip="Stage I frames (from the Stage I Sampler)."),
                io.Image.Input("image", tooltip="The high-resolution input image."),
                io.Vae.Input("vae", tooltip="Stage II VAE: wan2.2_vae.safetensors (48 channels)."),
                *size_inputs(),
                io.Combo.Input("upscale_method", options=list(RESIZE_METHODS), default="bicubic",
                               tooltip="Upsampling of the Stage I frames (paper: bicubic)."),
                io.Int.Input("tile", default=64, min=0, max=512, step=8,
                             tooltip="Spatial tile of the VAE, in latent units (x16 pixels); "
                                     "0 = whole frame. Smaller uses less VRAM."),
                io.Int.Input("blocks_per_chunk", default=2, min=1, max=64,
                             tooltip="Latent blocks (4 frames each) built and encoded at once; "
                                     "bounds host RAM."),
            ],
            outputs=[SwiftReference.Output("reference", display_name="reference",
                                           tooltip="Reference latent R and anchor latent A.")],
        )

    @classmethod
    def validate_inputs(cls, width=None, height=None):
        return validate(cls, {"width": width, "height": height},
                        (check_size_input, width, "width"), (check_size_input, height, "height"))

    @classmethod
    def execute(cls, low_res, image, vae, width, height, crop, upscale_method, tile,
                blocks_per_chunk) -> io.NodeOutput:
        checks.check_image(low_res, "low_res")
        checks.check_image(image, "image")
        size = checks.as_input_error(size_from_image, image.shape[2], image.shape[1], width, height,
                                     low_res.shape[0], "low_res frame count")
        checks.check_stage2_vae(vae)
        w1, h1 = size.stage1
        checks.check((low_res.shape[2], low_res.shape[1]) == (w1, h1),
                   f"low_res: frames are {low_res.shape[2]}x{low_res.shape[1]} but a "
                   f"{size.width}x{size.height} target needs Stage I frames of {w1}x{h1} "
                   "(W/4 x H/4): give the Stage I Sampler the same width/height")
        fits.check_host_fits(
            2 * frames_bytes(4 * blocks_per_chunk + 1, size.width, size.height),
            inputs=f"width={size.width}, height={size.height}, blocks_per_chunk={blocks_per_chunk}",
            what=f"building {4 * blocks_per_chunk + 1} frames of {size.width}x{size.height} at once",
            advice="lower blocks_per_chunk or the size")
        stream = vae_stream.WanVAEStream(vae, tile=tile)
        stream.load(size.height // 16, size.width // 16, decode=False)
        chunks = []
        for chunk in iter_hybrid_reference(low_res, image, size.width, size.height,
                                           method=upscale_method, blocks_per_chunk=blocks_per_chunk,
                                           crop=crop):
            progress.throw_if_interrupted()
            chunks.append(stream.encode(chunk))
        reference = torch.cat(chunks, dim=2)
        return io.NodeOutput({"reference": reference, "anchor": reference[:, :, :1].clone(),
                              "width": size.width, "height": size.height, "frames": size.frames})
