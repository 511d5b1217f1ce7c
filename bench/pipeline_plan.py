"""What each stage of the 2K pipeline needs, and what fits 24, 16 and 12 GB cards, at 2K/81,
2K/321 and 4K/81: the plan the nodes' ``auto`` would make (swift_core.fit: the same functions
the Stage II Sampler and the VAE calls run), on swift_core.memory's estimates at the real model
shapes (within 1% of the FakeTensorMode traces of bench.window_memory), printed as shares of
the card.

    python -m bench.pipeline_plan
    python -m bench.pipeline_plan --cards 24,16,12,8 --videos 2560x1408x81,3840x2176x81

Assumed: 1 GiB of each card is not ComfyUI's (CUDA context, ComfyUI's reserve); Stage I is Wan
2.1 I2V 14B in fp8 e4m3fn at W/4 x H/4, long videos through core's Wan context windows of 81
frames; Stage II is Wan2.2-TI2V-5B in bf16, else in fp8 e4m3fn (the loader's weight_dtype), else
partly offloaded by ComfyUI; the Wan 2.2 VAE (bf16) stays loaded beside Stage II while it
streams. A stage whose weights do not fit is run by ComfyUI with part of them offloaded to host
RAM (slower, same result).
"""
from __future__ import annotations

import argparse

from swift_core.fit import choose_m, choose_tile
from swift_core.memory import GIB, WAN22_TI2V_5B, WanDiTConfig, window_activation_bytes
from swift_core.rules import SwiftInputError

#: Wan 2.1 I2V 14B (Stage I): 36 input channels, Wan 2.1 VAE latents (8x spatial, 16 channels)
WAN21_I2V_14B = WanDiTConfig(dim=5120, heads=40, ffn=13824, layers=40, in_channels=36,
                             out_channels=16)
VAE22_BYTES = 705_000_000 * 2            # the Wan 2.2 VAE in bf16
NOT_COMFYS = GIB                         # CUDA context and ComfyUI's reserve
STAGE1_WINDOW = 81                       # core's Wan context windows: 81 frames at a time


def stage1(card: int, width: int, height: int, frames: int) -> dict:
    w1, h1 = width // 4, height // 4
    blocks = (min(frames, STAGE1_WINDOW) - 1) // 4 + 1
    acts = window_activation_bytes(WAN21_I2V_14B, blocks, h1 // 8, w1 // 8)
    weights = WAN21_I2V_14B.params                                   # fp8: a byte each
    resident = max(0, min(weights, card - NOT_COMFYS - acts))
    return {"acts": acts, "weights": weights, "resident": resident,
            "peak": resident + acts, "fits": acts <= card - NOT_COMFYS}


def stage2(card: int, width: int, height: int, frames: int) -> dict:
    blocks, lh, lw = (frames - 1) // 4 + 1, height // 16, width // 16
    usable = card - NOT_COMFYS
    for dtype, size in (("bf16", 2), ("fp8", 1), ("bf16, offloaded", 0)):
        weights = WAN22_TI2V_5B.params * size
        budget = usable - weights - VAE22_BYTES
        try:
            m = choose_m(budget, WAN22_TI2V_5B, blocks, lh, lw, 1)
            tile = choose_tile(budget, height, width, overlap=64)
        except SwiftInputError:
            continue
        return {"dtype": dtype, "m": m.value, "tile": tile.value, "weights": weights,
                "peak": weights + VAE22_BYTES + max(m.need, tile.need)}
    return {"dtype": "does not fit", "m": 0, "tile": 0, "weights": 0, "peak": 0}


def encode_tile(card: int, width: int, height: int) -> int:
    try:
        return choose_tile(card - NOT_COMFYS - VAE22_BYTES, height, width, decode=False).value
    except SwiftInputError:
        return 0


def row(card_gb: int, width: int, height: int, frames: int) -> str:
    card = card_gb * 10**9
    s1, s2 = stage1(card, width, height, frames), stage2(card, width, height, frames)
    offloaded = (s1["weights"] - s1["resident"]) / GIB
    s1_text = (f"{s1['peak'] / card:.2f} ({'all weights resident' if offloaded <= 0 else f'{offloaded:.1f} GiB of weights offloaded'})"
               if s1["fits"] else "does not fit")
    tile = lambda t: "whole frame" if t >= max(width, height) else f"{t} px"   # noqa: E731
    s2_text = (f"{s2['peak'] / card:.2f} ({s2['dtype']}, M={s2['m']}, decode {tile(s2['tile'])})"
               if s2["m"] else "does not fit")
    return (f"| {card_gb} GB | {width}x{height}, {frames} | {s1_text} | "
            f"{tile(encode_tile(card, width, height))} | {s2_text} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.pipeline_plan", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cards", default="24,16,12", help="card sizes in GB")
    ap.add_argument("--videos", default="2560x1408x81,2560x1408x321,3840x2176x81",
                    help="WxHxFRAMES")
    args = ap.parse_args(argv)
    print("Peak of each stage as a share of the card (estimates at the real model shapes; "
          "Stage II: the plan auto makes):\n")
    print("| card | video | Stage I (Wan 2.1 14B fp8) | Reference encode tile | "
          "Stage II + streaming decode |\n| --- | --- | --- | --- | --- |")
    for card in (int(v) for v in args.cards.split(",")):
        for video in args.videos.split(","):
            w, h, f = (int(v) for v in video.split("x"))
            print(row(card, w, h, f))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
