"""API-format graphs of the tiny test pipeline (tiny random models, 64x64, 9 frames)."""
from __future__ import annotations

TINY = {
    "stage1": "tiny_wan21_i2v.safetensors",
    "stage2_48": "tiny_wan22_ti2v_48ch.safetensors",
    "stage2_96": "tiny_wan22_swifti2v_96ch.safetensors",
    "vae1": "wan_2.1_vae_random.safetensors",
    "vae2": "wan2.2_vae_random.safetensors",
}


def pipeline(*, stage2="stage2_48", mode="auto", rope="window", cfg2=1.0, steps2=2, m=1, n=1,
             sampler2="euler", scheduler2="simple", denoise=0.6, width=64, height=64, length=9, image="astronaut.png",
             upscale="bicubic", prefix="swifti2v_test/video", save_name="run", vae_ref="vae2",
             stage2_model=None, decoder=True, compare=True, seed1=0):
    g = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": TINY["stage1"],
                                                     "weight_dtype": "default"}},
        "2": {"class_type": "UNETLoader", "inputs": {"unet_name": stage2_model or TINY[stage2],
                                                     "weight_dtype": "default"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": TINY["vae1"]}},
        "4": {"class_type": "VAELoader", "inputs": {"vae_name": TINY["vae2"]}},
        "5": {"class_type": "SwiftTestConditioning", "inputs": {"seed": 1}},
        "6": {"class_type": "SwiftTestConditioning", "inputs": {"seed": 2}},
        "7": {"class_type": "LoadImage", "inputs": {"image": image}},
        "10": {"class_type": "SwiftI2VStage1Sampler", "inputs": {
            "model": ["1", 0], "positive": ["5", 0], "negative": ["6", 0], "vae": ["3", 0],
            "image": ["7", 0], "width": width, "height": height, "crop": "center", "length": length,
            "seed": seed1,
            "steps": 2, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple"}},
        "11": {"class_type": "SwiftI2VHybridReference", "inputs": {
            "low_res": ["10", 0], "image": ["7", 0], "vae": ["4" if vae_ref == "vae2" else "3", 0],
            "width": width, "height": height, "crop": "center", "upscale_method": upscale,
            "tile_size": 1024, "overlap": 64, "blocks_per_chunk": 1}},
        "12": {"class_type": "SwiftI2VStage2Sampler", "inputs": {
            "model": ["2", 0], "positive": ["5", 0], "negative": ["6", 0], "reference": ["11", 0],
            "seed": 0, "steps": steps2, "cfg": cfg2, "sampler_name": sampler2,
            "scheduler": scheduler2, "m": m, "n": n, "rope": rope, "mode": mode,
            "denoise": denoise}},
    }
    saved = {"name": save_name, "reference": ["11", 0], "latent": ["12", 0]}
    if decoder:
        g["13"] = {"class_type": "SwiftI2VSegmentDecoder", "inputs": {
            "samples": ["12", 0], "vae": ["4", 0], "blocks_per_step": 1,
            "tile_size": 1024, "overlap": 64, "color_match": "off",
            "save_video": True, "filename_prefix": prefix, "frame_rate": 16.0,
            "return_frames": True}}
        saved["images"] = ["13", 0]
    if compare:
        g["14"] = {"class_type": "VAEDecode", "inputs": {"samples": ["12", 0], "vae": ["4", 0]}}
        saved["images_b"] = ["14", 0]
    g["15"] = {"class_type": "SwiftTestSaveTensors", "inputs": saved}
    return g
