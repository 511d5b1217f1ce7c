"""Out of memory inside a window or a VAE tile: retried smaller instead of losing the run.

A window that runs out of memory is re-planned from that segment with M one smaller (the
segments already final are kept); the VAE retries with half the tile. Each retry frees what
ComfyUI can free first and says what changed in one log line; the Stage II output's plan string
carries it too.
"""
from __future__ import annotations

import gc
import logging

import torch

import comfy.model_management as mm

from ...swift_core.plan import replan_from
from ...swift_core.rules import WAN22_SPATIAL

log = logging.getLogger("swifti2v")


def is_oom(error: BaseException) -> bool:
    """torch's (or core's) out-of-memory error, as core itself tells it."""
    check = getattr(mm, "is_oom", None)                 # core >= 0.2x: also accelerator errors
    if check is not None:
        try:
            return bool(check(error))
        except Exception:       # noqa: BLE001 - a helper that changed must not hide the error
            pass
    kinds = tuple(k for k in (getattr(torch, "OutOfMemoryError", None),
                              getattr(mm, "OOM_EXCEPTION", None))
                  if isinstance(k, type) and k is not Exception)
    return isinstance(error, kinds)


def free_memory() -> None:
    """What ComfyUI can free without unloading the models in use: the failed step's tensors
    (collected) and the allocator's cache."""
    gc.collect()
    mm.soft_empty_cache(True)


class WindowRetry:
    """``run_csg``'s ``on_error``: an out-of-memory window is retried with M one smaller from
    that segment on. ``changes`` lists what was done (for the plan string)."""

    def __init__(self, n: int, on_replan=lambda plan: None):
        self.n, self.on_replan, self.changes = n, on_replan, []
        self.pending = False

    def __call__(self, error, plan, k):
        m = len(plan[k].current)
        if not is_oom(error) or m <= 1:
            return None
        new = replan_from(plan, k, m - 1, self.n)
        msg = (f"out of memory in segment {k + 1} of {len(plan)} (window of "
               f"{len(plan[k].window)} blocks): m {m} -> {m - 1} from there on, "
               f"{len(new)} segments")
        log.warning("SwiftI2V: %s", msg)
        self.changes.append(msg)
        self.pending = True
        self.on_replan(new)
        return new

    def before_window(self) -> None:
        """Called as the next window starts (outside the failed call's frames): free memory."""
        if self.pending:
            self.pending = False
            free_memory()


#: The VAE's tile is halved on out-of-memory down to this (latent units: 256 px).
MIN_TILE = 256 // WAN22_SPATIAL


def halved_tile(now: int, block: int, changes: list, part: str = "decoder",
                where: str | None = None) -> int:
    """Half the VAE tile ``now`` (latent units, in 64 px steps), or 0 when that would go below
    ``MIN_TILE``; what changed is logged and appended to ``changes`` (``where``: from when the
    new tile applies; the decoder's ``from block N on`` by default)."""
    new = now // 2 // 4 * 4
    if new < MIN_TILE:
        return 0
    msg = (f"out of memory in the VAE {part}: tile_size {now * WAN22_SPATIAL} -> "
           f"{new * WAN22_SPATIAL} px {where or f'from block {block} on'}")
    log.warning("SwiftI2V: %s", msg)
    changes.append(msg)
    return new
