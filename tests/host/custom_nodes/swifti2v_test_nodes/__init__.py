"""Test-only ComfyUI nodes for the host tests (never shipped with the pack).

A full-size umt5-xxl costs minutes per prompt on a CPU, so conditioning comes from a seeded random
tensor of the real shape; tensors the tests must inspect are saved as safetensors in the output
folder.
"""
import os

import folder_paths
import torch
from safetensors.torch import save_file


class SwiftTestConditioning:
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seed": ("INT", {"default": 0, "min": 0, "max": 2**31})},
                "optional": {"text": ("STRING", {"default": ""})}}

    def make(self, seed, text=""):
        import zlib
        g = torch.Generator().manual_seed(seed + zlib.crc32(text.encode()))
        return ([[torch.randn(1, 512, 4096, generator=g), {}]],)


class SwiftTestSaveTensors:
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": ("STRING", {"default": "tensors"})},
                "optional": {"reference": ("SWIFTI2V_REFERENCE",), "latent": ("LATENT",),
                             "images": ("IMAGE",), "images_b": ("IMAGE",)}}

    def save(self, name, reference=None, latent=None, images=None, images_b=None):
        out = {}
        if reference is not None:
            out["reference"], out["anchor"] = reference["reference"], reference["anchor"]
        if latent is not None:
            out["latent"] = latent["samples"]
        if images is not None:
            out["images"] = images
        if images_b is not None:
            out["images_b"] = images_b
        folder = os.path.join(folder_paths.get_output_directory(), "swifti2v_test")
        os.makedirs(folder, exist_ok=True)
        save_file({k: v.float().contiguous().cpu() for k, v in out.items()},
                  os.path.join(folder, f"{name}.safetensors"))
        return {}


class SwiftTestEmptyImage:
    CATEGORY = "SwiftI2V/test"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "make"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    def make(self):
        return (torch.zeros(0, 64, 64, 3),)


NODE_CLASS_MAPPINGS = {"SwiftTestConditioning": SwiftTestConditioning,
                       "SwiftTestSaveTensors": SwiftTestSaveTensors,
                       "SwiftTestEmptyImage": SwiftTestEmptyImage}
