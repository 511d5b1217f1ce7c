"""Make tiny, randomly initialised model files in the key layout ComfyUI's loaders detect.

Runs inside ComfyUI's Python (it builds ComfyUI's own modules on the meta device to list keys and
shapes, then fills every tensor from a seeded generator). Nothing of ComfyUI is copied.

    cd $COMFYUI_PATH && PYTHONPATH=<pack> $COMFYUI_PYTHON -m swift_testing.comfy_host.make_tiny_models OUT_DIR
"""
import os
import sys

import torch
from safetensors.torch import save_file

OUT = sys.argv[1]
sys.argv = [sys.argv[0], "--cpu"]          # ComfyUI reads its flags at import
import comfy.options                        # noqa: E402

comfy.options.enable_args_parsing()

import comfy.ldm.wan.model as wan_model      # noqa: E402
import comfy.ops                              # noqa: E402
import comfy.ldm.wan.vae as wan21_vae         # noqa: E402
import comfy.ldm.wan.vae2_2 as wan22_vae      # noqa: E402

from .random_weights import meta, random_state  # noqa: E402


def dit(in_dim, out_dim, model_type, seed):
    m = meta(wan_model.WanModel, operations=comfy.ops.disable_weight_init, model_type=model_type, in_dim=in_dim, out_dim=out_dim, dim=128,
             ffn_dim=256, num_heads=1, num_layers=2, text_dim=4096, freq_dim=256)
    return random_state(m, seed)


def lora(seed, rank=4, dim=128, layers=2):
    """A LightX2V-style LoRA (diffusion_model.* lora_down/lora_up) for the tiny Wan 2.1."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for b in range(layers):
        for name in ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "cross_attn.q",
                     "cross_attn.o"):
            key = f"diffusion_model.blocks.{b}.{name}"
            out[f"{key}.lora_down.weight"] = (torch.randn(rank, dim, generator=g) * 0.05).half()
            out[f"{key}.lora_up.weight"] = (torch.randn(dim, rank, generator=g) * 0.05).half()
    return out


def main(out):
    for d in ("diffusion_models", "vae", "loras"):
        os.makedirs(os.path.join(out, d), exist_ok=True)
    jobs = {
        "diffusion_models/tiny_wan21_i2v.safetensors": lambda: dit(36, 16, "i2v", 1),
        "diffusion_models/tiny_wan22_ti2v_48ch.safetensors": lambda: dit(48, 48, "t2v", 2),
        "diffusion_models/tiny_wan22_swifti2v_96ch.safetensors": lambda: dit(96, 48, "t2v", 3),
        "loras/tiny_lightx2v_lora.safetensors": lambda: lora(6),
        "vae/wan_2.1_vae_random.safetensors": lambda: random_state(meta(
            wan21_vae.WanVAE, dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
            attn_scales=[], temperal_downsample=[False, True, True]), 4),
        "vae/wan2.2_vae_random.safetensors": lambda: random_state(meta(
            wan22_vae.WanVAE, dim=160, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
            attn_scales=[], temperal_downsample=[False, True, True]), 5),
    }
    for rel, make in jobs.items():
        path = os.path.join(out, rel)
        if not os.path.exists(path):
            tmp = path + ".tmp"
            save_file(make(), tmp)
            os.replace(tmp, path)
        print(path)


if __name__ == "__main__":
    main(OUT)
