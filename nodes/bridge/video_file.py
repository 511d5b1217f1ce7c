"""mp4 files written as frames arrive, and ComfyUI's VIDEO type backed by them.

The mp4 is fragmented at every frame and flushed packet by packet, with x264's ``zerolatency``
tuning (no frames held back): each finished segment is readable from the file at once, while the
run goes on; every segment starts on a keyframe, so a reader can seek to it. It is written
under a temporary name in this process's work folder (``work_dir``: no other ComfyUI instance's
start-up removes it) and moved to its final name when complete; ``abort()`` removes it, so a
cancelled run leaves no file under a final name and no temp file behind.
"""
from __future__ import annotations

import os
import uuid
import weakref
from fractions import Fraction
from pathlib import Path

import av
import torch
from av.video.frame import PictureType

import folder_paths
from comfy_api.latest import InputImpl

from ...swift_core import cards
from . import disk, run_card, work_dir

MP4_OPTIONS = {"movflags": "frag_every_frame+empty_moov+default_base_moof", "flush_packets": "1"}
#: Room asked of the disk per pixel of the video (x264 at crf 17 stays well below 2 bits per
#: pixel on detailed 2K frames), plus a fixed margin.
BYTES_PER_PIXEL = 0.25
MARGIN = 64 * 2**20


def video_bytes(frames: int, width: int, height: int) -> int:
    return int(frames * width * height * BYTES_PER_PIXEL) + MARGIN


class VideoFileWriter:
    def __init__(self, final_path: str, work: Path, width: int, height: int, fps: float,
                 crf: int = 17):
        """Frames go to a temporary name in ``work`` (this process's work folder), moved to
        ``final_path`` by :meth:`close`."""
        self.final = final_path
        stem = os.path.basename(final_path)[:-4]
        self.temp = str(work / f"{stem}.{uuid.uuid4().hex[:8]}.part.mp4")
        self.container = av.open(self.temp, mode="w", format="mp4", options=dict(MP4_OPTIONS))
        self.stream = self.container.add_stream("libx264",
                                                rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "tune": "zerolatency"}
        self.frames = 0

    def write(self, frames: torch.Tensor, keyframe: bool = True) -> None:
        """Append IMAGE frames [n, H, W, 3]; ``keyframe`` starts a new fragment with them."""
        arr = (frames[..., :3].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
        for i, f in enumerate(arr):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            if keyframe and i == 0:
                frame.pict_type = PictureType.I
            for pkt in self.stream.encode(frame):
                self.container.mux(pkt)
        self.frames += len(arr)

    def close(self) -> str:
        for pkt in self.stream.encode():
            self.container.mux(pkt)
        self.container.close()
        return disk.move_into(self.temp, self.final)

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
        if os.path.exists(self.temp):
            os.remove(self.temp)


def output_writer(filename_prefix: str, width: int, height: int, fps: float, frames: int):
    """A writer into ComfyUI's output folder, named the way ComfyUI names saved files, and the
    ``ui`` entry that shows it; refused first if the disk cannot take ``frames`` frames."""
    work = work_dir.own_folder()
    disk.check_space(work, video_bytes(frames, width, height), "save_video")
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        filename_prefix, folder_paths.get_output_directory(), width, height)
    final_name = f"{name}_{counter:05}_.mp4"
    writer = VideoFileWriter(os.path.join(folder, final_name), work, width, height, fps)
    return writer, {"filename": final_name, "subfolder": subfolder, "type": "output",
                    "format": "video/h264-mp4"}


def temp_writer(width: int, height: int, fps: float, frames: int, name: str = "swifti2v"):
    """A writer into this process's work folder, for a VIDEO that core's Save Video then copies
    (the file is removed once nothing references its VIDEO: :class:`CardedVideo`)."""
    folder = work_dir.own_folder()
    disk.check_space(folder, 2 * video_bytes(frames, width, height), name)  # + Save Video's copy
    return VideoFileWriter(str(folder / f"{name}_{uuid.uuid4().hex[:12]}.mp4"), folder, width,
                           height, fps)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


class CardedVideo(InputImpl.VideoFromFile):
    """ComfyUI's VIDEO backed by a file, with the run card of the prompt that made it: core's
    Save Video (``save_to``) remuxes the file, no re-encode, and the card goes beside it as
    ``<stem>.json``, with every stage that had finished by then. An ``owned`` file (one in the
    work folder, written only to be handed on) is removed once nothing references the VIDEO:
    when ComfyUI's cache lets go of the result (a newer run replaced it, or the cache was
    cleared)."""

    def __init__(self, path: str, card: dict, owned: bool = False):
        super().__init__(path)
        self.card = card
        if owned:
            weakref.finalize(self, _remove, path)

    def save_to(self, path, *args, **kwargs):
        result = super().save_to(path, *args, **kwargs)
        if isinstance(path, str):
            cards.write_beside(path, self.card)
        return result


def video(path: str, owned: bool = False):
    """The VIDEO of a finished file (see :class:`CardedVideo`)."""
    return CardedVideo(path, run_card.current(), owned)
