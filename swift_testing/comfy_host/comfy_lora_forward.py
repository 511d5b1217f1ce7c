"""One forward of a Wan 2.1 I2V file with a LoRA at strength 1, through ComfyUI's own loaders
(Load Diffusion Model, then core's LoRA loading as LoraLoaderModelOnly does it), inside ComfyUI's
Python.

    cd $COMFYUI_PATH && PYTHONPATH=<pack> $COMFYUI_PYTHON -m swift_testing.comfy_host.comfy_lora_forward \
        MODEL.safetensors LORA.safetensors IO.pt   # writes IO.pt's "comfy" and "lora_patches"
"""
import sys

import torch

MODEL, LORA, IO = sys.argv[1], sys.argv[2], sys.argv[3]
sys.argv = [sys.argv[0], "--cpu"]
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402

patcher = comfy.sd.load_diffusion_model_state_dict(comfy.utils.load_torch_file(MODEL))
lora = comfy.utils.load_torch_file(LORA, safe_load=True)
patched, _ = comfy.sd.load_lora_for_models(patcher, None, lora, 1.0, 0)
patched.patch_model()
dm = patched.model.diffusion_model
io = torch.load(IO)
with torch.no_grad():           # Wan 2.1: one timestep per sample, sigma * 1000
    out = dm(io["x"].to(dm.patch_embedding.weight.dtype), io["sigma"] * 1000, io["context"],
             clip_fea=io["image"])
io["comfy"], io["lora_patches"] = out.float(), len(patched.patches)
torch.save(io, IO)
