"""Write the bundled workflows from ONE graph description: the UI workflow the ComfyUI frontend
loads (nodes, links, groups, widgets_values, model download links) and the same graph in API
format, plus the UI workflow's thumbnail.

    python tools/make_workflows.py          # writes workflows/swifti2v_2k{,_api}.json and .jpg

Widget order and socket slots come from tests/data/node_schemas.json (the nodes' own schemas).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())
OUT = ROOT / "workflows"
NAME = "swifti2v_2k"

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
STAGE1_FP16 = ("wan2.1_i2v_480p_14B_fp16.safetensors",
               f"{HF21}/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors", "33 GB")

PROMPT = ("The camera slowly pushes in; the subject moves naturally, hair and fabric sway in a "
          "light breeze; sharp, detailed, cinematic lighting.")
NEGATIVE = ("blurry, low quality, static, frozen, flicker, distorted, deformed, watermark, text, "
            "overexposed, jpeg artifacts")

NOTE = """SwiftI2V 2K image-to-video (2560x1408, 81 frames)

Stage I (left): Wan 2.1 I2V 14B 480P + LightX2V 4-step LoRA makes a 640x352 motion reference.
Stage II (right): Wan 2.2 TI2V 5B re-synthesises it at 2K, anchored on your image, segment by
segment (CSG: M=3 blocks per segment, N=1 previous block as context), so memory stays bounded.

Model files (ComfyUI/models/...):
""" + "\n".join(f"  {f[1]}/{f[0]}  ({f[3]}, stage {f[4]})" for f in MODELS.values()) + f"""
Stage I in fp16 instead of fp8: {STAGE1_FP16[0]} ({STAGE1_FP16[2]}).

Stage II mode 'auto' picks 'refine' for the public 5B (48 input channels; set denoise) and
'swifti2v' for SwiftI2V Stage II weights (96 channels) when you have them: just select that file
in 'Load Stage II model'.

Low on host RAM or long videos: in the Segment Decoder turn save_video on and return_frames off,
and bypass Create/Save Video: the mp4 is then written as blocks are decoded."""


def node(id, type, pos, size, widgets=None, links=None, title=None, model=None, color=None):
    return {"id": id, "type": type, "pos": pos, "size": size, "widgets": widgets or {},
            "links": links or {}, "title": title, "model": model, "color": color}


def graph() -> list[dict]:
    s1x, s2x = 40, 1480
    return [
        node(1, "UNETLoader", [s1x, 80], [380, 82], {"unet_name": MODELS["stage1"][0],
                                                     "weight_dtype": "default"},
             title="Load Stage I model (Wan 2.1 I2V 14B)", model="stage1"),
        node(2, "LoraLoaderModelOnly", [s1x, 200], [380, 82],
             {"lora_name": MODELS["lora"][0], "strength_model": 1.0}, {"model": (1, 0)},
             title="LightX2V 4-step LoRA", model="lora"),
        node(3, "VAELoader", [s1x, 320], [380, 58], {"vae_name": MODELS["vae1"][0]},
             title="Load Stage I VAE (Wan 2.1)", model="vae1"),
        node(4, "CLIPLoader", [s1x, 420], [380, 106],
             {"clip_name": MODELS["text"][0], "type": "wan", "device": "default"},
             title="Load text encoder (umt5-xxl)", model="text"),
        node(5, "CLIPVisionLoader", [s1x, 570], [380, 58], {"clip_name": MODELS["clipv"][0]},
             title="Load CLIP Vision (clip_vision_h)", model="clipv"),
        node(6, "LoadImage", [460, 80], [340, 360], {"image": "example.png"},
             title="Your image (high resolution)"),
        node(7, "CLIPTextEncode", [460, 480], [420, 160], {"text": PROMPT}, {"clip": (4, 0)},
             title="Positive Prompt", color="#232"),
        node(8, "CLIPTextEncode", [460, 680], [420, 130], {"text": NEGATIVE}, {"clip": (4, 0)},
             title="Negative Prompt", color="#322"),
        node(9, "CLIPVisionEncode", [460, 860], [300, 78], {"crop": "none"},
             {"clip_vision": (5, 0), "image": (6, 0)}),
        node(10, "SwiftI2VStage1Sampler", [940, 80], [400, 400],
             {"width": 2560, "height": 1408, "crop": "center", "length": 81, "seed": 42,
              "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple"},
             {"model": (2, 0), "positive": (7, 0), "negative": (8, 0), "vae": (3, 0),
              "image": (6, 0), "clip_vision_output": (9, 0)}),
        node(11, "UNETLoader", [s2x, 80], [380, 82], {"unet_name": MODELS["stage2"][0],
                                                      "weight_dtype": "default"},
             title="Load Stage II model (Wan 2.2 TI2V 5B or SwiftI2V)", model="stage2"),
        node(12, "VAELoader", [s2x, 200], [380, 58], {"vae_name": MODELS["vae2"][0]},
             title="Load Stage II VAE (Wan 2.2)", model="vae2"),
        node(13, "SwiftI2VHybridReference", [s2x, 300], [380, 230],
             {"width": 2560, "height": 1408, "crop": "center", "upscale_method": "bicubic",
              "tile": 64,
              "blocks_per_chunk": 2},
             {"low_res": (10, 0), "image": (6, 0), "vae": (12, 0)}),
        node(14, "SwiftI2VStage2Sampler", [1900, 80], [400, 430],
             {"seed": 42, "steps": 4, "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple",
              "m": 3, "n": 1, "rope": "window", "mode": "auto", "denoise": 0.6},
             {"model": (11, 0), "positive": (7, 0), "negative": (8, 0), "reference": (13, 0)}),
        node(15, "SwiftI2VSegmentDecoder", [1900, 560], [400, 260],
             {"blocks_per_step": 3, "tile": 64, "save_video": False,
              "filename_prefix": "SwiftI2V/swifti2v", "frame_rate": 16.0, "return_frames": True},
             {"samples": (14, 0), "vae": (12, 0)}),
        node(16, "CreateVideo", [2340, 80], [270, 78], {"fps": 16.0}, {"images": (15, 0)}),
        node(17, "SaveVideo", [2340, 200], [560, 560],
             {"filename_prefix": "video/SwiftI2V", "format": "auto", "codec": "auto"},
             {"video": (16, 0)}),
    ]


GROUPS = [
    ("Stage I: motion reference at W/4 x H/4 (Wan 2.1 I2V 14B + LightX2V, 4 steps, no CFG)",
     [20, 0, 1340, 960], "#3f789e"),
    ("Stage II: 2K re-synthesis with CSG (Wan 2.2 TI2V 5B), decode, save",
     [1460, 0, 1460, 960], "#a1309b"),
]


def schema_inputs(type_):
    return SCHEMAS[type_]["inputs"]


def is_socket(entry) -> bool:
    return entry["type"] not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def ui_workflow(nodes: list[dict]) -> dict:
    links, ui_nodes = [], []
    out_links: dict[tuple[int, int], list[int]] = {}
    for n in nodes:
        sockets = [e for e in schema_inputs(n["type"]) if is_socket(e)]
        for slot, e in enumerate(sockets):
            if e["name"] in n["links"]:
                src, src_slot = n["links"][e["name"]]
                lid = len(links) + 1
                links.append([lid, src, src_slot, n["id"], slot, e["type"]])
                out_links.setdefault((src, src_slot), []).append(lid)
    by_id = {n["id"]: n for n in nodes}
    for order, n in enumerate(nodes):
        sockets = [e for e in schema_inputs(n["type"]) if is_socket(e)]
        inputs = []
        for slot, e in enumerate(sockets):
            link = next((lk[0] for lk in links if lk[3] == n["id"] and lk[4] == slot), None)
            inputs.append({"name": e["name"], "type": e["type"], "link": link}
                          | ({"shape": 7} if e["optional"] else {}))
        outputs = [{"name": name, "type": t, "links": out_links.get((n["id"], i), []),
                    "slot_index": i}
                   for i, (t, name) in enumerate(zip(SCHEMAS[n["type"]]["outputs"],
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
                 "flags": {}, "order": order, "mode": 0, "inputs": inputs, "outputs": outputs,
                 "properties": {"Node name for S&R": n["type"]}, "widgets_values": widgets}
        if n["title"]:
            entry["title"] = n["title"]
        if n["color"]:
            entry["color"] = n["color"]
        if n["model"]:
            f, folder, url, _, _ = MODELS[n["model"]]
            entry["properties"]["models"] = [{"name": f, "url": url, "directory": folder}]
        ui_nodes.append(entry)
    note_id = max(by_id) + 1
    ui_nodes.append({"id": note_id, "type": "Note", "pos": [40, 1000], "size": [880, 420],
                     "flags": {}, "order": len(ui_nodes), "mode": 0, "inputs": [], "outputs": [],
                     "properties": {}, "widgets_values": [NOTE], "title": "Read me",
                     "color": "#432", "bgcolor": "#653"})
    groups = [{"id": i + 1, "title": t, "bounding": b, "color": c, "font_size": 24, "flags": {}}
              for i, (t, b, c) in enumerate(GROUPS)]
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "swifti2v/" + NAME)), "revision": 0,
            "last_node_id": note_id, "last_link_id": len(links), "nodes": ui_nodes,
            "links": links, "groups": groups, "config": {},
            "extra": {"ds": {"scale": 0.55, "offset": [40, 60]}, "frontendVersion": "1.28.0"},
            "version": 0.4}


def api_workflow(nodes: list[dict]) -> dict:
    out = {}
    for n in nodes:
        inputs = dict(n["widgets"])
        inputs.update({k: [str(src), slot] for k, (src, slot) in n["links"].items()})
        out[str(n["id"])] = {"class_type": n["type"], "inputs": inputs,
                             "_meta": {"title": n["title"] or n["type"]}}
    return out


def thumbnail(path: Path) -> None:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (640, 360), (24, 26, 33))
    d = ImageDraw.Draw(img)
    boxes = [("image", 20, (70, 110, 140)), ("Stage I\n640x352", 140, (63, 120, 158)),
             ("hybrid\nreference", 270, (110, 90, 160)), ("Stage II CSG\n2560x1408", 400,
                                                           (161, 48, 155)),
             ("mp4", 540, (70, 140, 90))]
    for label, x, color in boxes:
        d.rounded_rectangle([x, 140, x + 90, 220], 10, fill=color)
        d.multiline_text((x + 45, 180), label, fill="white", anchor="mm", align="center")
        if x < 540:
            d.line([x + 92, 180, x + 118, 180], fill="white", width=3)
    d.text((320, 60), "SwiftI2V 2K image-to-video", fill="white", anchor="mm")
    d.text((320, 300), "81 frames, M=3 N=1, fits 24 GB", fill=(200, 200, 200), anchor="mm")
    tmp = path.with_suffix(".tmp.jpg")
    img.save(tmp, quality=88)
    tmp.replace(path)


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def main():
    OUT.mkdir(exist_ok=True)
    nodes = graph()
    write_json(OUT / f"{NAME}.json", ui_workflow(nodes))
    write_json(OUT / f"{NAME}_api.json", api_workflow(nodes))
    thumbnail(OUT / f"{NAME}.jpg")
    print(f"wrote {OUT}/{NAME}.json, {NAME}_api.json, {NAME}.jpg")


if __name__ == "__main__":
    main()
