"""Stage I 360P LoRA training (paper Sec. 4, App. B.1-B.2), launched by torchrun (FSDP2, DCP).

A LoRA of rank r (peft, through diffusers' adapter API) on Wan 2.1 I2V 14B's attention
projections and MLP, the base frozen (bf16), trained with flow matching at Wan's shifted timesteps
on Stage I samples (python -m swift_batch --data with the Stage I data workflow), AdamW at a
constant learning rate. Only the adapter and its optimizer state are checkpointed.

    torchrun --nproc_per_node 8 -m swift_train.lora --data stage1_samples/ --out lora_run/ \
        --base ComfyUI/models/diffusion_models/wan2.1_i2v_480p_14B_fp16.safetensors --rank 32 --steps 3000
    python -m swift_train.export_lora --run lora_run/ --out ComfyUI/models/loras/swifti2v_stage1_360p.safetensors

Re-running the same command resumes (same data order and draws).
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.distributed as dist

from swift_core.adapters import diffusers_wan_i2v_velocity
from swift_core.schedule import WAN_SHIFT, WEIGHTINGS
from swift_core.stage1_samples import read_stage1_meta, read_stage1_sample
from swift_core.training import i2v_training_loss, i2v_x0_error

from .data import Order, SampleFolder, sample_files, split, step_generator
from .model import load_wan, tiny_i2v_config
from .train import Checkpoints, RunLog, launch, memory_gib, resume, setup, write_config

#: diffusers names of Wan's attention projections (self, text and image cross-attention) and MLP
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "add_k_proj", "add_v_proj", "ffn.net.0.proj",
           "ffn.net.2")
#: sigmas the held-out error is measured at
VAL_SIGMAS = (0.25, 0.5, 0.75)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return value


def size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        return w, h
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 640x352") from None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="torchrun ... -m swift_train.lora", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of Stage I samples")
    ap.add_argument("--out", required=True, help="run folder (checkpoints, log, config)")
    ap.add_argument("--base", default="tiny",
                    help="Wan 2.1 I2V: ComfyUI's wan2.1_i2v_480p_14B_fp16.safetensors, a diffusers "
                         "folder (Wan2.1-I2V-14B-480P-Diffusers), or 'tiny' (tests)")
    ap.add_argument("--size", type=size, default=(640, 352),
                    help="the Stage I size every sample must have (640x352: 2560x1408 / 4)")
    ap.add_argument("--rank", type=positive_int, default=32, help="LoRA rank r")
    ap.add_argument("--alpha", type=float, default=None, help="LoRA alpha (default: the rank)")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="module names the LoRA goes into (attention projections and MLP)")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-4, help="constant learning rate (AdamW)")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--grad-accum", type=int, default=1)
    ap.add_argument("--clip-grad", type=float, default=1.0)
    ap.add_argument("--shift", type=float, default=WAN_SHIFT, help="timestep shift (Wan: 5)")
    ap.add_argument("--weighting", choices=WEIGHTINGS, default="none")
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                    help="bf16: frozen base in bf16, adapter in fp32 computed in bf16")
    ap.add_argument("--grad-checkpointing", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--val-every", type=int, default=0)
    ap.add_argument("--val-count", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    return ap.parse_args(argv)


def stage1_tensors(path: str) -> dict:
    s = read_stage1_sample(path)
    return {"x0": s.x0.float(), "concat": s.concat.float(), "context": s.context,
            "image": None if s.clip_vision is None else s.clip_vision.float()}


def check_sizes(files: list[str], want: tuple[int, int]) -> None:
    """Every sample is a Stage I sample of the run's size (headers read before any model is
    loaded; the tensors are read and checked when the step takes them)."""
    for f in files:
        meta = read_stage1_meta(f)
        got = (int(meta["width"]), int(meta["height"]))
        if got != tuple(want):
            raise ValueError(f"{f}: a {got[0]}x{got[1]} Stage I sample; this run trains at "
                             f"--size {want[0]}x{want[1]}")


def build_model(args, device, world):
    """The frozen Wan 2.1 I2V base with a fresh peft LoRA, sharded with FSDP2 per block."""
    from peft import LoraConfig
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    base_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    model = load_wan(args.base, base_dtype, seed=args.seed, tiny=tiny_i2v_config())
    if model.config.in_channels != 36 or model.config.image_dim is None:
        raise ValueError(f"--base {args.base!r}: not a Wan 2.1 I2V model (in_channels "
                         f"{model.config.in_channels}, image embedder "
                         f"{'present' if model.config.image_dim else 'absent'}; expected 36 and "
                         "present)")
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.alpha or args.rank,
                                 target_modules=args.targets.split(","),
                                 init_lora_weights=True))
    for n, p in model.named_parameters():
        if "lora_" in n:
            p.data = p.data.float()
            p.requires_grad_(True)
    if args.grad_checkpointing:
        model.enable_gradient_checkpointing()
    mesh = init_device_mesh(device.type, (world,))
    mp = MixedPrecisionPolicy(param_dtype=base_dtype, reduce_dtype=torch.float32)
    for block in model.blocks:
        fully_shard(block, mesh=mesh, mp_policy=mp)
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model.to(device)


def batch(s: dict, device) -> dict:
    return {k: None if v is None else v[None].to(device) for k, v in s.items()}


@torch.no_grad()
def validate(velocity, samples, args, device) -> dict:
    """Held-out x0 error of the model (``val_error``) and of the still video made of the input
    image (``val_static_image``), at fixed sigmas and noise."""
    errs, still = [], []
    for k, s in enumerate(samples):
        b = batch(s, device)
        noise = torch.randn(b["x0"].shape, generator=torch.Generator().manual_seed(
            args.seed + 10_000 + k)).to(device)
        errs.append(i2v_x0_error(velocity, b["x0"], b["concat"], b["context"], b["image"],
                                 VAL_SIGMAS, noise))
        image = b["concat"][:, 4:, :1].expand_as(b["x0"])      # the latent of frame 0, repeated
        still.append(float(((image - b["x0"]) ** 2).mean() / (b["x0"] ** 2).mean()))
    n = max(len(samples), 1)
    return {"val_error": sum(errs) / n, "val_static_image": sum(still) / n}


def train_step(model, opt, velocity, data, order, step, args, device, rank, world) -> dict:
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    for a in range(args.grad_accum):
        model.set_requires_gradient_sync(a == args.grad_accum - 1)
        i = step * args.grad_accum + a
        b = batch(data[order(i)], device)
        loss, _ = i2v_training_loss(velocity, b["x0"], b["concat"], b["context"], b["image"],
                                    step_generator(args.seed, i, rank), shift=args.shift,
                                    weighting=args.weighting)
        (loss / args.grad_accum).backward()
        total += loss.detach() / args.grad_accum
    params = [p for p in model.parameters() if p.requires_grad]
    norm = torch.nn.utils.clip_grad_norm_(params, args.clip_grad)
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
    opt.step()
    dist.all_reduce(total)
    return {"step": step + 1, "loss": float(total) / world, "lr": args.lr,
            "grad_norm": float(norm),
            "samples_per_s": world * args.grad_accum / (time.perf_counter() - t0),
            "memory_gib": memory_gib(device)}


def train(args) -> None:
    rank, world, device = setup()
    os.makedirs(os.path.join(args.out, "checkpoints"), exist_ok=True)
    files = sample_files(args.data)
    check_sizes(files, args.size)
    train_files, val_files = split(files, args.val_count)
    data = SampleFolder(train_files, stage1_tensors)
    val_set = SampleFolder(val_files, stage1_tensors)
    val = [val_set[i] for i in range(len(val_set))]
    if rank == 0:
        write_config(args, world, train_files)
    model = build_model(args, device, world)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    step = resume(args.out, model, opt, {}, trainable_only=True)
    order = Order(data, world, rank, args.seed)
    velocity = diffusers_wan_i2v_velocity(model)
    log = RunLog(args, rank, step)
    checkpoints = Checkpoints(args.out, rank, trainable_only=True)
    if step == 0 and args.val_every and val:
        log.write({"step": 0, **validate(velocity, val, args, device)})
    while step < args.steps:
        entry = train_step(model, opt, velocity, data, order, step, args, device, rank, world)
        step += 1
        if step % args.save_every == 0 or step == args.steps:
            checkpoints.save(model, opt, {}, step)
        if args.val_every and val and step % args.val_every == 0:
            entry.update(validate(velocity, val, args, device))
        log.write(entry)
    checkpoints.wait()
    log.close()


def main(argv=None) -> int:
    return launch(train, parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
