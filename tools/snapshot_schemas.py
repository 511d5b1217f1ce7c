"""Snapshot the /object_info schemas of every node type the bundled workflows use.

    python -m tools.snapshot_schemas http://127.0.0.1:8188      # writes tests/data/node_schemas.json

The CI tests check the workflows against this snapshot; the host tests check that a live ComfyUI
still agrees with it, so it cannot silently go stale.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = ROOT / "tests" / "data" / "node_schemas.json"
NODE_TYPES = [
    "SwiftI2VStage1Sampler", "SwiftI2VHybridReference", "SwiftI2VStage2Sampler",
    "SwiftI2VSegmentDecoder", "UNETLoader", "LoraLoaderModelOnly", "VAELoader", "CLIPLoader",
    "CLIPTextEncode", "CLIPVisionLoader", "CLIPVisionEncode", "LoadImage", "CreateVideo",
    "SaveVideo", "WanImageToVideo", "KSamplerAdvanced", "ModelSamplingSD3", "VAEDecode",
    "SwiftI2VLoadClips", "SwiftI2VStageTransition", "SwiftI2VSampleWriter", "ImageFromBatch",
    "SwiftI2VStage1SampleWriter", "SwiftI2VSeamReport", "SwiftI2VStage1StandIn",
    "WanContextWindowsManual",
]
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
#: combo inputs whose options are the files a user has: not part of the schema
FILE_INPUTS = {("UNETLoader", "unet_name"), ("VAELoader", "vae_name"), ("CLIPLoader", "clip_name"),
               ("CLIPVisionLoader", "clip_name"), ("LoraLoaderModelOnly", "lora_name"),
               ("LoadImage", "image"), ("SwiftI2VLoadClips", "video")}


def normalize(node_type: str, info: dict) -> dict:
    """Keep what a workflow depends on: input names, kinds, widget options; outputs."""
    inputs = []
    for group in ("required", "optional"):
        for name, spec in info["input"].get(group, {}).items():
            kind, opts = spec[0], (spec[1] if len(spec) > 1 else {}) or {}
            entry = {"name": name, "optional": group == "optional"}
            if isinstance(kind, list) or kind in ("COMBO", DYNAMIC_COMBO):
                entry["type"] = "COMBO"        # a dynamic combo (0.33+) is a combo with sub-inputs
                options = kind if isinstance(kind, list) else opts.get("options", [])
                options = [o.get("key") if isinstance(o, dict) else o for o in options]
                entry["options"] = None if (node_type, name) in FILE_INPUTS else options
            else:
                entry["type"] = kind
            for key in ("min", "max", "control_after_generate", "image_upload"):
                if key in opts:
                    entry[key] = opts[key]
            inputs.append(entry)
    return {"inputs": inputs, "outputs": list(info["output"]),
            "output_names": list(info.get("output_name", info["output"]))}


def snapshot(object_info: dict) -> dict:
    return {t: normalize(t, object_info[t]) for t in NODE_TYPES}


def main(url: str):
    import requests
    info = requests.get(url.rstrip("/") + "/object_info", timeout=60).json()
    SNAPSHOT.write_text(json.dumps(snapshot(info), indent=1) + "\n")
    print(f"wrote {SNAPSHOT}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8188")
