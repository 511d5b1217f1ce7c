"""The Stage I 360P LoRA (paper Sec. 4, App. B.1-B.2): peft on diffusers' Wan 2.1 I2V, trained by
torchrun (gloo, CPU) on tiny samples, exported in the key layout ComfyUI's LoRA loader takes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("peft")
from swift_core.stage1_samples import read_stage1_sample  # noqa: E402

from swift_testing.train_data import (free_port, make_dataset, make_stage1_dataset,  # noqa: E402
                                     torchrun)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "32x32", "--precision", "fp32", "--no-progress"]


def run_lora(nproc, *args, **kw):
    return torchrun(nproc, *args, module="swift_train.lora", **kw)


def log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage1")
    make_stage1_dataset(folder, count=12)
    return folder


def lora_model(rank=8):
    from argparse import Namespace
    from swift_train.lora import TARGETS
    from swift_train.model import load_wan, tiny_i2v_config
    from peft import LoraConfig
    base = load_wan("tiny", seed=4, tiny=tiny_i2v_config())
    model = load_wan("tiny", seed=4, tiny=tiny_i2v_config())
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(TARGETS),
                                 init_lora_weights=True))
    return base, model, Namespace(rank=rank, alpha=2 * rank)


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(1, 36, 3, 4, 4, generator=g), torch.tensor([600.0]),
            torch.randn(1, 512, 4096, generator=g), torch.randn(1, 257, 1280, generator=g))


def test_adapter_at_init_changes_nothing_and_only_it_learns():
    base, model, _ = lora_model()
    x, t, ctx, img = inputs()
    with torch.no_grad():
        want = base(x, t, ctx, encoder_hidden_states_image=img, return_dict=False)[0]
        got = model(x, t, ctx, encoder_hidden_states_image=img, return_dict=False)[0]
    assert torch.equal(want, got)                    # peft's B = 0: the base, exactly
    model(x, t, ctx, encoder_hidden_states_image=img, return_dict=False)[0].square().mean().backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None}
    lora = {n for n, _ in model.named_parameters() if "lora_" in n}
    assert grads and grads <= lora                  # only the adapter receives gradients
    assert any("add_k_proj.lora_B" in n for n in grads) and any("ffn.net.2.lora_B" in n for n in grads)


def test_exported_lora_merged_as_comfyui_merges_equals_the_adapter(tmp_path):
    """ComfyUI adds (alpha / rank) B A to each weight at strength 1: on the base model's own
    weights (renamed back), that equals peft's forward with the adapter."""
    from swift_train.export import comfy_key
    from swift_train.export_lora import to_comfy_lora
    base, model, cfg = lora_model()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    lora = to_comfy_lora({n: p for n, p in model.state_dict().items() if "lora_" in n},
                         cfg.alpha, torch.float32)
    assert all(k.startswith("diffusion_model.blocks.") for k in lora)
    assert "diffusion_model.blocks.0.cross_attn.k_img.lora_A.weight" in lora
    assert "diffusion_model.blocks.1.ffn.0.lora_B.weight" in lora
    merged = dict(base.state_dict())
    comfy = {comfy_key(k): k for k in merged}
    for key in [k for k in lora if k.endswith(".lora_A.weight")]:
        module = key[len("diffusion_model."):-len(".lora_A.weight")]
        a, b = lora[key], lora[key.replace("lora_A", "lora_B")]
        alpha = float(lora[f"diffusion_model.{module}.alpha"])
        name = comfy[f"{module}.weight"]
        merged[name] = merged[name] + (alpha / a.shape[0]) * (b @ a)
    base.load_state_dict(merged)
    x, t, ctx, img = inputs(2)
    with torch.no_grad():
        want = model(x, t, ctx, encoder_hidden_states_image=img, return_dict=False)[0]
        got = base(x, t, ctx, encoder_hidden_states_image=img, return_dict=False)[0]
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5


def test_two_ranks_train_checkpoint_and_resume_exactly(samples, tmp_path):
    common = [*TINY, "--data", samples, "--lr", "1e-3", "--rank", "4", "--save-every", "2",
              "--seed", "3"]
    run_lora(2, *common, "--out", tmp_path / "a", "--steps", 4)
    run_lora(2, *common, "--out", tmp_path / "b", "--steps", 2)
    run_lora(2, *common, "--out", tmp_path / "b", "--steps", 4)
    a = {e["step"]: e["loss"] for e in log(tmp_path / "a")}
    b = {e["step"]: e["loss"] for e in log(tmp_path / "b")}
    assert sorted(a) == sorted(b) == [1, 2, 3, 4] and a == b, (a, b)
    from swift_train.export import load_weights
    ck = load_weights(str(tmp_path / "a" / "checkpoints" / "step_00000004"), "model")
    assert ck and all("lora_" in k for k in ck)       # the adapter only, never the base


def test_same_command_same_losses_with_a_base_from_a_file(samples, tmp_path):
    """The base read from a file (as on a cluster): two launches of one command give the same
    losses on 2 ranks (the adapter's random init is seeded), and a run stopped after a
    checkpoint and re-run continues with the uninterrupted run's losses."""
    from safetensors.torch import save_file
    from swift_train.model import load_wan, tiny_i2v_config
    base = tmp_path / "i2v.safetensors"                   # diffusers keys
    save_file(load_wan("tiny", seed=5, tiny=tiny_i2v_config()).state_dict(), str(base))
    common = [*TINY, "--data", samples, "--base", base, "--lr", "1e-3", "--rank", "4",
              "--save-every", "2", "--seed", "3"]
    run_lora(2, *common, "--out", tmp_path / "a", "--steps", 4)
    run_lora(2, *common, "--out", tmp_path / "b", "--steps", 4)
    run_lora(2, *common, "--out", tmp_path / "c", "--steps", 2)
    run_lora(2, *common, "--out", tmp_path / "c", "--steps", 4)
    a, b, c = ({e["step"]: e["loss"] for e in log(tmp_path / r)} for r in "abc")
    assert sorted(a) == [1, 2, 3, 4] and a == b == c, (a, b, c)
    assert len(set(a.values())) == 4


def test_learning_beats_the_untrained_base_and_the_still_image(samples, tmp_path):
    """12 clips (one video each), 2 videos held out; x0 error at sigmas 0.25/0.5/0.75. Measured
    on a CPU (400 steps; 800 give the same): untrained 0.393, the input image repeated (a still
    video) 0.263, trained 0.216."""
    run = tmp_path / "learn"
    run_lora(1, *TINY, "--data", samples, "--out", run, "--lr", "1e-3", "--rank", "16",
             "--steps", 400, "--val-count", 2, "--val-every", 400, "--save-every", 400)
    first, last = [e for e in log(run) if "val_error" in e]
    print(f"held-out x0 error: untrained {first['val_error']:.4f}, still image "
          f"{first['val_static_image']:.4f}, trained {last['val_error']:.4f}")
    assert last["val_error"] < 0.9 * first["val_static_image"]
    assert last["val_error"] < 0.7 * first["val_error"]


def test_export_command_and_its_refusals(samples, tmp_path):
    from safetensors import safe_open
    run = tmp_path / "run"
    run_lora(1, *TINY, "--data", samples, "--out", run, "--rank", "4", "--alpha", "8",
             "--steps", 1, "--save-every", 1)
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def export(r, out):
        return subprocess.run([sys.executable, "-m", "swift_train.export_lora", "--run", str(r),
                               "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                              text=True)

    res = export(run, tmp_path / "lora.safetensors")
    assert res.returncode == 0, res.stderr
    with safe_open(str(tmp_path / "lora.safetensors"), "pt") as f:
        meta, keys = f.metadata(), set(f.keys())
        assert f.get_tensor("diffusion_model.blocks.0.self_attn.q.alpha").item() == 8.0
        assert f.get_tensor("diffusion_model.blocks.0.self_attn.q.lora_A.weight").shape == (4, 128)
    assert meta["swifti2v.rank"] == "4" and meta["swifti2v.alpha"] == "8.0"
    assert len(keys) == 2 * 12 * 3                       # 12 modules a block, A / B / alpha
    # a run with no checkpoint, and a Stage II run, are refused by name
    run_lora(1, *TINY, "--data", samples, "--out", tmp_path / "fresh", "--steps", 0)
    res = export(tmp_path / "fresh", tmp_path / "x.safetensors")
    assert res.returncode == 2 and "no checkpoint yet" in res.stderr and "Traceback" not in res.stderr
    make_dataset(tmp_path / "s2", count=2)
    torchrun(1, "--data", tmp_path / "s2", "--out", tmp_path / "stage2", "--steps", 1,
             "--save-every", 1, "--precision", "fp32", "--no-progress")
    res = export(tmp_path / "stage2", tmp_path / "x.safetensors")
    assert res.returncode == 2 and "holds no LoRA" in res.stderr, res.stderr
    assert not (tmp_path / "x.safetensors").exists()


def failing(*args) -> str:
    cmd = [sys.executable, "-m", "swift_train.lora", *map(str, args)]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), RANK="0", WORLD_SIZE="1",
                                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port())))
    assert r.returncode != 0
    return r.stderr


def refused(module: str, out: Path, *args) -> str:
    """``python -m module ARGS`` as rank 0: exit code 2, one line on stderr, ``out`` not made."""
    r = subprocess.run([sys.executable, "-m", module, "--out", str(out), *map(str, args)],
                       cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), RANK="0", WORLD_SIZE="1",
                                MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port())))
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert not out.exists()
    return lines[0]


@pytest.mark.parametrize("module", ["swift_train.lora", "swift_train.train"])
def test_each_bad_argument_is_one_line_exit_2_and_nothing_written(module, samples, tmp_path):
    from swift_testing.train_data import make_dataset
    stage2 = tmp_path / "stage2_data"
    make_dataset(stage2, count=2)
    data = samples if module.endswith("lora") else stage2
    sized = ["--size", "32x32"] if module.endswith("lora") else []
    out = tmp_path / "run"
    line = refused(module, out, "--data", tmp_path / "nowhere")
    assert "--data" in line and "no such folder" in line
    line = refused(module, out, "--data", data, *sized, "--base", tmp_path / "missing.safetensors")
    assert "--base" in line and "no such .safetensors file or diffusers folder" in line
    line = refused(module, out, "--data", data, *sized, "--steps", "-1")
    assert "--steps -1: must be >= 0" in line
    line = refused(module, out, "--data", data, *sized, "--val-count", "99")
    assert "--val-count 99" in line
    if module.endswith("lora"):
        assert "--rank: '0': expected a whole number >= 1" in refused(
            module, out, "--data", data, *sized, "--rank", "0")
        assert "a 32x32 Stage I sample; this run trains at --size 640x352" in refused(
            module, out, "--data", data, "--size", "640x352")
    else:
        import shutil
        small = make_dataset(tmp_path / "small", count=1, size=32)
        shutil.copy(small[0], stage2 / "small.safetensors")       # another size in one folder
        line = refused(module, out, "--data", stage2)
        assert "put each size in its own --data folder" in line


def fake_run(folder: Path, config: dict) -> Path:
    """A run folder as the trainers leave it (config, ``latest`` and its checkpoint folder)."""
    (folder / "checkpoints" / "step_00000001").mkdir(parents=True)
    (folder / "checkpoints" / "latest").write_text("step_00000001")
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("module", ["swift_train.export", "swift_train.export_lora"])
def test_each_bad_export_argument_is_one_line_exit_2_and_nothing_written(module, tmp_path):
    lora = fake_run(tmp_path / "lora_run", {"rank": 4, "targets": "q", "size": [32, 32]})
    stage2 = fake_run(tmp_path / "stage2_run", {"rope": "window"})
    own, other = (stage2, lora) if module.endswith(".export") else (lora, stage2)
    out = tmp_path / "exported.safetensors"
    assert "not a training run" in refused(module, out, "--run", tmp_path / "nowhere")
    assert "--dtype: invalid choice: 'int8'" in refused(module, out, "--run", own, "--dtype", "int8")
    assert "the following arguments are required: --run" in refused(module, out)
    line = refused(module, tmp_path / "models", "--run", own)
    assert "--out" in line and "a .safetensors file" in line
    line = refused(module, out, "--run", other)
    assert ("export_lora" if module.endswith(".export") else "holds no LoRA") in line
    # ComfyUI/models/... typed from the pack's folder: a folder inside the pack, never looked in
    inside = ROOT / "ComfyUI" / "models" / "loras" / "x.safetensors"
    line = refused(module, inside, "--run", own)
    assert "--out 'ComfyUI/models/loras/x.safetensors'" in line.replace(str(ROOT) + "/", "")
    assert "inside the node pack" in line and not (ROOT / "ComfyUI").exists()


def test_bad_inputs_are_named_before_the_model_loads(samples, tmp_path):
    make_dataset(tmp_path / "stage2_data", count=1)           # a Stage II sample, not Stage I
    err = failing("--data", tmp_path / "stage2_data", "--out", tmp_path / "r1", *TINY)
    assert "astronaut_0_000000.safetensors: not a SwiftI2V Stage I training sample" in err
    err = failing("--data", samples, "--out", tmp_path / "r2", "--size", "640x352")
    assert "a 32x32 Stage I sample; this run trains at --size 640x352" in err
    err = failing("--data", samples, "--out", tmp_path / "r3", "--rank", "0")
    assert "--rank: '0': expected a whole number >= 1" in err
    from swift_train.model import tiny_config
    from swift_train.export import write
    from swift_train.model import load_wan
    write(load_wan("tiny").state_dict(), str(tmp_path / "ti2v.safetensors"), dtype="fp32")
    err = failing("--data", samples, "--out", tmp_path / "r4", *TINY,
                  "--base", tmp_path / "ti2v.safetensors")
    assert "not a Wan 2.1 I2V model (in_channels 48, image embedder absent" in err
    assert tiny_config()["in_channels"] == 48
    assert read_stage1_sample(str(sorted(samples.glob("*.safetensors"))[0])).x0.shape == (16, 5, 4, 4)
