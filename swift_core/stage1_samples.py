"""Training samples of the Stage I 360P LoRA on disk: one safetensors file per clip.

Tensors (no batch axis), all in the Wan 2.1 I2V DiT's input space (metadata ``latent_space`` =
``wan21-normalized``: the raw Wan 2.1 VAE latent normalised per channel, as ComfyUI's sampling
gives it to the model):

- ``x0``       [16, T', h/8, w/8]: the clip's latent at the Stage I size (the target).
- ``concat``   [20, T', h/8, w/8]: the image-to-video condition exactly as ComfyUI's Wan 2.1 model
  builds it from core's WanImageToVideo (4 mask channels, then the latent of frame 0 followed by
  grey frames); the DiT takes ``cat(x_t, concat)`` (36 channels).
- ``context``  [L, 4096]: the caption's umt5 embedding.
- ``clip_vision`` [257, 1280] (optional): CLIP vision's penultimate hidden states of frame 0.

Metadata (strings): ``format`` = ``swifti2v-stage1-sample``, ``version``, ``width``/``height``
(the Stage I size), ``target_width``/``target_height``, ``frames``, ``source``, ``start``,
``pack_version``, ``latent_space``, ``dtype``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .rules import STAGE1_MULTIPLE, WAN21_CHANNELS
from .samples import DTYPES, open_checked, save_atomic, size_meta
from .sizes import latent_blocks

FORMAT = "swifti2v-stage1-sample"
VERSION = "1"
LATENT_SPACE = "wan21-normalized"
CONCAT_CHANNELS = 4 + WAN21_CHANNELS
#: Pixels per Wan 2.1 latent unit
SPATIAL = STAGE1_MULTIPLE // 2
#: umt5 tokens as ComfyUI gives them; Wan 2.1 I2V's cross-attention counts on it
TEXT_TOKENS = 512
REQUIRED_META = ("format", "version", "width", "height", "target_width", "target_height",
                 "frames", "source", "start", "pack_version", "latent_space", "dtype")


@dataclass(frozen=True)
class Stage1Sample:
    x0: torch.Tensor
    concat: torch.Tensor
    context: torch.Tensor
    clip_vision: Optional[torch.Tensor]
    meta: dict


def check_tensors(x0, concat, context, clip_vision, width: int, height: int, frames: int,
                  where: str) -> None:
    lat = (latent_blocks(frames), height // SPATIAL, width // SPATIAL)
    for name, t, ch in (("x0", x0, WAN21_CHANNELS), ("concat", concat, CONCAT_CHANNELS)):
        if t is None or tuple(t.shape) != (ch, *lat):
            raise ValueError(f"{where}: {name} has shape {None if t is None else tuple(t.shape)};"
                             f" expected {(ch, *lat)} for {frames} frames of {width}x{height} "
                             "(the Stage I size)")
    if context is None or context.ndim != 2 or context.shape[0] < 1:
        raise ValueError(f"{where}: context has shape "
                         f"{None if context is None else tuple(context.shape)}; expected a text "
                         "embedding [L, D]")
    if clip_vision is not None and (clip_vision.ndim != 2 or context.shape[0] != TEXT_TOKENS):
        raise ValueError(f"{where}: clip_vision {tuple(clip_vision.shape)} with context "
                         f"{tuple(context.shape)}; expected CLIP vision's hidden states [tokens, "
                         f"D] beside umt5's {TEXT_TOKENS} tokens (Wan 2.1 I2V tells the image "
                         "tokens from the text by that length)")


def write_stage1_sample(path: str, x0, concat, context, clip_vision, meta: dict,
                        dtype: str = "bfloat16") -> str:
    """Write one Stage I sample atomically; returns ``path``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: must be one of {list(DTYPES)}")
    info = {**{k: str(v) for k, v in meta.items()}, "format": FORMAT, "version": VERSION,
            "latent_space": LATENT_SPACE, "dtype": dtype}
    missing = [k for k in REQUIRED_META if k not in info]
    if missing:
        raise ValueError(f"{path}: metadata is missing {missing}")
    check_tensors(x0, concat, context, clip_vision, *size_meta(path, info), path)
    tensors = {"x0": x0.to(DTYPES[dtype]), "concat": concat.to(DTYPES[dtype]),
               "context": context}
    if clip_vision is not None:
        tensors["clip_vision"] = clip_vision
    return save_atomic(path, {k: v.contiguous().cpu() for k, v in tensors.items()}, info)


def read_stage1_meta(path: str) -> dict:
    """A Stage I sample's metadata, checked, from its header alone (no tensor is read)."""
    return open_checked(path, FORMAT, VERSION, (), REQUIRED_META, LATENT_SPACE,
                        what="Stage I training sample")[1]


def read_stage1_sample(path: str) -> Stage1Sample:
    """Read and check one Stage I sample; anything else raises ValueError naming the file."""
    t, meta = open_checked(path, FORMAT, VERSION, ("x0", "concat", "context"), REQUIRED_META,
                           LATENT_SPACE, optional=("clip_vision",),
                           what="Stage I training sample")
    check_tensors(t["x0"], t["concat"], t["context"], t.get("clip_vision"),
                  *size_meta(path, meta), str(path))
    return Stage1Sample(t["x0"], t["concat"], t["context"], t.get("clip_vision"), meta)
