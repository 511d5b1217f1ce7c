"""swift_train through torchrun (gloo, CPU): exact resume on 2 ranks, an honest learning test, and
the export command (issue 11)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
from swift_core.samples import read_sample  # noqa: E402

from swift_testing.train_data import make_dataset, torchrun  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def losses(run: Path) -> dict:
    out = {}
    for line in (run / "log.jsonl").read_text().splitlines():
        e = json.loads(line)
        if "loss" in e:
            out[e["step"]] = e["loss"]
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    make_dataset(folder, count=6)
    return folder


def test_torchrun_two_ranks_resume_equals_uninterrupted(dataset, tmp_path):
    common = ["--data", dataset, "--precision", "fp32", "--lr", "1e-3", "--grad-accum", "2",
              "--ema", "0.9", "--save-every", "2", "--seed", "3"]
    torchrun(2, "--no-progress", *common, "--out", tmp_path / "a", "--steps", 4)
    torchrun(2, "--no-progress", *common, "--out", tmp_path / "b", "--steps", 2)       # stops after a checkpoint
    assert (tmp_path / "b" / "checkpoints" / "latest").read_text() == "step_00000002"
    torchrun(2, "--no-progress", *common, "--out", tmp_path / "b", "--steps", 4)       # the same command resumes
    a, b = losses(tmp_path / "a"), losses(tmp_path / "b")
    assert sorted(a) == sorted(b) == [1, 2, 3, 4]
    assert a == b, (a, b)                                   # same data order, draws and state
    assert len(set(a.values())) == 4
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["world"] == 2 and cfg["rope"] == "window"


def test_export_command(dataset, tmp_path):
    from safetensors import safe_open
    torchrun(1, "--no-progress", "--data", dataset, "--precision", "fp32", "--steps", 2, "--save-every", 2,
             "--ema", "0.5", "--rope", "absolute", "--out", tmp_path / "run")
    exported = {}
    for extra, ema in (([], "true"), (["--no-ema"], "false")):
        out = tmp_path / f"stage2_{ema}.safetensors"
        r = subprocess.run([sys.executable, "-m", "swift_train.export", "--run", str(tmp_path / "run"),
                            "--out", str(out), *extra], cwd=ROOT, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert r.returncode == 0, r.stderr[-3000:]
        with safe_open(str(out), "pt") as f:
            meta = f.metadata()
            assert f.get_tensor("patch_embedding.weight").shape[1] == 96
            assert f.get_tensor("blocks.0.self_attn.q.weight").dtype == torch.bfloat16
        assert meta["swifti2v.rope"] == "absolute" and meta["swifti2v.ema"] == ema
        assert meta["swifti2v.step"] == "step_00000002"
        with safe_open(str(out), "pt") as f:
            exported[ema] = f.get_tensor("blocks.0.ffn.0.weight")
    assert not torch.equal(exported["true"], exported["false"])      # the EMA is not the raw
    # the weights-only load equals torch's own full conversion of the checkpoint
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save
    from swift_train.export import load_weights
    ck = tmp_path / "run" / "checkpoints" / "step_00000002"
    dcp_to_torch_save(str(ck), str(tmp_path / "full.pt"))
    full = torch.load(tmp_path / "full.pt", weights_only=False)
    for part in ("model", "ema"):
        mine = load_weights(str(ck), part)
        assert set(mine) == set(full[part]) and len(mine) > 0
        assert all(torch.equal(mine[k], full[part][k]) for k in mine)


def test_learning(dataset, tmp_path):
    """Loss falls clearly, and CSG sampling from the trained model lands closer to the held-out
    targets than from the untrained one (relative squared error, logged by validation).
    Measured on a CPU: loss 3.40 -> 1.64 (mean of the first / last 30 steps), validation error
    1.18 -> 0.24; the test asks for 0.6x on each."""
    run = tmp_path / "learn"
    torchrun(1, "--no-progress", "--data", dataset, "--out", run, "--precision", "fp32", "--lr", "1e-3",
             "--steps", 150, "--val-count", 2, "--val-every", 150, "--save-every", 150,
             timeout=900)
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    vals = [e["val_error"] for e in log if "val_error" in e]
    loss = [e["loss"] for e in log if "loss" in e]
    first, last = sum(loss[:30]) / 30, sum(loss[-30:]) / 30
    assert last < 0.6 * first, (first, last)
    assert len(vals) == 2 and vals[1] < 0.6 * vals[0], vals
    assert read_sample(str(sorted(dataset.glob("*.safetensors"))[-1])).x0.shape[1] == 5
