"""API-format graphs of the tiny test pipeline (tiny random models, 64x64, 9 frames)."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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


def data_pipeline(*, video="panned.mp4", length=17, start=0, stride=0, max_clips=1, width=96,
                  height=64, strength=0.1, steps=1, synthesize_fraction=1.0, seed=7,
                  strength_reading="before_shift", folder="data",
                  dtype="float32", save_name=None, stage1_compare=False):
    """Training data: Load Clips -> Stage Transition -> Sample Writer (tiny models)."""
    g = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": TINY["stage1"],
                                                     "weight_dtype": "default"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": TINY["vae1"]}},
        "4": {"class_type": "VAELoader", "inputs": {"vae_name": TINY["vae2"]}},
        "5": {"class_type": "SwiftTestConditioning", "inputs": {"seed": 1}},
        "6": {"class_type": "SwiftTestConditioning", "inputs": {"seed": 2}},
        "20": {"class_type": "SwiftI2VLoadClips", "inputs": {
            "video": video, "length": length, "start": start, "stride": stride,
            "max_clips": max_clips}},
        "21": {"class_type": "SwiftI2VStageTransition", "inputs": {
            "model": ["1", 0], "positive": ["5", 0], "negative": ["6", 0], "vae": ["3", 0],
            "clip": ["20", 0], "width": width, "height": height, "crop": "center",
            "strength": strength, "strength_reading": strength_reading, "steps": steps,
            "synthesize_fraction": synthesize_fraction, "seed": seed, "cfg": 1.0,
            "sampler_name": "euler", "scheduler": "simple", "name": ["20", 2],
            "start": ["20", 1]}},
        "22": {"class_type": "SwiftI2VSampleWriter", "inputs": {
            "clip": ["20", 0], "low_res": ["21", 0], "positive": ["5", 0], "vae": ["4", 0],
            "width": ["21", 1], "height": ["21", 2], "crop": "center", "info": ["21", 3],
            "start": ["20", 1], "name": ["20", 2], "folder": folder, "dtype": dtype,
            "tile_size": 1024, "overlap": 64, "blocks_per_chunk": 1}},
    }
    if save_name:
        saved = {"name": save_name, "images": ["21", 0]}
        if stage1_compare:
            g["23"] = {"class_type": "ImageFromBatch", "inputs": {
                "image": ["20", 0], "batch_index": 0, "length": 1}}
            g["10"] = {"class_type": "SwiftI2VStage1Sampler", "inputs": {
                "model": ["1", 0], "positive": ["5", 0], "negative": ["6", 0], "vae": ["3", 0],
                "image": ["23", 0], "width": width, "height": height, "crop": "center",
                "length": length, "seed": seed, "steps": steps, "cfg": 1.0,
                "sampler_name": "euler", "scheduler": "simple"}}
            saved["images_b"] = ["10", 0]
        g["15"] = {"class_type": "SwiftTestSaveTensors", "inputs": saved}
    return g


def tiny_encoders(prompt: dict) -> dict:
    """An API prompt with the umt5 and CLIP vision encoders (minutes on a CPU at full size)
    replaced by the test conditioning node, which still takes the prompt text. Node ids may be
    a placed subgraph's ("20:7"): their seed is then the id's digits."""
    wf = json.loads(json.dumps(prompt))
    for k, n in list(wf.items()):
        if n["class_type"] == "CLIPTextEncode":
            n["class_type"] = "SwiftTestConditioning"
            n["inputs"] = {"seed": int("".join(c for c in k if c.isdigit())),
                           "text": n["inputs"]["text"]}
        elif n["class_type"] in ("CLIPLoader", "CLIPVisionLoader", "CLIPVisionEncode"):
            del wf[k]
    for n in wf.values():
        n["inputs"].pop("clip_vision_output", None)
    return wf


def tiny_api_workflow(path: Path, name: str = "swifti2v_2k") -> Path:
    """A bundled API workflow with tiny encoders (tiny_encoders), written to ``path``."""
    wf = json.loads((ROOT / "workflows" / "api" / f"{name}_api.json").read_text())
    path.write_text(json.dumps(tiny_encoders(wf)))
    return path
