"""Training samples of Stage II on disk: one safetensors file per clip (plain torch + safetensors).

Tensors (no batch axis):

- ``x0``        [48, T', H/16, W/16]: the clip's Wan 2.2 latent (the target). Block 0 is the
  anchor A: the clip's first frame, which is the input image at inference.
- ``reference`` [48, T', H/16, W/16]: the hybrid reference R built from the low-res clip exactly as
  at inference (its block 0 equals x0's block 0: both encode the same first frame).
- ``context``   [L, D]: the caption's text embedding (umt5: D = 4096).

Both latents are in the Stage II DiT's space (metadata ``latent_space`` = ``wan22-normalized``):
the raw VAE latent normalised per channel by the Wan 2.2 latent statistics, as ComfyUI's sampling
does before the model sees the latent and the concatenated reference (``Wan22.process_in``).

Latents are stored in ``bfloat16`` or ``float32`` (metadata ``dtype``), the text as given.
Metadata (strings): ``format`` = ``swifti2v-sample``, ``version``, ``width``, ``height``,
``frames``, ``strength``, ``steps`` (0 for a plain downsample), ``seed`` (the clip's noise seed),
``synthesized`` (``true``/``false``), ``source``, ``start``, ``pack_version``, ``anchor``,
``latent_space`` and ``dtype``; newer samples also ``start_sigma`` (the sigma the
clip was noised to; 0 for a plain downsample) and ``strength_reading``.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import torch

from .sizes import latent_blocks

FORMAT = "swifti2v-sample"
VERSION = "1"
ANCHOR_RULE = "block 0 of x0"
LATENT_SPACE = "wan22-normalized"
LATENT_CHANNELS = 48
REQUIRED_META = ("format", "version", "width", "height", "frames", "strength", "steps", "seed",
                 "synthesized", "source", "start", "pack_version", "anchor", "latent_space",
                 "dtype")
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class Sample:
    x0: torch.Tensor
    reference: torch.Tensor
    context: torch.Tensor
    meta: dict

    @property
    def anchor(self) -> torch.Tensor:
        return self.x0[:, :1]


def check_tensors(x0, reference, context, width: int, height: int, frames: int,
                  where: str = "sample") -> None:
    want = (LATENT_CHANNELS, latent_blocks(frames), height // 16, width // 16)
    for name, t in (("x0", x0), ("reference", reference)):
        if t is None or tuple(t.shape) != want:
            raise ValueError(f"{where}: {name} has shape {None if t is None else tuple(t.shape)}; "
                             f"expected {want} for {frames} frames of {width}x{height}")
    if context is None or context.ndim != 2 or context.shape[0] < 1:
        raise ValueError(f"{where}: context has shape "
                         f"{None if context is None else tuple(context.shape)}; expected a text "
                         "embedding [L, D]")


def write_sample(path: str, x0, reference, context, meta: dict,
                 dtype: str = "bfloat16") -> str:
    """Write one sample atomically (temporary name, then rename); returns ``path``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: must be one of {list(DTYPES)}")
    info = {**{k: str(v) for k, v in meta.items()}, "format": FORMAT, "version": VERSION,
            "anchor": ANCHOR_RULE, "latent_space": LATENT_SPACE, "dtype": dtype}
    check_tensors(x0, reference, context, int(info["width"]), int(info["height"]),
                  int(info["frames"]), path)
    missing = [k for k in REQUIRED_META if k not in info]
    if missing:
        raise ValueError(f"{path}: metadata is missing {missing}")
    tensors = {"x0": x0.to(DTYPES[dtype]).contiguous().cpu(),
               "reference": reference.to(DTYPES[dtype]).contiguous().cpu(),
               "context": context.contiguous().cpu()}
    return save_atomic(path, tensors, info)


def save_atomic(path: str, tensors: dict, info: dict) -> str:
    """A safetensors file written under a temporary name, then renamed: never half a file."""
    from safetensors.torch import save_file
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.part"
    try:
        save_file(tensors, tmp, metadata=info)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def open_checked(path: str, fmt: str, version: str, keys, required_meta, latent_space: str,
                 optional=(), what: str = "training sample") -> tuple[dict, dict]:
    """The tensors ``keys`` (and those of ``optional`` present) and the metadata of a sample file
    of format ``fmt``; a wrong, truncated or foreign file raises ValueError naming it."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            found = set(f.keys())
            if meta.get("format") != fmt:
                raise ValueError(f"{path}: not a SwiftI2V {what} (metadata format="
                                 f"{meta.get('format')!r}, expected {fmt!r})")
            if meta.get("version") != version:
                raise ValueError(f"{path}: sample format version {meta.get('version')!r}; this "
                                 f"reader knows version {version}")
            if meta.get("latent_space", latent_space) != latent_space:
                raise ValueError(f"{path}: latents in space {meta.get('latent_space')!r}; the "
                                 f"trainer needs {latent_space!r}")
            missing = [k for k in keys if k not in found]
            missing += [k for k in required_meta if k not in meta]
            if missing:
                raise ValueError(f"{path}: missing {missing}")
            tensors = {k: f.get_tensor(k) for k in (*keys, *optional) if k in found}
    except ValueError:
        raise
    except Exception as e:                # safetensors' own errors (truncated header or data)
        raise ValueError(f"{path}: cannot be read as a safetensors sample "
                         f"({type(e).__name__}: {e})") from None
    return tensors, meta


def size_meta(path: str, meta: dict) -> tuple[int, int, int]:
    try:
        return int(meta["width"]), int(meta["height"]), int(meta["frames"])
    except ValueError:
        raise ValueError(f"{path}: width/height/frames metadata are not whole numbers") from None


def read_sample(path: str) -> Sample:
    """Read and check one sample; a wrong, truncated or foreign file raises ValueError naming it."""
    tensors, meta = open_checked(path, FORMAT, VERSION, ("x0", "reference", "context"),
                                 REQUIRED_META, LATENT_SPACE)
    width, height, frames = size_meta(path, meta)
    check_tensors(tensors["x0"], tensors["reference"], tensors["context"], width, height, frames,
                  str(path))
    return Sample(tensors["x0"], tensors["reference"], tensors["context"], meta)
