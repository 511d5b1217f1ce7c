"""Stage II at real size: CSG through a full-size Wan2.2-TI2V-5B architecture (random bf16 weights),
and the Wan 2.2 VAE decode through the Segment Decoder's block streaming.

    python -m bench.gpu_stage2 --out bench/out/gpu_stage2.json             # on the GPU machine
    python -m bench.gpu_stage2 --size reduced --device cpu                 # proves the code on CPU

Speed does not depend on the weights' values, so random weights give true timings and memory.
Prints a short table last; writes every number to --out as JSON, with each configuration's run
card (the one the Stage II Sampler writes beside its video).

--adapter comfy (the default when COMFYUI_PATH is set) measures what the pack runs: ComfyUI's
WanModel loaded by ComfyUI and the CSG Stage II Sampler's own path (nodes/bridge/stage2_run.stage2:
each window one core CFGGuider masked-sampling call, ComfyUI's Euler, ComfyUI's memory rules). --adapter diffusers uses
diffusers' WanTransformer3DModel with swift_core's adapter (no ComfyUI needed). The VAE part needs
ComfyUI.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]

from swift_core import (WanDiTConfig, diffusers_wan_denoiser, latent_blocks,  # noqa: E402
                        max_window_blocks, plan_segments, sample_csg)

FULL = dict(dim=3072, heads=24, ffn=14336, layers=30, latent=(88, 160), text=512,
            vae_latent=(88, 160), vae_frames=81)
REDUCED = dict(dim=256, heads=2, ffn=1024, layers=2, latent=(22, 40), text=64,
               vae_latent=(8, 8), vae_frames=17)   # the full-size VAE is slow on a CPU
H800_PAPER = {"M3N1": 25.0, "M2N1": 26.0, "M3N2": 33.0, "M2N2": 37.0, "full": 30.0}
PEAK_BF16_FLOPS = 790e12          # H200 bf16 matrix products (SPEC)


def build_dit(size: dict, device, dtype):
    from diffusers import WanTransformer3DModel

    head_dim = size["dim"] // size["heads"]
    with torch.device(device):
        model = WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=size["heads"], attention_head_dim=head_dim,
            in_channels=96, out_channels=48, text_dim=4096, freq_dim=256, ffn_dim=size["ffn"],
            num_layers=size["layers"], rope_max_seq_len=1024)
    model = model.to(dtype).eval().requires_grad_(False)
    cfg = WanDiTConfig(dim=size["dim"], heads=size["heads"], ffn=size["ffn"],
                       layers=size["layers"], in_channels=96, text_len=size["text"])
    return model, cfg


class Meter:
    def __init__(self, device):
        self.device = torch.device(device)

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_gib(self):
        """Peak allocated GPU memory since reset; None on CPU (max RSS cannot be reset within a
        process: bench/csg_scaling.py measures CPU peaks, one process per configuration)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**30
        return None


class DiffusersStage2:
    """diffusers' Wan with swift_core's adapter."""

    def __init__(self, size, device, dtype):
        self.model, self.cfg = build_dit(size, device, dtype)
        self.device, self.dtype = torch.device(device), dtype

    def run(self, context, noise, reference, m, n, steps, callback):
        den = diffusers_wan_denoiser(self.model, context.to(self.device, self.dtype))
        return sample_csg(den, noise.to(self.device), torch.linspace(1.0, 0.0, steps + 1),
                          anchor=reference[:, :, :1].to(self.device),
                          reference=reference.to(self.device), m=m, n=n,
                          on_segment=lambda seg, blocks: callback())


class ComfyStage2:
    """What the pack runs: ComfyUI's WanModel and the CSG Stage II Sampler's denoiser."""

    def __init__(self, size, host):
        import comfy.ldm.wan.model as wan_model
        import comfy.ops
        import comfy.sd

        from swift_testing.comfy_host.random_weights import meta, random_state

        net = meta(wan_model.WanModel, operations=comfy.ops.disable_weight_init, model_type="t2v",
                   in_dim=96, out_dim=48, dim=size["dim"], ffn_dim=size["ffn"],
                   num_heads=size["dim"] // 128, num_layers=size["layers"], text_dim=4096,
                   freq_dim=256)
        self.model = comfy.sd.load_diffusion_model_state_dict(
            random_state(net, 7, dtype=torch.bfloat16))
        self.host = host
        self.device = self.model.load_device
        self.cfg = WanDiTConfig(dim=size["dim"], heads=size["dim"] // 128, ffn=size["ffn"],
                                layers=size["layers"], in_channels=96, text_len=size["text"])

        self.vae, self.tile, self.evictions = None, 0, []
        self.card = True            # measured into a run card, as the node is (False: bare)

    def stream_with(self, vae, tile: int) -> None:
        """Decode every segment inside Stage II, as the sampler does with its VAE connected."""
        self.vae, self.tile = vae, tile

    def dit_resident(self) -> bool:
        import comfy.model_management as mm
        loaded = [lm.model for lm in mm.current_loaded_models]
        return any(m is self.model or m.is_clone(self.model) for m in loaded if m is not None) \
            and self.model.loaded_size() > 0

    def run(self, context, noise, reference, m, n, steps, callback):
        """The Stage II Sampler's own run (nodes/bridge/stage2_run.stage2), its VAE connected
        when ``stream_with`` gave one; the noise is the node's own, seeded from ``seed``."""
        run = self.host.stage2_run
        settings = run.Stage2Settings(seed=0, steps=steps, cfg=1.0, sampler_name="euler",
                                      scheduler="simple", m=m, n=n, mode="swifti2v",
                                      denoise=1.0, tile_size=self.tile * 16)

        def on_segment(seg, frames):
            if self.vae is not None:    # the memory rule: the DiT stays loaded while the VAE decodes
                self.evictions.append(not self.dit_resident())
            callback()

        cond = [[context, {}]]
        with self.host.run_card.stage("stage2") if self.card else contextlib.nullcontext():
            out, _, _ = run.stage2(self.model, cond, cond, reference, self.vae, settings,
                                   video_wanted=False, name="bench_stage2",
                                   on_segment=on_segment)
        return out

    def last_card(self) -> dict:
        """The run card of the last run (the node's own card: swift_core.cards)."""
        card = self.host.run_card.current()
        return {**card, "stages": card["stages"][-1:]}


def run_csg(stage2, size, frames, m, n, steps, meter, repeats):
    cfg = stage2.cfg
    lh, lw = size["latent"]
    blocks = latent_blocks(frames)
    g = torch.Generator(device="cpu").manual_seed(0)
    noise = torch.randn(1, 48, blocks, lh, lw, generator=g)
    reference = torch.randn(1, 48, blocks, lh, lw, generator=g)
    context = torch.randn(1, size["text"], 4096, generator=g)
    plan = plan_segments(blocks, m, n)
    seg_times = []

    def once():
        marks = []

        def cb():                                       # a segment is final
            meter.sync()
            marks.append(time.perf_counter())

        meter.sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = stage2.run(context, noise, reference, m, n, steps, cb)
        meter.sync()
        t1 = time.perf_counter()
        seg_times.append([b - a for a, b in zip([t0] + marks[:-1], marks)])
        return t1 - t0, out

    once()                                              # warm-up (kernels, allocator)
    meter.reset()
    times, out = [], None
    for _ in range(repeats):
        dt, out = once()
        times.append(dt)
    flops = steps * sum(cfg.flops(len(s.window), lh, lw) for s in plan)
    med = statistics.median(times)
    return {"frames": frames, "blocks": blocks, "m": m, "n": n, "segments": len(plan),
            "window_blocks": max_window_blocks(blocks, m, n), "seconds": med, "all_seconds": times,
            "seconds_per_segment": statistics.median(seg_times[-1]) if seg_times[-1] else med,
            "peak_gib": meter.peak_gib(), "pflop": flops / 1e15,
            "tflops_per_s": flops / med / 1e12, "floor_seconds": flops / PEAK_BF16_FLOPS,
            "finite": bool(torch.isfinite(out).all())}


def load_pack():
    """Import this repo as a package inside ComfyUI; returns its bridge (csg, vae_stream)."""
    import importlib.util

    path = os.environ.get("COMFYUI_PATH")
    if not path:
        return None
    sys.path.insert(0, path)        # ComfyUI itself: the host application the bench loads
    import comfy.options
    comfy.options.enable_args_parsing()
    # ComfyUI parses sys.argv when imported: give it its own flags, not the bench's
    sys.argv = [sys.argv[0]] + ([] if torch.cuda.is_available() else ["--cpu"])
    spec = importlib.util.spec_from_file_location("swifti2v_pack", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    pack = importlib.util.module_from_spec(spec)
    sys.modules["swifti2v_pack"] = pack
    spec.loader.exec_module(pack)
    import importlib
    importlib.import_module("swifti2v_pack.nodes.bridge.stage2_run")
    importlib.import_module("swifti2v_pack.nodes.bridge.vae_stream")
    importlib.import_module("swifti2v_pack.nodes.bridge.run_card")
    return importlib.import_module("swifti2v_pack.nodes.bridge")


def random_wan22_vae():
    """The full-size Wan 2.2 VAE with random bf16 weights, loaded by ComfyUI."""
    import comfy.ldm.wan.vae2_2 as wan22_vae
    import comfy.sd

    from swift_testing.comfy_host.random_weights import meta, random_state

    sd = random_state(meta(wan22_vae.WanVAE, dim=160, z_dim=48, dim_mult=[1, 2, 4, 4],
                           num_res_blocks=2, attn_scales=[],
                           temperal_downsample=[False, True, True]), 5, dtype=torch.bfloat16)
    return comfy.sd.VAE(sd=sd)


def run_vae(host, size, frames, tile, meter):
    vae = random_wan22_vae()
    lh, lw = size["vae_latent"]
    blocks = latent_blocks(frames)
    latent = torch.randn(1, 48, blocks, lh, lw, generator=torch.Generator().manual_seed(1))
    stream = host.vae_stream.WanVAEStream(vae, tile_px=tile * 16)   # --vae-tile: latent units
    stream.load(lh, lw, decode=True)
    per = []
    meter.reset()
    meter.sync()
    t0 = time.perf_counter()
    for b in range(blocks):
        t = time.perf_counter()
        frames_out = stream.decode(latent[:, :, b:b + 1])
        meter.sync()
        per.append(time.perf_counter() - t)
        del frames_out
    total = time.perf_counter() - t0
    return {"frames": frames, "blocks": blocks, "tile": tile, "size": [lw * 16, lh * 16],
            "seconds": total,
            "seconds_per_block": statistics.median(per), "peak_gib": meter.peak_gib()}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=["full", "reduced"], default="full")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--frames", type=int, nargs="+", default=[81, 161, 321])
    ap.add_argument("--cap-gb", type=float, default=0,
                    help="cap GPU memory (set_per_process_memory_fraction), e.g. 24")
    ap.add_argument("--vae-tile", type=int, default=64)
    ap.add_argument("--skip-vae", action="store_true")
    ap.add_argument("--stream", action="store_true",
                    help="decode every segment inside Stage II (the sampler with its VAE) and "
                         "report whether the DiT was evicted while the VAE decoded")
    ap.add_argument("--adapter", choices=["comfy", "diffusers"],
                    default="comfy" if os.environ.get("COMFYUI_PATH") else "diffusers")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gpu_stage2.json")
    a = ap.parse_args(argv)
    size = FULL if a.size == "full" else REDUCED
    dtype = torch.bfloat16
    if a.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        if a.cap_gb:
            total = torch.cuda.get_device_properties(0).total_memory / 2**30
            torch.cuda.set_per_process_memory_fraction(min(1.0, a.cap_gb / total))
    meter = Meter(a.device)
    host = load_pack() if (a.adapter == "comfy" or not a.skip_vae) else None
    if a.adapter == "comfy":
        if host is None:
            sys.exit("--adapter comfy needs COMFYUI_PATH (a ComfyUI checkout)")
        stage2 = ComfyStage2(size, host)
        if a.stream:
            stage2.stream_with(random_wan22_vae(), a.vae_tile)
    else:
        stage2 = DiffusersStage2(size, a.device, dtype)
    results = {"size": a.size, "device": a.device, "steps": a.steps, "cap_gb": a.cap_gb,
               "adapter": a.adapter,
               "gpu": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu",
               "torch": torch.__version__, "dit": [], "vae": []}
    runs = [(81, 3, 1, "M3N1"), (81, 2, 1, "M2N1"), (81, 3, 2, "M3N2"), (81, 2, 2, "M2N2"),
            (81, 20, 1, "full")] + [(f, 3, 1, "M3N1") for f in a.frames if f != 81]
    for frames, m, n, label in runs:
        r = run_csg(stage2, size, frames, m, n, a.steps, meter, a.repeats)
        r["config"] = label
        if a.adapter == "comfy":            # the card the node would write, for this config
            r["card"] = stage2.last_card()
        results["dit"].append(r)
        print(json.dumps(r), flush=True)
    if a.stream and a.adapter == "comfy":
        results["dit_evicted_segments"] = sum(stage2.evictions)
        results["streamed_segments"] = len(stage2.evictions)
        print(f"streaming: the DiT was evicted while the VAE decoded in "
              f"{sum(stage2.evictions)} of {len(stage2.evictions)} segments (rule: 0)", flush=True)
    del stage2
    if host is not None and not a.skip_vae:
        for frames in (size["vae_frames"],):
            r = run_vae(host, size, frames, a.vae_tile, meter)
            results["vae"].append(r)
            print(json.dumps(r), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = a.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(a.out)

    gib = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"\nStage II DiT ({a.adapter}), {a.size} size, {results['gpu']}, {a.steps} steps, "
          "cfg 1, bf16")
    print("| config | frames | segments | DiT s | s/segment | peak GiB | TFLOP/s | floor s | paper H800 s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results["dit"]:
        paper = H800_PAPER.get(r["config"], "") if r["frames"] == 81 else ""
        print(f"| {r['config']} | {r['frames']} | {r['segments']} | {r['seconds']:.2f} | "
              f"{r['seconds_per_segment']:.2f} | {gib(r['peak_gib'])} | {r['tflops_per_s']:.1f} | "
              f"{r['floor_seconds']:.2f} | {paper} |")
    for r in results["vae"]:
        print(f"VAE decode {r['frames']} frames {r['size'][0]}x{r['size'][1]}: "
              f"{r['seconds']:.2f} s total, "
              f"{r['seconds_per_block']:.2f} s/block, peak {gib(r['peak_gib'])} GiB (tile {r['tile']})")
    m3 = [r for r in results["dit"] if r["config"] == "M3N1"]
    if len(m3) > 1:
        flat = ("n/a" if m3[0]["peak_gib"] is None
                else f"{m3[-1]['peak_gib'] / m3[0]['peak_gib']:.2f}x")
        print(f"M3N1 peak {m3[-1]['frames']} / {m3[0]['frames']} frames: {flat}; time per segment "
              f"{m3[-1]['seconds'] / m3[-1]['segments']:.2f} vs "
              f"{m3[0]['seconds'] / m3[0]['segments']:.2f} s")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
