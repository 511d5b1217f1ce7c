"""CSG teacher-forcing training of the Stage II model, launched by torchrun (FSDP2, DCP).

    torchrun --nproc_per_node 8 -m swift_train.train --data samples/ --base wan2.2_ti2v_5B_fp16.safetensors --out run/ --steps 20000
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m swift_train.train ...

Re-running the same command resumes from the run's latest checkpoint (same data order, same
draws). Rank 0 shows a progress bar and logs every step (loss, lr, grad norm, samples/s, memory;
validation error when it runs) twice: one JSON line in RUN/log.jsonl and TensorBoard scalars in
RUN/tensorboard (``tensorboard --logdir RUN``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import torch
import torch.distributed as dist

from swift_core.adapters import diffusers_wan_denoiser, diffusers_wan_velocity
from swift_core.rules import ROPE_MODES
from swift_core.sampling import sample_csg
from swift_core.schedule import WAN_SHIFT, WEIGHTINGS, flow_sigmas
from swift_core.training import PAIRS, csg_training_loss

from .data import (Order, SampleFolder, WeightedOrder, Windows, data_source, sample_files,
                   split)
from .model import empty_like_config, load_wan, rope_tables, widen_patch_embedding


def parse_pairs(text: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(v) for v in p.split("x")) for p in text.split(","))
        assert pairs and all(len(p) == 2 and p[0] >= 1 and p[1] >= 0 for p in pairs)
        return pairs
    except (ValueError, AssertionError):
        raise argparse.ArgumentTypeError(f"--pairs {text!r}: expected MxN,... e.g. "
                                         "2x1,2x2,3x1,3x2") from None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="torchrun ... -m swift_train.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, action="append", type=data_source,
                    help="folder of training samples; repeat with weights to mix several: "
                         "--data 2k:0.7 --data synthesized:0.3")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log, config)")
    ap.add_argument("--base", default="tiny",
                    help="base model: ComfyUI's wan2.2_ti2v_5B_fp16.safetensors, a diffusers "
                         "folder (Wan2.2-TI2V-5B-Diffusers), or 'tiny' (tests)")
    ap.add_argument("--steps", type=int, default=1000, help="optimizer steps in all")
    ap.add_argument("--lr", type=float, default=1e-5, help="constant learning rate (AdamW)")
    ap.add_argument("--weight-decay", type=float, default=0.01,
                    help="AdamW weight decay (0.01: torch's and DiffSynth-Studio's default)")
    ap.add_argument("--grad-accum", type=int, default=1, help="clips per rank per step")
    ap.add_argument("--clip-grad", type=float, default=1.0, help="gradient norm clipping")
    ap.add_argument("--ema", type=float, default=0.0, help="EMA decay (0 = no EMA), e.g. 0.999")
    ap.add_argument("--rope", choices=ROPE_MODES, default="window",
                    help="RoPE positions of a window; use the same setting in ComfyUI")
    ap.add_argument("--pairs", type=parse_pairs, default=PAIRS,
                    help="(M, N) drawn uniformly per step (paper: 2x1,2x2,3x1,3x2)")
    ap.add_argument("--shift", type=float, default=WAN_SHIFT,
                    help="timestep shift of the training sigmas (5, DiffSynth-Studio's); stored "
                         "in the export: sample Stage II with the same shift (ModelSamplingSD3)")
    ap.add_argument("--weighting", choices=WEIGHTINGS, default="none",
                    help="loss weight over timesteps: none, or DiffSynth-Studio's bell")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                    help="compute dtype (FSDP2 mixed precision; master weights fp32)")
    ap.add_argument("--grad-checkpointing", action="store_true", help="activation checkpointing")
    ap.add_argument("--workers", type=int, default=2,
                    help="data loader processes reading the windows ahead (0: in the trainer)")
    ap.add_argument("--prefetch", type=int, default=2, help="windows each worker reads ahead")
    ap.add_argument("--replicas", type=int, default=1,
                    help="HSDP: this many replica groups (e.g. the number of nodes), the model "
                         "sharded within each (1: FSDP over all ranks)")
    ap.add_argument("--init-from", default=None, metavar="RUN",
                    help="start from another run's latest weights and optimizer state (the next "
                         "stage of a curriculum: 1080P, then 2K); steps count from 0")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--keep-last", type=int, default=3, help="checkpoints kept: the last K ...")
    ap.add_argument("--keep-every", type=int, default=0,
                    help="... and every one at a multiple of this step (0: none)")
    ap.add_argument("--sync-save", action="store_true",
                    help="write checkpoints in the foreground (default: dcp.async_save)")
    ap.add_argument("--val-every", type=int, default=0, help="validate every N steps (0 = never)")
    ap.add_argument("--val-count", type=int, default=0, help="samples held out for validation")
    ap.add_argument("--val-steps", type=int, default=4, help="sampling steps of validation")
    ap.add_argument("--val-m", type=int, default=3, help="M of validation's CSG (paper: 3)")
    ap.add_argument("--val-n", type=int, default=1, help="N of validation's CSG (paper: 1)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--inject-nonfinite", type=lambda t: {int(v) for v in t.split(",")},
                    default=set(), help=argparse.SUPPRESS)      # tests: these steps' loss is NaN
    return ap.parse_args(argv)


def setup():
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return rank, world, device


def build_model(args, device, world):
    """Rank 0 alone reads the base (and widens it); every rank builds the model on the meta
    device, shards it (FSDP2, or HSDP), and receives its shards of rank 0's weights by broadcast
    (``set_model_state_dict(..., broadcast_from_rank0=True)``): one read of the base per run."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    full, config = {}, [None]
    if dist.get_rank() == 0:
        base = load_wan(args.base, torch.float32, seed=args.seed)
        if base.config.in_channels == 48:
            widen_patch_embedding(base)
        config[0] = dict(base.config)
        full = base.state_dict()
        del base
    dist.broadcast_object_list(config, src=0)
    if config[0]["in_channels"] != 96:
        raise ValueError(f"--base: the model takes {config[0]['in_channels']} input channels; "
                         "expected 48 (Wan2.2-TI2V-5B, widened here) or 96 (a SwiftI2V model)")
    model = empty_like_config({k: v for k, v in config[0].items() if not k.startswith("_")})
    if args.grad_checkpointing:
        model.enable_gradient_checkpointing()
    mesh = device_mesh(device, world, args.replicas)
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if args.precision == "bf16"
                              else torch.float32, reduce_dtype=torch.float32)
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    model.to_empty(device=device)
    rope_tables(model, force=True)
    model.rope.to(device)
    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True,
                                                               broadcast_from_rank0=True))
    return model


def device_mesh(device, world: int, replicas: int):
    """FSDP over all ranks (``replicas`` 1), or HSDP: ``replicas`` groups (e.g. one per node)
    each holding a full copy sharded within it, gradients all-reduced across them: torch's
    ``fully_shard`` over a 2-D mesh."""
    from torch.distributed.device_mesh import init_device_mesh
    if replicas < 1 or world % replicas:
        raise ValueError(f"--replicas {replicas}: must divide the {world} ranks")
    if replicas == 1:
        return init_device_mesh(device.type, (world,))
    return init_device_mesh(device.type, (replicas, world // replicas),
                            mesh_dim_names=("replicate", "shard"))


def state(model, opt, ema, step, trainable_only: bool = False):
    """What a checkpoint holds: the model (only its trainable parameters for an adapter run), the
    optimizer, the EMA and the step."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict
    msd, osd = get_state_dict(model, opt,
                              options=StateDictOptions(ignore_frozen_params=trainable_only))
    return {"model": msd, "optim": osd, "ema": ema, "step": torch.tensor(step)}


class Checkpoints:
    """DCP checkpoints of a run, written in the background (``dcp.async_save``: the state is
    staged on the CPU, training goes on), ``latest`` moved to a checkpoint only once every rank
    has written it, and old ones removed: the last ``keep_last`` and every ``keep_every``-th step
    stay."""

    def __init__(self, run: str, rank: int, *, keep_last: int = 3, keep_every: int = 0,
                 asynchronous: bool = True, trainable_only: bool = False):
        self.dir = os.path.join(run, "checkpoints")
        self.rank, self.keep_last, self.keep_every = rank, keep_last, keep_every
        self.asynchronous, self.trainable_only = asynchronous, trainable_only
        self.pending = None
        # the background write has a process group of its own: on the default one its
        # collectives would interleave with training's (a deadlock)
        self.group = dist.new_group(backend="gloo") if asynchronous else None

    def save(self, model, opt, ema, step: int) -> None:
        import torch.distributed.checkpoint as dcp
        self.wait()
        name = f"step_{step:08d}"
        sd = state(model, opt, ema, step, self.trainable_only)
        path = os.path.join(self.dir, name)
        if self.asynchronous:
            self.pending = (dcp.async_save(sd, checkpoint_id=path, process_group=self.group),
                            name)
        else:
            dcp.save(sd, checkpoint_id=path)
            self.commit(name)

    def wait(self) -> None:
        """The save in flight, finished and committed (before the next one, and at the end)."""
        if self.pending is not None:
            future, name = self.pending
            self.pending = None
            (future.result() if hasattr(future, "result") else future.upload_completion.result())
            self.commit(name)

    def commit(self, name: str) -> None:
        dist.barrier()
        if self.rank == 0:
            tmp = os.path.join(self.dir, "latest.part")
            with open(tmp, "w") as f:
                f.write(name)
            os.replace(tmp, os.path.join(self.dir, "latest"))
            for old in retired(os.listdir(self.dir), name, self.keep_last, self.keep_every):
                shutil.rmtree(os.path.join(self.dir, old), ignore_errors=True)
        dist.barrier()


def retired(names, latest: str, keep_last: int, keep_every: int) -> list[str]:
    """Checkpoint folders to remove once ``latest`` is committed: all but the last ``keep_last``
    up to ``latest`` and those at multiples of ``keep_every`` (also a save left unfinished)."""
    steps = sorted(n for n in names if n.startswith("step_"))
    done = [n for n in steps if n <= latest]
    keep = set(done[-max(keep_last, 1):])
    keep |= {n for n in done if keep_every and int(n[5:]) % keep_every == 0}
    return [n for n in steps if n not in keep and n <= latest]


def resume(run, model, opt, ema, trainable_only: bool = False, required: bool = False) -> int:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict
    latest = os.path.join(run, "checkpoints", "latest")
    if not os.path.exists(latest):
        if required:
            raise FileNotFoundError(f"--init-from {run!r}: no checkpoint in it")
        return 0
    name = open(latest).read().strip()
    st = state(model, opt, ema, 0, trainable_only)
    dcp.load(st, checkpoint_id=os.path.join(run, "checkpoints", name))
    set_state_dict(model, opt, model_state_dict=st["model"], optim_state_dict=st["optim"],
                   options=StateDictOptions(ignore_frozen_params=trainable_only, strict=False))
    return int(st["step"])


def relative_error(x, x0) -> float:
    """Squared error of the generated blocks (all but the anchor) relative to the target's."""
    return float(((x - x0)[:, :, 1:] ** 2).mean() / (x0[:, :, 1:] ** 2).mean())


def baselines(samples) -> dict:
    """What the trivial answers score on the held-out samples: copying the reference (Stage II
    as a plain upscaler) and repeating the anchor (a static video). A model worth using beats
    both."""
    n = max(len(samples), 1)
    return {"val_copy_reference": sum(relative_error(s["reference"][None], s["x0"][None])
                                      for s in samples) / n,
            "val_static_anchor": sum(relative_error(s["x0"][None, :, :1].expand_as(s["x0"][None]),
                                                    s["x0"][None]) for s in samples) / n}


@torch.no_grad()
def validate(model, samples, args, device, rank: int = 0, world: int = 1) -> float:
    """``sample_csg`` (``--val-m``, ``--val-n``) on held-out samples: relative squared error of
    the generated blocks against the targets. The samples are split across the ranks (sample k
    on rank k mod world, seeded by k) and the errors summed over them; every rank runs the same
    number of forwards (FSDP's collectives need all of them), padding with a repeat it does not
    count."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for j in range(-(-len(samples) // world)):
        k = rank + j * world
        s = samples[min(k, len(samples) - 1)]
        x0 = s["x0"][None].to(device)
        g = torch.Generator().manual_seed(args.seed + 10_000 + k)
        noise = torch.randn(x0.shape, generator=g).to(device)
        out = sample_csg(diffusers_wan_denoiser(model, s["context"][None].to(device)), noise,
                         flow_sigmas(args.val_steps, args.shift).to(device),
                         anchor=x0[:, :, :1], reference=s["reference"][None].to(device),
                         m=args.val_m, n=args.val_n, mode="swifti2v", rope=args.rope)
        if k < len(samples):
            total += torch.tensor([relative_error(out.float(), x0), 1.0], dtype=torch.float64,
                                  device=device)
    dist.all_reduce(total)
    model.train()
    return float(total[0] / total[1].clamp(min=1))


def memory_gib(device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


#: non-finite losses in a row that stop a run
NONFINITE_LIMIT = 3


class NonFiniteLoss(RuntimeError):
    pass


def train_step(model, opt, ema: dict, velocity, items: list[dict], step: int, args, device,
               rank: int, world: int) -> dict:
    """One optimizer step over ``--grad-accum`` windows the loader read (gradients reduced once);
    returns its log entry. The window (M, N) is the step's, the same on every rank; the clip and
    every draw depend only on (seed, step, rank): resumable. A non-finite loss on any rank skips
    the step on all of them (no update, logged)."""
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    pair = tuple(items[0]["pair"])           # the loader hands tuples on as lists
    for a, it in enumerate(items):
        model.set_requires_gradient_sync(a == len(items) - 1)   # reduce once per step
        gen = torch.Generator()
        gen.set_state(it["gen_state"])                  # the reader drew the segment from it
        loss, _ = csg_training_loss(
            velocity, it["x0"][None].to(device), it["reference"][None].to(device),
            it["context"][None].to(device), gen, rope=args.rope, shift=args.shift,
            weighting=args.weighting, segment=it["segment"])
        if step + 1 in args.inject_nonfinite:
            loss = loss * float("nan")
        (loss / args.grad_accum).backward()
        total += loss.detach() / args.grad_accum
    pairs = [None] * world
    dist.all_gather_object(pairs, pair)
    if len(set(pairs)) != 1:
        raise RuntimeError(f"step {step + 1}: the ranks drew different windows {pairs}")
    bad = torch.tensor(float(not torch.isfinite(total)), device=device)
    dist.all_reduce(bad)
    entry = {"step": step + 1, "window": f"{pair[0]}x{pair[1]}", "lr": args.lr,
             "bytes_read": sum(it["bytes"] for it in items)}
    if bad > 0:
        opt.zero_grad(set_to_none=True)
        return {**entry, "skipped": "non-finite loss", "loss": None}
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_grad)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
    opt.step()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n in ema:
                ema[n].lerp_(p.detach(), 1 - args.ema)
    dist.all_reduce(total)
    return {**entry, "loss": float(total) / world, "grad_norm": float(norm),
            "samples_per_s": world * args.grad_accum / (time.perf_counter() - t0),
            "memory_gib": memory_gib(device)}


def window_loader(files, order, args, rank: int, device, step: int):
    """Torch's DataLoader over the run's windows from ``step`` on: ``--workers`` processes read
    only each window's blocks, ``--prefetch`` windows ahead of the step."""
    windows = Windows(files, order, seed=args.seed, rank=rank, grad_accum=args.grad_accum,
                      pairs=args.pairs, start=step * args.grad_accum,
                      stop=args.steps * args.grad_accum)
    return torch.utils.data.DataLoader(
        windows, batch_size=None, num_workers=args.workers,
        prefetch_factor=args.prefetch if args.workers else None,
        pin_memory=device.type == "cuda")


def guard(entry: dict, bad_in_a_row: int) -> int:
    """Count non-finite steps in a row; too many stop the run with a clear message."""
    if "skipped" not in entry:
        return 0
    bad_in_a_row += 1
    if bad_in_a_row >= NONFINITE_LIMIT:
        raise NonFiniteLoss(f"step {entry['step']}: the loss was not finite {bad_in_a_row} steps "
                            "in a row; stopping (the last checkpoint is intact). Lower --lr, check "
                            "the data (python -m swift_train.train reads every sample) or use "
                            "--precision fp32")
    return bad_in_a_row


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


def write_config(args, world: int, train_files) -> None:
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({**vars(args), "world": world, "train_files": len(train_files)}, f, indent=1,
                  default=str)


def train(args) -> None:
    """Set up (data, model, optimizer, resume), then steps, checkpoints and validation."""
    rank, world, device = setup()
    os.makedirs(os.path.join(args.out, "checkpoints"), exist_ok=True)
    folders = [sample_files(folder) for folder, _ in args.data]
    train_files, val_files = split([f for fs in folders for f in fs], args.val_count)
    kept = set(train_files)
    sizes = [sum(f in kept for f in fs) for fs in folders]
    val_set = SampleFolder(val_files)
    val = [val_set[i] for i in range(len(val_set))]       # held out: read once
    if rank == 0:
        write_config(args, world, train_files)
    model = build_model(args, device, world)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    ema = ({n: p.detach().clone() for n, p in model.named_parameters()} if args.ema > 0 else {})
    step = resume(args.out, model, opt, ema)
    if step == 0 and args.init_from:            # a curriculum's next stage: weights + optimizer
        resume(args.init_from, model, opt, ema, required=True)
    order = (Order(range(len(train_files)), world, rank, args.seed) if len(args.data) == 1 else
             WeightedOrder(sizes, [w for _, w in args.data], world, rank, args.seed))
    batches = iter(window_loader(train_files, order, args, rank, device, step))
    velocity = diffusers_wan_velocity(model)
    log = RunLog(args, rank, step)
    checkpoints = Checkpoints(args.out, rank, keep_last=args.keep_last,
                              keep_every=args.keep_every, asynchronous=not args.sync_save)
    if step == 0 and args.val_every and val_files:
        log.write({"step": 0, "val_error": validate(model, val, args, device, rank, world),
                   **baselines(val)})
    bad = 0
    while step < args.steps:
        items = [next(batches) for _ in range(args.grad_accum)]
        entry = train_step(model, opt, ema, velocity, items, step, args, device, rank, world)
        step += 1
        if "skipped" in entry:
            log.write(entry)
        bad = guard(entry, bad)
        if step % args.save_every == 0 or step == args.steps:
            checkpoints.save(model, opt, ema, step)
        if args.val_every and val_files and step % args.val_every == 0:
            entry["val_error"] = validate(model, val, args, device, rank, world)
        if "skipped" not in entry:
            log.write(entry)
    checkpoints.wait()
    log.close()


def launch(train_fn, args) -> int:
    """Run ``train_fn(args)`` under torchrun; the process group is closed whatever happens."""
    try:
        train_fn(args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def main(argv=None) -> int:
    return launch(train, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
