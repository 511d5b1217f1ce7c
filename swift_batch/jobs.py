"""What makes a row's job: its prompt id (the same for the same row, workflow and output on every
re-run; another for a changed one), and whether its output on disk is complete."""
from __future__ import annotations

import hashlib
import json
import struct
import uuid
from pathlib import Path
from typing import Optional

NAMESPACE = uuid.UUID("6f1c2a52-6d8e-4c39-9a3e-2b8a9d3c5e71")
#: node types whose ``length`` input is the video's frame count
LENGTH_NODES = ("SwiftI2VStage1Sampler", "WanImageToVideo")


def job_id(row_name: str, prompt: dict, output: Path) -> str:
    """A canonical UUID (what ComfyUI accepts as a client's prompt_id) from the row, the patched
    workflow and where its output lands."""
    key = json.dumps({"row": row_name, "prompt": prompt, "output": str(output)}, sort_keys=True)
    return str(uuid.uuid5(NAMESPACE, key))


def batch_client_id(out: Path) -> str:
    """One websocket identity per output folder: a re-run gets the messages of the prompts its
    killed predecessor queued."""
    return uuid.uuid5(NAMESPACE, str(Path(out).resolve())).hex


def file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def expected_frames(prompt: dict) -> Optional[int]:
    for node in prompt.values():
        if node.get("class_type") in LENGTH_NODES:
            length = node["inputs"].get("length")
            if isinstance(length, int):
                return length
    return None


def video_frames(path: Path) -> Optional[int]:
    """Frames a video file decodes to, or None when it cannot be read through."""
    try:
        import av
        with av.open(str(path)) as c:
            return sum(1 for _ in c.decode(video=0))
    except Exception:
        return None


def video_complete(path: Path, frames: Optional[int]) -> bool:
    got = video_frames(path) if Path(path).is_file() else None
    return got is not None and got > 0 and (frames is None or got == frames)


def safetensors_complete(path: Path) -> bool:
    """The header parses and the file holds every byte it announces."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"),
                  default=0)
        return Path(path).stat().st_size == 8 + n + end
    except (OSError, ValueError, KeyError, struct.error):
        return False


def samples_complete(folder: Path) -> bool:
    files = sorted(Path(folder).glob("*.safetensors")) if Path(folder).is_dir() else []
    return bool(files) and all(safetensors_complete(f) for f in files)
