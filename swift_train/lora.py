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

import torch

from swift_core.adapters import diffusers_wan_i2v_velocity
from swift_core.schedule import WAN_SHIFT, WEIGHTINGS
from swift_core.stage1_samples import read_stage1_meta, read_stage1_sample
from swift_core.training import i2v_training_loss, i2v_x0_error

from .data import Order, SampleFolder, held_out, sample_files, step_generator
from .loop import OneLineParser, Trainer, add_loop_args, check_loop_args
from .model import check_base, load_wan, tiny_i2v_config
from .train import device_mesh, launch, setup, write_config

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
    ap = OneLineParser(prog="torchrun ... -m swift_train.lora", description=__doc__,
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
    add_loop_args(ap, steps=3000, lr=1e-4, save_every=500)
    ap.add_argument("--shift", type=float, default=WAN_SHIFT, help="timestep shift (Wan: 5)")
    ap.add_argument("--weighting", choices=WEIGHTINGS, default="none")
    return ap.parse_args(argv)


def check_args(args) -> tuple[list[str], list[str]]:
    """Every argument checked before any process group, model or folder exists: (train files,
    held-out files)."""
    check_loop_args(args)
    check_base(args.base)
    files = sample_files(args.data)
    check_sizes(files, args.size)
    return held_out([files], args.val_count, args.val_data)


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
    """The frozen Wan 2.1 I2V base with a fresh peft LoRA (initialised from ``--seed``: the same
    adapter on every rank and in every launch), sharded with FSDP2 per block (HSDP with
    ``--replicas``)."""
    from peft import LoraConfig
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    base_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    model = load_wan(args.base, base_dtype, seed=args.seed, tiny=tiny_i2v_config())
    if model.config.in_channels != 36 or model.config.image_dim is None:
        raise ValueError(f"--base {args.base!r}: not a Wan 2.1 I2V model (in_channels "
                         f"{model.config.in_channels}, image embedder "
                         f"{'present' if model.config.image_dim else 'absent'}; expected 36 and "
                         "present)")
    model.requires_grad_(False)
    torch.manual_seed(args.seed)                      # peft draws lora_A from torch's generator
    model.add_adapter(LoraConfig(r=args.rank, lora_alpha=args.alpha or args.rank,
                                 target_modules=args.targets.split(","),
                                 init_lora_weights=True))
    for n, p in model.named_parameters():
        if "lora_" in n:
            p.data = p.data.float()
            p.requires_grad_(True)
    if args.grad_checkpointing:
        model.enable_gradient_checkpointing()
    mesh = device_mesh(device, world, args.replicas)
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


class LoraTask:
    """The Stage I LoRA trainer's seams (swift_train.loop): samples in a resumable order, the
    flow-matching loss, the held-out x0 error."""

    def __init__(self, args, model, data, val, *, rank: int, world: int, device):
        self.args, self.data, self.val, self.rank, self.device = args, data, val, rank, device
        self.order = Order(data, world, rank, args.seed)
        self.velocity = diffusers_wan_i2v_velocity(model)

    def start(self, step: int) -> None:
        pass                            # the order is a function of the micro-step: nothing to skip

    def micro_batches(self, step: int) -> list[int]:
        return [step * self.args.grad_accum + a for a in range(self.args.grad_accum)]

    def forward_backward(self, i: int, step: int):
        b = batch(self.data[self.order(i)], self.device)
        loss, _ = i2v_training_loss(self.velocity, b["x0"], b["concat"], b["context"],
                                    b["image"], step_generator(self.args.seed, i, self.rank),
                                    shift=self.args.shift, weighting=self.args.weighting)
        return loss

    def describe(self, items: list[int]) -> dict:
        return {}

    def validate(self) -> dict:
        return validate(self.velocity, self.val, self.args, self.device) if self.val else {}


def train(args) -> None:
    train_files, val_files = check_args(args)
    rank, world, device = setup(args.seed)
    os.makedirs(os.path.join(args.out, "checkpoints"), exist_ok=True)
    data = SampleFolder(train_files, stage1_tensors)
    val_set = SampleFolder(val_files, stage1_tensors)
    val = [val_set[i] for i in range(len(val_set))]
    if rank == 0:
        write_config(args, world, train_files)
    model = build_model(args, device, world)
    task = LoraTask(args, model, data, val, rank=rank, world=world, device=device)
    params = [p for p in model.parameters() if p.requires_grad]
    Trainer(args, task, model, params, rank=rank, world=world, device=device,
            trainable_only=True).fit()


def main(argv=None) -> int:
    return launch(train, parse_args(argv), "swift_train.lora")


if __name__ == "__main__":
    raise SystemExit(main())
