"""The Stage II model: diffusers' WanTransformer3DModel, loaded from the files users have, and
widened from 48 to 96 input channels (latent + reference)."""
from __future__ import annotations

import os

import torch

COMFY_PREFIXES = ("model.diffusion_model.", "diffusion_model.")
#: Wan's attention heads are 128 wide (ComfyUI infers the head count from that too)
HEAD_DIM = 128


def _wan_class():
    from diffusers import WanTransformer3DModel
    return WanTransformer3DModel


def config_from_state_dict(sd: dict) -> dict:
    """A diffusers config from the shapes of a diffusers-layout Wan state dict."""
    dim, in_ch = sd["patch_embedding.weight"].shape[:2]
    layers = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    image = sd.get("condition_embedder.image_embedder.ff.net.0.proj.weight")
    i2v = {} if image is None else dict(image_dim=int(image.shape[1]), added_kv_proj_dim=int(dim))
    return dict(**i2v, patch_size=(1, 2, 2), num_attention_heads=dim // HEAD_DIM,
                attention_head_dim=HEAD_DIM, in_channels=int(in_ch),
                out_channels=int(sd["proj_out.weight"].shape[0]) // 4,
                text_dim=int(sd["condition_embedder.text_embedder.linear_1.weight"].shape[1]),
                freq_dim=int(sd["condition_embedder.time_embedder.linear_1.weight"].shape[1]),
                ffn_dim=int(sd["blocks.0.ffn.net.0.proj.weight"].shape[0]), num_layers=layers,
                cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6,
                rope_max_seq_len=1024)


def as_diffusers(sd: dict) -> dict:
    """A Wan state dict in diffusers' keys: converted when it is in the original Wan layout
    (ComfyUI's repackaged files), as it is otherwise."""
    if "patch_embedding.weight" not in sd or "blocks.0.self_attn.q.weight" in sd or any(
            k.startswith(COMFY_PREFIXES) for k in sd):
        return comfy_to_diffusers(sd)
    return sd


def comfy_to_diffusers(sd: dict) -> dict:
    """ComfyUI's repackaged Wan file (original Wan key layout) -> diffusers keys, with diffusers'
    own single-file converter."""
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
    out = {}
    for k, v in sd.items():
        for p in COMFY_PREFIXES:
            if k.startswith(p):
                k = k[len(p):]
                break
        out[k] = v
    return convert_wan_transformer_to_diffusers(out)


def tiny_config(in_channels: int = 48, text_dim: int = 4096, layers: int = 2) -> dict:
    """A tiny Wan 2.2 TI2V (two 128-wide heads: 256 wide, more than the 192 latent values of a
    2x2 patch, so it can carry a clip's detail), for tests and smoke runs."""
    return dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=HEAD_DIM,
                in_channels=in_channels, out_channels=48, text_dim=text_dim, freq_dim=256,
                ffn_dim=256, num_layers=layers, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)


def tiny_i2v_config(layers: int = 2) -> dict:
    """A tiny Wan 2.1 I2V (36 input channels: latent + mask + image latent; CLIP vision)."""
    return dict(patch_size=(1, 2, 2), num_attention_heads=1, attention_head_dim=HEAD_DIM,
                in_channels=36, out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=256,
                num_layers=layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                eps=1e-6, image_dim=1280, added_kv_proj_dim=HEAD_DIM, rope_max_seq_len=1024)


def check_base(base: str) -> None:
    """``--base`` names something :func:`load_wan` can read (checked before anything loads)."""
    if base == "tiny" or os.path.isdir(base) or (os.path.isfile(base)
                                                 and base.endswith(".safetensors")):
        return
    raise ValueError(f"--base {base!r}: no such .safetensors file or diffusers folder (give "
                     "'tiny', a diffusers folder or a .safetensors file)")


def load_wan(base: str, dtype=torch.float32, seed: int = 0, tiny: dict | None = None):
    """The base model: ``tiny`` (random, seeded; ``tiny`` config, Wan 2.2 TI2V's by default), a
    diffusers folder, or a single safetensors file (ComfyUI's repackaged Wan files, or diffusers
    keys)."""
    cls = _wan_class()
    if base == "tiny":
        torch.manual_seed(seed)
        model = cls(**(tiny or tiny_config()))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():              # diffusers zero-initialises some projections
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * (0.5 / max(p.shape[-1], 1) ** 0.5))
        return model if dtype == torch.float32 else model.to(dtype)
    if os.path.isdir(base):
        sub = "transformer" if os.path.isdir(os.path.join(base, "transformer")) else None
        model = cls.from_pretrained(base, subfolder=sub)      # fp32 master weights
        return model if dtype == torch.float32 else model.to(dtype)
    if not os.path.isfile(base):
        raise FileNotFoundError(f"--base {base!r}: no such file or folder (give 'tiny', a "
                                "diffusers folder or a .safetensors file)")
    from safetensors.torch import load_file
    sd = as_diffusers(load_file(base))
    with torch.device("meta"):
        model = cls(**config_from_state_dict(sd))
    model.load_state_dict(sd, strict=True, assign=True)
    rope_tables(model)
    return model.to(dtype)


def rope_tables(model, force: bool = False) -> None:
    """RoPE's tables are buffers the file does not hold: made on the CPU, not left on meta (nor
    uninitialised after ``to_empty``: ``force``)."""
    if force or any(b.is_meta for b in model.rope.buffers()):
        from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed
        c = model.config
        model.rope = WanRotaryPosEmbed(c.attention_head_dim, c.patch_size, c.rope_max_seq_len)


def empty_like_config(config: dict):
    """The model of ``config`` on the meta device: no memory, no weights read."""
    with torch.device("meta"):
        return _wan_class()(**config)


def widened_patch_weight(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A patch embedding's weight [dim, C, ...] with zero input channels added up to
    ``channels``: the model then ignores what they carry."""
    pad = torch.zeros(weight.shape[0], channels - weight.shape[1], *weight.shape[2:],
                      dtype=weight.dtype, device=weight.device)
    return torch.cat([weight, pad], dim=1)


def widen_patch_embedding(model, extra: int = 48):
    """Patch embedding 48 -> 48 + ``extra`` input channels: the first copied, the new zero, so
    the widened model equals the base whatever the reference (paper App. B.1)."""
    old = model.patch_embedding
    new = torch.nn.Conv3d(old.in_channels + extra, old.out_channels, old.kernel_size,
                          old.stride, old.padding, bias=old.bias is not None,
                          device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(widened_patch_weight(old.weight, old.in_channels + extra))
        if old.bias is not None:
            new.bias.copy_(old.bias)
    model.patch_embedding = new
    model.register_to_config(in_channels=old.in_channels + extra)
    return model
