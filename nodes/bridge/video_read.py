"""Video files from ComfyUI's input folder, decoded frame by frame with PyAV (as core's own video
input is), keeping only the frames a request needs."""
from __future__ import annotations

import os

import av
import torch

import folder_paths

from ...swift_core.seams import CHUNK, video_chunks
from .checks import SwiftInputError, check


def video_files() -> list[str]:
    """Videos in the input folder and its subfolders (uploads land in subfolders too)."""
    root = folder_paths.get_input_directory()
    out = []
    for dirpath, _, files in os.walk(root, followlinks=True):
        rel = os.path.relpath(dirpath, root)
        out += [f if rel == "." else f"{rel}/{f}".replace(os.sep, "/") for f in files]
    return sorted(folder_paths.filter_files_content_types(out, ["video"]))


def input_path(name: str, input_name: str = "video") -> str:
    """The file ``name`` names in the input folder; never a path outside it."""
    root = os.path.abspath(folder_paths.get_input_directory())
    check(isinstance(name, str) and name.strip() != "", f"{input_name}: no video file given")
    plain = name.split(" [")[0].replace("\\", "/")        # "x.mp4 [input]" annotations aside
    escapes = os.path.isabs(plain) or ".." in plain.split("/")
    try:
        path = os.path.abspath(folder_paths.get_annotated_filepath(name))
    except Exception:                       # newer ComfyUI refuses such names itself
        path, escapes = root, True
    check(not escapes and os.path.commonpath([root, path]) == root,
          f"{input_name}={name!r}: must be a file inside ComfyUI's input folder")
    check(os.path.isfile(path), f"{input_name}={name!r}: no such file in ComfyUI's input folder")
    return path


def read_frames(path: str, count: int, input_name: str = "video"):
    """The first ``count`` frames (fewer if the video is shorter) as uint8 [n, H, W, 3], and the
    frame rate. A file that is not a readable video is an input error naming it."""
    frames, fps = [], 0.0
    try:
        with av.open(path) as container:
            check(len(container.streams.video) > 0,
                  f"{input_name}={os.path.basename(path)!r}: the file has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            for frame in container.decode(stream):
                frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
                if len(frames) >= count:
                    break
    except SwiftInputError:
        raise
    except Exception as e:                      # av raises many kinds for a broken file
        raise SwiftInputError(f"{input_name}={os.path.basename(path)!r}: cannot be read as a "
                              f"video ({type(e).__name__}: {e})") from None
    check(len(frames) > 0, f"{input_name}={os.path.basename(path)!r}: the video has no frames")
    return torch.stack(frames), fps


def iter_video(video):
    """Frames of a VIDEO (core's type) in chunks of uint8 [n, H, W, 3], never the whole video
    at once when it is backed by a file; an in-memory VIDEO gives its frames in the same
    chunks."""
    source = getattr(video, "get_stream_source", None)
    if source is None:
        yield from video.get_components().images.split(CHUNK)
        return
    src = source()
    if hasattr(src, "seek"):
        src.seek(0)
    yield from video_chunks(src, "video")
