"""What fits the card: the largest M and VAE tile that a memory budget allows.

Pure choice over :mod:`swift_core.memory`'s estimates. ``budget`` is the bytes the device has for
one forward's activations (or one tile's VAE work) once the weights are where they will be; the
bridge reads it from ComfyUI. A choice fits when ``estimate * margin <= budget``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .memory import (GIB, WanDiTConfig, max_window_blocks, vae_tile_bytes,
                     window_activation_bytes)
from .plan import replan_from
from .rules import WAN22_SPATIAL, SwiftInputError, check_n

#: Head-room over the estimates (which are within 2% of traced peaks): the allocator's rounding
#: and fragmentation, small buffers the estimate leaves out.
MARGIN = 1.2
#: ``m=auto`` looks no higher than this: the paper's M, inside the range its Stage II is trained
#: on ({2, 3}), and its fastest setting (M3N1 25 s against 30 s without CSG). An explicit m may be
#: larger.
M_CAP = 3
#: ``tile_size=auto`` tries tiles in steps of this many pixels, never below ``TILE_MIN``.
TILE_STEP = 64
TILE_MIN = 256


@dataclass(frozen=True)
class Fit:
    """A chosen value, the estimate it was chosen on and the budget, and one line saying why."""

    value: int
    need: int
    budget: int
    reason: str


def _gib(n: int) -> str:
    return f"{n / GIB:.2f} GiB"


def choose_m(budget: int, cfg: WanDiTConfig, num_blocks: int, latent_h: int, latent_w: int,
             n: int, *, batch: int = 1, dtype_bytes: int = 2, cap: int = M_CAP,
             margin: float = MARGIN, where: str = "the device", scale: float = 1.0) -> Fit:
    """The largest M (up to ``cap``, and at most every block after the anchor) whose window's
    activations fit ``budget``; refuses by name when even M = 1 does not. ``scale``: what a
    window really used over the estimate (:class:`FirstWindowFit`), 1 before any ran."""
    check_n(n)
    top = max(1, min(cap, num_blocks - 1))
    size = f"{latent_w * WAN22_SPATIAL}x{latent_h * WAN22_SPATIAL}"

    def need(m: int) -> int:
        return int(scale * window_activation_bytes(
            cfg, max_window_blocks(num_blocks, m, n), latent_h, latent_w, batch=batch,
            dtype_bytes=dtype_bytes))

    for m in range(top, 0, -1):
        if need(m) * margin <= budget:
            why = "" if m == top else f"; m={m + 1} would need {_gib(need(m + 1))}"
            return Fit(m, need(m), budget,
                       f"m=auto -> {m}: a window of {max_window_blocks(num_blocks, m, n)} latent "
                       f"blocks at {size} needs about {_gib(need(m))} ({_gib(int(need(m) * margin))} "
                       f"with the x{margin} margin) of the {_gib(budget)} free on {where}{why}")
    blocks = max_window_blocks(num_blocks, 1, n)
    fits = largest_size(lambda h, w: int(scale * window_activation_bytes(
        cfg, blocks, h, w, batch=batch, dtype_bytes=dtype_bytes)) * margin <= budget,
        latent_h, latent_w)
    fitting = (f" (at most {fits[1] * WAN22_SPATIAL}x{fits[0] * WAN22_SPATIAL} with this "
               "aspect fits)" if fits else "")
    raise SwiftInputError(
        f"m=auto: even m=1 (a window of {blocks} latent blocks at {size}) needs about "
        f"{_gib(int(need(1) * margin))} with the x{margin} margin, but {_gib(budget)} is free on "
        f"{where}; lower the size (width/height){fitting}" + (f", n (now {n})" if n else "")
        + (", or set cfg to 1 (one pass per step)" if batch > 1 else "")
        + ", or free the device (close other programs)")


def largest_size(fits, latent_h: int, latent_w: int) -> tuple[int, int] | None:
    """The largest (latent_h, latent_w) of the same aspect, in steps of 2 latent pixels (32 px:
    the pack's size rule), for which ``fits(h, w)``; None when not even the smallest does."""
    best = None
    for k in range(1, max(latent_h, latent_w) // 2 + 1):
        f = k * 2 / max(latent_h, latent_w)
        h, w = max(2, round(latent_h * f / 2) * 2), max(2, round(latent_w * f / 2) * 2)
        if h > latent_h or w > latent_w or not fits(h, w):
            break
        best = (h, w)
    return best


def choose_tile(budget: int, frame_h: int, frame_w: int, *, decode: bool = True,
                dtype_bytes: int = 2, overlap: int = 64, margin: float = MARGIN,
                where: str = "the device", scale: float = 1.0) -> Fit:
    """The largest square VAE tile (pixels; the whole frame when that fits) whose estimate fits
    ``budget``; refuses by name when even ``TILE_MIN`` does not. ``scale``: what a tile really
    used over the estimate (:class:`FirstTileFit`), 1 before any ran."""
    kind = "decoder" if decode else "encoder"
    whole = max(frame_h, frame_w)
    start = whole if whole % TILE_STEP == 0 else whole // TILE_STEP * TILE_STEP + TILE_STEP
    lowest = min(max(TILE_MIN, 2 * overlap + WAN22_SPATIAL), start)
    for tile in range(start, lowest - 1, -TILE_STEP):
        th, tw = min(tile, frame_h), min(tile, frame_w)
        need = int(scale * vae_tile_bytes(th, tw, decode=decode, dtype_bytes=dtype_bytes,
                                          frame_h=frame_h, frame_w=frame_w))
        if need * margin <= budget:
            shown = "the whole frame" if (th, tw) == (frame_h, frame_w) else f"{th}x{tw} px tiles"
            return Fit(min(tile, whole), need, budget,
                       f"tile_size=auto -> {min(tile, whole)}: the VAE {kind} on {shown} needs "
                       f"about {_gib(need)} ({_gib(int(need * margin))} with the x{margin} "
                       f"margin) of the {_gib(budget)} free on {where}")
    need = int(scale * vae_tile_bytes(min(lowest, frame_h), min(lowest, frame_w), decode=decode,
                                      dtype_bytes=dtype_bytes, frame_h=frame_h, frame_w=frame_w))
    raise SwiftInputError(
        f"tile_size=auto: even {lowest} px tiles of the VAE {kind} need about "
        f"{_gib(int(need * margin))} with the x{margin} margin, but {_gib(budget)} is free on "
        f"{where}; lower the size (width/height) or free the device (close other programs)")


#: A measured window this far from its estimate is logged (and the estimate's model is off).
MEASURED_TOLERANCE = 0.15


class FirstWindowFit:
    """``run_csg``'s ``next_plan``: after the first window, the rest of the run is planned on what
    that window really used instead of the estimate.

    ``probe``: ``start()`` before the window, ``peak()`` after it: the bytes the window's
    activations took (None where the device cannot tell: nothing changes). ``estimate(blocks)``:
    the memory model's bytes for a window of that many blocks. ``choose(scale, cap)``: the
    :class:`Fit` of M with the estimates scaled by ``scale`` (``choose_m`` on the device's
    budget). M never goes above ``ceiling`` (the user's explicit ``m``, or auto's cap), nor above
    the M the first window ran at when an out-of-memory retry lowered it below ``planned_m``.
    """

    def __init__(self, probe, estimate, choose, n: int, planned_m: int, ceiling: int,
                 log=lambda msg: None, on_replan=lambda plan: None):
        self.probe, self.estimate, self.choose = probe, estimate, choose
        self.n, self.planned_m, self.ceiling, self.log = n, planned_m, ceiling, log
        self.on_replan = on_replan
        self.changes, self.measured, self.ratio, self.done = [], None, None, False

    def wrap(self, sample_window):
        """``sample_window`` with its first call that completes measured by the probe."""
        def sample(*args, **kwargs):
            if self.done:
                return sample_window(*args, **kwargs)
            self.probe.start()
            out = sample_window(*args, **kwargs)
            self.measured, self.done = self.probe.peak(), True
            return out
        return sample

    def __call__(self, plan, k: int):
        """Before segment ``k``: the plan to go on with (``plan`` itself when nothing changes)."""
        if k != 1 or k >= len(plan) or not self.measured:
            return plan
        estimated = self.estimate(len(plan[0].window))
        self.ratio = self.measured / max(estimated, 1)
        m = len(plan[0].current)                        # the M that ran
        if abs(self.ratio - 1) > MEASURED_TOLERANCE:
            self.log(f"the first window used {self.measured / GIB:.2f} GiB, {self.ratio:.2f}x "
                     f"the estimate of {estimated / GIB:.2f} GiB: the rest is planned on it")
        top = self.ceiling if m >= self.planned_m else m
        try:
            new_m = min(self.choose(self.ratio, top).value, top)
        except SwiftInputError:
            new_m = 1                    # not even M=1 on this measure: the out-of-memory retry's
        if new_m == m:
            return plan
        new = replan_from(plan, k, new_m, self.n)
        self.changes.append(f"measured: the first window used {self.measured / GIB:.2f} GiB "
                            f"({self.ratio:.2f}x the estimate): m {m} -> {new_m} from segment "
                            f"{k + 1} on, {len(new)} segments")
        self.log(self.changes[-1])
        self.on_replan(new)
        return new


class FirstTileFit:
    """The streaming VAE decoder's tile after its first full latent block (4 frames), chosen on
    what that block's tiles really used instead of the estimate.

    ``probe``: ``start()`` before the block, ``peak()`` after it: the bytes the decode took above
    what was allocated at its start (None where the device cannot tell: nothing changes).
    ``estimate(tile)``: the memory model's bytes for a tile of ``tile`` pixels. ``choose(scale)``:
    the :class:`Fit` of the tile with the estimates scaled by ``scale`` (``choose_tile`` on the
    device's budget). The tile never goes above ``ceiling`` (the user's explicit ``tile_size``;
    the whole frame on auto), nor above the tile that ran when an out-of-memory retry lowered it.
    A measure within :data:`MEASURED_TOLERANCE` of the estimate changes nothing.
    """

    def __init__(self, probe, estimate, choose, ceiling: int, log=lambda msg: None):
        self.probe, self.estimate, self.choose = probe, estimate, choose
        self.ceiling, self.log = ceiling, log
        self.changes, self.measured, self.ratio = [], None, None

    def start(self) -> None:
        self.probe.start()

    def settle(self, tile: int, block: int, lowered: bool = False) -> int:
        """After the first full block ran at ``tile`` pixels (``lowered``: an out-of-memory retry
        halved it during that block): the tile from latent block ``block`` on."""
        self.measured = self.probe.peak()
        if not self.measured:
            return tile
        estimated = self.estimate(tile)
        self.ratio = self.measured / max(estimated, 1)
        if abs(self.ratio - 1) <= MEASURED_TOLERANCE:
            return tile
        self.log(f"the VAE decoder's first block used {self.measured / GIB:.2f} GiB, "
                 f"{self.ratio:.2f}x the estimate of {estimated / GIB:.2f} GiB at {tile} px tiles: "
                 f"the rest is tiled on it")
        top = tile if lowered else self.ceiling
        try:
            new = min(self.choose(self.ratio).value, top)
        except SwiftInputError:
            new = tile          # not even the smallest tile on this measure: the OOM retry's
        if new == tile:
            return tile
        self.changes.append(f"measured: the VAE decoder's first block used "
                            f"{self.measured / GIB:.2f} GiB ({self.ratio:.2f}x the estimate): "
                            f"tile_size {tile} -> {new} px from block {block} on")
        self.log(self.changes[-1])
        return new
