"""Run one forward of a Wan file through ComfyUI's own loader and model (inside ComfyUI's Python).

    cd $COMFYUI_PATH && PYTHONPATH=<pack> $COMFYUI_PYTHON -m swift_testing.comfy_host.comfy_forward \
        MODEL.safetensors IO.pt   # writes IO.pt's "comfy"
"""
import sys

import torch

MODEL, IO = sys.argv[1], sys.argv[2]
sys.argv = [sys.argv[0], "--cpu"]
import comfy.options  # noqa: E402

comfy.options.enable_args_parsing()
import comfy.sd  # noqa: E402
import comfy.utils  # noqa: E402

patcher = comfy.sd.load_diffusion_model_state_dict(comfy.utils.load_torch_file(MODEL))
dm = patcher.model.diffusion_model
io = torch.load(IO)
with torch.no_grad():           # Wan 2.2 takes one timestep per latent frame: sigma * 1000
    out = dm(torch.cat([io["x"], io["ref"]], 1).to(dm.patch_embedding.weight.dtype),
             io["sigma"] * 1000, io["context"])
io["comfy"], io["model_class"] = out.float(), type(patcher.model).__name__
torch.save(io, IO)
