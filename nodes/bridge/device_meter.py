"""What a node or one window used: CUDA-event time and torch's peak memory counters on a CUDA
device, the process's RSS high-water mark everywhere (the run card's and the first window's
measures). Only CUDA devices have counters; elsewhere the device figures are None.
"""
from __future__ import annotations

import resource
import sys

import torch


def host_rss_peak_gib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak * (1 if sys.platform == "darwin" else 1024) / 2**30, 3)


def _cuda(device):
    return device if getattr(device, "type", None) == "cuda" else None


#: the highest peak a :class:`WindowProbe` read before resetting the counters (the node's peak
#: is the larger of it and the counters at the node's end)
_PEAK_BEFORE = {"allocated": 0, "reserved": 0}


def _peaks(device) -> dict:
    return {"allocated": torch.cuda.max_memory_allocated(device),
            "reserved": torch.cuda.max_memory_reserved(device)}


class DeviceMeter:
    """CUDA events and torch's peak counters of one CUDA device; nothing elsewhere."""

    def __init__(self, device):
        self.device = _cuda(device)

    def start(self) -> None:
        if self.device is not None:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            _PEAK_BEFORE.update(allocated=0, reserved=0)
            self.t0 = torch.cuda.Event(enable_timing=True)
            self.t0.record()

    def stop(self) -> dict:
        if self.device is None:
            return {"device_s": None, "peak_device_gib": None}
        t1 = torch.cuda.Event(enable_timing=True)
        t1.record()
        t1.synchronize()
        peak = {k: max(v, _PEAK_BEFORE[k]) / 2**30 for k, v in _peaks(self.device).items()}
        return {"device_s": round(self.t0.elapsed_time(t1) / 1000, 3),
                "peak_device_gib": round(peak["allocated"], 3),
                "peak_reserved_gib": round(peak["reserved"], 3)}


class WindowProbe:
    """What one call's work took on a CUDA device: its peak allocated memory less what stays
    allocated after it (the weights ComfyUI loaded, the latents: swift_core.fit.FirstWindowFit's
    probe) or, ``since_start``, less what was allocated as it started (its output counts too:
    swift_core.fit.FirstTileFit's probe). ``peak()`` is None on any other device."""

    def __init__(self, device, since_start: bool = False):
        self.device, self.since_start, self.base = _cuda(device), since_start, 0

    def start(self) -> None:
        if self.device is not None:
            torch.cuda.synchronize(self.device)
            for k, v in _peaks(self.device).items():        # the node's peak so far is kept
                _PEAK_BEFORE[k] = max(_PEAK_BEFORE[k], v)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)

    def peak(self) -> int | None:
        if self.device is None:
            return None
        torch.cuda.synchronize(self.device)
        less = self.base if self.since_start else torch.cuda.memory_allocated(self.device)
        return int(torch.cuda.max_memory_allocated(self.device) - less)
