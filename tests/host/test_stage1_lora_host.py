"""The Stage I 360P LoRA in a real ComfyUI: trained by swift_train.lora on the tiny Wan 2.1 I2V
file ComfyUI loads, exported, loaded by core's LoraLoaderModelOnly; and its training data made by
the bundled Stage I data workflow through the batch client."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from swift_batch.client import output_files  # noqa: E402

from swift_testing.comfy_host.graphs import TINY, pipeline  # noqa: E402
from swift_testing.train_data import make_stage1_dataset, torchrun  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lora(models, tmp_path_factory):
    """A LoRA trained a few steps (large learning rate: it must change the output) on the tiny
    Wan 2.1 I2V file, exported into the server's models/loras."""
    tmp = tmp_path_factory.mktemp("stage1_lora")
    make_stage1_dataset(tmp / "samples", count=3)
    base = Path(models) / "diffusion_models" / TINY["stage1"]
    torchrun(1, "--data", tmp / "samples", "--out", tmp / "run", "--base", base, "--size",
             "32x32", "--precision", "fp32", "--rank", "4", "--lr", "3e-2", "--steps", 3,
             "--save-every", 3, "--no-progress", module="swift_train.lora")
    name = f"swifti2v_stage1_test_{os.getpid()}.safetensors"
    target = Path(models) / "loras" / name
    r = subprocess.run([sys.executable, "-m", "swift_train.export_lora", "--run", str(tmp / "run"),
                        "--out", str(target), "--dtype", "fp32"], cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    yield {"name": name, "path": target, "run": tmp / "run", "base": base, "tmp": tmp}
    target.unlink(missing_ok=True)


def test_comfyui_forward_with_the_lora_equals_the_trainers(lora):
    """Core's LoRA loading at strength 1 on ComfyUI's Wan 2.1 model computes what peft's adapter
    computes on diffusers' model (same inputs, fp32)."""
    from peft import LoraConfig
    from swift_core.adapters import diffusers_wan_i2v_velocity
    from swift_train.export import load_weights
    from swift_train.lora import TARGETS
    from swift_train.model import load_wan
    from swift_testing.comfy_host.server import run_helper
    model = load_wan(str(lora["base"]))
    model.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=list(TARGETS)))
    trained = load_weights(str(lora["run"] / "checkpoints" / "step_00000003"), "model")
    missing = set(trained) - set(model.state_dict())
    assert not missing, missing
    model.load_state_dict(trained, strict=False)
    g = torch.Generator().manual_seed(0)
    io = {"x": torch.randn(1, 36, 3, 4, 4, generator=g), "sigma": torch.tensor([0.6]),
          "context": torch.randn(1, 512, 4096, generator=g),       # as umt5 and CLIP vision
          "image": torch.randn(1, 257, 1280, generator=g)}         # give them
    with torch.no_grad():
        want = diffusers_wan_i2v_velocity(model.eval())(
            io["x"][:, :16], io["sigma"], concat=io["x"][:, 16:], context=io["context"],
            image=io["image"])
        model.disable_adapters()
        plain = diffusers_wan_i2v_velocity(model)(
            io["x"][:, :16], io["sigma"], concat=io["x"][:, 16:], context=io["context"],
            image=io["image"])
    torch.save(io, lora["tmp"] / "io.pt")
    run_helper("comfy_lora_forward", str(lora["base"]), str(lora["path"]),
               str(lora["tmp"] / "io.pt"), timeout=600)
    got = torch.load(lora["tmp"] / "io.pt")
    assert got["lora_patches"] == 2 * 12                  # every trained module patched
    err = float((got["comfy"] - want).abs().max() / want.abs().max())
    print(f"ComfyUI with the LoRA vs the trainer's adapter: {err:.2e} relative")
    assert err < 1e-4
    assert float((plain - want).abs().max() / want.abs().max()) > 100 * max(err, 1e-7)


def test_core_lora_loader_takes_every_key_and_changes_stage1(client, server, lora):
    g = pipeline(decoder=False, compare=False, save_name="stage1_lora")
    g["40"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
        "model": ["1", 0], "lora_name": lora["name"], "strength_model": 1.0}}
    g["10"]["inputs"]["model"] = ["40", 0]
    g["15"] = {"class_type": "SwiftTestSaveTensors", "inputs": {"name": "with_lora",
                                                                "images": ["10", 0]}}
    for k in ("11", "12"):
        g.pop(k)
    before = len(server.log_text())
    client.run(g, timeout=900)
    g["10"]["inputs"]["model"] = ["1", 0]
    g["15"]["inputs"]["name"] = "without_lora"
    client.run(g, timeout=900)
    assert "lora key not loaded" not in server.log_text()[before:]
    from safetensors.torch import load_file
    a = load_file(str(server.output / "swifti2v_test" / "with_lora.safetensors"))["images"]
    b = load_file(str(server.output / "swifti2v_test" / "without_lora.safetensors"))["images"]
    assert a.shape == b.shape and not torch.equal(a, b)


def test_stage1_data_workflow_through_the_batch_client(server, tmp_path, capsys):
    from swift_batch.__main__ import main as batch_main
    from swift_core.stage1_samples import read_stage1_sample
    from swift_testing.comfy_host.clips import panned_video
    from swift_testing.comfy_host.graphs import tiny_api_workflow
    panned_video(server.input / "astronaut.png", tmp_path / "walk.mp4", frames=17)
    (tmp_path / "rows.csv").write_text("video,caption\nwalk.mp4,an astronaut\n")
    out = tmp_path / "stage1"
    args = ["--data", "--stage1", "--rows", str(tmp_path / "rows.csv"), "--out", str(out),
            "--server", server.url, "--no-progress", "--timeout", "900",
            "--workflow", str(tiny_api_workflow(tmp_path / "wf.json", "swifti2v_stage1_data")),
            "--set", f"1.unet_name={TINY['stage1']}", "--set", f"3.vae_name={TINY['vae1']}",
            "--set", "30.length=17", "--set", "Stage I Sample Writer.width=128",
            "--set", "Stage I Sample Writer.height=128"]
    assert batch_main(args) == 0, capsys.readouterr().err
    (path,) = sorted(out.glob("*/*.safetensors"))
    s = read_stage1_sample(str(path))
    assert path.name == "walk_000000.safetensors"
    assert tuple(s.x0.shape) == (16, 5, 4, 4) and tuple(s.concat.shape) == (20, 5, 4, 4)
    assert (s.meta["width"], s.meta["height"], s.meta["target_width"]) == ("32", "32", "128")
    assert torch.equal(s.concat[:4, 0], torch.ones_like(s.concat[:4, 0]))   # frame 0 is given
    assert torch.count_nonzero(s.concat[:4, 1:]) == 0
    assert tuple(s.context.shape) == (512, 4096)
    stamp = path.stat().st_mtime_ns
    capsys.readouterr()
    assert batch_main(args) == 0
    assert "1 row(s) already done, skipped: walk" in capsys.readouterr().err
    assert path.stat().st_mtime_ns == stamp
