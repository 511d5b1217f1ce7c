"""Memory of one Stage II training step, traced on a CPU: the REAL Wan2.2-TI2V-5B architecture
(diffusers' WanTransformer3DModel, 96 input channels, random init) built under torch's
FakeTensorMode with a fake process group, sharded with FSDP2 as swift_train does, and measured by
torch's FSDP2 memory tracker (``torch.distributed._tools.fsdp2_mem_tracker``) over two steps (the
second holds the AdamW state). Nothing is allocated: a configuration takes about half a minute.
Printed beside swift_core.memory's estimate.

    python -m bench.train_memory                                   # the default table
    python -m bench.train_memory --size 2560x1408 --pairs 2x1,3x2 --world 8,64 --checkpointing on,off
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

GIB = 2**30


def one(width: int, height: int, m: int, n: int, world: int, checkpointing: bool) -> dict:
    """Trace one configuration (in this process: it starts a fake process group)."""
    import torch
    import torch.distributed as dist
    from diffusers import WanTransformer3DModel
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.fsdp2_mem_tracker import FSDPMemTracker
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    from torch.testing._internal.distributed.fake_pg import FakeStore

    from swift_core.memory import max_window_blocks

    dist.init_process_group("fake", rank=0, world_size=world, store=FakeStore())
    mesh = init_device_mesh("cpu", (world,))
    lh, lw = height // 16, width // 16
    blocks = max_window_blocks(21, m, n)                 # 81 frames: 21 latent blocks
    with FakeTensorMode():
        model = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=24, attention_head_dim=128,
            in_channels=96, out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=14336,
            num_layers=30, rope_max_seq_len=1024)
        if checkpointing:
            model.enable_gradient_checkpointing()
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        for block in model.blocks:
            fully_shard(block, mesh=mesh, mp_policy=mp)
        fully_shard(model, mesh=mesh, mp_policy=mp)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        x = torch.randn(1, 96, blocks, lh, lw)
        t = torch.rand(1, blocks * (lh // 2) * (lw // 2)) * 1000
        context = torch.randn(1, 512, 4096)
        tracker = FSDPMemTracker(model, opt)
        tracker.track_inputs((x, t, context))
        with tracker:
            for step in range(2):
                opt.zero_grad()
                out = model(x, t, context, return_dict=False)[0]
                out.float().square().mean().backward()
                opt.step()
                if step == 0:
                    tracker.reset_mod_stats()
        peak = next(iter(tracker.get_tracker_snapshot("peak").values()))
    dist.destroy_process_group()
    kind = {str(k.value) if hasattr(k, "value") else str(k): v for k, v in peak.items()}
    state = sum(kind.get(k, 0) for k in ("Sharded Param", "Sharded Grad", "OptState"))
    acts = sum(kind.get(k, 0) for k in ("Activation", "Temp"))
    return {"size": f"{width}x{height}", "pair": f"{m}x{n}", "window_blocks": blocks,
            "world": world, "checkpointing": checkpointing, "traced_total": kind["Total"],
            "traced_state": state, "traced_activations": acts,
            "traced_gathered": kind["Total"] - state - acts}


def estimate(row: dict) -> dict:
    """swift_core.memory's figures for the same step."""
    from swift_core.memory import (WAN22_TI2V_5B, training_activation_bytes,
                                   training_state_bytes)
    w, h = (int(v) for v in row["size"].split("x"))
    b, lh, lw = row["window_blocks"], h // 16, w // 16
    state = training_state_bytes(WAN22_TI2V_5B, row["world"])
    acts = training_activation_bytes(WAN22_TI2V_5B, b, lh, lw, row["checkpointing"])
    return {"estimate_state": state, "estimate_activations": acts}


def table(rows: list[dict]) -> str:
    out = ["| size | M x N (window) | ranks | act. ckpt | traced peak | traced state | "
           "estimate state | traced activations | estimate activations | ratio |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ea, ta = r["estimate_activations"], r["traced_activations"]
        out.append(f"| {r['size']} | {r['pair']} ({r['window_blocks']}) | {r['world']} | "
                   f"{'on' if r['checkpointing'] else 'off'} | {r['traced_total'] / GIB:.1f} GiB | "
                   f"{r['traced_state'] / GIB:.2f} | {r['estimate_state'] / GIB:.2f} | "
                   f"{ta / GIB:.2f} | {ea / GIB:.2f} | {ea / ta:.2f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.train_memory", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2560x1408,1920x1088")
    ap.add_argument("--pairs", default="2x1,3x2", help="(M, N): the smallest and largest windows")
    ap.add_argument("--world", default="8,64")
    ap.add_argument("--checkpointing", default="on")
    ap.add_argument("--one", nargs=6, type=int, metavar=("W", "H", "M", "N", "WORLD", "CKPT"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        w, h, m, n, world, ckpt = args.one
        print("ROW=" + json.dumps(one(w, h, m, n, world, bool(ckpt))))
        return 0
    rows, t0 = [], time.time()
    for size in args.size.split(","):
        w, h = (int(v) for v in size.split("x"))
        for pair in args.pairs.split(","):
            m, n = (int(v) for v in pair.split("x"))
            for world in (int(v) for v in args.world.split(",")):
                for ckpt in args.checkpointing.split(","):
                    r = subprocess.run([sys.executable, "-m", "bench.train_memory", "--one",
                                        str(w), str(h), str(m), str(n), str(world),
                                        str(int(ckpt == "on"))], capture_output=True, text=True)
                    line = [x for x in r.stdout.splitlines() if x.startswith("ROW=")]
                    if not line:
                        print(r.stderr[-2000:], file=sys.stderr)
                        return 1
                    row = json.loads(line[0][4:])
                    rows.append({**row, **estimate(row)})
    print(f"One Stage II training step of Wan2.2-TI2V-5B, traced (FakeTensorMode, FSDP2 memory "
          f"tracker; {time.time() - t0:.0f} s on {time.strftime('%Y-%m-%d')}):\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
