"""A tiny, randomly initialised Wan 2.2 TI2V transformer (diffusers' real architecture)."""
from __future__ import annotations

import torch


def tiny_wan(in_channels: int = 96, out_channels: int = 48, heads: int = 2, head_dim: int = 32,
             ffn: int = 128, layers: int = 2, text_dim: int = 32, seed: int = 0):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    model = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=head_dim,
        in_channels=in_channels, out_channels=out_channels, text_dim=text_dim, freq_dim=32,
        ffn_dim=ffn, num_layers=layers, rope_max_seq_len=64)
    # diffusers zero-initialises some projections; give every weight a value so the output
    # really depends on the input, the reference and the timestep.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 / max(p.shape[-1], 1) ** 0.5))
    return model.eval()


def text_context(text_dim: int = 32, tokens: int = 8, seed: int = 1):
    return torch.randn(1, tokens, text_dim, generator=torch.Generator().manual_seed(seed))
