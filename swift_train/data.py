"""Training samples (swift_core.samples format) as a dataset, in a resumable order."""
from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
from torch.utils.data import Dataset, DistributedSampler

from swift_core.samples import read_sample


def staged(path: Path, root: Path) -> bool:
    """A file in a hidden folder (the batch client's ``.incoming`` staging: a video still being
    downloaded) or a hidden file: never a finished sample."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def sample_files(folder: str) -> list[str]:
    """The finished samples under ``folder`` (sorted), never the staging folder's files."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {folder!r}: no such folder")
    found = sorted(root.rglob("*.safetensors"))
    files = [str(p) for p in found if not staged(p, root)]
    if not files:
        staging = f" ({len(found)} file(s) only in staging folders such as .incoming: videos " \
                  "still downloading)" if found else ""
        raise FileNotFoundError(f"--data {folder!r}: no finished .safetensors samples in it"
                                f"{staging}; make them with python -m swift_batch --data "
                                "(docs/training.md)")
    return files


def stage2_tensors(path: str) -> dict:
    s = read_sample(path)
    return {"x0": s.x0.float(), "reference": s.reference.float(), "context": s.context}


class SampleFolder(Dataset):
    """Sample files as a dataset; ``load(path)`` reads and checks one (a Stage II sample by
    default)."""

    def __init__(self, files: list[str], load=stage2_tensors):
        self.files, self.load = list(files), load

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        return self.load(self.files[i])


def sample_source(path: str) -> str:
    """The video a sample was cut from (its ``source`` metadata: Load Clips' name), header only."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        return (f.metadata() or {}).get("source") or Path(path).stem


def held_out_videos(folders: list[list[str]], val_count: int, source=sample_source) -> set[str]:
    """Whole videos held out, at least ``val_count`` samples: each folder's videos in a fixed
    order of their names' hashes (never file order, so no folder's last files decide), taken
    from the folders in turn. A video held out is held out in every folder (a 1080P and a 2K
    sample of one video are the same footage)."""
    by_video: dict[str, int] = {}
    queues = []
    for files in folders:
        videos = [source(f) for f in files]
        for v in videos:
            by_video[v] = by_video.get(v, 0) + 1
        queues.append(sorted(set(videos), key=lambda v: hashlib.sha1(v.encode()).hexdigest()))
    held, count = set(), 0
    while count < val_count and any(queues):
        for q in queues:
            while q and q[0] in held:
                q.pop(0)
            if q and count < val_count:
                held.add(q[0])
                count += by_video[q.pop(0)]
    total = sum(len(fs) for fs in folders)
    if val_count < 0 or (val_count and count >= total):
        raise ValueError(f"--val-count {val_count}: must be >= 0 and leave training samples; "
                         f"the {total} samples come from {len(by_video)} video(s) (their "
                         "'source'), and whole videos are held out")
    return held


def split(folders: list[list[str]], val_count: int,
          source=sample_source) -> tuple[list[str], list[str]]:
    """(train files, held-out files): whole videos held out (:func:`held_out_videos`), so no
    video has clips on both sides; the training files keep their folders' order."""
    files = [f for fs in folders for f in fs]
    if val_count == 0:
        return files, []
    src = {f: source(f) for f in files}                       # each header read once
    held = held_out_videos(folders, val_count, src.__getitem__)
    return [f for f in files if src[f] not in held], [f for f in files if src[f] in held]


def held_out(folders: list[list[str]], val_count: int, val_data: str | None,
             source=sample_source) -> tuple[list[str], list[str]]:
    """(train files, held-out files): whole videos of the data held out (``--val-count``), or
    the samples of another folder (``--val-data``), refused by name when one of its videos is
    in the training data too."""
    if not val_data:
        return split(folders, val_count, source)
    if val_count:
        raise ValueError(f"--val-count {val_count} and --val-data {val_data!r}: give one")
    train, val = [f for fs in folders for f in fs], sample_files(val_data)
    both = {source(f) for f in train} & {source(f) for f in val}
    if both:
        raise ValueError(f"--val-data {val_data!r}: video(s) {', '.join(sorted(both))} are in "
                         "the training data too (by their 'source'); held-out footage must be "
                         "footage the model never sees")
    return train, val


def data_source(text: str) -> tuple[str, float]:
    """``--data FOLDER`` or ``--data FOLDER:WEIGHT``."""
    folder, sep, weight = text.rpartition(":")
    if sep and folder:
        try:
            w = float(weight)
        except ValueError:
            return text, 1.0
        if w <= 0:
            raise ValueError(f"--data {text!r}: the weight must be above 0")
        return folder, w
    return text, 1.0


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


def window_generator(seed: int, step: int) -> torch.Generator:
    """The generator of a global step's (M, N): the same on every rank, so no rank waits at
    FSDP's collectives for another's larger window (the paper draws it "at each iteration")."""
    return torch.Generator().manual_seed((seed * 999_983 + step * 104_729 + 17) % 2**63)


def step_generator(seed: int, micro_step: int, rank: int) -> torch.Generator:
    """The generator of one micro-step: (M, N), segment, sigma and noise depend only on these,
    so a resumed run draws exactly what an uninterrupted one does."""
    return torch.Generator().manual_seed((seed * 1_000_003 + micro_step * 7_919 + rank) % 2**63)


class WeightedOrder:
    """Which sample rank ``rank`` takes at micro-step ``i`` over several folders: the folder drawn
    with its weight once per global step (``grad_accum`` micro-steps), from the seed and the
    step alone, so every rank and every micro-step of a step takes the same folder (one latent
    size per step: no rank waits on another's larger window); then that folder's own shuffled
    order (an :class:`Order` over it, this rank's share) continued. Deterministic: a resumed run
    draws as an uninterrupted one."""

    def __init__(self, sizes: list[int], weights: list[float], world: int, rank: int, seed: int,
                 grad_accum: int = 1):
        self.offsets = [sum(sizes[:k]) for k in range(len(sizes))]
        self.orders = [Order(range(n), world, rank, seed + 7 * k) for k, n in enumerate(sizes)]
        self.weights = torch.tensor(weights, dtype=torch.float64)
        self.seed, self.grad_accum = seed, grad_accum
        self.draws: list[tuple[int, int]] = []       # (folder, how many before it) per micro-step
        self.counts = [0] * len(sizes)

    def folder(self, i: int) -> tuple[int, int]:
        while len(self.draws) <= i:
            j = len(self.draws)
            if j % self.grad_accum:
                k = self.draws[-1][0]
            else:
                g = window_generator(self.seed + 31, j // self.grad_accum)
                k = int(torch.multinomial(self.weights, 1, generator=g))
            self.draws.append((k, self.counts[k]))
            self.counts[k] += 1
        return self.draws[i]

    def __call__(self, i: int) -> int:
        k, nth = self.folder(i)
        return self.offsets[k] + self.orders[k](nth)


def read_window(path: str, segment) -> dict:
    """Only the window's blocks of one sample (safetensors slices: the anchor, then the
    neighbours and the segment), its text, and the bytes read."""
    from safetensors import safe_open

    from swift_core.samples import FORMAT, LATENT_SPACE, VERSION
    from swift_core.training import window_runs
    out, nbytes = {}, 0
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        if (meta.get("format"), meta.get("version"), meta.get("latent_space", LATENT_SPACE)) != \
                (FORMAT, VERSION, LATENT_SPACE):
            raise ValueError(f"{path}: not a SwiftI2V training sample of version {VERSION}")
        for name in ("x0", "reference"):
            sl = f.get_slice(name)
            parts = [sl[:, a:b] for a, b in window_runs(segment)]
            out[name] = torch.cat(parts, dim=1).float()
            nbytes += sum(p.numel() * p.element_size() for p in parts)
        out["context"] = f.get_tensor("context")
    return {**out, "bytes": nbytes}


def check_one_size(folder: str, files: list[str]) -> None:
    """Every sample of a --data folder has one latent shape (channels, height, width): ranks
    that drew other sizes would wait on each other at every step. Headers only."""
    from safetensors import safe_open
    first = None
    for f in files:
        try:
            with safe_open(f, framework="pt") as st:
                shape = st.get_slice("x0").get_shape()
        except Exception as e:                      # noqa: BLE001 - named in one line
            raise ValueError(f"--data {folder!r}: {f} is not a readable SwiftI2V training "
                             f"sample ({type(e).__name__}: {e})") from None
        c, _, h, w = shape
        if first is None:
            first = (f, (c, h, w))
        elif (c, h, w) != first[1]:
            raise ValueError(f"--data {folder!r}: {f} has latent {c}x{h}x{w} (channels x height "
                             f"x width) but {first[0]} has {'x'.join(map(str, first[1]))}; put "
                             "each size in its own --data folder")


def sample_blocks(path: str) -> int:
    """Latent blocks of a sample, from its header alone."""
    from safetensors import safe_open
    with safe_open(path, framework="pt") as f:
        return int(f.get_slice("x0").get_shape()[1])


class Windows(Dataset):
    """Micro-step ``start + j`` of rank ``rank``: its sample (``order``), the step's (M, N)
    (the same on every rank), its segment, and only that window's blocks read from disk. Torch's
    DataLoader runs it in worker processes, ahead of the training step; the generator state is
    handed on so the step draws sigma and noise as if it had drawn the segment itself."""

    def __init__(self, files: list[str], order, *, seed: int, rank: int, grad_accum: int,
                 pairs, start: int, stop: int):
        self.files, self.order, self.seed, self.rank = list(files), order, seed, rank
        self.grad_accum, self.pairs, self.start, self.stop = grad_accum, pairs, start, stop
        self.blocks: dict[str, int] = {}

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __getitem__(self, j: int) -> dict:
        from swift_core.training import draw_pair, draw_segment
        i = self.start + j
        path = self.files[self.order(i)]
        if path not in self.blocks:
            self.blocks[path] = sample_blocks(path)
        pair = draw_pair(window_generator(self.seed, i // self.grad_accum), self.pairs)
        gen = step_generator(self.seed, i, self.rank)
        segment = draw_segment(self.blocks[path], *pair, gen)
        return {**read_window(path, segment), "segment": segment, "pair": pair,
                "gen_state": gen.get_state()}
