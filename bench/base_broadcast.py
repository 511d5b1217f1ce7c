"""Rank 0's memory while it hands the base model to the other ranks: a tiny Wan scaled up (dim
1024, 16 blocks, FFN 8192: 0.44 B parameters) written as a ComfyUI-layout fp16 file, the Stage II trainer's
``build_model`` under torchrun on 2 and 4 CPU ranks (gloo). Rank 0's peak resident memory above
what it held before, beside one bf16 copy of the model, for the streamed reader (one block at a
time in the file's dtype) and, side by side, the whole-model read it replaced (fp32 on rank 0).

    python -m bench.base_broadcast                 # about two minutes on 2 cores
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCALED = dict(num_attention_heads=8, num_layers=16, ffn_dim=8192)


def write_base(path: Path, scale: dict = SCALED) -> int:
    """The scaled-up tiny Wan 2.2 TI2V (48 channels) as ComfyUI's repackaged fp16 file."""
    from swift_train.export import write
    from swift_train.model import load_wan, tiny_config
    model = load_wan("tiny", seed=0, tiny={**tiny_config(), **scale})
    params = sum(p.numel() for p in model.parameters())
    write(model.state_dict(), str(path), dtype="fp16", rope="window", shift=5.0)
    return params


def worker(base: str, whole: bool, dump: str | None = None) -> None:
    """Under torchrun: the model built as the trainer builds it; rank 0 prints its peak (and,
    with ``dump``, saves the full weights the ranks hold, gathered back)."""
    import torch.distributed as dist
    from swift_testing.probe import _status_mib, peak_mib, reset_peak
    from swift_train import train
    args = argparse.Namespace(base=base, seed=0, grad_checkpointing=False, replicas=1,
                              precision="bf16")
    rank, world, device = train.setup(0)
    dist.barrier()
    start = reset_peak()
    model = (whole_model_broadcast if whole else train.build_model)(args, device, world)
    dist.barrier()
    if rank == 0:
        print("ROW=" + json.dumps({"peak_mib": peak_mib() - start,
                                   "held_mib": _status_mib("VmRSS") - start}))
    if dump:
        from safetensors.torch import save_file
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                    cpu_offload=True))
        if rank == 0:
            save_file({k: v.contiguous() for k, v in full.items()}, dump)
    dist.destroy_process_group()


def whole_model_broadcast(args, device, world) -> None:
    """The way before the streamed reader: rank 0 loads the whole base in fp32 and broadcasts
    its state dict at once."""
    import torch
    import torch.distributed as dist
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.fsdp import fully_shard
    from swift_train.model import empty_like_config, load_wan, rope_tables, widen_patch_embedding
    from swift_train.train import device_mesh
    full, config = {}, [None]
    if dist.get_rank() == 0:
        base = widen_patch_embedding(load_wan(args.base, torch.float32))
        config[0] = {k: v for k, v in base.config.items() if not k.startswith("_")}
        full = base.state_dict()
    dist.broadcast_object_list(config, src=0)
    model = empty_like_config(config[0])
    mesh = device_mesh(device, world, 1)
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    model.to_empty(device=device)
    rope_tables(model, force=True)
    set_model_state_dict(model, full, options=StateDictOptions(full_state_dict=True,
                                                               broadcast_from_rank0=True))
    return model


def run(base: Path, whole: bool, ranks: int, dump: Path | None = None) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           str(ranks), "-m", "bench.base_broadcast", "--worker", str(base)] + \
        (["--whole"] if whole else []) + (["--dump", str(dump)] if dump else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", MALLOC_MMAP_THRESHOLD_="65536",
               PYTHONPATH=str(ROOT))
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1800)
    rows = [x for x in r.stdout.splitlines() if x.startswith("ROW=")]
    if r.returncode or not rows:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(rows[0][4:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.base_broadcast", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--whole", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dump", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.worker, args.whole, args.dump)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.safetensors"
        params = write_base(base)
        bf16_mib = params * 2 / 2**20
        rows = [(ranks, whole, run(base, whole, ranks)) for ranks in (2, 4)
                for whole in (False, True)]
    print(f"Rank 0 handing out a {params / 1e9:.2f} B-parameter base (one bf16 copy: "
          f"{bf16_mib:.0f} MiB) to its ranks (gloo, CPU); resident memory above what it held "
          "before: its peak, and what it keeps after (its own fp32 shard and torch's state):\n")
    print("| ranks | how rank 0 reads the base | peak | / one bf16 copy | kept after |\n"
          "| --- | --- | --- | --- | --- |")
    for ranks, whole, r in rows:
        name = "whole model in fp32 (before)" if whole else "a block at a time, file dtype (now)"
        print(f"| {ranks} | {name} | {r['peak_mib']:.0f} MiB | {r['peak_mib'] / bf16_mib:.2f} | "
              f"{r['held_mib']:.0f} MiB |")
    print("ROW=" + json.dumps({"params": params, "bf16_mib": bf16_mib,
                               "rows": [[k, w, r] for k, w, r in rows]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
