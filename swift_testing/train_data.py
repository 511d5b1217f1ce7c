"""A tiny training set in the sample format: clips panned over a real photo (NASA's public-domain
astronaut portrait, as scikit-image ships it, in tests/data/astronaut_192.png).

The Wan 2.2 VAE is too big for CPU tests, so a fixed linear stand-in encodes frames into its latent
layout: each latent block averages its frames (frame 0 alone), each 16x16 patch is projected to 48
channels. The reference is built with swift_core's own hybrid reference from a low-res version of
the clip, then encoded the same way, as the Sample Writer does with the real VAE.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from swift_core import hybrid_reference
from swift_core.degrade import stage1_like
from swift_core.reference import stage1_image
from swift_core.samples import write_sample

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "astronaut_192.png"


def torchrun(nproc: int, *args, module: str = "swift_train.train", timeout: float = 600):
    """``torchrun --nproc_per_node N -m swift_train.train ARGS`` (gloo on CPU); asserts success."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           str(nproc), "-m", module, *map(str, args)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-4000:]
    return r


def free_port() -> int:
    """A TCP port of 127.0.0.1 free now (for a process group of one rank started by hand)."""
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photo() -> torch.Tensor:
    from PIL import Image
    import numpy as np
    return torch.from_numpy(np.asarray(Image.open(PHOTO).convert("RGB")).copy()).float() / 255


def encode(frames: torch.Tensor) -> torch.Tensor:
    """[F, H, W, 3] (F = 4k+1) -> [48, T', H/16, W/16]."""
    x = frames.permute(3, 0, 1, 2)                                   # [3, F, H, W]
    blocks = [x[:, :1].mean(1)] + [x[:, i:i + 4].mean(1) for i in range(1, x.shape[1], 4)]
    x = torch.stack(blocks, 1)                                       # [3, T', H, W]
    x = F.pixel_unshuffle(x.transpose(0, 1), 16)                     # [T', 768, h, w]
    proj = torch.randn(48, 768, generator=torch.Generator().manual_seed(123)) / 768 ** 0.5
    return torch.einsum("oc,tchw->othw", proj, x) * 4


def panned_clip(img, frames=17, size=64, dx=3, dy=1, x0=20, y0=30) -> torch.Tensor:
    return torch.stack([img[y0 + i * dy:y0 + i * dy + size, x0 + i * dx:x0 + i * dx + size]
                        for i in range(frames)])


def make_dataset(folder: Path, count: int = 6, frames: int = 17, size: int = 64,
                 degrade: dict | None = None) -> list[Path]:
    """``count`` samples; ``degrade`` (keyword arguments of :func:`stage1_like`) makes their
    references from Stage-I-like low-res clips instead of clean downsamples."""
    folder.mkdir(parents=True, exist_ok=True)
    img = photo()
    out = []
    for k in range(count):
        dx, dy = 1 + k % 3, (k % 2) * 2 - 1
        span = (frames - 1) * dx + size                   # every clip stays inside the photo
        clip = panned_clip(img, frames, size, dx=dx, dy=dy,
                           x0=(20 + 9 * k) % (img.shape[1] - span),
                           y0=max(frames - 1, (60 - 4 * k) % (img.shape[0] - size - frames)))
        low = stage1_image(clip, size, size)                         # Stage I's size
        if degrade is not None:
            low = stage1_like(low, torch.Generator().manual_seed(1000 + k), **degrade)
        ref = hybrid_reference(low, clip[:1], size, size, crop="center")
        context = torch.randn(8, 4096, generator=torch.Generator().manual_seed(k))
        meta = {"width": size, "height": size, "frames": frames, "strength": 0.0, "steps": 0,
                "seed": 0, "synthesized": str(degrade is not None).lower(), "source": f"astronaut_{k}", "start": 0,
                "pack_version": "test"}
        path = folder / f"astronaut_{k}_000000.safetensors"
        write_sample(str(path), encode(clip), encode(ref), context, meta, dtype="float32")
        out.append(path)
    return out


def encode21(frames: torch.Tensor) -> torch.Tensor:
    """A fixed linear stand-in of the Wan 2.1 VAE: [F, h, w, 3] -> [16, T', h/8, w/8]."""
    x = frames.permute(3, 0, 1, 2)
    blocks = [x[:, :1].mean(1)] + [x[:, i:i + 4].mean(1) for i in range(1, x.shape[1], 4)]
    x = F.pixel_unshuffle(torch.stack(blocks, 1).transpose(0, 1), 8)   # [T', 192, h/8, w/8]
    proj = torch.randn(16, 192, generator=torch.Generator().manual_seed(321)) / 192 ** 0.5
    return torch.einsum("oc,tchw->othw", proj, x) * 4


def make_stage1_dataset(folder: Path, count: int = 6, frames: int = 17, size: int = 32,
                        target: int = 128) -> list[Path]:
    """Stage I samples of clips panned over the photo, at ``size`` (the Stage I size of a
    ``target`` x ``target`` video), with the image-to-video condition laid out as ComfyUI's Wan
    2.1 model builds it: 4 mask channels (1 on the first latent block), then the latent of the
    first frame followed by grey frames."""
    from swift_core.stage1_samples import write_stage1_sample
    folder.mkdir(parents=True, exist_ok=True)
    img = torch.nn.functional.interpolate(photo().permute(2, 0, 1)[None], scale_factor=0.5,
                                          mode="area")[0].permute(1, 2, 0)       # 96 x 96
    out = []
    for k in range(count):
        dx, dy = 1 + k % 2, (k % 2) * 2 - 1
        x0, y0 = (5 + 7 * k) % (img.shape[1] - size - dx * (frames - 1)), 20 + (3 * k) % 20
        clip = torch.stack([img[y0 + i * dy:y0 + i * dy + size, x0 + i * dx:x0 + i * dx + size]
                            for i in range(frames)])
        first = torch.cat([clip[:1], torch.full_like(clip[1:], 0.5)])
        latent = encode21(clip)
        mask = torch.zeros(4, *latent.shape[1:])
        mask[:, 0] = 1
        g = torch.Generator().manual_seed(k)
        meta = {"width": size, "height": size, "target_width": target, "target_height": target,
                "frames": frames, "source": f"astronaut_{k}", "start": 0,
                "pack_version": "test"}
        path = folder / f"astronaut_{k}_000000.safetensors"
        # the lengths Wan 2.1 I2V takes: umt5's 512 tokens, CLIP vision's 257
        write_stage1_sample(str(path), latent, torch.cat([mask, encode21(first)]),
                            torch.randn(512, 4096, generator=g).bfloat16(),
                            torch.randn(257, 1280, generator=g).bfloat16(), meta, dtype="float32")
        out.append(path)
    return out
