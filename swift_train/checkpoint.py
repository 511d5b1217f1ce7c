"""Checkpoints of a training run: DCP, written in the background, ``latest`` committed only
once every rank has written, old ones retired; resume reads the latest."""
from __future__ import annotations

import os
import shutil

import torch
import torch.distributed as dist


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
