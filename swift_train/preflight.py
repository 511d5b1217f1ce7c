"""Check a Stage II training run before renting the cluster, on your own samples.

    python -m swift_train.preflight --data samples/ --world 64 --replicas 8

Five sections, each saying what was measured and what is projected:

1. samples (measured): count, videos, latent size, frames, text lengths, dtype, and whether each
   --data folder is on a filesystem every node can share (multi-node runs read it by path);
2. learning (measured, toy size): the real trainer (torchrun, one rank, a tiny random Stage II)
   for ``--steps`` on a small crop of every sample, whole videos held out: its held-out error
   beside the answers that need no learning (copy the reference, repeat the anchor, their best
   blend). A falling error shows the samples train; a toy model is not expected to beat them;
3. memory (traced): one real-size step of Wan2.2-TI2V-5B on this world size, under torch's
   FakeTensorMode and FSDP2 memory tracker (swift_train.trace): nothing is allocated;
4. communication (counted): the bytes FSDP2 / HSDP collectives move in that step, counted under
   a fake process group by torch's comm debug mode, beside the FSDP2 algebra;
5. step time at 8, 16 and 64 GPUs (projected): compute from the step's FLOPs at the stated
   throughput, communication from the counted bytes at the stated link bandwidths, one replica
   per node (HSDP).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GIB = 2**30
#: filesystems that every node of a cluster can mount at the same path
SHARED_FS = ("nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "glusterfs", "cifs",
             "smb3", "9p", "fuse.gcsfuse", "fuse.s3fs", "fuse.mountpoint-s3", "fuse.juicefs",
             "fuse.lustre", "wekafs", "panfs", "virtiofs")


def parse_args(argv=None):
    from .loop import OneLineParser
    ap = OneLineParser(prog="python -m swift_train.preflight", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, action="append", help="a folder of samples (repeat)")
    ap.add_argument("--world", type=int, default=8, help="ranks of the planned run")
    ap.add_argument("--replicas", type=int, default=1, help="HSDP replica groups of the run")
    ap.add_argument("--size", default=None, help="WxH of the traced step (default: the samples')")
    ap.add_argument("--pair", default="3x2", help="MxN of the traced window (the largest drawn)")
    ap.add_argument("--steps", type=int, default=300, help="toy training steps")
    ap.add_argument("--val-count", type=int, default=2, help="toy run: held-out samples (videos)")
    ap.add_argument("--model", choices=("wan22-5b", "tiny"), default="wan22-5b",
                    help="architecture traced (tiny: a quick look, tests)")
    ap.add_argument("--gpu-tflops", type=float, default=989.0,
                    help="dense bf16 TFLOP/s of one GPU (H100 SXM: 989)")
    ap.add_argument("--mfu", type=float, default=0.35, help="share of it a step reaches")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--intra-gbs", type=float, default=300.0,
                    help="GB/s one GPU moves inside a node (NVLink, measured bus bandwidth)")
    ap.add_argument("--inter-gbs", type=float, default=45.0,
                    help="GB/s one GPU moves across nodes (a 400 Gb/s NIC per GPU)")
    ap.add_argument("--skip", default="", help="sections to leave out, e.g. learning,memory")
    ap.add_argument("--report", default=None, metavar="FILE", help="also write it all as JSON")
    args = ap.parse_args(argv)
    if args.world < 1 or args.replicas < 1 or args.world % args.replicas:
        ap.error(f"--replicas {args.replicas}: must divide --world {args.world}")
    return args


def filesystem(path: str) -> tuple[str, str]:
    """(mount point, type) of the filesystem holding ``path`` (from /proc/mounts)."""
    real, best = os.path.realpath(path), ("/", "unknown")
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")):
            if len(parts[1]) >= len(best[0]):
                best = (parts[1], parts[2])
    return best


def samples_section(folders: list[str]) -> tuple[list[str], dict]:
    from safetensors import safe_open

    from .data import check_one_size, sample_files
    lines, summary = [], {}
    for folder in folders:
        files = sample_files(folder)
        check_one_size(folder, files)
        videos, texts, frames, dtypes, shape = set(), [], set(), set(), None
        for f in files:
            with safe_open(f, framework="pt") as st:
                meta = st.metadata() or {}
                shape = st.get_slice("x0").get_shape()
                texts.append(st.get_slice("context").get_shape()[0])
            videos.add(meta.get("source", Path(f).stem))
            frames.add(meta.get("frames", "?"))
            dtypes.add(meta.get("dtype", "?"))
        c, t, h, w = shape
        mount, fstype = filesystem(folder)
        shared = fstype in SHARED_FS or fstype.startswith("fuse.")
        summary[folder] = {"samples": len(files), "videos": len(videos), "latent": [c, t, h, w],
                           "size": [w * 16, h * 16], "fs": fstype, "shared": shared}
        lines += [f"  {folder}: {len(files)} samples of {len(videos)} video(s); latent "
                  f"{c}x{t}x{h}x{w} = {w * 16}x{h * 16} px, {'/'.join(sorted(frames))} frames; "
                  f"text {min(texts)}-{max(texts)} tokens; {'/'.join(sorted(dtypes))}",
                  f"  filesystem: {fstype} at {mount}: " +
                  ("shared, every node can read it by the same path" if shared else
                   "local to this machine: fine on one node; on several nodes put --data and "
                   "--out where every node sees them at the same path (NFS, Lustre, ...)")]
    return lines, summary


def cropped_copy(files: list[str], out: Path, latent: int = 4) -> None:
    """Each sample cut to a centred ``latent`` x ``latent`` latent crop (all blocks), metadata
    kept: the toy run's data."""
    from swift_core.samples import read_sample, write_sample
    for f in files:
        s = read_sample(f)
        h, w = s.x0.shape[-2:]
        y, x = max((h - latent) // 2, 0), max((w - latent) // 2, 0)
        cut = lambda t: t[..., y:y + latent, x:x + latent].float()       # noqa: E731
        meta = {**s.meta, "width": str(cut(s.x0).shape[-1] * 16),
                "height": str(cut(s.x0).shape[-2] * 16)}
        write_sample(str(out / Path(f).name), cut(s.x0), cut(s.reference), s.context.float(),
                     meta, dtype="float32")


def learning_section(folders: list[str], steps: int, val_count: int) -> tuple[list[str], dict]:
    from .data import sample_files
    with tempfile.TemporaryDirectory() as tmp:
        data, run = Path(tmp) / "data", Path(tmp) / "run"
        data.mkdir()
        for folder in folders:
            cropped_copy(sample_files(folder), data)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               "1", "-m", "swift_train.train", "--no-progress", "--data", str(data), "--out",
               str(run), "--base", "tiny", "--precision", "fp32", "--lr", "1e-3", "--steps",
               str(steps), "--decay-steps", str(steps // 2), "--val-count", str(val_count),
               "--val-every", str(max(steps, 1)),
               "--save-every", str(max(steps, 1)), "--workers", "0"]
        r = subprocess.run(cmd, capture_output=True, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1"))
        if r.returncode:
            return [f"  the toy run failed: {r.stderr.strip().splitlines()[-1:]}"], {}
        log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    validated = [e for e in log if "val_error" in e]
    first, last = validated[0], validated[-1]
    losses = [e["loss"] for e in log if "loss" in e]
    k = max(len(losses) // 10, 1)
    out = {"loss_first": sum(losses[:k]) / k, "loss_last": sum(losses[-k:]) / k,
           "untrained": first["val_error"], "trained": last["val_error"],
           "copy_reference": first["val_copy_reference"],
           "static_anchor": first["val_static_anchor"], "best_blend": first["val_best_blend"],
           "best_blend_alpha": first["val_best_blend_alpha"]}
    lines = [f"  {steps} steps (the last half decaying) of a tiny random Stage II on 64x64 px "
             f"crops, {val_count} sample(s) of whole videos held out:",
             f"  training loss {out['loss_first']:.3f} -> {out['loss_last']:.3f}; held-out error "
             f"untrained {out['untrained']:.3f} -> trained {out['trained']:.3f}",
             f"  answers that need no learning: copy the reference {out['copy_reference']:.3f}, "
             f"repeat the anchor {out['static_anchor']:.3f}, best blend {out['best_blend']:.3f} "
             f"(a = {out['best_blend_alpha']:.2f}: " +
             ("the references carry most of the motion" if out["best_blend_alpha"] > 0.5 else
              "the anchor explains more than the references: little motion, or heavily "
              "degraded references") + ")"]
    return lines, out


def trace_config(model: str) -> dict:
    from .model import tiny_config
    from .trace import WAN22_5B_STAGE2
    return dict(WAN22_5B_STAGE2) if model == "wan22-5b" else tiny_config(in_channels=96)


def memory_section(args, width: int, height: int) -> tuple[list[str], dict]:
    from .trace import traced
    m, n = (int(v) for v in args.pair.split("x"))
    row = traced(trace_config(args.model), width, height, m, n, args.world, args.replicas)
    lines = [f"  one step of {args.model} at {width}x{height}, window {m}x{n} "
             f"({row['window_blocks']} latent blocks), {args.world} ranks"
             f"{f' as {args.replicas} replicas' if args.replicas > 1 else ''}, activation "
             f"checkpointing on: peak {row['traced_total'] / GIB:.2f} GiB a rank (state "
             f"{row['traced_state'] / GIB:.2f}, activations {row['traced_activations'] / GIB:.2f}, "
             f"gathered weights {row['traced_gathered'] / GIB:.2f})"]
    return lines, row


def comm_section(row: dict) -> tuple[list[str], dict]:
    from .trace import fsdp2_comm_bytes
    want = fsdp2_comm_bytes(row["params"], row["block_params"])
    got: dict[str, int] = {}
    for key, b in row["comm_bytes"].items():
        kind = key.split("@")[0]
        got[kind] = got.get(kind, 0) + b
    lines = [f"  {k} in groups of {g}: {b / GIB:.3f} GiB a step" for k, g, b in
             ((key.split("@")[0], key.split("@")[1], b) for key, b in row["comm_bytes"].items())]
    ratios = {k: got.get(k, 0) / want[k] for k in want}
    lines.append("  FSDP2 algebra (bf16 all-gathers for forward and backward, fp32 reduce-scatter "
                 "of every gradient): " + ", ".join(f"{k} {want[k] / GIB:.3f} GiB (counted / "
                                                    f"algebra {ratios[k]:.3f})" for k in want))
    return lines, {"counted": got, "algebra": want, "ratio": ratios}


def projection(args, row: dict, comm: dict, world: int) -> dict:
    """Seconds a step takes on ``world`` GPUs, one HSDP replica per node: compute at the stated
    throughput; the all-gathers and reduce-scatter inside a node, the gradient all-reduce
    across nodes (a ring moves 2 (R-1)/R of the buffer)."""
    from swift_core.memory import WanDiTConfig, training_flops
    cfg = trace_config(args.model)
    dit = WanDiTConfig(dim=cfg["num_attention_heads"] * cfg["attention_head_dim"],
                       heads=cfg["num_attention_heads"], ffn=cfg["ffn_dim"],
                       layers=cfg["num_layers"], in_channels=cfg["in_channels"])
    w, h = (int(v) for v in row["size"].split("x"))
    flops = training_flops(dit, row["window_blocks"], h // 16, w // 16)
    compute = flops / (args.gpu_tflops * 1e12 * args.mfu)
    shard = min(world, args.gpus_per_node)
    replicas = world // shard
    inside = (comm["algebra"]["all_gather"] + comm["algebra"]["reduce_scatter"]) * \
        (shard - 1) / shard / (args.intra_gbs * 1e9)
    across = 2 * (replicas - 1) / replicas * comm["algebra"]["reduce_scatter"] / shard / \
        (args.inter_gbs * 1e9) if replicas > 1 else 0.0
    return {"world": world, "replicas": replicas, "tflop": flops / 1e12, "compute_s": compute,
            "intra_s": inside, "inter_s": across, "overlapped_s": max(compute, inside + across),
            "serial_s": compute + inside + across}


def projection_section(args, row: dict, comm: dict) -> tuple[list[str], list[dict]]:
    rows = [projection(args, row, comm, w) for w in (8, 16, 64)]
    lines = [f"  assumed: {args.gpu_tflops:g} TFLOP/s a GPU at {args.mfu:.0%} utilisation, "
             f"{args.gpus_per_node} GPUs a node, {args.intra_gbs:g} GB/s inside a node, "
             f"{args.inter_gbs:g} GB/s across nodes; bytes from section 4's algebra, which the "
             "count matched"]
    for p in rows:
        lines.append(f"  {p['world']} GPUs ({p['replicas']} node(s)): {p['tflop']:.0f} TFLOP a "
                     f"rank -> compute {p['compute_s']:.2f} s, collectives {p['intra_s']:.2f} s "
                     f"inside + {p['inter_s']:.2f} s across nodes; step {p['overlapped_s']:.2f} s "
                     f"overlapped, {p['serial_s']:.2f} s if nothing overlaps; "
                     f"{p['world'] / p['overlapped_s']:.1f} windows/s")
    return lines, rows


def main(argv=None) -> int:
    from .loop import refuse
    args = parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    report = {}
    try:
        lines, report["samples"] = samples_section(args.data)
    except (ValueError, FileNotFoundError) as e:
        return refuse("swift_train.preflight", e)
    print("1. samples (measured)\n" + "\n".join(lines), flush=True)
    first = next(iter(report["samples"].values()))
    width, height = ((int(v) for v in args.size.split("x")) if args.size else first["size"])
    if "learning" not in skip:
        lines, report["learning"] = learning_section(args.data, args.steps, args.val_count)
        print("2. learning (measured, toy size)\n" + "\n".join(lines), flush=True)
    if "memory" not in skip:
        lines, row = memory_section(args, width, height)
        report["memory"] = row
        print("3. memory (traced, nothing allocated)\n" + "\n".join(lines), flush=True)
        lines, report["communication"] = comm_section(row)
        print("4. communication per step (counted under a fake process group)\n" +
              "\n".join(lines), flush=True)
        lines, report["projection"] = projection_section(args, row, report["communication"])
        print("5. step time (projected, not measured)\n" + "\n".join(lines), flush=True)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
