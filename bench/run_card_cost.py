"""What the run card costs: the same Stage II run (the sampler's own path, ComfyUI's WanModel at
reduced size, random weights) with and without being measured into a card, alternated so both
see the same machine state, and one empty stage timed alone.

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/venv/bin/python -m bench.run_card_cost [--repeats 5]

Prints the median of each and their ratio (the card's share of a run), and the cost of one
stage record in microseconds. On a GPU the card also synchronises the device at the node's
start and end (once per node, where ComfyUI's own save of the output synchronises anyway).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bench.gpu_stage2 import REDUCED, ComfyStage2, load_pack
from swift_core import latent_blocks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--steps", type=int, default=2)
    a = ap.parse_args(argv)
    host = load_pack()
    if host is None:
        sys.exit("needs COMFYUI_PATH (a ComfyUI checkout) and ComfyUI's Python")
    stage2 = ComfyStage2(REDUCED, host)
    lh, lw = REDUCED["latent"]
    g = torch.Generator().manual_seed(0)
    blocks = latent_blocks(a.frames)
    reference = torch.randn(1, 48, blocks, lh, lw, generator=g)
    context = torch.randn(1, REDUCED["text"], 4096, generator=g)

    def once(card: bool) -> float:
        stage2.card = card
        t0 = time.perf_counter()
        with torch.inference_mode():
            stage2.run(context, None, reference, 3, 1, a.steps, lambda: None)
        return time.perf_counter() - t0

    once(True)                                             # warm-up
    times = {True: [], False: []}
    for i in range(a.repeats):
        for card in ((True, False) if i % 2 == 0 else (False, True)):
            times[card].append(once(card))
    with_card, bare = statistics.median(times[True]), statistics.median(times[False])
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        with host.run_card.stage("bench"):
            host.run_card.note(frames=a.frames, plan={"m": 3, "n": 1, "segments": [[1, 3]]})
        host.run_card.text()
    alone = (time.perf_counter() - t0) / n
    print(f"Stage II, {a.frames} frames at {lw * 16}x{lh * 16} (reduced model), {a.steps} steps, "
          f"M3N1, {a.repeats} runs each on {stage2.device}:")
    print(f"  with the run card {with_card:.3f} s, without {bare:.3f} s: ratio "
          f"{with_card / bare:.4f} (the card's share: {100 * (with_card / bare - 1):+.2f}%)")
    print(f"  one stage record with a note and the card's JSON: {alone * 1e6:.0f} us "
          f"({100 * alone / bare:.3f}% of this run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
