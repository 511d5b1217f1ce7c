"""Each pack node measured into the run card of the prompt running (``swift_core.cards``).

A node's work runs inside :func:`stage` (or a node's ``execute`` under :func:`measured`): wall
time, CUDA-event time and torch's peak device memory (reset at the node's start) where the node
runs on a CUDA device, the process's RSS high-water mark, and what :func:`note` adds (the plan,
steps, sizes). The prompt comes from ComfyUI's executing context (checked at run time: where it
is missing, one card per process is kept and started anew when a stage kind it holds recurs).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import platform
import time

import torch

import comfy.model_management as mm

from ...swift_core import __version__ as PACK_VERSION
from ...swift_core import cards
from . import device_meter

log = logging.getLogger("swifti2v")

#: prompt id -> its card; only the last few prompts are kept
_CARDS: dict = {}
_KEEP = 8
#: the stage records being measured (innermost last): what :func:`note` writes into
_OPEN: list = []


def executing() -> tuple[str | None, str | None]:
    """(prompt id, node id) ComfyUI is executing, or (None, None) where its context API is
    missing or changed."""
    try:
        from comfy_execution.utils import get_executing_context
        ctx = get_executing_context()
        return (str(ctx.prompt_id), str(ctx.node_id)) if ctx is not None else (None, None)
    except (ImportError, AttributeError):
        return None, None


def _comfyui_version() -> str:
    try:
        import comfyui_version
        return str(comfyui_version.__version__)
    except (ImportError, AttributeError):
        return "unknown"


def _attention() -> str:
    """The attention function core picked (its --use-*-attention flags), e.g. ``pytorch``."""
    try:
        import comfy.ldm.modules.attention as attention
        return attention.optimized_attention.__name__.removeprefix("attention_")
    except (ImportError, AttributeError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def environment() -> dict:
    """What every card of this process says of the machine and the versions."""
    device = mm.get_torch_device()
    info = {"pack": PACK_VERSION, "comfyui": _comfyui_version(), "torch": torch.__version__,
            "python": platform.python_version(), "device": str(device),
            "device_name": "cpu", "device_memory_gib": None, "attention": _attention()}
    try:
        info["device_name"] = mm.get_torch_device_name(device)
        info["device_memory_gib"] = round(mm.get_total_memory(device) / 2**30, 2)
    except Exception:            # noqa: BLE001 - a card never fails a run
        pass
    return info


def current(starting: str | None = None) -> dict:
    """The card of the prompt running (made on first use). Without ComfyUI's context, a stage
    ``starting`` that the card holds already begins another run's card."""
    prompt_id, _ = executing()
    card = _CARDS.get(prompt_id)
    if card is None or (prompt_id is None and any(s["stage"] == starting
                                                  for s in card["stages"])):
        card = _CARDS[prompt_id] = cards.new_card(prompt_id, environment())
        for old in list(_CARDS)[:-_KEEP]:
            del _CARDS[old]
    return card


@contextlib.contextmanager
def stage(kind: str, **fields):
    """Measure the work inside as stage ``kind`` of the prompt's card; appended when it
    finishes (a failed or cancelled stage adds nothing), with one console line."""
    card = current(starting=kind)
    _, node_id = executing()
    device = mm.get_torch_device()
    rec = {"stage": kind, "node_id": node_id, "device": str(device), **fields}
    meter = device_meter.DeviceMeter(device)
    _OPEN.append(rec)
    try:
        meter.start()
        t0 = time.perf_counter()
        yield rec
        rec["wall_s"] = round(time.perf_counter() - t0, 3)
        rec.update(meter.stop(), peak_host_rss_gib=device_meter.host_rss_peak_gib())
    finally:
        _OPEN.remove(rec)
    card["stages"].append(rec)
    log.info("%s", cards.stage_line(rec))


def measured(kind: str):
    """A node's ``execute`` measured as stage ``kind`` (put it under ``@classmethod``)."""
    def wrap(execute):
        @functools.wraps(execute)
        def run(cls, *args, **kwargs):
            with stage(kind):
                return execute(cls, *args, **kwargs)
        return run
    return wrap


def note(**fields) -> None:
    """What the stage being measured ran with (sizes, steps, the plan): into its record."""
    if _OPEN:
        _OPEN[-1].update(fields)


def text() -> str:
    """The prompt's card so far, as JSON."""
    return cards.to_text(current())
