"""Batch rows: a CSV or JSON-lines file of (image, prompt, optional seed/size/frames/name).

Training-data rows (``--data``) give ``video`` and ``caption`` (or ``prompt``) instead, and
optionally ``start``, ``stride``, ``clips``, ``frame_step`` (clips cut from the video),
``frames`` (clip length),
``seed`` and ``synthesize`` (0/1: plain downsample or stage transition)."""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from swift_core import rules

FIELDS = ("image", "prompt", "negative", "seed", "width", "height", "frames", "name", "video",
          "caption", "start", "stride", "clips", "synthesize", "frame_step")
INT_FIELDS = ("seed", "width", "height", "frames", "start", "stride", "clips", "frame_step")


#: The rules of a row's numbers: the same as the nodes' inputs they set.
ROW_RULES = {"width": rules.check_multiple, "height": rules.check_multiple,
             "frames": rules.check_length,
             "start": lambda v, name: rules.check_at_least(v, name, 0),
             "stride": lambda v, name: rules.check_at_least(v, name, 0),
             "clips": rules.check_at_least, "frame_step": rules.check_at_least}


class RowError(ValueError):
    """A row that cannot be run; the message names the row and what is wrong."""


@dataclass
class Row:
    number: int                 # 1-based, as a user counts data rows
    image: Path
    prompt: str
    negative: Optional[str] = None
    seed: Optional[int] = None
    width: Optional[int] = None
    height: Optional[int] = None
    frames: Optional[int] = None
    name: str = ""
    extra: dict = field(default_factory=dict)
    video: Optional[Path] = None
    start: Optional[int] = None
    stride: Optional[int] = None
    clips: Optional[int] = None
    frame_step: Optional[int] = None
    synthesize: Optional[bool] = None


def _raw_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                out.append(RowError(f"row {len(out) + 1} (line {i}): not valid JSON ({e.msg})"))
                continue
            out.append(obj if isinstance(obj, dict) else
                       RowError(f"row {len(out) + 1} (line {i}): expected a JSON object"))
        return out
    return list(csv.DictReader(text.splitlines()))


def _safe_stem(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._") or "video"


def _ints(number: int, raw: dict) -> dict:
    values = {}
    for key in INT_FIELDS:
        v = raw.get(key)
        if v is None or str(v).strip() == "":
            continue
        try:
            values[key] = int(str(v).strip())
        except ValueError:
            raise RowError(f"row {number}: {key}={v!r} is not a whole number") from None
    try:
        rules.check_values(values, ROW_RULES, prefix=f"row {number}: ")
    except rules.SwiftInputError as e:
        raise RowError(str(e)) from None
    return values


def _path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def parse_row(number: int, raw: dict, base: Path, data: bool = False) -> Row:
    """One row; ``data``: a training-data row (video, caption)."""
    if isinstance(raw, Exception):
        raise raw
    raw = {str(k).strip().lower(): v for k, v in raw.items() if k is not None}
    media = "video" if data else "image"
    source = str(raw.get(media) or "").strip()
    prompt = str(raw.get("caption") or raw.get("prompt") or "").strip() if data else \
        str(raw.get("prompt") or "").strip()
    if not source:
        raise RowError(f"row {number}: '{media}' is empty (a path to {'a video' if data else 'an image'} "
                       "file is required)")
    if not prompt:
        raise RowError(f"row {number}: '{'caption' if data else 'prompt'}' is empty")
    values = _ints(number, raw)
    synth = str(raw.get("synthesize") or "").strip().lower()
    if synth and synth not in ("0", "1", "true", "false"):
        raise RowError(f"row {number}: synthesize={synth!r} must be 0/1 or true/false")
    path = _path(source, base)
    negative = str(raw.get("negative") or "").strip() or None
    name = _safe_stem(str(raw.get("name") or "").strip() or path.stem)
    extra = {k: v for k, v in raw.items() if k not in FIELDS}
    row = Row(number, None if data else path, prompt, negative, name=name, extra=extra,
              video=path if data else None, **values)
    row.synthesize = (synth in ("1", "true")) if synth else None
    return row


def read_rows(path: Path, base: Optional[Path] = None, data: bool = False) -> list:
    """Rows in order; a row that cannot be parsed is returned as its RowError (not raised)."""
    base = base or path.parent
    out, names = [], {}
    for i, raw in enumerate(_raw_rows(path), 1):
        try:
            row = parse_row(i, raw, base, data)
        except RowError as e:
            out.append(e)
            continue
        names[row.name] = names.get(row.name, 0) + 1
        if names[row.name] > 1:                       # same image twice: keep names apart
            row.name = f"{row.name}_{row.number}"
        out.append(row)
    return out


def check_image(row: Row) -> None:
    from PIL import Image

    if not row.image.is_file():
        raise RowError(f"row {row.number}: image {str(row.image)!r} does not exist")
    try:
        with Image.open(row.image) as im:
            im.verify()
    except Exception as e:  # PIL raises many kinds
        raise RowError(f"row {row.number}: image {str(row.image)!r} cannot be read "
                       f"({type(e).__name__}: {e})") from None


def check_video(row: Row) -> None:
    """The video exists; whether it decodes is checked by ComfyUI (Load Clips) before any work."""
    if not row.video.is_file():
        raise RowError(f"row {row.number}: video {str(row.video)!r} does not exist")
