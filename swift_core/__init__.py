"""swift_core: the SwiftI2V tensor library (plain torch; never imports ComfyUI)."""
__version__ = "0.1.0"   # the pack's version (pyproject.toml), written into training samples

from .adapters import diffusers_wan_denoiser, flow_denoised
from .memory import (WAN21_I2V_14B, WAN22_TI2V_5B, WanDiTConfig, choose_m, max_window_blocks,
                     window_activation_bytes)
from .plan import ROPE_MODES, Segment, plan_segments, window_positions
from .reference import (CROP_MODES, hybrid_chunks, hybrid_reference, iter_hybrid_reference,
                        resize_frames)
from .sampling import (MODES, CSGProgress, euler_step, sample_csg, sample_euler, sample_steps,
                       window_latent, window_mask)
from .sizes import (VideoSize, block_frame_range, check_frames, check_multiple,
                    check_size_input, frames_of_blocks, latent_blocks, size_from_image)

__all__ = [
    "CROP_MODES", "CSGProgress", "MODES", "ROPE_MODES", "Segment", "VideoSize", "WAN21_I2V_14B",
    "WAN22_TI2V_5B", "WanDiTConfig", "block_frame_range", "check_frames", "check_multiple", "check_size_input",
    "choose_m", "diffusers_wan_denoiser", "euler_step", "flow_denoised", "frames_of_blocks",
    "hybrid_chunks", "hybrid_reference", "iter_hybrid_reference", "latent_blocks",
    "max_window_blocks", "plan_segments", "resize_frames", "sample_csg", "sample_euler",
    "sample_steps", "size_from_image", "window_activation_bytes", "window_latent", "window_mask",
    "window_positions",
    "__version__",
]
