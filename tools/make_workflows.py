"""Write the bundled workflows from graph descriptions: for each template, the UI workflow the
ComfyUI frontend loads (nodes, links, groups, widgets_values, model download links, a MarkdownNote
with every model file) and the same graph in API format, plus the UI workflow's thumbnail.

    python -m tools.make_workflows     # workflows/*.json + .jpg, workflows/api/*

ComfyUI lists every *.json of workflows/ as a template; the API files live one folder
down, where it does not look. Widget order and socket slots come from tests/data/node_schemas.json
(the nodes' own schemas).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from swift_core.schedule import WAN_SHIFT

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())
OUT = ROOT / "workflows"
API_OUT = OUT / "api"

HF21 = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
HF22 = "https://huggingface.co/Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files"
LIGHTX2V = "https://huggingface.co/lightx2v/Wan2.1-Distill-Loras/resolve/main"

#: (file, folder under models/, url, size, stage) -- also the README's model table
MODELS = {
    "stage1": ("wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors", "diffusion_models",
               f"{HF21}/diffusion_models/wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors", "17 GB",
               "I"),
    "lora": ("wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors", "loras",
             f"{LIGHTX2V}/wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors", "0.7 GB", "I"),
    "stage2": ("wan2.2_ti2v_5B_fp16.safetensors", "diffusion_models",
               f"{HF22}/diffusion_models/wan2.2_ti2v_5B_fp16.safetensors", "10 GB", "II"),
    "vae1": ("wan_2.1_vae.safetensors", "vae", f"{HF21}/vae/wan_2.1_vae.safetensors", "0.25 GB",
             "I"),
    "vae2": ("wan2.2_vae.safetensors", "vae", f"{HF22}/vae/wan2.2_vae.safetensors", "1.4 GB",
             "II"),
    "text": ("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders",
             f"{HF21}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors", "6.7 GB", "I + II"),
    "clipv": ("clip_vision_h.safetensors", "clip_vision",
              f"{HF21}/clip_vision/clip_vision_h.safetensors", "1.3 GB", "I"),
}
#: the second template's Stage I: core's Wan 2.2 I2V A14B, two experts, 4-step LoRAs
A14B = {
    "high": ("wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors", "diffusion_models",
             f"{HF22}/diffusion_models/wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
             "14 GB", "I"),
    "low": ("wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors", "diffusion_models",
            f"{HF22}/diffusion_models/wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
            "14 GB", "I"),
    "lora_high": ("wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors", "loras",
                  f"{HF22}/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_high_noise.safetensors",
                  "1.2 GB", "I"),
    "lora_low": ("wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors", "loras",
                 f"{HF22}/loras/wan2.2_i2v_lightx2v_4steps_lora_v1_low_noise.safetensors",
                 "1.2 GB", "I"),
}
ALL_MODELS = {**MODELS, **A14B}
STAGE1_FP16 = ("wan2.1_i2v_480p_14B_fp16.safetensors",
               f"{HF21}/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors", "33 GB")

#: the Stage I 360P LoRA the pack trains (python -m swift_train.lora): not public, so its loader
#: ships bypassed and the API workflows leave it out (the batch client's --stage1-lora adds it)
STAGE1_LORA = "swifti2v_stage1_360p_lora.safetensors"
BYPASS = 4                                   # LiteGraph's node mode "bypass"


PROMPT = ("The camera slowly pushes in; the subject moves naturally, hair and fabric sway in a "
          "light breeze; sharp, detailed, cinematic lighting.")
NEGATIVE = ("blurry, low quality, static, frozen, flicker, distorted, deformed, watermark, text, "
            "overexposed, jpeg artifacts")


def model_note(title: str, intro: str, keys: list[str]) -> str:
    """The MarkdownNote of a template: what it does, every model file, its folder and link."""
    rows = "\n".join(f"| [{ALL_MODELS[k][0]}]({ALL_MODELS[k][2]}) | `models/{ALL_MODELS[k][1]}` "
                      f"| {ALL_MODELS[k][3]} |" for k in keys)
    tree = {}
    for k in keys:
        tree.setdefault(ALL_MODELS[k][1], []).append(ALL_MODELS[k][0])
    lines = ["ComfyUI/", "└── models/"]
    folders = sorted(tree)
    for i, folder in enumerate(folders):
        last = i == len(folders) - 1
        lines.append(f"    {'└──' if last else '├──'} {folder}/")
        for j, f in enumerate(tree[folder]):
            lines.append(f"    {'    ' if last else '│   '}{'└──' if j == len(tree[folder]) - 1 else '├──'} {f}")
    return (f"## {title}\n\n{intro}\n\n### Model files\n\n| file | folder | size |\n| --- | --- | "
            f"--- |\n{rows}\n\n```\n" + "\n".join(lines) + "\n```\n\n"
            "Stage II mode `auto` picks `refine` for the public 5B (48 input channels; set "
            "`denoise`) and `swifti2v` for SwiftI2V Stage II weights (96 channels) when you have "
            "them: select that file in *Load Stage II model*.\n\nThe Stage II sampler decodes "
            "each segment as soon as it is final and appends it to the video that *Save Video* "
            "keeps: no full-length 2K frames in RAM. Optional: `color_match: lab` against colour "
            "drift. For the frames as an IMAGE, add a *SwiftI2V Segment Decoder* on the latent.")


NOTE_STAGE1_LORA = (
    "\n\n### The 360P LoRA (optional, yours)\n\nThe paper's Stage I also loads a 360P LoRA it "
    f"trained; it is not public. Train it with the pack (docs/training.md), put `{STAGE1_LORA}` in "
    "`models/loras`, and un-bypass the *360P LoRA* node (select it, Ctrl+B). Until then the node "
    "is bypassed and Stage I runs without it.")
NOTE_2K = model_note(
    "SwiftI2V 2K image-to-video (2560x1408, 81 frames)",
    "**Stage I** (left): Wan 2.1 I2V 14B 480P + LightX2V 4-step LoRA makes a 640x352 motion "
    "reference. **Stage II** (right): Wan 2.2 TI2V 5B re-synthesises it at 2K, anchored on your "
    "image, segment by segment (CSG: M=3 blocks per segment, N=1 previous block as context), so "
    "memory stays bounded. Type the size once, on the Stage I Sampler: the Reference Builder "
    f"takes it from there. Stage I in fp16 instead of fp8: `{STAGE1_FP16[0]}` ({STAGE1_FP16[2]}).",
    ["stage1", "lora", "vae1", "text", "clipv", "stage2", "vae2"]) + NOTE_STAGE1_LORA
NOTE_A14B = model_note(
    "SwiftI2V Stage II after core's Wan 2.2 I2V A14B",
    "**Stage I** (left) is plain ComfyUI: Wan 2.2 I2V A14B with its high-noise and low-noise "
    "experts (4-step LoRAs, 2 + 2 steps), at 640x352. Any low-res video of 4k+1 frames works the "
    "same way (Load Video, LTX, ...): the Reference Builder resizes it to the target with the "
    "crop rule. **Stage II** (right) is SwiftI2V's CSG re-synthesis at 2K, anchored on your image.",
    ["high", "low", "lora_high", "lora_low", "vae1", "text", "stage2", "vae2"])

NOTE_LONG = model_note(
    "SwiftI2V 2K image-to-video, long (2560x1408, 161 frames)",
    "The 2K template at 161 frames (10 s at 16 fps). Wan 2.1 I2V makes 81 frames at a time: core's "
    "*Wan Context Windows* node on the Stage I model runs it in 81-frame windows overlapping by "
    "32 frames and blends them (ComfyUI 0.8 or later; on 0.3.x the pack cuts the image "
    "conditioning to each window itself). Stage II's CSG needs the same memory at any length. "
    "For 321 frames set the Stage I Sampler's length to 321; the windows stay as they are. The "
    "Seam Report (bypassed) measures the segment boundaries and where the windows join.",
    ["stage1", "lora", "vae1", "text", "clipv", "stage2", "vae2"]) + NOTE_STAGE1_LORA


def node(id, type, pos, size, widgets=None, links=None, title=None, model=None, color=None,
         mode=0):
    return {"id": id, "type": type, "pos": pos, "size": size, "widgets": widgets or {},
            "links": links or {}, "title": title, "model": model, "color": color, "mode": mode}


def common_inputs(s1x: int, vae_y: int, clip_y: int) -> list[dict]:
    """Stage I VAE, text encoder, your image and the two prompts, shared by the templates."""
    return [
        node(3, "VAELoader", [s1x, vae_y], [380, 58], {"vae_name": MODELS["vae1"][0]},
             title="Load Stage I VAE (Wan 2.1)", model="vae1"),
        node(4, "CLIPLoader", [s1x, clip_y], [380, 106],
             {"clip_name": MODELS["text"][0], "type": "wan", "device": "default"},
             title="Load text encoder (umt5-xxl)", model="text"),
        node(6, "LoadImage", [460, 80], [340, 360], {"image": "example.png"},
             title="Your image (high resolution)"),
        node(7, "CLIPTextEncode", [460, 480], [420, 160], {"text": PROMPT}, {"clip": (4, 0)},
             title="Positive Prompt", color="#232"),
        node(8, "CLIPTextEncode", [460, 680], [420, 130], {"text": NEGATIVE}, {"clip": (4, 0)},
             title="Negative Prompt", color="#322"),
    ]


def stage2_nodes(s2x: int, low_res: tuple, image: tuple, prompts: tuple, size_from=None,
                 stage1_model=None):
    """Stage II, shared by the templates: loaders, Reference Builder, the CSG sampler streaming
    its video (decoded segment by segment while it runs), core's Save Video."""
    pos, neg = prompts
    size_links = {"width": (size_from, 2), "height": (size_from, 3)} if size_from else {}
    return [
        node(11, "UNETLoader", [s2x, 80], [380, 82], {"unet_name": MODELS["stage2"][0],
                                                      "weight_dtype": "default"},
             title="Load Stage II model (Wan 2.2 TI2V 5B or SwiftI2V)", model="stage2"),
        node(18, "ModelSamplingSD3", [s2x + 20, 580], [340, 58], {"shift": WAN_SHIFT},
             {"model": (11, 0)},
             title="Stage II shift (as trained: the export's swifti2v.shift)"),
        node(12, "VAELoader", [s2x, 200], [380, 58], {"vae_name": MODELS["vae2"][0]},
             title="Load Stage II VAE (Wan 2.2)", model="vae2"),
        node(13, "SwiftI2VHybridReference", [s2x, 300], [380, 260],
             {"width": 2560, "height": 1408, "crop": "center", "upscale_method": "bicubic",
              "tile_size": 0, "overlap": 64, "blocks_per_chunk": 2},
             {"low_res": low_res, "image": image, "vae": (12, 0), **size_links}),
        node(14, "SwiftI2VStage2Sampler", [1900, 80], [400, 560],
             {"seed": 42, "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
              "m": 0, "n": 1, "rope": "window", "mode": "auto", "denoise": 0.6,
              "frame_rate": 16.0, "tile_size": 0, "overlap": 64, "color_match": "off"},
             {"model": (18, 0), "positive": pos, "negative": neg, "reference": (13, 0),
              "vae": (12, 0)},
             title="CSG Stage II Sampler (streams the video while it runs)"),
        node(17, "SaveVideo", [2340, 80], [560, 560],
             {"filename_prefix": "video/SwiftI2V", "format": "auto", "codec": "auto"},
             {"video": (14, 1)}),
        node(20, "SwiftI2VSeamReport", [2340, 680], [560, 520], {"m": 3, "n": 1},
             {"video": (14, 1), "plan": (14, 2), "stage1": low_res,
              **({"stage1_model": stage1_model} if stage1_model else {})},
             title="Seam Report (un-bypass with Ctrl+B to check segment boundaries)",
             mode=BYPASS),
    ]


def stage1_loaders(s1x: int) -> list[dict]:
    """Wan 2.1 I2V 14B with the LightX2V LoRA, and CLIP vision (ids 1, 2, 5)."""
    return [
        node(1, "UNETLoader", [s1x, 80], [380, 82], {"unet_name": MODELS["stage1"][0],
                                                     "weight_dtype": "default"},
             title="Load Stage I model (Wan 2.1 I2V 14B)", model="stage1"),
        node(2, "LoraLoaderModelOnly", [s1x, 200], [380, 82],
             {"lora_name": MODELS["lora"][0], "strength_model": 1.0}, {"model": (1, 0)},
             title="LightX2V 4-step LoRA", model="lora"),
        node(19, "LoraLoaderModelOnly", [s1x, 660], [380, 82],
             {"lora_name": STAGE1_LORA, "strength_model": 1.0}, {"model": (2, 0)},
             title="360P LoRA (yours: train it, then un-bypass with Ctrl+B)", mode=BYPASS),
        node(5, "CLIPVisionLoader", [s1x, 570], [380, 58], {"clip_name": MODELS["clipv"][0]},
             title="Load CLIP Vision (clip_vision_h)", model="clipv"),
    ]


def graph_2k() -> list[dict]:
    s1x, s2x = 40, 1480
    return [
        *stage1_loaders(s1x),
        *common_inputs(s1x, 320, 420),
        node(9, "CLIPVisionEncode", [460, 860], [300, 78], {"crop": "none"},
             {"clip_vision": (5, 0), "image": (6, 0)}),
        node(10, "SwiftI2VStage1Sampler", [940, 80], [400, 400],
             {"width": 2560, "height": 1408, "crop": "center", "length": 81, "seed": 42,
              "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple"},
             {"model": (19, 0), "positive": (7, 0), "negative": (8, 0), "vae": (3, 0),
              "image": (6, 0), "clip_vision_output": (9, 0)}),
        *stage2_nodes(s2x, (10, 0), (6, 0), ((7, 0), (8, 0)), size_from=10),
    ]


#: the long template: frames, and core's Wan context windows on Stage I (in frames; static
#: windows, so the Seam Report knows where they join)
LONG_FRAMES = 161
LONG_WINDOWS = {"context_length": 81, "context_overlap": 32, "context_schedule": "standard_static",
                "context_stride": 1, "closed_loop": False, "fuse_method": "pyramid"}


def graph_2k_long() -> list[dict]:
    """The 2K template at 161 frames: Stage I runs through core's Wan Context Windows (81-frame
    windows overlapping by 32), Stage II's CSG is flat in length as it is."""
    nodes = graph_2k()
    for n in nodes:
        if n["type"] == "SwiftI2VStage1Sampler":
            n["widgets"]["length"] = LONG_FRAMES
            n["links"]["model"] = (21, 0)
        if n["type"] == "SwiftI2VSeamReport":
            n["links"]["stage1_model"] = (21, 0)
            n["title"] = ("Seam Report (un-bypass with Ctrl+B to check segment boundaries and "
                          "Stage I's window joins)")
    return nodes + [node(21, "WanContextWindowsManual", [40, 780], [380, 250],
                         dict(LONG_WINDOWS), {"model": (19, 0)},
                         title="Wan Context Windows (Stage I beyond 81 frames)")]


def expert(id: int, y: int, *, high: bool, model, latent, cond: int) -> dict:
    """One of Wan 2.2 A14B's experts: the high-noise one takes steps 0-2 and leaves its noise, the
    low-noise one finishes steps 2-4 (core's two-KSamplerAdvanced recipe)."""
    return node(id, "KSamplerAdvanced", [940, y], [340, 330],
                {"add_noise": "enable" if high else "disable", "noise_seed": 42, "steps": 4,
                 "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
                 "start_at_step": 0 if high else 2, "end_at_step": 2 if high else 10000,
                 "return_with_leftover_noise": "enable" if high else "disable"},
                {"model": model, "positive": (cond, 0), "negative": (cond, 1),
                 "latent_image": latent},
                title="High-noise expert: steps 0-2" if high else "Low-noise expert: steps 2-4")


def graph_a14b() -> list[dict]:
    s1x, s2x = 40, 1480
    a = 20                                 # ids of the core Stage I nodes
    return [
        node(a + 1, "UNETLoader", [s1x, 80], [380, 82], {"unet_name": A14B["high"][0],
                                                         "weight_dtype": "default"},
             title="Wan 2.2 I2V A14B high-noise expert", model="high"),
        node(a + 2, "UNETLoader", [s1x, 200], [380, 82], {"unet_name": A14B["low"][0],
                                                          "weight_dtype": "default"},
             title="Wan 2.2 I2V A14B low-noise expert", model="low"),
        node(a + 3, "LoraLoaderModelOnly", [s1x, 320], [380, 82],
             {"lora_name": A14B["lora_high"][0], "strength_model": 1.0}, {"model": (a + 1, 0)},
             title="4-step LoRA (high noise)", model="lora_high"),
        node(a + 4, "LoraLoaderModelOnly", [s1x, 440], [380, 82],
             {"lora_name": A14B["lora_low"][0], "strength_model": 1.0}, {"model": (a + 2, 0)},
             title="4-step LoRA (low noise)", model="lora_low"),
        node(a + 5, "ModelSamplingSD3", [s1x, 560], [300, 58], {"shift": 5.0},
             {"model": (a + 3, 0)}),
        node(a + 6, "ModelSamplingSD3", [s1x, 640], [300, 58], {"shift": 5.0},
             {"model": (a + 4, 0)}),
        *common_inputs(s1x, 740, 840),
        node(a + 7, "WanImageToVideo", [940, 80], [340, 210],
             {"width": 640, "height": 352, "length": 81, "batch_size": 1},
             {"positive": (7, 0), "negative": (8, 0), "vae": (3, 0), "start_image": (6, 0)},
             title="Stage I size: W/4 x H/4"),
        expert(a + 8, 330, high=True, model=(a + 5, 0), latent=(a + 7, 2), cond=a + 7),
        expert(a + 9, 700, high=False, model=(a + 6, 0), latent=(a + 8, 0), cond=a + 7),
        node(a + 10, "VAEDecode", [940, 1070], [220, 46], {}, {"samples": (a + 9, 0), "vae": (3, 0)}),
        *stage2_nodes(s2x, (a + 10, 0), (6, 0), ((7, 0), (8, 0))),
    ]


#: template name -> (graph, groups, note, thumbnail caption)
TEMPLATES = {
    "swifti2v_2k": (graph_2k, [
        ("Stage I: motion reference at W/4 x H/4 (Wan 2.1 I2V 14B + LightX2V, 4 steps, no CFG)",
         [20, 0, 1340, 960], "#3f789e"),
        ("Stage II: 2K re-synthesis with CSG (Wan 2.2 TI2V 5B), streamed to the video",
         [1460, 0, 1460, 960], "#a1309b")], NOTE_2K, "Wan 2.1 I2V 14B\n640x352"),
    "swifti2v_2k_long": (graph_2k_long, [
        ("Stage I at 161 frames: core's Wan Context Windows, 81-frame windows overlapping by 32",
         [20, 0, 1340, 1060], "#3f789e"),
        ("Stage II: 2K re-synthesis with CSG (Wan 2.2 TI2V 5B), flat in length",
         [1460, 0, 1460, 960], "#a1309b")], NOTE_LONG, "Wan 2.1 I2V 14B\n161 frames"),
    "swifti2v_2k_after_wan22_a14b": (graph_a14b, [
        ("Stage I with core nodes: Wan 2.2 I2V A14B, high + low noise experts, 640x352",
         [20, 0, 1340, 1140], "#3f789e"),
        ("Stage II: 2K re-synthesis with CSG (Wan 2.2 TI2V 5B), streamed to the video",
         [1460, 0, 1460, 960], "#a1309b")], NOTE_A14B, "Wan 2.2 I2V A14B\n640x352"),
}


def clip_inputs() -> list[dict]:
    """The training-data workflows' clips: Load Clips, and CLIP vision of each clip's frame 0."""
    return [
        node(30, "SwiftI2VLoadClips", [460, 80], [340, 200],
             {"video": "clip.mp4", "length": 81, "start": 0, "stride": 0, "max_clips": 1,
              "frame_step": 1},
             title="Load Clips"),
        node(31, "ImageFromBatch", [460, 300], [300, 82], {"batch_index": 0, "length": 1},
             {"image": (30, 0)}, title="First frame"),
        node(9, "CLIPVisionEncode", [460, 860], [300, 78], {"crop": "none"},
             {"clip_vision": (5, 0), "image": (31, 0)}),
    ]


def graph_training_data() -> list[dict]:
    """Stage II training data (API only, for ``python -m swift_batch --data``): one video's clips
    -> Stage Transition (Eq. 12, s = 0.1, k = 1) -> Training Sample Writer. The Stage I model
    reaches the transition through core's ModelSamplingSD3 at shift 5, the paper's framework's
    (DiffSynth-Studio's Wan default): s = 0.1 starts at sigma 0.357, not the 0.471 of the Wan 2.1
    files' own shift 8."""
    s1x = 40
    return [
        *stage1_loaders(s1x),
        *[n for n in common_inputs(s1x, 320, 420) if n["type"] != "LoadImage"],
        node(12, "VAELoader", [s1x, 780], [380, 58], {"vae_name": MODELS["vae2"][0]},
             title="Load Stage II VAE (Wan 2.2)", model="vae2"),
        *clip_inputs(),
        node(35, "ModelSamplingSD3", [s1x, 760], [380, 58], {"shift": 5.0}, {"model": (19, 0)},
             title="Stage Transition shift (the paper's framework: 5)"),
        node(32, "SwiftI2VStageTransition", [940, 80], [400, 460],
             {"width": 2560, "height": 1408, "crop": "center", "strength": 0.1,
              "strength_reading": "before_shift", "steps": 1, "synthesize_fraction": 0.5,
              "seed": 42, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple"},
             {"model": (35, 0), "positive": (7, 0), "negative": (8, 0), "vae": (3, 0),
              "clip": (30, 0), "clip_vision_output": (9, 0), "name": (30, 2), "start": (30, 1)},
             title="Stage Transition"),
        node(33, "SwiftI2VSampleWriter", [1400, 80], [400, 420],
             {"crop": "center", "folder": "swifti2v_data", "dtype": "bfloat16",
              "tile_size": 0, "overlap": 64, "blocks_per_chunk": 2},
             {"clip": (30, 0), "low_res": (32, 0), "positive": (7, 0), "vae": (12, 0),
              "width": (32, 1), "height": (32, 2), "info": (32, 3), "start": (30, 1),
              "name": (30, 2)}, title="Training Sample Writer"),
    ]


def graph_training_data_standin() -> list[dict]:
    """Stage II training data without a Stage I model (API only, for ``python -m swift_batch
    --data --stand-in``): one video's clips -> Stage I Stand-in (blur, noise, flicker) ->
    Training Sample Writer."""
    s1x = 40
    return [
        *[n for n in common_inputs(s1x, 320, 420) if n["type"] not in ("LoadImage", "VAELoader")
          and n["title"] != "Negative Prompt"],
        node(12, "VAELoader", [s1x, 780], [380, 58], {"vae_name": MODELS["vae2"][0]},
             title="Load Stage II VAE (Wan 2.2)", model="vae2"),
        *[n for n in clip_inputs() if n["type"] == "SwiftI2VLoadClips"],
        node(36, "SwiftI2VStage1StandIn", [940, 80], [400, 360],
             {"width": 2560, "height": 1408, "crop": "center", "blur": 1, "noise": 0.3,
              "flicker": 0.4, "synthesize_fraction": 0.5, "seed": 42},
             {"clip": (30, 0), "name": (30, 2), "start": (30, 1)}, title="Stage I Stand-in"),
        node(33, "SwiftI2VSampleWriter", [1400, 80], [400, 420],
             {"crop": "center", "folder": "swifti2v_data", "dtype": "bfloat16",
              "tile_size": 0, "overlap": 64, "blocks_per_chunk": 2},
             {"clip": (30, 0), "low_res": (36, 0), "positive": (7, 0), "vae": (12, 0),
              "width": (36, 1), "height": (36, 2), "info": (36, 3), "start": (30, 1),
              "name": (30, 2)}, title="Training Sample Writer"),
    ]


def graph_stage1_data() -> list[dict]:
    """Stage I LoRA training data (API only, for ``python -m swift_batch --data --stage1``): one
    video's clips -> Stage I Sample Writer (the clip at the Stage I size of the 2K target)."""
    s1x = 40
    return [
        node(1, "UNETLoader", [s1x, 80], [380, 82], {"unet_name": MODELS["stage1"][0],
                                                     "weight_dtype": "default"},
             title="Load Stage I model (Wan 2.1 I2V 14B)", model="stage1"),
        node(5, "CLIPVisionLoader", [s1x, 570], [380, 58], {"clip_name": MODELS["clipv"][0]},
             title="Load CLIP Vision (clip_vision_h)", model="clipv"),
        *[n for n in common_inputs(s1x, 320, 420) if n["type"] != "LoadImage"
          and n["title"] != "Negative Prompt"],
        *clip_inputs(),
        node(34, "SwiftI2VStage1SampleWriter", [940, 80], [400, 360],
             {"width": 2560, "height": 1408, "crop": "center",
              "folder": "swifti2v_stage1_data", "dtype": "bfloat16"},
             {"model": (1, 0), "vae": (3, 0), "positive": (7, 0), "clip": (30, 0),
              "start": (30, 1), "name": (30, 2), "clip_vision_output": (9, 0)},
             title="Stage I Sample Writer"),
    ]


#: App Mode templates: name -> (the template it shows, the inputs the app offers as
#: (node id, widget name), the output nodes it shows). The frontend opens them in App Mode
#: (``extra.linearMode``): image, prompt, size and frames in a form, the video beside it.
APP_TEMPLATES = {
    "swifti2v_2k_app": ("swifti2v_2k", [(6, "image"), (7, "text"), (10, "width"),
                                         (10, "height"), (10, "length")], [17]),
}


def app_mode(ui: dict, inputs: list[tuple[int, str]], outputs: list[int]) -> dict:
    """A UI workflow that opens in the frontend's App Mode with these inputs and outputs."""
    ids = {n["id"]: n for n in ui["nodes"]}
    for nid, widget in inputs:
        assert widget in [e["name"] for e in schema_inputs(ids[nid]["type"])], (nid, widget)
    assert all(ids[o]["type"] in OUTPUT_NODES for o in outputs), outputs
    return {**ui, "extra": {**ui["extra"], "linearMode": True,
                            "linearData": {"inputs": [list(i) for i in inputs],
                                           "outputs": list(outputs)}}}


def app_template(name: str) -> tuple[dict, dict]:
    """An App Mode template's UI workflow and its API graph (that of the template it shows)."""
    base, inputs, outputs = APP_TEMPLATES[name]
    make, groups, note, _ = TEMPLATES[base]
    nodes = make()
    return app_mode(ui_workflow(nodes, name, groups, note), inputs, outputs), api_workflow(nodes)


OUTPUT_NODES = {"SaveVideo", "PreviewImage", "SaveImage"}

#: API-only workflows (not templates): name -> graph
API_ONLY = {"swifti2v_training_data": graph_training_data,
            "swifti2v_training_data_standin": graph_training_data_standin,
            "swifti2v_stage1_data": graph_stage1_data}


def graph() -> list[dict]:
    """The main template's graph (what the batch client runs by default)."""
    return graph_2k()


def schema_inputs(type_):
    return SCHEMAS[type_]["inputs"]


def is_socket(entry) -> bool:
    return entry["type"] not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def input_slots(n: dict) -> list[dict]:
    """A node's UI input slots: its sockets, then the widgets that are linked (widget inputs)."""
    entries = schema_inputs(n["type"])
    return ([e for e in entries if is_socket(e)]
            + [e for e in entries if not is_socket(e) and e["name"] in n["links"]])


def ui_workflow(nodes: list[dict], name: str = "swifti2v_2k", groups=None,
                note: str = "") -> dict:
    links, ui_nodes = [], []
    out_links: dict[tuple[int, int], list[int]] = {}
    for n in nodes:
        for slot, e in enumerate(input_slots(n)):
            if e["name"] in n["links"]:
                src, src_slot = n["links"][e["name"]]
                lid = len(links) + 1
                links.append([lid, src, src_slot, n["id"], slot, e["type"]])
                out_links.setdefault((src, src_slot), []).append(lid)
    by_id = {n["id"]: n for n in nodes}
    for order, n in enumerate(nodes):
        inputs = []
        for slot, e in enumerate(input_slots(n)):
            link = next((lk[0] for lk in links if lk[3] == n["id"] and lk[4] == slot), None)
            inputs.append({"name": e["name"], "type": e["type"], "link": link}
                          | ({"widget": {"name": e["name"]}} if not is_socket(e) else {})
                          | ({"shape": 7} if e["optional"] else {}))
        outputs = [{"name": oname, "type": t, "links": out_links.get((n["id"], i), []),
                    "slot_index": i}
                   for i, (t, oname) in enumerate(zip(SCHEMAS[n["type"]]["outputs"],
                                                      SCHEMAS[n["type"]]["output_names"]))]
        widgets = []
        for e in schema_inputs(n["type"]):
            if is_socket(e) or e["name"] not in n["widgets"]:
                continue
            widgets.append(n["widgets"][e["name"]])
            if e.get("control_after_generate"):
                widgets.append("fixed")
            if e.get("image_upload"):
                widgets.append("image")
        entry = {"id": n["id"], "type": n["type"], "pos": n["pos"], "size": n["size"],
                 "flags": {}, "order": order, "mode": n["mode"], "inputs": inputs,
                 "outputs": outputs,
                 "properties": {"Node name for S&R": n["type"]}, "widgets_values": widgets}
        if n["title"]:
            entry["title"] = n["title"]
        if n["color"]:
            entry["color"] = n["color"]
        if n["model"]:
            f, folder, url, _, _ = ALL_MODELS[n["model"]]
            entry["properties"]["models"] = [{"name": f, "url": url, "directory": folder}]
        ui_nodes.append(entry)
    note_id = max(by_id) + 1
    ui_nodes.append({"id": note_id, "type": "MarkdownNote", "pos": [40, 1200], "size": [900, 620],
                     "flags": {}, "order": len(ui_nodes), "mode": 0, "inputs": [], "outputs": [],
                     "properties": {}, "widgets_values": [note], "title": "Read me: models",
                     "color": "#432", "bgcolor": "#653"})
    ui_groups = [{"id": i + 1, "title": t, "bounding": b, "color": c, "font_size": 24,
                  "flags": {}} for i, (t, b, c) in enumerate(groups or [])]
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "swifti2v/" + name)), "revision": 0,
            "last_node_id": note_id, "last_link_id": len(links), "nodes": ui_nodes,
            "links": links, "groups": ui_groups, "config": {},
            "extra": {"ds": {"scale": 0.55, "offset": [40, 60]}, "frontendVersion": "1.28.0"},
            "version": 0.4}


def bypassed_source(nodes: list[dict], src: int, slot: int) -> tuple[int, int]:
    """Where a link really comes from once bypassed nodes pass their input of the same type
    through (what the frontend does when it makes the API prompt)."""
    by_id = {n["id"]: n for n in nodes}
    while by_id[src]["mode"] == BYPASS:
        n = by_id[src]
        typ = SCHEMAS[n["type"]]["outputs"][slot]
        name = next(e["name"] for e in schema_inputs(n["type"]) if e["type"] == typ)
        src, slot = n["links"][name]
    return src, slot


def api_workflow(nodes: list[dict]) -> dict:
    out = {}
    for n in nodes:
        if n["mode"] == BYPASS:
            continue
        inputs = dict(n["widgets"])
        inputs.update({k: [str(s), sl] for k, (src, slot) in n["links"].items()
                       for s, sl in [bypassed_source(nodes, src, slot)]})
        out[str(n["id"])] = {"class_type": n["type"], "inputs": inputs,
                             "_meta": {"title": n["title"] or n["type"]}}
    return out


def thumbnail(path: Path, stage1_caption: str) -> None:
    """A 1024x576 diagram of the pipeline; only facts of the graph, no unmeasured claims."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = 1024, 576
    img = Image.new("RGB", (w, h), (24, 26, 33))
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=22)
        small = ImageFont.load_default(size=17)
    except TypeError:                      # Pillow < 10.1: one bitmap size
        font = small = ImageFont.load_default()
    boxes = [("your\nimage", (70, 110, 140)), (f"Stage I\n{stage1_caption}", (63, 120, 158)),
             ("hybrid\nreference", (110, 90, 160)), ("Stage II CSG\n2560x1408", (161, 48, 155)),
             ("video", (70, 140, 90))]
    bw, gap = 160, 36
    x0 = (w - len(boxes) * bw - (len(boxes) - 1) * gap) // 2
    for i, (label, color) in enumerate(boxes):
        x = x0 + i * (bw + gap)
        d.rounded_rectangle([x, 220, x + bw, 360], 14, fill=color)
        d.multiline_text((x + bw // 2, 290), label, fill="white", anchor="mm", align="center",
                         font=small)
        if i < len(boxes) - 1:
            d.line([x + bw + 4, 290, x + bw + gap - 4, 290], fill="white", width=4)
    d.text((w // 2, 110), "SwiftI2V: 2K image-to-video", fill="white", anchor="mm", font=font)
    d.text((w // 2, 470), "81 frames, segment by segment (M=3, N=1), anchored on your image",
           fill=(200, 200, 200), anchor="mm", font=small)
    tmp = path.with_suffix(".tmp.jpg")
    img.save(tmp, quality=90)
    tmp.replace(path)


def icon(path: Path) -> None:
    """The registry icon: 256x256, the pack's colours."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (256, 256), (161, 48, 155))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle([24, 24, 232, 232], 28, fill=(63, 120, 158))
    try:
        font = ImageFont.load_default(size=96)
    except TypeError:
        font = ImageFont.load_default()
    d.text((128, 128), "2K", fill="white", anchor="mm", font=font)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp)
    tmp.replace(path)


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def main():
    API_OUT.mkdir(parents=True, exist_ok=True)
    for name, (make, groups, note, caption) in TEMPLATES.items():
        nodes = make()
        write_json(OUT / f"{name}.json", ui_workflow(nodes, name, groups, note))
        write_json(API_OUT / f"{name}_api.json", api_workflow(nodes))
        thumbnail(OUT / f"{name}.jpg", caption)
        print(f"wrote {OUT}/{name}.json, .jpg and {API_OUT}/{name}_api.json")
    for name, (base, _, _) in APP_TEMPLATES.items():
        ui, api = app_template(name)
        write_json(OUT / f"{name}.json", ui)
        write_json(API_OUT / f"{name}_api.json", api)
        thumbnail(OUT / f"{name}.jpg", TEMPLATES[base][3])
        print(f"wrote {OUT}/{name}.json (App Mode), .jpg and {API_OUT}/{name}_api.json")
    for name, make in API_ONLY.items():
        write_json(API_OUT / f"{name}_api.json", api_workflow(make()))
        print(f"wrote {API_OUT}/{name}_api.json")
    icon(OUT / "icon.png")


if __name__ == "__main__":
    main()
