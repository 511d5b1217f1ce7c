"""Test videos: a real photo panned in space, written as an mp4 (no ComfyUI import)."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image


def panned_video(photo: Path, out: Path, frames: int = 17, width: int = 96, height: int = 64,
                 step: int = 6, fps: int = 16) -> Path:
    """``frames`` windows of ``width`` x ``height`` sliding right and down over ``photo``."""
    img = np.asarray(Image.open(photo).convert("RGB"))
    tmp = out.with_name(out.stem + ".part" + out.suffix)
    with av.open(str(tmp), mode="w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv444p"
        s.options = {"crf": "4"}
        for i in range(frames):
            y, x = 40 + i * step // 2, 40 + i * step
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[y:y + height, x:x + width]),
                                           format="rgb24")
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    tmp.replace(out)
    return out
