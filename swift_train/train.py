"""CSG teacher-forcing training of the Stage II model, launched by torchrun (FSDP2, DCP).

    torchrun --nproc_per_node 8 -m swift_train.train --data samples/ --base wan2.2_ti2v_5B_fp16.safetensors --out run/ --steps 20000
    torchrun --nnodes 4 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 -m swift_train.train ...

Re-running the same command resumes from the run's latest checkpoint (same data order, same
draws). Rank 0 shows a progress bar and logs every step (loss, lr, grad norm, samples/s, memory;
validation error when it runs) twice: one JSON line in RUN/log.jsonl and TensorBoard scalars in
RUN/tensorboard (``tensorboard --logdir RUN``).
"""
from __future__ import annotations

import argparse
import json
import os

import torch
import torch.distributed as dist

from swift_core.adapters import diffusers_wan_denoiser, diffusers_wan_velocity
from swift_core.rules import ROPE_MODES
from swift_core.sampling import sample_csg
from swift_core.schedule import WAN_SHIFT, WEIGHTINGS, flow_sigmas
from swift_core.training import PAIRS, csg_training_loss

from .data import (Order, SampleFolder, WeightedOrder, Windows, check_one_size, data_source,
                   held_out, sample_files)
from .loop import OneLineParser, Trainer, add_loop_args, check_loop_args, refuse
from .model import check_base, empty_like_config, rope_tables


def parse_pairs(text: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(v) for v in p.split("x")) for p in text.split(","))
        assert pairs and all(len(p) == 2 and p[0] >= 1 and p[1] >= 0 for p in pairs)
        return pairs
    except (ValueError, AssertionError):
        raise argparse.ArgumentTypeError(f"--pairs {text!r}: expected MxN,... e.g. "
                                         "2x1,2x2,3x1,3x2") from None


def parse_args(argv=None):
    ap = OneLineParser(prog="torchrun ... -m swift_train.train", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, action="append", type=data_source,
                    help="folder of training samples; repeat with weights to mix several: "
                         "--data 2k:0.7 --data synthesized:0.3")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log, config)")
    ap.add_argument("--base", default="tiny",
                    help="base model: ComfyUI's wan2.2_ti2v_5B_fp16.safetensors, a diffusers "
                         "folder (Wan2.2-TI2V-5B-Diffusers), or 'tiny' (tests)")
    add_loop_args(ap, steps=1000, lr=1e-5, save_every=500)
    ap.add_argument("--ema", type=float, default=0.0, help="EMA decay (0 = no EMA), e.g. 0.999")
    ap.add_argument("--rope", choices=ROPE_MODES, default="window",
                    help="RoPE positions of a window; use the same setting in ComfyUI")
    ap.add_argument("--pairs", type=parse_pairs, default=PAIRS,
                    help="(M, N) drawn uniformly per step (paper: 2x1,2x2,3x1,3x2)")
    ap.add_argument("--shift", type=float, default=WAN_SHIFT,
                    help="timestep shift of the training sigmas (5, DiffSynth-Studio's); stored "
                         "in the export: sample Stage II with the same shift (ModelSamplingSD3)")
    ap.add_argument("--weighting", choices=WEIGHTINGS, default="none",
                    help="loss weight over timesteps: none, or DiffSynth-Studio's bell")
    ap.add_argument("--workers", type=int, default=2,
                    help="data loader processes reading the windows ahead (0: in the trainer)")
    ap.add_argument("--prefetch", type=int, default=2, help="windows each worker reads ahead")
    ap.add_argument("--init-from", default=None, metavar="RUN",
                    help="start from another run's latest weights and optimizer state (the next "
                         "stage of a curriculum: 1080P, then 2K); steps count from 0")
    ap.add_argument("--val-steps", type=int, default=4, help="sampling steps of validation")
    ap.add_argument("--val-m", type=int, default=3, help="M of validation's CSG (paper: 3)")
    ap.add_argument("--val-n", type=int, default=1, help="N of validation's CSG (paper: 1)")
    return ap.parse_args(argv)


def check_args(args) -> tuple[list[list[str]], list[str], list[str]]:
    """Every argument checked before any process group, model or folder exists (a bad one
    raises naming it): (the files of each --data folder, train files, held-out files)."""
    check_loop_args(args)
    check_base(args.base)
    if not 0 <= args.ema < 1:
        raise ValueError(f"--ema {args.ema}: must be in [0, 1)")
    if args.init_from and not os.path.isfile(os.path.join(args.init_from, "checkpoints",
                                                          "latest")):
        raise ValueError(f"--init-from {args.init_from!r}: no checkpoint in it")
    folders = [sample_files(folder) for folder, _ in args.data]
    for (folder, _), files in zip(args.data, folders):
        check_one_size(folder, files)
    train_files, val_files = held_out(folders, args.val_count, args.val_data)
    return folders, train_files, val_files


def setup(seed: int = 0):
    """The process group, this rank's device, and deterministic kernels where torch has them
    (docs/training.md: Reproducible runs)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return rank, world, device


def build_model(args, device, world):
    """Every rank builds the model on the meta device and shards it (FSDP2, or HSDP); rank 0
    alone reads the base, one transformer block at a time in the file's own dtype
    (:mod:`swift_train.base_stream`), and broadcasts it (``set_model_state_dict(...,
    broadcast_from_rank0=True)``), each rank keeping its fp32 shards: rank 0 never holds the
    whole model, and the base is read once per run."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    from .base_stream import BaseSource, key_groups

    source, config = None, [None]
    if dist.get_rank() == 0:
        source = BaseSource(args.base, seed=args.seed)
        config[0] = source.config
    dist.broadcast_object_list(config, src=0)
    if config[0]["in_channels"] != 96:
        raise ValueError(f"--base: the model takes {config[0]['in_channels']} input channels; "
                         "expected 48 (Wan2.2-TI2V-5B, widened here) or 96 (a SwiftI2V model)")
    model = empty_like_config(config[0])
    if args.grad_checkpointing:
        model.enable_gradient_checkpointing()
    mesh = device_mesh(device, world, args.replicas)
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if args.precision == "bf16"
                              else torch.float32, reduce_dtype=torch.float32)
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    model.to_empty(device=device)
    rope_tables(model, force=True)
    model.rope.to(device)
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
    for keys in key_groups(model.state_dict()):
        part = source.read(keys) if source is not None else {}
        set_model_state_dict(model, part, options=options)
        del part
    return model


def device_mesh(device, world: int, replicas: int):
    """FSDP over all ranks (``replicas`` 1), or HSDP: ``replicas`` groups (e.g. one per node)
    each holding a full copy sharded within it, gradients all-reduced across them: torch's
    ``fully_shard`` over a 2-D mesh."""
    from torch.distributed.device_mesh import init_device_mesh
    if replicas < 1 or world % replicas:
        raise ValueError(f"--replicas {replicas}: must divide the {world} ranks")
    if replicas == 1:
        return init_device_mesh(device.type, (world,))
    return init_device_mesh(device.type, (replicas, world // replicas),
                            mesh_dim_names=("replicate", "shard"))


def relative_error(x, x0) -> float:
    """Squared error of the generated blocks (all but the anchor) relative to the target's."""
    return float(((x - x0)[:, :, 1:] ** 2).mean() / (x0[:, :, 1:] ** 2).mean())


def best_blend(samples) -> tuple[float, float]:
    """The blend ``a R + (1 - a) A`` of the reference R and the repeated anchor A that comes
    closest to the held-out targets (``a`` by least squares over all of them: an oracle no
    trained model knows), and its mean relative error."""
    num = den = 0.0
    for s in samples:
        x0, r = s["x0"][:, 1:].double(), s["reference"][:, 1:].double()
        a = s["x0"][:, :1].double().expand_as(x0)
        num, den = num + float(((r - a) * (x0 - a)).sum()), den + float(((r - a) ** 2).sum())
    alpha = num / den if den else 0.0
    n = max(len(samples), 1)
    err = sum(relative_error((alpha * s["reference"] + (1 - alpha) * s["x0"][:, :1])[None],
                             s["x0"][None]) for s in samples) / n
    return alpha, err


def baselines(samples) -> dict:
    """What the trivial answers score on the held-out samples: copying the reference (Stage II
    as a plain upscaler), repeating the anchor (a static video) and the best blend of the two.
    A model worth using beats all three."""
    n = max(len(samples), 1)
    alpha, blend = best_blend(samples)
    return {"val_copy_reference": sum(relative_error(s["reference"][None], s["x0"][None])
                                      for s in samples) / n,
            "val_static_anchor": sum(relative_error(s["x0"][None, :, :1].expand_as(s["x0"][None]),
                                                    s["x0"][None]) for s in samples) / n,
            "val_best_blend": blend, "val_best_blend_alpha": alpha}


@torch.no_grad()
def validate(model, samples, args, device, rank: int = 0, world: int = 1) -> float:
    """``sample_csg`` (``--val-m``, ``--val-n``) on held-out samples: relative squared error of
    the generated blocks against the targets. The samples are split across the ranks (sample k
    on rank k mod world, seeded by k) and the errors summed over them; every rank runs the same
    number of forwards (FSDP's collectives need all of them), padding with a repeat it does not
    count."""
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for j in range(-(-len(samples) // world)):
        k = rank + j * world
        s = samples[min(k, len(samples) - 1)]
        x0 = s["x0"][None].to(device)
        g = torch.Generator().manual_seed(args.seed + 10_000 + k)
        noise = torch.randn(x0.shape, generator=g).to(device)
        out = sample_csg(diffusers_wan_denoiser(model, s["context"][None].to(device)), noise,
                         flow_sigmas(args.val_steps, args.shift).to(device),
                         anchor=x0[:, :, :1], reference=s["reference"][None].to(device),
                         m=args.val_m, n=args.val_n, mode="swifti2v", rope=args.rope)
        if k < len(samples):
            total += torch.tensor([relative_error(out.float(), x0), 1.0], dtype=torch.float64,
                                  device=device)
    dist.all_reduce(total)
    model.train()
    return float(total[0] / total[1].clamp(min=1))


def window_loader(files, order, args, rank: int, device, step: int):
    """Torch's DataLoader over the run's windows from ``step`` on: ``--workers`` processes read
    only each window's blocks, ``--prefetch`` windows ahead of the step."""
    windows = Windows(files, order, seed=args.seed, rank=rank, grad_accum=args.grad_accum,
                      pairs=args.pairs, start=step * args.grad_accum,
                      stop=args.steps * args.grad_accum)
    return torch.utils.data.DataLoader(
        windows, batch_size=None, num_workers=args.workers,
        prefetch_factor=args.prefetch if args.workers else None,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(args.seed + rank))   # workers' seeds too


def latent_size(item: dict) -> tuple[int, int]:
    """A window's latent height and width."""
    return tuple(item["x0"].shape[-2:])


def write_config(args, world: int, train_files) -> None:
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump({**vars(args), "world": world, "train_files": len(train_files)}, f, indent=1,
                  default=str)


class Stage2Task:
    """The Stage II trainer's seams (swift_train.loop): windows read ahead by the DataLoader,
    the CSG teacher-forcing loss, ``sample_csg`` on the held-out samples."""

    def __init__(self, args, model, files, sizes, val, *, rank: int, world: int, device):
        self.args, self.model, self.files, self.sizes, self.val = args, model, files, sizes, val
        self.rank, self.world, self.device = rank, world, device
        self.velocity = diffusers_wan_velocity(model)

    def start(self, step: int) -> None:
        """The loader from ``step`` on (a resumed run reads on where it stopped)."""
        args = self.args
        order = (Order(range(len(self.files)), self.world, self.rank, args.seed)
                 if len(args.data) == 1 else
                 WeightedOrder(self.sizes, [w for _, w in args.data], self.world, self.rank,
                               args.seed, args.grad_accum))
        self.batches = iter(window_loader(self.files, order, args, self.rank, self.device,
                                          step))

    def micro_batches(self, step: int) -> list[dict]:
        items = [next(self.batches) for _ in range(self.args.grad_accum)]
        drawn = [None] * self.world                   # the loader hands tuples on as lists
        dist.all_gather_object(drawn, {(tuple(it["pair"]), latent_size(it)) for it in items})
        if len(set(map(frozenset, drawn))) != 1 or len(drawn[0]) != 1:
            raise RuntimeError(f"step {step + 1}: the ranks drew different windows or sizes "
                               f"{drawn}")
        return items

    def forward_backward(self, it: dict, step: int):
        gen = torch.Generator()
        gen.set_state(it["gen_state"])                  # the reader drew the segment from it
        loss, _ = csg_training_loss(
            self.velocity, it["x0"][None].to(self.device), it["reference"][None].to(self.device),
            it["context"][None].to(self.device), gen, rope=self.args.rope,
            shift=self.args.shift, weighting=self.args.weighting, segment=it["segment"])
        return loss

    def describe(self, items: list[dict]) -> dict:
        pair = items[0]["pair"]
        return {"window": f"{pair[0]}x{pair[1]}",
                "latent": "x".join(map(str, latent_size(items[0]))),
                "bytes_read": sum(it["bytes"] for it in items)}

    def validate(self) -> dict:
        if not self.val:
            return {}
        return {"val_error": validate(self.model, self.val, self.args, self.device, self.rank,
                                      self.world), **baselines(self.val)}


def train(args) -> None:
    """Checks, then the process group, data, model and the shared trainer loop."""
    folders, train_files, val_files = check_args(args)
    rank, world, device = setup(args.seed)
    os.makedirs(os.path.join(args.out, "checkpoints"), exist_ok=True)
    kept = set(train_files)
    sizes = [sum(f in kept for f in fs) for fs in folders]
    val_set = SampleFolder(val_files)
    val = [val_set[i] for i in range(len(val_set))]       # held out: read once
    if rank == 0:
        write_config(args, world, train_files)
    model = build_model(args, device, world)
    ema = ({n: p.detach().clone() for n, p in model.named_parameters()} if args.ema > 0 else {})
    task = Stage2Task(args, model, train_files, sizes, val, rank=rank, world=world, device=device)
    Trainer(args, task, model, model.parameters(), rank=rank, world=world, device=device,
            ema=ema).fit(init_from=args.init_from)


def launch(train_fn, args, prog: str) -> int:
    """Run ``train_fn(args)`` under torchrun; a bad argument is refused in one line (exit 2,
    nothing written); the process group is closed whatever happens."""
    try:
        train_fn(args)
    except (ValueError, FileNotFoundError) as e:
        if dist.is_initialized():       # found after setup: a real failure, with its traceback
            raise
        return refuse(prog, e)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def main(argv=None) -> int:
    return launch(train, parse_args(argv), "swift_train.train")


if __name__ == "__main__":
    raise SystemExit(main())
