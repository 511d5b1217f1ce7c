"""Video sizes of the SwiftI2V pipeline, and the checks that guard them.

Every rule lives here once; a bad value raises ``ValueError`` naming the value, what was given and
what is allowed, so the ComfyUI nodes can show the message as it is.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Stage II VAE (Wan 2.2): 16x spatial; the DiT patch is 2x2, so pixels come in multiples of 32.
STAGE2_MULTIPLE = 32
#: Stage I VAE (Wan 2.1): 8x spatial, patch 2x2.
STAGE1_MULTIPLE = 16
#: Both Wan VAEs compress time 4x and encode the first frame on its own.
TEMPORAL_STRIDE = 4
STAGE1_SCALE = 4


def check_frames(frames: int, name: str = "frames") -> int:
    """``frames`` must be 4k+1 (1, 5, 9, ... 81)."""
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1 or (frames - 1) % TEMPORAL_STRIDE:
        if isinstance(frames, int) and frames > 1:
            lo = (frames - 1) // TEMPORAL_STRIDE * TEMPORAL_STRIDE + 1
            hint = f", e.g. {lo} or {lo + TEMPORAL_STRIDE}"
        else:
            hint = ", e.g. 81"
        raise ValueError(f"{name}={frames!r}: must be 4k+1 (1, 5, 9, ..., 81){hint}")
    return frames


def check_multiple(value: int, name: str, multiple: int = STAGE2_MULTIPLE) -> int:
    """``value`` must be a positive multiple of ``multiple``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < multiple or value % multiple:
        if isinstance(value, int) and value > 0:
            lo = max(multiple, value // multiple * multiple)
            hint = f", e.g. {lo} or {lo + multiple}"
        else:
            hint = ""
        raise ValueError(f"{name}={value!r}: must be a positive multiple of {multiple}{hint}")
    return value


def check_bounds(value, name: str, lo=None, hi=None):
    """A widget's own limits (ComfyUI does not check them for inputs ``validate_inputs`` takes)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}={value!r}: must be a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ValueError(f"{name}={value!r}: must be between {lo} and {hi}")
    return value


def check_size_input(value: int, name: str) -> int:
    """A node's width/height input: 0 (take it from the image) or a positive multiple of 32."""
    return value if value == 0 else check_multiple(value, name)


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


def frames_of_blocks(blocks: int) -> int:
    """Inverse of :func:`latent_blocks`."""
    return (blocks - 1) * TEMPORAL_STRIDE + 1


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

    def latent_shape(self, channels: int = 48, spatial: int = 16) -> tuple[int, int, int, int]:
        """(C, T', H', W') of the Stage II latent."""
        return channels, self.blocks, self.height // spatial, self.width // spatial


def size_from_image(image_width: int, image_height: int, width: int = 0, height: int = 0,
                    frames: int = 81, frames_name: str = "frames") -> VideoSize:
    """Target size; a 0 width/height is taken from the image, snapped down to a multiple of 32.

    An image smaller than 32 px on a side taken from the image is refused (snapping down gives 0).
    """
    for given, got, axis in ((width, image_width, "width"), (height, image_height, "height")):
        if not given and got < STAGE2_MULTIPLE:
            raise ValueError(
                f"image: {image_width}x{image_height} px is too small for {axis}=0 (size from the "
                f"image), which needs at least {STAGE2_MULTIPLE} px; set {axis} (a multiple of "
                f"{STAGE2_MULTIPLE}) or use a larger image")
    check_frames(frames, frames_name)
    w = width or snap_down(image_width, STAGE2_MULTIPLE)
    h = height or snap_down(image_height, STAGE2_MULTIPLE)
    return VideoSize(w, h, frames)
