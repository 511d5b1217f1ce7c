"""Rank 0's record of a training run: RUN/log.jsonl, TensorBoard scalars, a progress bar."""
from __future__ import annotations

import json
import os
import sys

import torch


def memory_gib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def tensorboard_writer(out: str):
    """TensorBoard's writer for RUN/tensorboard (torch's own SummaryWriter), or None with one
    line when the tensorboard package is missing (it is in requirements-train.txt)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("swift_train: tensorboard is not installed (pip install -r requirements-train.txt); "
              "logging to log.jsonl only", file=sys.stderr)
        return None
    return SummaryWriter(os.path.join(out, "tensorboard"))


def scalars(entry: dict) -> dict:
    """The numbers of a log entry as TensorBoard tags: val/... for validation, memory/gib,
    train/... for the rest."""
    out = {}
    for key, value in entry.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        group = next((g for g in ("val", "memory") if key.startswith(g + "_")), "train")
        out[f"{group}/{key.removeprefix(group + '_')}"] = value
    return out


class RunLog:
    """Rank 0's record of a run: one JSON line per entry in RUN/log.jsonl, the same numbers as
    TensorBoard scalars in RUN/tensorboard, and a progress bar."""

    def __init__(self, args, rank: int, step: int):
        self.file = open(os.path.join(args.out, "log.jsonl"), "a") if rank == 0 else None
        self.board = tensorboard_writer(args.out) if rank == 0 else None
        self.bar = None
        if rank == 0 and not args.no_progress:
            from tqdm import tqdm
            self.bar = tqdm(total=args.steps, initial=step, desc="train", dynamic_ncols=True)

    def write(self, entry: dict) -> None:
        if self.file:
            self.file.write(json.dumps(entry) + "\n")
            self.file.flush()
        if self.board:
            for tag, value in scalars(entry).items():
                self.board.add_scalar(tag, value, entry["step"])
            self.board.flush()
        if self.bar and entry.get("loss") is not None:
            self.bar.set_postfix(loss=f"{entry['loss']:.4f}", mem=f"{entry['memory_gib']:.1f}G")
        if self.bar and ("loss" in entry or "skipped" in entry):
            self.bar.update(1)

    def close(self) -> None:
        for f in (self.bar, self.file, self.board):
            if f:
                f.close()
