"""Export trained Stage II weights in the key layout of ComfyUI's repackaged Wan 2.2 files, which
ComfyUI's Load Diffusion Model detects (a 96-channel Wan 2.2 model: the pack's ``swifti2v`` mode).

    python -m swift_train.export --run RUN_DIR --out models/diffusion_models/swifti2v_stage2.safetensors [--dtype bf16] [--no-ema]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import torch

from swift_core.schedule import WAN_SHIFT

#: diffusers -> original Wan (ComfyUI) names; the inverse of diffusers' single-file converter
RENAMES = (
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("attn1.", "self_attn."), ("attn2.", "cross_attn."),
    (".add_k_proj.", ".k_img."), (".add_v_proj.", ".v_img."), (".norm_added_k.", ".norm_k_img."),
    (".to_out.0.", ".o."), (".to_q.", ".q."), (".to_k.", ".k."), (".to_v.", ".v."),
    ("ffn.net.0.proj", "ffn.0"), ("ffn.net.2", "ffn.2"),
    ("proj_out.", "head.head."),
)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def comfy_key(key: str) -> str:
    if key == "scale_shift_table":
        return "head.modulation"
    if key.endswith(".scale_shift_table"):
        return key[: -len("scale_shift_table")] + "modulation"
    key = re.sub(r"^(blocks\.\d+\.)norm2\.", r"\1norm3.", key)   # the cross-attention norm
    for a, b in RENAMES:
        key = key.replace(a, b)
    return key


def to_comfy(state_dict: dict, dtype=torch.bfloat16) -> dict:
    out = {comfy_key(k): v.detach().to("cpu", dtype).contiguous() for k, v in state_dict.items()}
    if len(out) != len(state_dict):
        raise ValueError("export: two parameters map to one ComfyUI key")
    return out


def write(state_dict: dict, path: str, *, dtype: str = "bf16", rope: str = "window",
          shift: float = WAN_SHIFT, extra_meta: dict | None = None) -> str:
    """Write the ComfyUI-layout file atomically; the metadata records the training's ``rope``
    and ``shift`` (sample with the same: the Stage II sampler's rope, core's ModelSamplingSD3)."""
    from swift_core.samples import save_atomic
    if dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype!r}: one of {list(DTYPES)}")
    sd = to_comfy(state_dict, DTYPES[dtype])
    channels = sd["patch_embedding.weight"].shape[1]
    meta = {"swifti2v.rope": rope, "swifti2v.shift": f"{float(shift):g}",
            "swifti2v.in_channels": str(channels),
            "swifti2v.mode": "swifti2v" if channels == 96 else "refine", **(extra_meta or {})}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return save_atomic(path, sd, {k: str(v) for k, v in meta.items()})


def load_weights(checkpoint: str, part: str) -> dict:
    """One part ("model" or "ema") of a DCP checkpoint as full tensors, without loading the
    optimizer state (3x the weights): empty tensors are made from the checkpoint's own metadata
    and filled by ``dcp.load`` in a single process."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    reader = FileSystemReader(checkpoint)
    prefix = part + "."
    template = {k[len(prefix):]: torch.empty(tuple(m.size), dtype=m.properties.dtype)
                for k, m in reader.read_metadata().state_dict_metadata.items()
                if k.startswith(prefix) and isinstance(m, TensorStorageMetadata)}
    if template:
        dcp.load({part: template}, storage_reader=reader, no_dist=True)
    return template


class ExportError(ValueError):
    pass


def latest_checkpoint(run: str) -> str:
    """The folder of a run's latest checkpoint; a run without one is refused by name."""
    if not os.path.isfile(os.path.join(run, "config.json")):
        raise ExportError(f"--run {run!r}: not a training run (no config.json; give the "
                          "training's --out folder)")
    latest = os.path.join(run, "checkpoints", "latest")
    if not os.path.isfile(latest):
        raise ExportError(f"--run {run!r}: no checkpoint yet (the run saves one every "
                          "--save-every steps and at its end); nothing to export")
    checkpoint = os.path.join(run, "checkpoints", open(latest).read().strip())
    if not os.path.isdir(checkpoint):
        raise ExportError(f"--run {run!r}: its latest checkpoint {checkpoint!r} is missing")
    return checkpoint


PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check_out(out: str) -> None:
    """``--out`` is a .safetensors file to write, not a folder, and not inside the pack, where
    ComfyUI never looks for models (``ComfyUI/models/...`` typed from the pack's folder lands
    there); checked before any loading."""
    if not out.endswith(".safetensors") or os.path.isdir(out):
        raise ExportError(f"--out {out!r}: expected the path of a .safetensors file to write")
    where = os.path.realpath(out)
    if os.path.commonpath([where, os.path.realpath(PACK_DIR)]) == os.path.realpath(PACK_DIR):
        raise ExportError(f"--out {out!r}: is inside the node pack ({where}), where ComfyUI "
                          "never looks; give a path in ComfyUI's models folder (from the "
                          "pack's folder: ../../models/diffusion_models/ or ../../models/loras/)")


def run_config(run: str) -> dict:
    return json.loads(open(os.path.join(run, "config.json")).read())


def load_run(run: str, use_ema: bool = True) -> tuple[dict, dict]:
    """The latest checkpoint of a Stage II training run as a plain state dict, and the run's
    config; a LoRA run is refused by name."""
    checkpoint = latest_checkpoint(run)
    cfg = run_config(run)
    if "rank" in cfg:
        raise ExportError(f"--run {run!r}: a Stage I LoRA run; export it with "
                          "python -m swift_train.export_lora")
    latest = os.path.basename(checkpoint)
    ema = load_weights(checkpoint, "ema") if use_ema else {}
    weights = ema or load_weights(checkpoint, "model")
    return weights, {**cfg, "step": latest, "ema": bool(ema)}


def parser(prog: str, doc: str):
    from .loop import OneLineParser
    return OneLineParser(prog=prog, description=doc,
                         formatter_class=argparse.RawDescriptionHelpFormatter)


def main(argv=None) -> int:
    ap = parser("python -m swift_train.export", __doc__)
    ap.add_argument("--run", required=True, help="the training run's --out folder")
    ap.add_argument("--out", required=True, help="the .safetensors file to write")
    ap.add_argument("--dtype", default="bf16", choices=list(DTYPES))
    ap.add_argument("--no-ema", action="store_true", help="export the raw weights, not the EMA")
    args = ap.parse_args(argv)
    try:
        check_out(args.out)
        sd, cfg = load_run(args.run, use_ema=not args.no_ema)
    except ExportError as e:
        print(f"export: {e}", file=sys.stderr)
        return 2
    shift = float(cfg.get("shift", WAN_SHIFT))
    write(sd, args.out, dtype=args.dtype, rope=cfg["rope"], shift=shift,
          extra_meta={"swifti2v.step": cfg["step"], "swifti2v.ema": str(cfg["ema"]).lower()})
    print(f"wrote {args.out} ({cfg['step']}, rope={cfg['rope']}, shift={shift:g}, "
          f"ema={cfg['ema']}); load it with Load Diffusion Model, set ModelSamplingSD3's shift "
          f"to {shift:g} and the Stage II sampler's rope to {cfg['rope']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
