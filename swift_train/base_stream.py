"""The base model read a group of tensors at a time, in the file's own dtype, for rank 0 to
broadcast: never the whole model in fp32 on one host (5B parameters are 20 GB in fp32, 10 GB in
the file's fp16).

A single safetensors file (ComfyUI's repackaged Wan file, or diffusers keys) is opened lazily; its
keys are mapped to diffusers' by running diffusers' own converter over shape-only (meta) tensors
and following each tensor object to its new key. 'tiny' and diffusers folders are loaded whole
(tiny is small; a folder is read in bf16).
"""
from __future__ import annotations

import os
import re

import torch

from .model import as_diffusers, config_from_state_dict, load_wan, widened_patch_weight

#: the in_channels of the Stage II model (latent + reference)
STAGE2_CHANNELS = 96


class BaseSource:
    """``config`` (diffusers', widened to 96 channels) and ``read(keys)``: those tensors by their
    diffusers names, the patch embedding widened with zeros."""

    def __init__(self, base: str, seed: int = 0):
        self.path, self.file_keys, self.whole = None, {}, None
        if base != "tiny" and os.path.isfile(base):
            self.path, self.file_keys, config = _index_file(base)
        else:
            model = load_wan(base, torch.float32 if base == "tiny" else torch.bfloat16, seed=seed)
            self.whole, config = model.state_dict(), dict(model.config)
        self.base_channels = config["in_channels"]
        self.config = {k: v for k, v in config.items() if not k.startswith("_")}
        if self.base_channels == 48:
            self.config["in_channels"] = STAGE2_CHANNELS

    def read(self, keys: list[str]) -> dict[str, torch.Tensor]:
        if self.whole is not None:
            out = {k: self.whole[k] for k in keys}
        else:
            from safetensors import safe_open
            with safe_open(self.path, framework="pt") as f:
                out = {k: f.get_tensor(self.file_keys[k]) for k in keys}
        w = out.get("patch_embedding.weight")
        if w is not None and w.shape[1] < self.config["in_channels"]:
            out["patch_embedding.weight"] = widened_patch_weight(w, self.config["in_channels"])
        return out


def _index_file(path: str) -> tuple[str, dict, dict]:
    """(path, diffusers key -> file key, config) from the file's header alone."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        meta = {k: torch.empty(f.get_slice(k).get_shape(), device="meta") for k in f.keys()}
    origin = {id(v): k for k, v in meta.items()}
    sd = as_diffusers(dict(meta))
    try:
        keys = {k: origin[id(v)] for k, v in sd.items()}
    except KeyError:
        raise ValueError(f"--base {path!r}: its keys do not map one to one onto diffusers' Wan "
                         "(a tensor was split or reshaped by the converter)") from None
    return path, keys, config_from_state_dict(sd)


def key_groups(keys) -> list[list[str]]:
    """The model's keys in groups of one transformer block each, the rest in one group: what rank
    0 holds at once."""
    groups: dict[str, list[str]] = {}
    for k in keys:
        m = re.match(r"blocks\.(\d+)\.", k)
        groups.setdefault(m.group(0) if m else "rest", []).append(k)
    return list(groups.values())
