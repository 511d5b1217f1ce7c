"""Seeded random weights for modules built on the meta device (plain torch, no ComfyUI import).

ComfyUI's layers skip weight init, so a module built normally holds uninitialised memory: build it
on the meta device to list keys and shapes, then fill every tensor from a seeded generator.
"""
import math

import torch


def meta(cls, **kw):
    with torch.device("meta"):
        return cls(**kw)


def random_state(module: torch.nn.Module, seed: int, dtype=torch.float16) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, p in module.state_dict().items():
        shape = tuple(p.shape)
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("gamma",) or (leaf == "weight" and len(shape) == 1):
            t = torch.ones(shape)
        elif leaf == "bias" or len(shape) == 0:
            t = torch.zeros(shape)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
            t = torch.randn(shape, generator=g) / math.sqrt(max(fan_in, 1))
        out[name] = t.to(dtype).contiguous()
    return out
