"""An mp4 written into ComfyUI's output folder as frames arrive (temp name, then rename)."""
from __future__ import annotations

import os
import uuid

import torch

import folder_paths


class VideoFileWriter:
    """Writes an mp4 into ComfyUI's output folder as frames arrive, under a temporary name.

    ``close()`` renames it to the final name; ``abort()`` (or an exception) removes it, so a
    cancelled run leaves no file under the final name.
    """

    def __init__(self, filename_prefix: str, width: int, height: int, fps: float):
        import av  # PyAV ships with ComfyUI (its SaveVideo uses it)

        out_dir = folder_paths.get_output_directory()
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            filename_prefix, out_dir, width, height)
        self.final_name = f"{name}_{counter:05}_.mp4"
        self.subfolder = subfolder
        self.final = os.path.join(folder, self.final_name)
        self.temp = os.path.join(folder, f".{self.final_name}.{uuid.uuid4().hex[:8]}.part")
        self.container = av.open(self.temp, mode="w", format="mp4")
        from fractions import Fraction
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "17"}
        self._av = av

    def write(self, frames: torch.Tensor) -> None:
        arr = (frames[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        for f in arr:
            for pkt in self.stream.encode(self._av.VideoFrame.from_ndarray(f, format="rgb24")):
                self.container.mux(pkt)

    def close(self) -> dict:
        for pkt in self.stream.encode():
            self.container.mux(pkt)
        self.container.close()
        os.replace(self.temp, self.final)
        return {"filename": self.final_name, "subfolder": self.subfolder, "type": "output",
                "format": "video/h264-mp4"}

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
        if os.path.exists(self.temp):
            os.remove(self.temp)
