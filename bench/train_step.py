"""One Stage II training step (CSG teacher forcing) at full size: time and peak memory, measured
next to swift_core.memory's estimate, in one run.

    python -m bench.train_step                          # GPU: Wan2.2-TI2V-5B shape, random init, 2560x1408
    python -m bench.train_step --tiny --size 256x256    # CPU smoke run

Weights are bf16 on one device; the optimizer state (fp32 weights, gradients, AdamW moments: 16
bytes per parameter) is what FSDP shards over N GPUs, so it is reported as the estimate per GPU,
not allocated. Each (M, N) window of the paper's draws is timed: forward + backward with
diffusers' activation checkpointing.
"""
from __future__ import annotations

import argparse
import time

import torch

from swift_core.memory import (WAN22_TI2V_5B, WanDiTConfig, training_activation_bytes,
                               training_flops, training_state_bytes)
from swift_core.plan import plan_segments
from swift_core.rules import WAN22_SPATIAL
from swift_core.sizes import latent_blocks
from swift_core.adapters import diffusers_wan_velocity
from swift_core.training import masked_velocity_loss, training_window

GIB = 2**30


def build(tiny: bool, device):
    from diffusers import WanTransformer3DModel
    from swift_train.model import HEAD_DIM, tiny_config, widen_patch_embedding
    if tiny:
        cfg = tiny_config()
    else:
        c = WAN22_TI2V_5B
        cfg = dict(patch_size=(1, 2, 2), num_attention_heads=c.heads, attention_head_dim=HEAD_DIM,
                   in_channels=48, out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=c.ffn,
                   num_layers=c.layers, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                   eps=1e-6, rope_max_seq_len=1024)
    with torch.device(device):
        model = WanTransformer3DModel(**cfg).to(torch.bfloat16)
    model = widen_patch_embedding(model)
    model.enable_gradient_checkpointing()
    c = model.config
    return model.train(), WanDiTConfig(dim=c.num_attention_heads * c.attention_head_dim,
                                       heads=c.num_attention_heads, ffn=c.ffn_dim,
                                       layers=c.num_layers, in_channels=96)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--size", default="2560x1408")
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--world", type=int, default=8, help="GPUs the state is sharded over")
    ap.add_argument("--tflops", type=float, default=400.0,
                    help="achieved bf16 TFLOP/s assumed by the time estimate")
    args = ap.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    w, h = map(int, args.size.split("x"))
    blocks, lh, lw = latent_blocks(args.frames), h // WAN22_SPATIAL, w // WAN22_SPATIAL
    model, cfg = build(args.tiny, device)
    velocity = diffusers_wan_velocity(model)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 48, blocks, lh, lw, generator=g).to(device)
    ref = torch.randn(1, 48, blocks, lh, lw, generator=g).to(device)
    ctx = torch.randn(1, 512, 4096, generator=g).to(device)
    print(f"{device}, {'tiny' if args.tiny else 'Wan2.2-TI2V-5B shape'}, {w}x{h}, {args.frames} "
          f"frames, {cfg.params / 1e9:.2f} B block parameters")
    print("| M N | window blocks | tokens | fwd+bwd s | est. s | peak GiB | est. activations GiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m, n in ((2, 1), (2, 2), (3, 1), (3, 2)):
        seg = max(plan_segments(blocks, m, n), key=lambda s: len(s.window))
        win = training_window(x0, ref, seg, torch.tensor([0.5], device=device),
                              torch.randn_like(x0))
        times = []
        for _ in range(2):                           # the first is warm-up
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            loss = masked_velocity_loss(velocity(win.x, win.sigma, reference=win.reference,
                                                 positions=win.positions, context=ctx), win)
            loss.backward()
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        k = len(seg.window)
        peak = torch.cuda.max_memory_allocated() / GIB if device.type == "cuda" else float("nan")
        est_act = training_activation_bytes(cfg, k, lh, lw) / GIB
        print(f"| {m} {n} | {k} | {cfg.tokens(k, lh, lw)} | {times[-1]:.2f} | "
              f"{training_flops(cfg, k, lh, lw) / (args.tflops * 1e12):.2f} | {peak:.1f} | "
              f"{est_act:.2f} |")
    print(f"bf16 weights on the device: {cfg.params * 2 / GIB:.1f} GiB (block parameters); "
          f"sharded training state per GPU at N={args.world}: "
          f"{training_state_bytes(cfg, args.world) / GIB:.1f} GiB (estimate, not allocated here)")


if __name__ == "__main__":
    main()
