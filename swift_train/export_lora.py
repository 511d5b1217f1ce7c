"""Export a Stage I LoRA run in the key layout core's LoraLoaderModelOnly loads for Wan 2.1:
``diffusion_model.<ComfyUI module>.lora_A.weight`` / ``.lora_B.weight`` / ``.alpha`` (ComfyUI
scales by alpha / rank, as peft does, so strength 1.0 is the trained adapter).

    python -m swift_train.export_lora --run LORA_RUN --out ComfyUI/models/loras/swifti2v_stage1_360p.safetensors
"""
from __future__ import annotations

import os
import sys

import torch

from .export import (DTYPES, ExportError, check_out, comfy_key, latest_checkpoint, load_weights,
                     parser, run_config)


def to_comfy_lora(weights: dict, alpha: float, dtype=torch.bfloat16) -> dict:
    """peft's ``<module>.lora_A.<adapter>.weight`` (diffusers names) -> ComfyUI's LoRA keys."""
    out = {}
    for key, value in weights.items():
        parts = key.split(".")
        if "lora_A" in parts or "lora_B" in parts:
            i = parts.index("lora_A") if "lora_A" in parts else parts.index("lora_B")
            module = comfy_key(".".join(parts[:i]) + ".weight")[: -len(".weight")]
            out[f"diffusion_model.{module}.{parts[i]}.weight"] = value.to(dtype).contiguous()
            out[f"diffusion_model.{module}.alpha"] = torch.tensor(float(alpha))
    return out


def main(argv=None) -> int:
    ap = parser("python -m swift_train.export_lora", __doc__)
    ap.add_argument("--run", required=True, help="the LoRA run's --out folder")
    ap.add_argument("--out", required=True, help="the .safetensors file to write (models/loras)")
    ap.add_argument("--dtype", default="bf16", choices=list(DTYPES))
    args = ap.parse_args(argv)
    try:
        check_out(args.out)
        checkpoint = latest_checkpoint(args.run)
        cfg = run_config(args.run)
        lora = {} if "rank" not in cfg else to_comfy_lora(
            load_weights(checkpoint, "model"), cfg.get("alpha") or cfg["rank"],
            DTYPES[args.dtype])
        if not lora:
            raise ExportError(f"--run {args.run!r}: its checkpoint holds no LoRA (a Stage II run? "
                              "export those with python -m swift_train.export)")
    except ExportError as e:
        print(f"export_lora: {e}", file=sys.stderr)
        return 2
    from swift_core.samples import save_atomic
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    meta = {"swifti2v.kind": "stage1-360p-lora", "swifti2v.rank": str(cfg["rank"]),
            "swifti2v.alpha": str(cfg.get("alpha") or cfg["rank"]),
            "swifti2v.targets": cfg["targets"], "swifti2v.step": os.path.basename(checkpoint),
            "swifti2v.size": "x".join(map(str, cfg["size"]))}
    save_atomic(args.out, lora, meta)
    print(f"wrote {args.out} ({len(lora) // 3} modules, rank {cfg['rank']}); load it with "
          "LoraLoaderModelOnly after the few-step LoRA, strength 1.0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
