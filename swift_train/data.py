"""Training samples (swift_core.samples format) as a dataset, in a resumable order."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch.utils.data import Dataset, DistributedSampler

from swift_core.samples import read_sample


def sample_files(folder: str) -> list[str]:
    files = sorted(str(p) for p in Path(folder).rglob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"--data {folder!r}: no .safetensors samples in it (make them "
                                "with python -m swift_batch --data; README: training data)")
    return files


class SampleFolder(Dataset):
    def __init__(self, files: list[str]):
        self.files = list(files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        s = read_sample(self.files[i])
        return {"x0": s.x0.float(), "reference": s.reference.float(), "context": s.context,
                "name": Path(self.files[i]).name}


def split(files: list[str], val_count: int) -> tuple[list[str], list[str]]:
    """The last ``val_count`` files (sorted) are held out for validation."""
    if val_count < 0 or val_count >= len(files):
        raise ValueError(f"--val-count {val_count}: must be >= 0 and below the {len(files)} "
                         "samples found")
    return (files[:-val_count], files[-val_count:]) if val_count else (files, [])


class Order:
    """Which sample rank ``rank`` takes at its ``i``-th micro-step: torch's DistributedSampler
    over epochs (shuffled with ``seed`` + epoch), so a resumed run continues the same order."""

    def __init__(self, dataset: Dataset, world: int, rank: int, seed: int):
        self.sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True,
                                          seed=seed)
        self.per_epoch = math.ceil(len(dataset) / world)
        self._epoch, self._order = None, None

    def __call__(self, i: int) -> int:
        epoch = i // self.per_epoch
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._order = epoch, list(iter(self.sampler))
        return self._order[i % self.per_epoch]


def step_generator(seed: int, micro_step: int, rank: int) -> torch.Generator:
    """The generator of one micro-step: (M, N), segment, sigma and noise depend only on these,
    so a resumed run draws exactly what an uninterrupted one does."""
    return torch.Generator().manual_seed((seed * 1_000_003 + micro_step * 7_919 + rank) % 2**63)
