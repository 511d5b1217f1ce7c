"""Memory of one Stage II training step, traced on a CPU (swift_train.trace): the REAL
Wan2.2-TI2V-5B architecture (diffusers' WanTransformer3DModel, 96 input channels) built under
torch's FakeTensorMode with a fake process group, sharded with FSDP2 as swift_train does, and
measured by torch's FSDP2 memory tracker over two steps (the second holds the AdamW state).
Nothing is allocated: a configuration takes about half a minute. Printed beside
swift_core.memory's estimate.

    python -m bench.train_memory                                   # the default table
    python -m bench.train_memory --size 2560x1408 --pairs 2x1,3x2 --world 8,64 --checkpointing on,off
"""
from __future__ import annotations

import argparse
import time

GIB = 2**30


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
    args = ap.parse_args(argv)
    from swift_train.trace import WAN22_5B_STAGE2, traced
    rows, t0 = [], time.time()
    for size in args.size.split(","):
        w, h = (int(v) for v in size.split("x"))
        for pair in args.pairs.split(","):
            m, n = (int(v) for v in pair.split("x"))
            for world in (int(v) for v in args.world.split(",")):
                for ckpt in args.checkpointing.split(","):
                    row = traced(WAN22_5B_STAGE2, w, h, m, n, world,
                                 checkpointing=ckpt == "on")
                    rows.append({**row, **estimate(row)})
    print(f"One Stage II training step of Wan2.2-TI2V-5B, traced (FakeTensorMode, FSDP2 memory "
          f"tracker; {time.time() - t0:.0f} s on {time.strftime('%Y-%m-%d')}):\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
