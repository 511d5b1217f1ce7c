"""Video sizes of the SwiftI2V pipeline, and the checks that guard them.

The rules on single values live in :mod:`swift_core.rules`; a bad value raises its
``SwiftInputError`` naming the value, what was given and what is allowed.
"""
from __future__ import annotations

from dataclasses import dataclass

from .rules import (STAGE1_MULTIPLE, STAGE2_MULTIPLE, TEMPORAL_STRIDE, WAN22_CHANNELS,
                    WAN22_SPATIAL, SwiftInputError, check_frames, check_multiple)

STAGE1_SCALE = 4


def snap_down(value: int, multiple: int) -> int:
    """Largest multiple of ``multiple`` not above ``value`` (at least ``multiple``)."""
    return max(multiple, int(value) // multiple * multiple)


def snap_nearest(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def stage1_size(width: int, height: int) -> tuple[int, int]:
    """Stage I size (width, height) of a W x H target: W/4 x H/4, rounded to multiples of 16."""
    return (snap_nearest(width / STAGE1_SCALE, STAGE1_MULTIPLE),
            snap_nearest(height / STAGE1_SCALE, STAGE1_MULTIPLE))


def latent_blocks(frames: int) -> int:
    """Latent frames (temporal blocks) T' = (F-1)/4 + 1 for F = 4k+1 frames."""
    return (check_frames(frames) - 1) // TEMPORAL_STRIDE + 1


def video_frames(blocks: int) -> int:
    """Frames F = 4 (T' - 1) + 1 that ``blocks`` latent blocks decode to (the anchor block is
    frame 0 alone): the inverse of :func:`latent_blocks`."""
    return 1 + TEMPORAL_STRIDE * (blocks - 1)


def block_frame_range(block: int) -> tuple[int, int]:
    """Pixel frames [start, stop) that latent block ``block`` decodes to (block 0 is frame 0 alone)."""
    if block == 0:
        return 0, 1
    return 1 + (block - 1) * TEMPORAL_STRIDE, 1 + block * TEMPORAL_STRIDE


@dataclass(frozen=True)
class VideoSize:
    """Target of the pipeline: ``width`` x ``height`` pixels, ``frames`` = 4k+1."""

    width: int = 2560
    height: int = 1408
    frames: int = 81

    def __post_init__(self):
        check_multiple(self.width, "width")
        check_multiple(self.height, "height")
        check_frames(self.frames, "frames")

    @property
    def blocks(self) -> int:
        return latent_blocks(self.frames)

    @property
    def stage1(self) -> tuple[int, int]:
        """Stage I size (width, height): W/4 x H/4, rounded to multiples of 16 (SPEC)."""
        return stage1_size(self.width, self.height)

    def latent_shape(self, channels: int = WAN22_CHANNELS, spatial: int = WAN22_SPATIAL) -> tuple[int, int, int, int]:
        """(C, T', H', W') of the Stage II latent."""
        return channels, self.blocks, self.height // spatial, self.width // spatial


def size_from_image(image_width: int, image_height: int, width: int = 0, height: int = 0,
                    frames: int = 81, frames_name: str = "frames") -> VideoSize:
    """Target size; a 0 width/height is taken from the image, snapped down to a multiple of 32.

    An image smaller than 32 px on a side taken from the image is refused (snapping down gives 0).
    """
    for given, got, axis in ((width, image_width, "width"), (height, image_height, "height")):
        if not given and got < STAGE2_MULTIPLE:
            raise SwiftInputError(
                f"image: {image_width}x{image_height} px is too small for {axis}=0 (size from the "
                f"image), which needs at least {STAGE2_MULTIPLE} px; set {axis} (a multiple of "
                f"{STAGE2_MULTIPLE}) or use a larger image")
    check_frames(frames, frames_name)
    w = width or snap_down(image_width, STAGE2_MULTIPLE)
    h = height or snap_down(image_height, STAGE2_MULTIPLE)
    return VideoSize(w, h, frames)
