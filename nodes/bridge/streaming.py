"""Finished latent blocks -> decoded frames -> a growing video file, on one GPU.

CSG makes a segment final after its own steps, so it is decoded at once with the Wan 2.2 VAE's
causal state carried across segments (the same frames as decoding the whole latent) and appended
to the video file. Memory rule: the VAE is loaded TOGETHER with the Stage II model
(``load_models_gpu([dit, vae], memory_required=one tile of one block)``), so ComfyUI counts both
weights and frees only other models; neither is unloaded to make room for the other at every
segment. Where both do not fit, ComfyUI's own partial loading offloads weights as it would anyway.
"""
from __future__ import annotations

import torch
from PIL import Image

from ...swift_core.color import match_color
from ...swift_core.rules import WAN22_SPATIAL
from .checks import blocked
from .vae_io import block_decoder
from .video_file import output_writer, temp_writer, video


class SegmentStreamer:
    def __init__(self, vae, latent_h: int, latent_w: int, fps: float, frames: int, *,
                 tile_px: int = 0, overlap_px: int = 64, color_match: str = "off",
                 color_reference=None, filename_prefix: str | None = None,
                 name: str = "swifti2v", with_models=(), asked_tile: int | None = None):
        w, h = latent_w * WAN22_SPATIAL, latent_h * WAN22_SPATIAL
        if filename_prefix is None:     # the disk is checked first, before any heavy work
            self.writer, self.ui = temp_writer(w, h, fps, frames, name), None
        else:
            self.writer, self.ui = output_writer(filename_prefix, w, h, fps, frames)
        try:
            self.stream = block_decoder(vae, tile_px=tile_px, overlap_px=overlap_px,
                                        asked_tile=asked_tile, resident=with_models)
            self.stream.load(latent_h, latent_w, decode=True, with_models=with_models)
        except BaseException:
            self.writer.abort()
            raise
        self.color_match, self.color_reference = color_match, color_reference
        self.tile_size, self.last = tile_px, None

    def add(self, blocks):
        """Decode the next latent blocks [1, C, k, h, w] (in order) and append their frames,
        block by block: an mp4 fragment's last frame is readable once the next frame is written,
        so each block follows as soon as it is decoded. (The fallback decoder takes them at
        once.)"""
        out = []
        chunks = blocks.split(1, dim=2) if self.stream.exact_per_block else (blocks,)
        for i, chunk in enumerate(chunks):
            frames = self.stream.decode(chunk)
            if self.color_match != "off":
                if self.color_reference is None:    # frame 0 decodes the anchor: your image
                    self.color_reference = frames[:1]
                frames = match_color(frames, self.color_reference, self.color_match)
            self.writer.write(frames, keyframe=i == 0)
            out.append(frames)
        self.last = out[-1][-1:]
        return out[0] if len(out) == 1 else torch.cat(out)

    @property
    def changes(self) -> list:
        """What an out-of-memory retry changed in the decoder (halved tiles)."""
        return list(getattr(self.stream, "changes", []))

    def preview(self, max_size: int = 512):
        """The last finished frame, as ComfyUI's progress bar takes a preview."""
        if self.last is None:
            return None
        arr = (self.last[0].clamp(0, 1) * 255).byte().cpu().numpy()
        return ("JPEG", Image.fromarray(arr), max_size)

    def finish(self):
        """Close the file under its final name (``path``); the VIDEO backed by it."""
        self.path = self.writer.close()
        return video(self.path, owned=self.ui is None)     # a work-folder file: removed when done

    def abort(self) -> None:
        self.writer.abort()


class NoStream:
    """The streamer of a Stage II with no VAE connected: decodes nothing; its VIDEO output is
    blocked with ``message`` (core's ExecutionBlocker), so the run reads the same either way."""

    changes: list = []
    tile_size = None

    def __init__(self, message: str):
        self.message = message

    def add(self, blocks):
        return None

    def preview(self, max_size: int = 512):
        return None

    def finish(self):
        return blocked(self.message)

    def abort(self) -> None:
        pass
