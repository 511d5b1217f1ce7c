"""SwiftI2V Segment Decoder: streams the 2K latent through the Wan 2.2 VAE, block by block."""
import torch
from comfy_api.latest import io

from .bridge import checks, fits, progress, vae_stream, video_file
from ..swift_core.memory import frames_bytes
from ..swift_core.paths import check_prefix
from .types import CATEGORY, validate


class SwiftI2VSegmentDecoder(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="SwiftI2VSegmentDecoder",
            display_name="SwiftI2V Segment Decoder",
            category=CATEGORY,
            description="Decodes the latent a few blocks at a time with the VAE's causal state "
                        "carried across chunks (same frames as one-shot decoding, no flashing at "
                        "chunk boundaries), spatially tiled, and can write the mp4 as it goes.",
            is_output_node=True,
            inputs=[
                io.Latent.Input("samples", tooltip="The Stage II latent."),
                io.Vae.Input("vae", tooltip="Stage II VAE: wan2.2_vae.safetensors (48 channels)."),
                io.Int.Input("blocks_per_step", default=3, min=1, max=64,
                             tooltip="Latent blocks decoded per step (4 frames each)."),
                io.Int.Input("tile", default=64, min=0, max=512, step=8,
                             tooltip="Spatial tile in latent units (x16 pixels); 0 = whole frame."),
                io.Boolean.Input("save_video", default=True,
                                 tooltip="Write an mp4 into ComfyUI's output folder as blocks are "
                                         "decoded (temp name, renamed when complete)."),
                io.String.Input("filename_prefix", default="SwiftI2V/swifti2v",
                                tooltip="Output file prefix (inside ComfyUI's output folder)."),
                io.Float.Input("frame_rate", default=16.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Frames per second of the mp4 (Wan: 16)."),
                io.Boolean.Input("return_frames", default=True,
                                 tooltip="Also output all frames as IMAGE. Off: only the last "
                                         "frame is output, so host RAM stays bounded."),
            ],
            outputs=[io.Image.Output("images", display_name="images",
                                     tooltip="Decoded frames (F x H x W).")],
        )

    @classmethod
    def validate_inputs(cls, filename_prefix=None):
        return validate(cls, {}, (check_prefix, filename_prefix))

    @classmethod
    def execute(cls, samples, vae, blocks_per_step, tile, save_video, filename_prefix, frame_rate,
                return_frames) -> io.NodeOutput:
        latent = samples.get("samples") if isinstance(samples, dict) else None
        checks.check(latent is not None and latent.ndim == 5 and latent.shape[1] == 48,
                   "samples: expected a Wan 2.2 video latent [1, 48, T', H', W'], got "
                   f"{None if latent is None else tuple(latent.shape)}")
        checks.check(latent.shape[0] == 1, f"samples: batch of {latent.shape[0]} latents; the "
                                         "Segment Decoder takes one video at a time")
        checks.check_stage2_vae(vae)
        if save_video:
            checks.as_input_error(check_prefix, filename_prefix)
        blocks, lh, lw = latent.shape[2:]
        num_frames = 1 + 4 * (blocks - 1)
        fits.check_host_fits(
            frames_bytes((num_frames if return_frames else 0) + 4 * blocks_per_step, lw * 16,
                         lh * 16),
            inputs=f"samples ({lw * 16}x{lh * 16}, {num_frames} frames), "
                   f"return_frames={return_frames}",
            what="the decoded frames kept in host RAM",
            advice="turn return_frames off (the video file is still written), or decode fewer "
                   "blocks_per_step")
        stream = vae_stream.WanVAEStream(vae, tile=tile)
        stream.load(lh, lw, decode=True)
        writer = video_file.VideoFileWriter(filename_prefix, lw * 16, lh * 16, frame_rate) \
            if save_video else None
        kept, last = [], None
        pbar = progress.progress_bar(blocks)
        try:
            for b0 in range(0, blocks, blocks_per_step):
                progress.throw_if_interrupted()
                frames = stream.decode(latent[:, :, b0:b0 + blocks_per_step])
                if writer is not None:
                    writer.write(frames)
                if return_frames:
                    kept.append(frames.to(progress.intermediate_device()))
                last = frames[-1:]
                pbar.update_absolute(min(blocks, b0 + blocks_per_step))
            ui = {"images": [writer.close()], "animated": (True,)} if writer is not None else None
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        images = torch.cat(kept) if return_frames else last
        return io.NodeOutput(images, ui=ui)
