"""Train -> export -> ComfyUI (issue 11): a tiny Stage II trained by swift_train loads with core's
Load Diffusion Model and the bundled workflow runs it in swifti2v mode to a video."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

from swift_batch.__main__ import main as batch_main  # noqa: E402

from swift_testing.train_data import make_dataset, torchrun  # noqa: E402
from swift_testing.comfy_host.graphs import TINY  # noqa: E402
from swift_testing.comfy_host.graphs import tiny_api_workflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_exported_weights_compute_the_same_in_comfyui(tmp_path):
    """What training optimises (diffusers' forward, per-block sigma, reference concatenated) is
    what ComfyUI computes with the exported file: one window, context at sigma 0."""
    import torch
    from swift_core.adapters import diffusers_wan_velocity
    from swift_train.export import write
    from swift_train.model import load_wan, widen_patch_embedding
    from swift_testing.comfy_host.server import run_helper
    model = widen_patch_embedding(load_wan("tiny", seed=9)).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():           # as after training: the reference channels matter
        model.patch_embedding.weight[:, 48:] = torch.randn(
            model.patch_embedding.weight[:, 48:].shape, generator=g) * 0.05
    write(model.state_dict(), str(tmp_path / "m.safetensors"), dtype="fp32")
    io = {"x": torch.randn(1, 48, 4, 4, 6, generator=g),
          "ref": torch.randn(1, 48, 4, 4, 6, generator=g),
          "sigma": torch.tensor([[0.0, 0.0, 0.7, 0.7]]),
          "context": torch.randn(1, 8, 4096, generator=g)}
    with torch.no_grad():
        want = diffusers_wan_velocity(model)(io["x"], io["sigma"], reference=io["ref"],
                                             positions=torch.arange(4), context=io["context"])
    torch.save(io, tmp_path / "io.pt")
    run_helper("comfy_forward", str(tmp_path / "m.safetensors"), str(tmp_path / "io.pt"),
               timeout=600)
    got = torch.load(tmp_path / "io.pt")
    assert got["model_class"] == "WAN22"
    assert float((got["comfy"] - want).abs().max() / want.abs().max()) < 1e-4   # measured 1.4e-6


def test_trained_and_exported_model_runs_in_the_bundled_workflow(server, models, tmp_path, capsys):
    """Trained with shift 3 (not the default, so the plumbing shows), exported, and sampled by the
    bundled workflow with its ModelSamplingSD3 set to the export's swifti2v.shift: the sigmas
    Stage II's model is called at are the training schedule's (flow_sigmas) at the same steps."""
    import json
    import torch
    from safetensors import safe_open
    from swift_core.schedule import flow_sigmas
    make_dataset(tmp_path / "samples", count=3)
    torchrun(1, "--data", tmp_path / "samples", "--out", tmp_path / "run", "--steps", 2,
             "--save-every", 2, "--precision", "fp32", "--no-progress", "--shift", 3)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    name = f"swifti2v_trained_{os.getpid()}.safetensors"
    target = Path(models) / "diffusion_models" / name
    exp = subprocess.run([sys.executable, "-m", "swift_train.export", "--run",
                          str(tmp_path / "run"), "--out", str(target), "--dtype", "fp16"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert exp.returncode == 0, exp.stderr[-3000:]
    with safe_open(str(target), "pt") as f:
        shift = f.metadata()["swifti2v.shift"]
    assert shift == "3" and "set ModelSamplingSD3's shift to 3" in exp.stdout
    wf = json.loads(tiny_api_workflow(tmp_path / "wf.json").read_text())
    assert wf["18"]["class_type"] == "ModelSamplingSD3" and wf["14"]["inputs"]["model"] == ["18", 0]
    wf["31"] = {"class_type": "SwiftTestRecordModel", "inputs": {"model": ["18", 0],
                                                                 "tag": "shift_rec"}}
    wf["14"]["inputs"]["model"] = ["31", 0]
    wf["32"] = {"class_type": "SwiftTestSaveRecords", "inputs": {
        "model": ["18", 0], "latent": ["14", 0], "tag": "shift_rec"}}
    (tmp_path / "wf.json").write_text(json.dumps(wf))
    try:
        (tmp_path / "rows.csv").write_text("image,prompt,seed,width,height,frames\n"
                                           "astronaut.png,an astronaut waves,1,64,64,9\n")
        import shutil
        shutil.copy(server.input / "astronaut.png", tmp_path / "astronaut.png")
        out = tmp_path / "videos"
        args = ["--rows", str(tmp_path / "rows.csv"), "--out", str(out), "--server", server.url,
                "--workflow", str(tmp_path / "wf.json"), "--no-progress",
                "--set", f"18.shift={shift}",
                "--set", f"1.unet_name={TINY['stage1']}",
                "--set", "2.lora_name=tiny_lightx2v_lora.safetensors",
                "--set", f"3.vae_name={TINY['vae1']}", "--set", f"12.vae_name={TINY['vae2']}",
                "--set", f"11.unet_name={name}", "--set", "14.mode=swifti2v",
                "--set", "14.rope=window", "--set", "14.steps=2", "--timeout", "900"]
        assert batch_main(args) == 0, capsys.readouterr().err
        import av
        with av.open(str(out / "astronaut.mp4")) as c:
            frames = [f for f in c.decode(video=0)]
        assert len(frames) == 9 and (frames[0].width, frames[0].height) == (64, 64)
        log = server.log_text()
        assert "unet unexpected" not in log and "unet missing" not in log, log[-3000:]
        from safetensors.torch import load_file
        rec = load_file(str(server.output / "swifti2v_test" / "shift_rec.safetensors"))
        used = sorted({round(float(rec[k].max()) / 1000, 5) for k in rec if k.startswith("t_")},
                      reverse=True)
        want = [round(float(v), 5) for v in flow_sigmas(2, 3.0)[:-1]]
        assert used == want, (used, want)                    # [1.0, 0.75]; ComfyUI's 8: 0.889
    finally:
        target.unlink(missing_ok=True)
