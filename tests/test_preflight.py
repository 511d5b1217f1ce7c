"""python -m swift_train.preflight on the test samples: every section printed, saying what was
measured and what is projected, and the bytes FSDP2 moves per step counted under a fake process
group within 10% of what the FSDP2 algebra predicts, for 2 and 4 ranks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

from swift_testing.train_data import make_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ["1. samples (measured)", "2. learning (measured, toy size)",
            "3. memory (traced, nothing allocated)",
            "4. communication per step (counted under a fake process group)",
            "5. step time (projected, not measured)"]


def preflight(*args, code=0):
    r = subprocess.run([sys.executable, "-m", "swift_train.preflight", *map(str, args)],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"))
    assert r.returncode == code, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("preflight")
    make_dataset(folder, count=6, degrade={"noise": 0.3, "flicker": 0.4})
    return folder


@pytest.mark.parametrize("world", [2, 4])
def test_every_section_and_the_comm_volume_of_fsdp2(data, tmp_path, world):
    report = tmp_path / "report.json"
    skip = "" if world == 2 else "learning"             # the toy run once is enough
    out = preflight("--data", data, "--world", world, "--model", "tiny", "--steps", 40,
                    "--skip", skip, "--report", report).stdout
    want = SECTIONS if world == 2 else [s for s in SECTIONS if "learning" not in s]
    assert [line for line in out.splitlines() if line[:2] in ("1.", "2.", "3.", "4.", "5.")] \
        == want, out
    r = json.loads(report.read_text())
    assert r["samples"][str(data)]["samples"] == 6 and r["samples"][str(data)]["videos"] == 6
    assert r["samples"][str(data)]["latent"] == [48, 5, 4, 4]
    assert "filesystem:" in out
    counted, algebra = r["communication"]["counted"], r["communication"]["algebra"]
    params, blocks = r["memory"]["params"], r["memory"]["block_params"]
    assert algebra == {"all_gather": 2 * (params + blocks), "reduce_scatter": 4 * params}
    for kind in ("all_gather", "reduce_scatter"):
        assert abs(counted[kind] / algebra[kind] - 1) < 0.1, (kind, counted, algebra)
    assert set(r["memory"]["comm_bytes"]) == {f"all_gather@{world}", f"reduce_scatter@{world}"}
    assert [p["world"] for p in r["projection"]] == [8, 16, 64]
    assert all(p["overlapped_s"] <= p["serial_s"] for p in r["projection"])
    if world == 2:
        learning = r["learning"]
        assert learning["trained"] < learning["untrained"]          # the samples train
        assert learning["loss_last"] < learning["loss_first"]
        assert 0 < learning["best_blend"] <= min(learning["copy_reference"],
                                                 learning["static_anchor"]) + 1e-9


def test_hsdp_counts_the_all_reduce_across_replicas(data, tmp_path):
    report = tmp_path / "report.json"
    preflight("--data", data, "--world", 4, "--replicas", 2, "--model", "tiny", "--skip",
              "learning", "--report", report)
    r = json.loads(report.read_text())
    comm = r["memory"]["comm_bytes"]
    assert set(comm) == {"all_gather@2", "reduce_scatter@2", "all_reduce@2"}
    # each replica's shard of the fp32 gradients, all-reduced across the 2 replicas
    assert abs(comm["all_reduce@2"] / (4 * r["memory"]["params"] / 2) - 1) < 0.1


def test_bad_arguments_are_one_line_exit_2(tmp_path):
    err = preflight("--data", tmp_path / "nowhere", code=2).stderr.strip().splitlines()
    assert len(err) == 1 and "--data" in err[0] and "no such folder" in err[0], err
    err = preflight("--data", tmp_path, "--world", 4, "--replicas", 3, code=2).stderr
    assert "--replicas 3: must divide --world 4" in err
