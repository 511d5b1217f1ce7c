"""swift_core: the SwiftI2V tensor library (plain torch; never imports ComfyUI).

Names are loaded on first use (PEP 562), so ``swift_core.rules`` (plain Python) serves the batch
client on machines without torch.
"""
import importlib

__version__ = "0.1.0"   # the pack's version (pyproject.toml), written into training samples

_EXPORTS = {
    "adapters": ("diffusers_wan_denoiser", "flow_denoised"),
    "fit": ("Fit", "choose_m", "choose_tile"),
    "memory": ("WAN22_TI2V_5B", "WanDiTConfig", "max_window_blocks", "vae_tile_bytes",
               "window_activation_bytes"),
    "plan": ("Segment", "plan_segments", "replan_from", "window_positions"),
    "reference": ("hybrid_chunks", "hybrid_reference", "iter_hybrid_reference", "resize_frames"),
    "rules": ("CROP_MODES", "MODES", "ROPE_MODES", "SwiftInputError", "check_frames",
              "check_multiple", "check_size_input"),
    "sampling": ("euler_step", "guider_window_sampler", "run_csg", "sample_csg", "sample_euler",
                 "sample_steps", "torch_window_sampler", "window_latent", "window_mask"),
    "sizes": ("VideoSize", "block_frame_range", "latent_blocks", "size_from_image"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE) + ["__version__"]


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'swift_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
