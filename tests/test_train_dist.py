"""swift_train through torchrun (gloo, CPU): exact resume on 2 ranks and the export command
(issue 11). Learning on footage the model never saw: tests/test_transfer.py."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

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


def test_export_of_a_run_without_a_checkpoint_is_refused_by_name(dataset, tmp_path):
    run = tmp_path / "fresh"
    torchrun(1, "--no-progress", "--data", dataset, "--precision", "fp32", "--steps", 0,
             "--out", run)                                      # set up, no step, no save
    assert (run / "config.json").exists() and not (run / "checkpoints" / "latest").exists()
    for target, needle in ((run, f"--run {str(run)!r}: no checkpoint yet"),
                           (tmp_path / "nowhere", "not a training run (no config.json")):
        r = subprocess.run([sys.executable, "-m", "swift_train.export", "--run", str(target),
                            "--out", str(tmp_path / "x.safetensors")], cwd=ROOT,
                           capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert r.returncode == 2 and needle in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / "x.safetensors").exists()


def test_trainer_never_reads_the_batch_clients_staging_folder(tmp_path):
    from swift_train.data import sample_files
    make_dataset(tmp_path / "samples" / ".incoming" / "cut_off", count=2)   # still downloading
    with pytest.raises(FileNotFoundError) as e:
        sample_files(str(tmp_path / "samples"))
    assert f"--data {str(tmp_path / 'samples')!r}: no finished .safetensors samples" in str(e.value)
    assert "2 file(s) only in staging folders such as .incoming" in str(e.value)
    done = make_dataset(tmp_path / "samples" / "walk", count=3)
    assert sample_files(str(tmp_path / "samples")) == sorted(map(str, done))


def test_two_ranks_in_bf16_with_activation_checkpointing(dataset, tmp_path):
    """The defaults people train with (bf16 compute, --grad-checkpointing) on 2 ranks: the
    recomputed activations give the same losses as keeping them, and bf16 really computes in
    bf16 (its losses differ from fp32's, by little)."""
    common = ["--no-progress", "--data", dataset, "--lr", "1e-3", "--steps", 3,
              "--save-every", 3, "--seed", 5]
    torchrun(2, *common, "--grad-checkpointing", "--out", tmp_path / "ckpt")
    torchrun(2, *common, "--out", tmp_path / "keep")
    torchrun(2, *common, "--precision", "fp32", "--out", tmp_path / "fp32")
    ckpt, keep, fp32 = (losses(tmp_path / n) for n in ("ckpt", "keep", "fp32"))
    assert sorted(ckpt) == [1, 2, 3] and all(math.isfinite(v) for v in ckpt.values())
    assert ckpt == pytest.approx(keep, rel=1e-3), (ckpt, keep)
    assert ckpt != fp32 and ckpt == pytest.approx(fp32, rel=0.05), (ckpt, fp32)
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg["precision"] == "bf16" and cfg["grad_checkpointing"] and cfg["world"] == 2
    assert (tmp_path / "ckpt" / "checkpoints" / "latest").read_text() == "step_00000003"


def test_every_rank_draws_the_same_window_and_a_nonfinite_loss_is_skipped(dataset, tmp_path):
    """2 ranks, 6 steps: one (M, N) per step on both ranks (checked across ranks each step, and
    logged); the pairs vary over the steps. Step 3's loss made NaN by a test flag, and step 5's
    loss left finite but one gradient made inf (a bf16 overflow): each skipped on both ranks,
    logged, the run goes on; three in a row stop the run with a clear message."""
    common = ["--no-progress", "--data", dataset, "--precision", "fp32", "--save-every", 100,
              "--seed", 4]
    torchrun(2, *common, "--steps", 6, "--inject-nonfinite", "3", "--inject-nonfinite-grad", "5",
             "--out", tmp_path / "a")
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5, 6]
    assert log[2]["skipped"] == "non-finite loss" and log[2]["loss"] is None
    assert "grad_norm" not in log[2]                       # no update
    assert log[4]["skipped"] == "non-finite gradient" and "grad_norm" not in log[4]
    # the loader read only each window's blocks (x0 and R, 3 KiB a block each): the 5-block
    # samples were read whole only where the window covers them all
    block = 48 * 4 * 4 * 4
    got = [e["bytes_read"] for e in log]
    assert all(b % (2 * block) == 0 for b in got) and min(got) < 2 * 5 * block, got
    assert all(math.isfinite(e["loss"]) for e in log if e["step"] not in (3, 5))
    assert len({e["window"] for e in log}) > 1            # drawn per step, not fixed
    # the same numbers as TensorBoard scalars (read back with tensorboard's own reader)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    board = EventAccumulator(str(tmp_path / "a" / "tensorboard"))
    board.Reload()
    loss = {ev.step: ev.value for ev in board.Scalars("train/loss")}
    assert sorted(loss) == [1, 2, 4, 6]                    # the skipped steps have no loss
    assert all(loss[e["step"]] == pytest.approx(e["loss"], rel=1e-6) for e in log if e["loss"])
    assert {"train/grad_norm", "train/lr", "train/samples_per_s", "memory/gib"} <= \
        set(board.Tags()["scalars"])
    from swift_train.data import window_generator
    from swift_core.training import PAIRS, draw_pair
    assert [e["window"] for e in log] == [
        "{}x{}".format(*draw_pair(window_generator(4, s), PAIRS)) for s in range(6)]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node", "2", "-m", "swift_train.train", *map(str, common),
                        "--steps", "6", "--inject-nonfinite", "2,3,4", "--out",
                        str(tmp_path / "b")], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    assert r.returncode != 0
    assert "step 4: non-finite loss 3 steps in a row; stopping" in r.stderr


def test_async_checkpoints_keep_what_retention_says(dataset, tmp_path):
    """2 ranks, a checkpoint every step written in the background: the last 2 and every 4th stay
    (steps 4, 8, 9, 10); the run resumes from them exactly (the resume test above runs with the
    same background saves)."""
    from swift_train.checkpoint import retired
    torchrun(2, "--no-progress", "--data", dataset, "--precision", "fp32", "--steps", 10,
             "--save-every", 1, "--keep-last", 2, "--keep-every", 4, "--out", tmp_path / "r")
    ck = tmp_path / "r" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == [
        "latest", "step_00000004", "step_00000008", "step_00000009", "step_00000010"]
    assert (ck / "latest").read_text() == "step_00000010"
    names = [f"step_{i:08d}" for i in range(1, 8)]           # 7 in flight, not committed yet
    assert retired(names, "step_00000006", 2, 0) == names[:4]


def test_validation_split_across_ranks_equals_one_rank(dataset, tmp_path):
    """3 held-out samples on 2 ranks (2 + 1, the short rank padding with an uncounted repeat):
    the same val_error as 1 rank computing all of them."""
    common = ["--no-progress", "--data", dataset, "--precision", "fp32", "--steps", 1,
              "--val-count", 3, "--val-every", 1, "--save-every", 1]
    for n in (1, 2):
        torchrun(n, *common, "--out", tmp_path / f"w{n}")
    vals = {n: [json.loads(x)["val_error"] for x in (tmp_path / f"w{n}" / "log.jsonl")
                .read_text().splitlines() if "val_error" in x] for n in (1, 2)}
    assert len(vals[1]) == len(vals[2]) == 2
    assert vals[2][0] == pytest.approx(vals[1][0], rel=1e-5)      # the same untrained model


def test_hsdp_on_a_2x1_mesh_runs_resumes_and_a_curriculum_continues(dataset, tmp_path):
    """--replicas 2 on 2 ranks: two replicas of one shard each (HSDP), interrupted and resumed
    gives the uninterrupted losses; --init-from starts a new run from that run's weights (its
    first validation equals the last one of the run it came from)."""
    common = ["--no-progress", "--data", dataset, "--precision", "fp32", "--lr", "1e-3",
              "--replicas", "2", "--save-every", "2", "--seed", "6"]
    torchrun(2, *common, "--out", tmp_path / "a", "--steps", 4)
    torchrun(2, *common, "--out", tmp_path / "b", "--steps", 2)
    torchrun(2, *common, "--out", tmp_path / "b", "--steps", 4)
    assert losses(tmp_path / "a") == losses(tmp_path / "b") and len(losses(tmp_path / "a")) == 4
    val = ["--val-count", "2", "--val-every", "3", "--save-every", "3"]
    torchrun(1, "--no-progress", "--data", dataset, "--precision", "fp32", "--lr", "1e-3",
             "--steps", 3, *val, "--out", tmp_path / "stage1080")
    torchrun(1, "--no-progress", "--data", dataset, "--precision", "fp32", "--lr", "1e-3",
             "--steps", 3, *val, "--init-from", tmp_path / "stage1080", "--out", tmp_path / "2k")
    first = [json.loads(x) for x in (tmp_path / "stage1080" / "log.jsonl").read_text().splitlines()]
    second = [json.loads(x) for x in (tmp_path / "2k" / "log.jsonl").read_text().splitlines()]
    assert second[0]["step"] == 0 and second[0]["val_error"] == pytest.approx(
        first[-1]["val_error"], rel=1e-6)
    assert second[0]["val_error"] != pytest.approx(first[0]["val_error"], rel=1e-3)


def test_two_weighted_data_folders_of_two_sizes_train_one_size_a_step(tmp_path):
    """Two folders of other sizes on two ranks with two micro-steps a step: each step holds one
    size on every rank (the trainer stops on a step whose ranks drew other sizes)."""
    make_dataset(tmp_path / "a", count=3)
    make_dataset(tmp_path / "b", count=2, size=96)
    torchrun(2, "--no-progress", "--data", f"{tmp_path / 'a'}:0.7", "--data",
             f"{tmp_path / 'b'}:0.3", "--precision", "fp32", "--steps", 4, "--grad-accum", 2,
             "--save-every", 4, "--out", tmp_path / "r")
    assert len(losses(tmp_path / "r")) == 4
    log = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert {e["latent"] for e in log if "latent" in e} == {"4x4", "6x6"}
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["data"] == [[str(tmp_path / "a"), 0.7], [str(tmp_path / "b"), 0.3]]
    assert cfg["train_files"] == 5
