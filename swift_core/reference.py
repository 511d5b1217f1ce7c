"""The hybrid reference in pixel space (paper Eq. 2-3), built in time chunks.

Frames use ComfyUI's IMAGE layout, [N, H, W, C] float in 0..1. The full-size reference is never
materialised: :func:`iter_hybrid_reference` yields chunks aligned to the VAE's latent blocks, so a
chunked encoder that carries its causal state gives the same latent as one-shot encoding.

One framing rule for every stage (``crop="center"``): the input image is trimmed to the TARGET's
aspect W:H, then resized to whatever size a stage works at. Stage I's W/4 x H/4 is snapped to
multiples of 16, so its frames hold the W:H picture slightly squeezed; upsampling them to W x H
undoes that exactly, and frame 0 (the image trimmed to W:H) is framed like frames 1 and on at
every size. Low-res frames of any other size (a video made elsewhere) are trimmed to W:H
(``center``) or stretched (``disabled``), like the image.
"""
from __future__ import annotations

from typing import Iterator

import torch
import torch.nn.functional as F

from .rules import (CROP_MODES, RESIZE_METHODS, SwiftInputError, check_frames,  # noqa: F401
                    check_option)
from .sizes import block_frame_range, latent_blocks, stage1_size


def center_crop_to_aspect(frames: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """The largest centered window of [N, H, W, C] frames with the aspect ratio width:height."""
    h, w = frames.shape[1], frames.shape[2]
    if w * height > h * width:                    # too wide: trim the sides
        new_w = max(1, round(h * width / height))
        x0 = (w - new_w) // 2
        return frames[:, :, x0:x0 + new_w]
    new_h = max(1, round(w * height / width))     # too tall (or exact): trim top and bottom
    y0 = (h - new_h) // 2
    return frames[:, y0:y0 + new_h]


def resize_frames(frames: torch.Tensor, width: int, height: int, method: str = "bicubic",
                  antialias: bool = True, crop: str = "disabled") -> torch.Tensor:
    """Resize [N, H, W, C] frames to ``width`` x ``height`` (float32 out, clamped to 0..1).

    ``crop="center"`` first trims the frames to the target's aspect ratio (no stretching).
    """
    check_option(method, "method", RESIZE_METHODS)
    check_option(crop, "crop", CROP_MODES)
    if crop == "center":
        frames = center_crop_to_aspect(frames, width, height)
    x = frames.movedim(-1, 1).float()
    if tuple(x.shape[-2:]) != (height, width):
        kw = {"antialias": antialias} if method in ("bicubic", "bilinear") else {}
        x = F.interpolate(x, size=(height, width), mode=method, **kw)
        if method == "bicubic":
            x = x.clamp(0.0, 1.0)
    return x.movedim(1, -1)


def stage1_image(image: torch.Tensor, width: int, height: int, method: str = "bicubic",
                 crop: str = "center") -> torch.Tensor:
    """The input image as Stage I takes it for a W x H target: trimmed to W:H (``center``), then
    resized to Stage I's snapped size."""
    w1, h1 = stage1_size(width, height)
    if crop == "center":
        image = center_crop_to_aspect(image, width, height)
    return resize_frames(image, w1, h1, method)


def fit_low_res(frames: torch.Tensor, width: int, height: int, method: str = "bicubic",
                antialias: bool = True, crop: str = "center") -> torch.Tensor:
    """Low-res frames resized to the W x H target with the framing rule of this module.

    Frames of exactly Stage I's size for this target are stretched back to W:H (they are the W:H
    picture squeezed by snapping); frames of any other size are trimmed to W:H first (``center``).
    """
    is_stage1 = (frames.shape[2], frames.shape[1]) == stage1_size(width, height)
    return resize_frames(frames, width, height, method, antialias,
                         "disabled" if is_stage1 else crop)


def check_low_res_aspect(low_w: int, low_h: int, width: int, height: int, crop: str,
                         tolerance: float = 0.1) -> None:
    """With ``crop="disabled"`` low-res frames are stretched to W x H: refuse a stretch beyond
    ``tolerance`` (Stage I's snapping never stretches more than a few percent)."""
    stretch = (width / height) / (low_w / low_h)
    if crop == "disabled" and abs(stretch - 1) > tolerance:
        raise SwiftInputError(
            f"low_res: frames of {low_w}x{low_h} (aspect {low_w / low_h:.2f}) would be stretched "
            f"by {abs(stretch - 1):.0%} to the {width}x{height} target (aspect "
            f"{width / height:.2f}) with crop=disabled; use crop=center, or give the Stage I "
            "Sampler and the Reference Builder the same width/height")


def check_image_batch(image: torch.Tensor, name: str) -> None:
    if image.ndim != 4 or image.shape[0] < 1 or image.shape[-1] not in (3, 4):
        raise SwiftInputError(f"{name}: expected an IMAGE batch [N>=1, H, W, 3], got shape "
                         f"{tuple(image.shape)}")


def hybrid_chunks(frames: int, blocks_per_chunk: int = 2) -> list[tuple[int, int]]:
    """Frame ranges [start, stop) of the chunks, each covering whole latent blocks."""
    if blocks_per_chunk < 1:
        raise SwiftInputError(f"blocks_per_chunk={blocks_per_chunk!r}: must be >= 1")
    blocks = latent_blocks(frames)
    out = []
    for b0 in range(0, blocks, blocks_per_chunk):
        b1 = min(b0 + blocks_per_chunk, blocks) - 1
        out.append((block_frame_range(b0)[0], block_frame_range(b1)[1]))
    return out


def iter_hybrid_reference(low_res: torch.Tensor, image: torch.Tensor, width: int, height: int, *,
                          method: str = "bicubic", antialias: bool = True,
                          blocks_per_chunk: int = 2, crop: str = "disabled"
                          ) -> Iterator[torch.Tensor]:
    """Yield the hybrid reference video chunk by chunk, [n, height, width, C] float32 each.

    Every low-res frame is resized to ``width`` x ``height`` (:func:`fit_low_res`); frame 0 is
    replaced by ``image`` resized to exactly that size (``crop="center"``: trimmed to the target's
    aspect ratio first, the same rule Stage I used). Only one chunk is alive at a time.
    """
    check_image_batch(low_res, "low_res")
    check_image_batch(image, "image")
    check_frames(low_res.shape[0], "low_res frame count")
    c = min(low_res.shape[-1], image.shape[-1], 3)
    for start, stop in hybrid_chunks(low_res.shape[0], blocks_per_chunk):
        chunk = fit_low_res(low_res[start:stop, ..., :c], width, height, method, antialias, crop)
        if start == 0:
            chunk[0] = resize_frames(image[:1, ..., :c], width, height, method, antialias,
                                     crop)[0]
        yield chunk


def hybrid_reference(low_res, image, width, height, **kw) -> torch.Tensor:
    """The whole hybrid reference at once (small sizes and tests only)."""
    return torch.cat(list(iter_hybrid_reference(low_res, image, width, height, **kw)), dim=0)
