"""SwiftI2V Segment Decoder: streams the 2K latent through the Wan 2.2 VAE, block by block."""
import torch
from comfy_api.latest import io

from ..swift_core import cards
from ..swift_core.memory import frames_bytes
from ..swift_core.sizes import video_frames
from ..swift_core.rules import (COLOR_MATCH, TEMPORAL_STRIDE, WAN22_SPATIAL, check_prefix,
                                check_tile_px)
from .bridge import auto_fit, checks, fits, progress, run_card, streaming
from .types import CATEGORY, tile_inputs, validate


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
                *tile_inputs(),
                io.Boolean.Input("save_video", default=True,
                                 tooltip="Write the mp4 into ComfyUI's output folder as blocks "
                                         "are decoded (temp name, renamed when complete). Off: "
                                         "into the pack's work folder, for the VIDEO output only."),
                io.String.Input("filename_prefix", default="SwiftI2V/swifti2v",
                                tooltip="Output file prefix (inside ComfyUI's output folder)."),
                io.Float.Input("frame_rate", default=16.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Frames per second of the mp4 (Wan: 16)."),
                io.Boolean.Input("return_frames", default=True,
                                 tooltip="Also output all frames as IMAGE. Off: only the last "
                                         "frame is output, so host RAM stays bounded."),
                io.Combo.Input("color_match", options=list(COLOR_MATCH), default="off",
                               optional=True, tooltip="lab: give every frame the colour statistics (L*a*b* mean "
                                       "and spread) of the input image (or of frame 0, which "
                                       "decodes it), against the colour drift of Wan 2.2 TI2V "
                                       "5B."),
                io.Image.Input("image", optional=True,
                               tooltip="The input image, for color_match (default: frame 0)."),
            ],
            outputs=[io.Image.Output("images", display_name="images",
                                     tooltip="Decoded frames (F x H x W)."),
                     io.Video.Output("video", display_name="video",
                                     tooltip="The video file written as blocks were decoded "
                                             "(core's Save Video names and keeps it)."),
                     io.String.Output("run_card", display_name="run_card",
                                      tooltip="What this run cost, as JSON: each SwiftI2V stage's "
                                              "time and peak memory, the plan, the versions "
                                              "(docs/performance.md); written beside a saved "
                                              "video too.")],
        )

    RULES = {"filename_prefix": check_prefix, "tile_size": check_tile_px,
             "overlap": check_tile_px}

    @classmethod
    def validate_inputs(cls, **inputs):
        return validate(cls, inputs)

    @classmethod
    def execute(cls, samples, vae, blocks_per_step, tile_size, overlap, save_video,
                filename_prefix, frame_rate, return_frames, color_match="off",
                image=None) -> io.NodeOutput:
        latent = checks.video_latent(samples, "samples")
        checks.check_stage2_vae(vae)
        if image is not None:
            checks.check_image(image, "image")
        if save_video:
            check_prefix(filename_prefix)
        blocks, lh, lw = latent.shape[2:]
        w, h = lw * WAN22_SPATIAL, lh * WAN22_SPATIAL
        num_frames = video_frames(blocks)
        fits.check_host_fits(
            frames_bytes((num_frames if return_frames else 0) + TEMPORAL_STRIDE * blocks_per_step,
                         w, h),
            inputs=f"samples ({w}x{h}, {num_frames} frames), "
                   f"return_frames={return_frames}",
            what="the decoded frames kept in host RAM",
            advice="turn return_frames off (the video file is still written), or decode fewer "
                   "blocks_per_step")
        asked = tile_size
        tile_size, _ = auto_fit.tile_for(vae, tile_size, h, w, overlap, decode=True)
        stream = streaming.SegmentStreamer(
            vae, lh, lw, frame_rate, num_frames, tile_px=tile_size, overlap_px=overlap,
            color_match=color_match, color_reference=image,
            filename_prefix=filename_prefix if save_video else None, name="swifti2v_decoder",
            asked_tile=asked)
        kept = []
        pbar = progress.progress_bar(blocks)
        with run_card.stage("decoder", frames=num_frames, size=f"{w}x{h}", tile_size=tile_size):
            try:
                for b0 in range(0, blocks, blocks_per_step):
                    progress.throw_if_interrupted()
                    frames = stream.add(latent[:, :, b0:b0 + blocks_per_step])
                    if return_frames:
                        kept.append(frames.to(progress.intermediate_device()))
                    pbar.update_absolute(min(blocks, b0 + blocks_per_step))
                video = stream.finish()
            except BaseException:
                stream.abort()
                raise
            if stream.changes:          # a halved or re-measured tile
                run_card.note(changes=stream.changes)
        card = run_card.text()
        ui = {"swifti2v_card": [card]}
        if stream.ui is not None:                    # saved here: its card beside it
            cards.write_beside(stream.path, run_card.current())
            ui.update(images=[stream.ui], animated=(True,))
        images = torch.cat(kept) if return_frames else stream.last
        return io.NodeOutput(images, video, card, ui=ui)
