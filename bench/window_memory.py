"""Memory of one Stage II window and of one VAE tile, traced on a CPU, beside swift_core.memory.

The REAL Wan2.2-TI2V-5B architecture (96 input channels, bf16, random init) and the Wan 2.2 VAE
are built under torch's FakeTensorMode, so nothing is allocated, and measured with torch's
MemTracker (``torch.distributed._tools.mem_tracker``): one window forward (no grad, PyTorch
attention) per (M, N), and one latent block of the VAE's decoder / encoder per tile size, with
its causal cache carried from the block before (as the pack's streaming decode runs it).

ComfyUI's own WanModel and VAE are traced when ComfyUI is importable (run it with ComfyUI's
Python and ``COMFYUI_PATH``); otherwise diffusers' WanTransformer3DModel (DiT rows only).

    COMFYUI_PATH=~/ComfyUI ~/ComfyUI/venv/bin/python -m bench.window_memory
    python -m bench.window_memory --size 1920x1088 --m 1,2,3 --n 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time

GIB = 2**30
WAN22_5B = dict(dim=3072, ffn=14336, heads=24, layers=30, in_channels=96, out_channels=48)


def comfy_available() -> bool:
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        return False
    sys.path.insert(0, path)
    try:
        from comfy.cli_args import args
        args.cpu = True                             # nothing here needs (or touches) a GPU
        args.use_pytorch_cross_attention = True
        import comfy.ldm.wan.model  # noqa: F401
        return True
    except ImportError as e:
        print(f"ComfyUI at {path} not importable here ({e}); tracing diffusers' Wan",
              file=sys.stderr)
        return False


def activations(peak: dict) -> int:
    """Bytes of everything but parameters and buffers at the traced peak."""
    kinds = next(iter(peak.values()))
    return sum(v for k, v in kinds.items()
               if str(k).split(".")[-1] in ("ACT", "TEMP", "OTH", "GRAD"))


def trace_window(blocks: int, lh: int, lw: int, comfy: bool, batch: int = 1) -> int:
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    c = WAN22_5B
    with FakeTensorMode():
        if comfy:
            import comfy.ops
            from comfy.ldm.wan.model import WanModel
            model = WanModel(model_type="t2v", patch_size=(1, 2, 2), in_dim=c["in_channels"],
                             dim=c["dim"], ffn_dim=c["ffn"], freq_dim=256, text_dim=4096,
                             out_dim=c["out_channels"], num_heads=c["heads"],
                             num_layers=c["layers"], dtype=torch.bfloat16,
                             operations=comfy.ops.disable_weight_init)
            t = torch.rand(batch, blocks) * 1000              # WAN22: one timestep per block
        else:
            from diffusers import WanTransformer3DModel
            model = WanTransformer3DModel(
                patch_size=(1, 2, 2), num_attention_heads=c["heads"], attention_head_dim=128,
                in_channels=c["in_channels"], out_channels=c["out_channels"], text_dim=4096,
                freq_dim=256, ffn_dim=c["ffn"], num_layers=c["layers"],
                rope_max_seq_len=1024).to(torch.bfloat16)
            t = torch.rand(batch, blocks * (lh // 2) * (lw // 2)) * 1000   # per token (TI2V)
        x = torch.randn(batch, c["in_channels"], blocks, lh, lw, dtype=torch.bfloat16)
        ctx = torch.randn(batch, 512, 4096, dtype=torch.bfloat16)
        tracker = MemTracker()
        tracker.track_external(model)
        with tracker, torch.no_grad():
            model(x, t, ctx) if comfy else model(x, t, ctx, return_dict=False)
        return activations(tracker.get_tracker_snapshot("peak"))


def trace_vae(tile_h: int, tile_w: int, decode: bool) -> int:
    """One steady-state latent block (the third: the causal cache is full) of the decoder or
    encoder on one tile."""
    import torch
    from comfy.ldm.wan.vae2_2 import WanVAE, count_conv3d, patchify
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with FakeTensorMode():
            vae = WanVAE(dim=160, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                         attn_scales=[], temperal_downsample=[False, True, True])
            net = vae.decoder if decode else vae.encoder
            feat = [None] * count_conv3d(net)
            tracker = MemTracker()
            tracker.track_external(vae)
            peaks = []
            with tracker, torch.no_grad():
                if decode:
                    x = vae.conv2(torch.randn(1, 48, 3, tile_h // 16, tile_w // 16))
                    chunks = [x[:, :, i:i + 1] for i in range(3)]
                else:
                    x = patchify(torch.randn(1, 3, 9, tile_h, tile_w), patch_size=2)
                    chunks = [x[:, :, :1], x[:, :, 1:5], x[:, :, 5:9]]
                for i, chunk in enumerate(chunks):
                    kw = {"first_chunk": i == 0} if decode else {}
                    out = net(chunk, feat_cache=feat, feat_idx=[0], **kw)
                    del out
                    peaks.append(activations(tracker.get_tracker_snapshot("peak")))
                    tracker.reset_mod_stats()        # MemTracker takes one call per module
            return peaks[-1]
    finally:
        torch.set_default_dtype(old)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.window_memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2560x1408")
    ap.add_argument("--m", default="1,2,3,4,5")
    ap.add_argument("--n", default="1,2")
    ap.add_argument("--blocks", type=int, default=21, help="latent blocks of the video (81 "
                                                           "frames: 21)")
    ap.add_argument("--tiles", default="256,512,768,1024,0", help="VAE tiles in pixels (0: "
                                                                  "the whole frame)")
    args = ap.parse_args(argv)

    from swift_core.memory import (WanDiTConfig, max_window_blocks, vae_tile_bytes,
                                   window_activation_bytes)
    comfy = comfy_available()
    w, h = (int(v) for v in args.size.split("x"))
    lh, lw = h // 16, w // 16
    c = WAN22_5B
    cfg = WanDiTConfig(dim=c["dim"], heads=c["heads"], ffn=c["ffn"], layers=c["layers"],
                       in_channels=c["in_channels"], out_channels=c["out_channels"])
    t0 = time.time()
    impl = "ComfyUI's WanModel" if comfy else "diffusers' WanTransformer3DModel"
    print(f"One Stage II window forward of Wan2.2-TI2V-5B at {w}x{h} ({impl}, bf16, no grad), "
          f"traced under FakeTensorMode with MemTracker; activations beside swift_core.memory:\n")
    print("| M | N | window blocks | traced | estimate | estimate / traced |")
    print("| --- | --- | --- | --- | --- | --- |")
    pairs = [(m, n) for n in map(int, args.n.split(",")) for m in map(int, args.m.split(","))]
    worst = 0.0
    for m, n in pairs + [(args.blocks - 1, 0)]:
        blocks = max_window_blocks(args.blocks, m, n)
        traced = trace_window(blocks, lh, lw, comfy)
        est = window_activation_bytes(cfg, blocks, lh, lw, per_token_timestep=not comfy)
        worst = max(worst, abs(est / traced - 1))
        label = ("no CSG", "-") if m == args.blocks - 1 else (m, n)
        print(f"| {label[0]} | {label[1]} | {blocks} | {traced / GIB:.2f} GiB | "
              f"{est / GIB:.2f} GiB | {est / traced:.2f} |")
    if comfy:
        print("\nThe Wan 2.2 VAE on one tile, one latent block (4 frames) with its causal cache "
              "full (bf16):\n")
        print("| tile | decode traced | decode estimate | ratio | encode traced | "
              "encode estimate | ratio |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for tile in map(int, args.tiles.split(",")):
            th, tw = (h, w) if tile == 0 else (min(tile, h), min(tile, w))
            dec, enc = trace_vae(th, tw, True), trace_vae(th, tw, False)
            est_dec = vae_tile_bytes(th, tw, decode=True)
            est_enc = vae_tile_bytes(th, tw, decode=False)
            worst = max(worst, abs(est_dec / dec - 1), abs(est_enc / enc - 1))
            print(f"| {tw}x{th} | {dec / GIB:.2f} GiB | {est_dec / GIB:.2f} GiB | "
                  f"{est_dec / dec:.2f} | {enc / GIB:.2f} GiB | {est_enc / GIB:.2f} GiB | "
                  f"{est_enc / enc:.2f} |")
    print(f"\nLargest disagreement: {worst:.0%} ({time.time() - t0:.0f} s on "
          f"{time.strftime('%Y-%m-%d')}). The tiled decode's estimate also counts the blended "
          f"full frames (not part of the per-tile trace).")
    return 0 if worst <= 0.15 else 1


if __name__ == "__main__":
    raise SystemExit(main())
