"""The one training loop of both trained parts (Stage II and the Stage I LoRA), in torchtitan's
shape: a :class:`Trainer` owns the optimizer step, the guards, checkpoints, validation and the
log; a *task* owns what differs, behind three seams:

- ``task.micro_batches(step) -> list``: what one optimizer step reads, ``--grad-accum`` items;
- ``task.forward_backward(item, step) -> loss``: one micro-step's loss (the trainer scales it and
  calls ``backward``);
- ``task.validate() -> dict``: held-out numbers for the log (``val_...``), or ``{}``;
- ``task.describe(items) -> dict``: what the log says of a step besides loss and speed.

A step whose loss or gradient is not finite on any rank is skipped on all of them (no update,
logged); too many in a row stop the run. Reproducible: every draw depends on (seed, step, rank)
only, so the same command gives the same losses and a re-run resumes from the last checkpoint.
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.distributed as dist

from .checkpoint import Checkpoints, resume
from .runlog import RunLog, memory_gib

#: non-finite steps in a row that stop a run
NONFINITE_LIMIT = 3


class NonFiniteLoss(RuntimeError):
    pass


class OneLineParser(argparse.ArgumentParser):
    """argparse that refuses a bad argument in one line (``PROG: error: ...``), exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def steps_set(text: str) -> set[int]:
    return {int(v) for v in text.split(",") if v}


def add_loop_args(ap: argparse.ArgumentParser, *, steps: int, lr: float, save_every: int) -> None:
    """The arguments every trainer shares: the loop, the optimizer, checkpoints, validation,
    the mesh."""
    ap.add_argument("--steps", type=int, default=steps, help="optimizer steps in all")
    ap.add_argument("--lr", type=float, default=lr, help="learning rate (AdamW)")
    ap.add_argument("--decay-steps", type=int, default=0,
                    help="the last N steps take the learning rate linearly down to 0 (the decay "
                         "of a warmup-stable-decay schedule); 0: constant throughout")
    ap.add_argument("--weight-decay", type=float, default=0.01,
                    help="AdamW weight decay (0.01: torch's and DiffSynth-Studio's default)")
    ap.add_argument("--grad-accum", type=int, default=1, help="clips per rank per step")
    ap.add_argument("--clip-grad", type=float, default=1.0, help="gradient norm clipping")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                    help="compute dtype (FSDP2 mixed precision)")
    ap.add_argument("--grad-checkpointing", action="store_true", help="activation checkpointing")
    ap.add_argument("--replicas", type=int, default=1,
                    help="HSDP: this many replica groups (e.g. the number of nodes), the model "
                         "sharded within each (1: FSDP over all ranks)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=save_every)
    ap.add_argument("--keep-last", type=int, default=3, help="checkpoints kept: the last K ...")
    ap.add_argument("--keep-every", type=int, default=0,
                    help="... and every one at a multiple of this step (0: none)")
    ap.add_argument("--sync-save", action="store_true",
                    help="write checkpoints in the foreground (default: dcp.async_save)")
    ap.add_argument("--val-every", type=int, default=0, help="validate every N steps (0 = never)")
    ap.add_argument("--val-count", type=int, default=0,
                    help="hold out whole videos of --data, at least this many samples")
    ap.add_argument("--val-data", default=None, metavar="FOLDER",
                    help="held-out samples of other footage (instead of --val-count); a video "
                         "in both is refused")
    ap.add_argument("--no-progress", action="store_true")
    # tests only: these steps get a NaN loss / an inf in one gradient
    ap.add_argument("--inject-nonfinite", type=steps_set, default=set(), help=argparse.SUPPRESS)
    ap.add_argument("--inject-nonfinite-grad", type=steps_set, default=set(),
                    help=argparse.SUPPRESS)


def check_loop_args(args) -> None:
    """The shared numbers, refused by name (before any process group, model or folder)."""
    for name in ("steps", "save_every", "keep_last", "val_every", "val_count", "keep_every",
                 "decay_steps"):
        if getattr(args, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 0")
    for name in ("grad_accum", "replicas", "save_every"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    if not args.lr > 0 or not args.clip_grad > 0:
        raise ValueError(f"--lr {args.lr} / --clip-grad {args.clip_grad}: must be above 0")


def lr_at(step: int, args) -> float:
    """The learning rate of step ``step`` (0-based): ``--lr``, then over the last
    ``--decay-steps`` steps linearly down to 0 (the last step's is ``lr / decay_steps``). A pure
    function of the step, so a resumed run continues the schedule where it stopped."""
    left = args.steps - step
    if args.decay_steps and left <= args.decay_steps:
        return args.lr * left / args.decay_steps
    return args.lr


def refuse(prog: str, error: Exception) -> int:
    """A bad argument: one line on rank 0 (the other ranks exit quietly), exit code 2."""
    import os
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{prog}: error: {error}", file=sys.stderr)
    return 2


def guard(entry: dict, bad_in_a_row: int) -> int:
    """Count non-finite steps in a row; too many stop the run with a clear message."""
    if "skipped" not in entry:
        return 0
    bad_in_a_row += 1
    if bad_in_a_row >= NONFINITE_LIMIT:
        raise NonFiniteLoss(f"step {entry['step']}: {entry['skipped']} {bad_in_a_row} steps in a "
                            "row; stopping (the last checkpoint is intact). Lower --lr or --clip-grad, "
                            "use --precision fp32, or look for a broken sample in --data")
    return bad_in_a_row


def finite_everywhere(*values: torch.Tensor, device) -> bool:
    """Every value finite on every rank (one all-reduce)."""
    bad = torch.tensor(float(not all(bool(torch.isfinite(v).all()) for v in values)),
                       device=device)
    dist.all_reduce(bad)
    return bool(bad == 0)


class Trainer:
    """One run: ``model`` (sharded), ``params`` (what the optimizer trains), a task (the seams
    above), ``ema`` ({name: tensor}, empty for none). :meth:`fit` resumes and trains to
    ``--steps``."""

    def __init__(self, args, task, model, params, *, rank: int, world: int, device,
                 ema: dict | None = None, trainable_only: bool = False):
        self.args, self.task, self.model, self.params = args, task, model, list(params)
        self.rank, self.world, self.device = rank, world, device
        self.ema, self.trainable_only = ema or {}, trainable_only
        # foreach: torch picks it by itself only for CUDA tensors; on a CPU run (tests, the
        # preflight) the per-tensor loop over sharded parameters was a third of a tiny step
        self.opt = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=args.weight_decay,
                                     foreach=True)

    def forward_backward(self, items: list, step: int) -> torch.Tensor:
        """Every micro-step's forward and backward (gradients reduced once, at the last); the
        step's mean loss."""
        total = torch.zeros((), device=self.device)
        for a, item in enumerate(items):
            self.model.set_requires_gradient_sync(a == len(items) - 1)
            loss = self.task.forward_backward(item, step)
            if step + 1 in self.args.inject_nonfinite:
                loss = loss * float("nan")
            (loss / len(items)).backward()
            total += loss.detach() / len(items)
        if step + 1 in self.args.inject_nonfinite_grad:          # tests: one overflowed value
            grads = (getattr(p.grad, "_local_tensor", p.grad) for p in self.params)
            next(g for g in grads if g is not None and g.numel()).view(-1)[0] = float("inf")
        return total

    def train_step(self, step: int) -> dict:
        """One optimizer step; its log entry."""
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        lr = lr_at(step, self.args)
        for group in self.opt.param_groups:
            group["lr"] = lr
        items = self.task.micro_batches(step)
        loss = self.forward_backward(items, step)
        entry = {"step": step + 1, "lr": lr, **self.task.describe(items)}
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.args.clip_grad)
        norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
        if not finite_everywhere(loss, norm, device=self.device):
            self.opt.zero_grad(set_to_none=True)
            what = "non-finite loss" if not finite_everywhere(loss, device=self.device) \
                else "non-finite gradient"
            return {**entry, "skipped": what, "loss": None}
        self.opt.step()
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                if name in self.ema:
                    self.ema[name].lerp_(p.detach(), 1 - self.args.ema)
        dist.all_reduce(loss)
        return {**entry, "loss": float(loss) / self.world, "grad_norm": float(norm),
                "samples_per_s": self.world * len(items) / (time.perf_counter() - t0),
                "memory_gib": memory_gib(self.device)}

    def fit(self, init_from: str | None = None) -> None:
        """Resume (or start from ``init_from``'s weights and optimizer), then steps; checkpoints
        and validation when their step comes; the log, TensorBoard and the progress bar."""
        args = self.args
        step = resume(args.out, self.model, self.opt, self.ema, self.trainable_only)
        if step == 0 and init_from:
            resume(init_from, self.model, self.opt, self.ema, self.trainable_only, required=True)
        self.task.start(step)
        log = RunLog(args, self.rank, step)
        checkpoints = Checkpoints(args.out, self.rank, keep_last=args.keep_last,
                                  keep_every=args.keep_every, asynchronous=not args.sync_save,
                                  trainable_only=self.trainable_only)
        if step == 0 and args.val_every:
            log.write({"step": 0, **self.task.validate()})
        bad = 0
        while step < args.steps:
            entry = self.train_step(step)
            step += 1
            if step % args.save_every == 0 or step == args.steps:
                checkpoints.save(self.model, self.opt, self.ema, step)
            if args.val_every and step % args.val_every == 0:
                entry.update(self.task.validate())
            log.write(entry)
            bad = guard(entry, bad)
        checkpoints.wait()
        log.close()
