"""Run one Stage II configuration on the tiny Wan in THIS process; print time and peak as JSON.

Meant to run in a fresh subprocess (``python -m swift_testing.probe ...``) so that the peak
resident memory belongs to this configuration alone. Large allocations are unmapped on free
(MALLOC_MMAP_THRESHOLD_ is set by the caller), so max RSS minus the baseline is the peak of
live tensors.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def probe_in_subprocess(*args: str) -> dict:
    """Run this probe with ``args`` in a fresh process; return its JSON result."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "swift_testing.probe", *args], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _status_mib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> float:
    """Start a fresh high-water mark (Linux: VmHWM reset); returns the RSS it starts from.

    ``ru_maxrss`` cannot be reset: a transient peak earlier in the process (imports, model
    construction) would hide the measured forward's own peak.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
        rss = _status_mib("VmRSS")
        if rss is not None:
            return rss
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_mib() -> float:
    hwm = _status_mib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, required=True)
    ap.add_argument("--m", type=int, default=3)
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--latent", type=int, nargs=2, default=(32, 32))
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--dim-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=256)
    ap.add_argument("--forward-only", action="store_true", help="one forward of --blocks blocks")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)

    from swift_core import diffusers_wan_denoiser, sample_csg
    from .tiny_wan import text_context, tiny_wan

    model = tiny_wan(in_channels=96, heads=a.dim_heads, ffn=a.ffn)
    h, w = a.latent
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(1, 48, a.blocks, h, w, generator=g)
    reference = torch.randn(1, 48, a.blocks, h, w, generator=g)
    den = diffusers_wan_denoiser(model, text_context())
    sigmas = torch.linspace(1, 0, a.steps + 1)
    with torch.no_grad():
        den(noise[:, :, :1, :4, :4], torch.ones(1, 1), reference=reference[:, :, :1, :4, :4],
            positions=torch.arange(1))                      # warm-up: allocator, kernels
        base = reset_peak()
        t0 = time.perf_counter()
        if a.forward_only:
            den(noise, torch.rand(1, a.blocks, generator=g), reference=reference,
                positions=torch.arange(a.blocks))
        else:
            sample_csg(den, noise, sigmas, anchor=reference[:, :, :1], reference=reference,
                       m=a.m, n=a.n)
        dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "peak_mib": peak_mib() - base, "blocks": a.blocks,
                      "m": a.m, "n": a.n}))


if __name__ == "__main__":
    main()
