"""Stage-transition strength, Table 9's way: the start sigma of each strength s, and how far the
synthesized clip lies from the clean downsample (PSNR / SSIM), on your clips and your Stage I.

    python -m bench.transition_strength                                    # the start-sigma table
    python -m bench.transition_strength --server http://127.0.0.1:8188 --video a.mp4 --video b.mp4 \
        [--mix 0.01x1,0.1x4,0.1x1,0.3x4,0.5x4,0.7x4] [--set NODE.INPUT=VALUE ...]

With a server, each video is uploaded and run through the bundled training-data workflow's Stage I
(its model, LoRA, VAE, text encoder and CLIP vision, overridable with --set as for the batch
client): one Stage Transition per (s, k) of ``--mix`` (default: Table 9's rows) and one plain
downsample, saved as PNG frames by core's SaveImage, downloaded and compared by SNR, PSNR and
SSIM, Table 9's three columns. The ComfyUI run reads the shift from the Stage I model, so the
start sigma printed per s is the one the sample metadata records.
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from swift_core.rules import STRENGTH_READINGS
from swift_core.transition import start_sigma

ROOT = Path(__file__).resolve().parents[1]
DATA_WORKFLOW = ROOT / "workflows" / "api" / "swifti2v_training_data_api.json"
STRENGTHS = (0.01, 0.1, 0.3, 0.5, 0.7)
#: Table 9's rows: (s, k)
PAPER_MIX = ((0.01, 1), (0.1, 4), (0.1, 1), (0.3, 4), (0.5, 4), (0.7, 4))


def parse_mix(text: str) -> list[tuple[float, int]]:
    """``0.1x1,0.3x4``: (s, k) pairs."""
    try:
        out = [(float(a), int(b)) for a, b in (p.split("x") for p in text.split(","))]
        assert out and all(0 < s_ <= 1 and k >= 1 for s_, k in out)
        return out
    except (ValueError, AssertionError):
        raise argparse.ArgumentTypeError(f"--mix {text!r}: expected SxK,... with 0 < s <= 1 "
                                         "and k >= 1, e.g. 0.1x1,0.3x4") from None


def sigma_table(strengths, shifts=(5.0, 8.0)) -> list[str]:
    rows = ["| reading | " + " | ".join(f"s={s:g}" for s in strengths) + " |",
            "| --- |" + " --- |" * len(strengths)]
    for shift in shifts:
        rows.append(f"| before_shift, shift {shift:g} | " + " | ".join(
            f"{start_sigma(s, shift):.3f}" for s in strengths) + " |")
    rows.append("| raw_sigma | " + " | ".join(f"{start_sigma(s, 1.0, 'raw_sigma'):.3f}"
                                               for s in strengths) + " |")
    return rows


def snr(a: torch.Tensor, clean: torch.Tensor) -> float:
    """Signal-to-noise ratio in dB: the clean clip's power over the difference's."""
    return 10 * math.log10(float((clean ** 2).mean()) / max(float(((a - clean) ** 2).mean()),
                                                            1e-12))


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5) of frames [F, H, W, 3] in [0, 1]."""
    x, y = a.permute(0, 3, 1, 2).double(), b.permute(0, 3, 1, 2).double()
    g = torch.exp(-((torch.arange(11, dtype=torch.float64) - 5) ** 2) / (2 * 1.5 ** 2))
    w = (g[:, None] * g[None]) / g.sum() ** 2
    w = w.expand(3, 1, 11, 11).contiguous()

    def blur(t):
        return F.conv2d(t, w, groups=3)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return float(s.mean())


def graph(workflow: Path, video: str, mix, reading: str, sets: list[str]) -> dict:
    """The training-data workflow without its writer: one Stage Transition per (s, k) and a plain
    one (synthesize_fraction 0), each saved by core's SaveImage."""
    from swift_batch.patch import apply_sets, find
    wf = json.loads(workflow.read_text())
    for k in find(wf, class_type="SwiftI2VSampleWriter"):
        del wf[k]
    wf = apply_sets(wf, sets)
    (base,) = find(wf, class_type="SwiftI2VStageTransition")
    (clips,) = find(wf, class_type="SwiftI2VLoadClips")
    wf[clips]["inputs"].update(video=video, max_clips=1)
    template = wf.pop(base)
    for i, (s, k) in enumerate([(None, 1), *mix]):
        node = json.loads(json.dumps(template))
        node["inputs"].update(strength=s or 0.1, steps=k, strength_reading=reading,
                              synthesize_fraction=0.0 if s is None else 1.0)
        wf[f"t{i}"] = node
        wf[f"save{i}"] = {"class_type": "SaveImage", "inputs": {
            "images": [f"t{i}", 0], "filename_prefix": f"swifti2v_bench/strength_{i}"}}
    return wf


def frames(client, entry: dict, prefix: str, folder: Path) -> torch.Tensor:
    import numpy as np
    from PIL import Image
    from swift_batch.client import output_files
    files = sorted((f for f in output_files(entry) if f["filename"].startswith(prefix)),
                   key=lambda f: f["filename"])
    return torch.stack([torch.from_numpy(np.asarray(Image.open(client.download(f, str(folder)))
                                                    .convert("RGB")).copy()).float() / 255
                        for f in files])


def measure(args) -> list[str]:
    from swift_batch.client import ComfyClient
    client = ComfyClient(args.server)
    results = {pair: [] for pair in args.mix}
    with tempfile.TemporaryDirectory() as tmp:
        for video in args.video:
            name = client.upload_image(str(video))
            entry = client.run(graph(args.workflow, name, args.mix, args.reading, args.set),
                               timeout=args.timeout)
            plain = frames(client, entry, "strength_0_", Path(tmp))
            for i, pair in enumerate(args.mix, 1):
                synth = frames(client, entry, f"strength_{i}_", Path(tmp))
                results[pair].append((snr(synth, plain), psnr(synth, plain), ssim(synth, plain)))
    return table(results)


def table(results: dict) -> list[str]:
    """Table 9's layout: s, k, then SNR, PSNR and SSIM averaged over the clips."""
    rows = ["| s | k | SNR (dB) | PSNR (dB) | SSIM |", "| --- | --- | --- | --- | --- |"]
    for (s, k), vals in results.items():
        mean = [sum(v[j] for v in vals) / len(vals) for j in range(3)]
        rows.append(f"| {s:g} | {k} | {mean[0]:.3f} | {mean[1]:.3f} | {mean[2]:.3f} |")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.transition_strength", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mix", type=parse_mix, default=list(PAPER_MIX),
                    help="(s, k) pairs to compare, SxK,... (default: Table 9's rows)")
    ap.add_argument("--reading", choices=STRENGTH_READINGS, default=STRENGTH_READINGS[0])
    ap.add_argument("--server", default=None, help="a ComfyUI with this pack (else: table only)")
    ap.add_argument("--video", type=Path, action="append", default=[])
    ap.add_argument("--workflow", type=Path, default=DATA_WORKFLOW,
                    help="the training-data API workflow (default: the bundled one)")
    ap.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                    help="override the training-data workflow (models, Load Clips' length, size)")
    ap.add_argument("--timeout", type=float, default=3600)
    args = ap.parse_args(argv)
    print("Start sigma of each strength:")
    print("\n".join(sigma_table(sorted({s_ for s_, _ in args.mix}))))
    if args.server:
        if not args.video:
            ap.error("--server needs at least one --video")
        print(f"\nSynthesized clip vs the clean downsample ({len(args.video)} clip(s), "
              f"{args.reading}):")
        print("\n".join(measure(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
