"""Long videos: Stage I at 161 frames through core's Wan context windows (WanContextWindowsManual
patching the Stage I model), the way the pack's long runs make their low-res video."""
import pytest
from safetensors.torch import load_file

from swift_batch.client import PromptError
from swift_testing.comfy_host.graphs import TINY


def cuts_image_conditioning(client) -> bool:
    """Whether this ComfyUI's context windows cut I2V conditioning (0.8 and later): read from
    the version it reports, as a user would check it."""
    version = client._json("GET", "/system_stats")["system"]["comfyui_version"]
    return tuple(int(v) for v in version.split(".")[:2]) >= (0, 8)


def context_windows(client, model, length_frames: int, overlap_frames: int) -> dict:
    """Core's WanContextWindowsManual with every input this ComfyUI declares: the inputs that
    differ between versions (freenoise since 0.8, retain_first_frame in 0.33) at their defaults."""
    info = client.object_info()["WanContextWindowsManual"]["input"]
    inputs = {}
    for group in ("required", "optional"):
        for name, spec in info.get(group, {}).items():
            opts = spec[1] if len(spec) > 1 else {}
            if "default" in opts:
                inputs[name] = opts["default"]
            elif isinstance(spec[0], list) or spec[0] == "COMBO":
                inputs[name] = (spec[0] if isinstance(spec[0], list) else opts["options"])[0]
    inputs.update(model=model, context_length=length_frames, context_overlap=overlap_frames,
                  context_schedule="standard_static", fuse_method="pyramid")
    return {"class_type": "WanContextWindowsManual", "inputs": inputs}


def test_stage1_at_161_frames_through_core_context_windows(client, server):
    """161 frames (41 latent blocks) with windows of 33 frames (9 blocks): every call of the Wan
    2.1 model sees one window, never the whole video, and the Stage I Sampler still returns every
    frame of the requested size: the pack's sampler runs a MODEL patched by core's context
    windows as core's KSampler does."""
    frames, window = 161, 33
    g = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": TINY["stage1"],
                                                     "weight_dtype": "default"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": TINY["vae1"]}},
        "5": {"class_type": "SwiftTestConditioning", "inputs": {"seed": 1}},
        "6": {"class_type": "SwiftTestConditioning", "inputs": {"seed": 2}},
        "7": {"class_type": "LoadImage", "inputs": {"image": "astronaut.png"}},
        "20": context_windows(client, ["1", 0], window, 8),
        "21": {"class_type": "SwiftTestRecordModel", "inputs": {"model": ["20", 0],
                                                                "tag": "long1_calls"}},
        "10": {"class_type": "SwiftI2VStage1Sampler", "inputs": {
            "model": ["21", 0], "positive": ["5", 0], "negative": ["6", 0], "vae": ["3", 0],
            "image": ["7", 0], "width": 64, "height": 64, "crop": "center", "length": frames,
            "seed": 0, "steps": 2, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple"}},
        "22": {"class_type": "SwiftTestSaveRecords", "inputs": {"model": ["21", 0],
                                                                "latent": ["10", 1],
                                                                "tag": "long1_calls"}},
        "15": {"class_type": "SwiftTestSaveTensors", "inputs": {"name": "long1",
                                                               "images": ["10", 0]}},
    }
    if not cuts_image_conditioning(client):
        # 0.3.x: core's windows leave Wan I2V's image latents whole (the model would fail at its
        # first step); the sampler refuses by name before Stage I loads
        with pytest.raises(PromptError) as e:
            client.run(g, timeout=1800)
        assert "core's context windows in this ComfyUI do not cut Wan I2V's image" in \
            str(e.value) and e.value.details.get("node_id") == "10", str(e.value)
        return
    client.run(g, timeout=1800)
    out = server.output / "swifti2v_test"
    images = load_file(str(out / "long1.safetensors"))["images"]
    assert tuple(images.shape) == (frames, 16, 16, 3)               # W/4 x H/4, every frame
    calls = load_file(str(out / "long1_calls.safetensors"))
    assert calls["final_in"].shape[2] == (frames - 1) // 4 + 1      # 41 latent blocks
    seen = [calls[k].shape[2] for k in sorted(calls) if k.startswith("x_")]
    blocks = (window - 1) // 4 + 1
    # one window per call (0.33 keeps the first latent frame in each window too), never all 41
    assert seen and max(seen) <= blocks + 1 and min(seen) >= blocks, seen
    assert len(seen) >= 2 * 41 // blocks, seen                     # several windows per step
