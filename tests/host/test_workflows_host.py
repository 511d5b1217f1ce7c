"""The bundled workflows against a real ComfyUI: node types, schemas, and a batch of two rows."""
import json
import shutil
import time
from pathlib import Path


from swift_batch.__main__ import main as batch_main
from swift_batch.state import BatchState
from swift_core.cards import frames_of

from swift_testing.comfy_host.graphs import TINY, tiny_api_workflow
from tools import snapshot_schemas

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())


def test_ui_workflow_node_types_exist_and_schemas_match_the_snapshot(client):
    info = client.object_info()
    for path in (ROOT / "workflows").glob("*.json"):
        for n in json.loads(path.read_text())["nodes"]:
            assert n["type"] in info or n["type"] in ("Note", "MarkdownNote"), (path.name, n["type"])
    live = snapshot_schemas.snapshot(info)
    for node_type, snap in SNAPSHOT.items():
        got = live[node_type]
        # outputs the workflows link keep their place; newer versions may add outputs after them
        assert got["outputs"][:len(snap["outputs"])] == snap["outputs"], node_type
        live_inputs = {e["name"]: e for e in got["inputs"]}
        for s in snap["inputs"]:                      # every input the workflows rely on
            g = live_inputs.get(s["name"])
            assert g is not None, (node_type, s["name"])
            assert g["type"] == s["type"], (node_type, s["name"])
            # a required input may become optional (0.33's SaveVideo codec): saved values still work
            assert g["optional"] or not s["optional"], (node_type, s["name"])
            if s.get("options") is not None:
                assert set(s["options"]) <= set(g["options"]), (node_type, s["name"])
        # newer ComfyUI versions add inputs to core nodes: accepted when optional, or required
        # with a default (0.8's WanContextWindowsManual freenoise): the frontend gives a saved
        # workflow's missing widget its default, the batch client fills it in an API workflow
        known = {s["name"] for s in snap["inputs"]}
        required = info[node_type]["input"].get("required", {})
        extra = [e["name"] for e in got["inputs"] if e["name"] not in known and not e["optional"]
                 and "default" not in (required[e["name"]][1:2] or [{}])[0]]
        assert not extra, (node_type, "new required inputs without a default", extra)


def test_templates_endpoint_lists_exactly_the_ui_templates(server):
    import requests
    listed = requests.get(server.url + "/workflow_templates", timeout=30).json()
    want = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
    assert sorted(listed["ComfyUI-SwiftI2V"]) == want            # no API file among them
    assert not any(name.endswith("_api") for name in listed["ComfyUI-SwiftI2V"])
    base = server.url + "/api/workflow_templates/ComfyUI-SwiftI2V/"
    for name in want:
        served = requests.get(base + f"{name}.json", timeout=30).json()
        assert served == json.loads((ROOT / "workflows" / f"{name}.json").read_text())
        thumb = requests.get(base + f"{name}.jpg", timeout=30)
        assert thumb.ok and thumb.content[:3] == b"\xff\xd8\xff"


def test_api_workflow_runs_through_the_batch_client_and_resumes(server, tmp_path, capsys):
    for img in ("astronaut.png", "chelsea.png"):
        shutil.copy(server.input / img, tmp_path / img)
    (tmp_path / "rows.csv").write_text(
        "image,prompt,seed,width,height,frames,name\n"
        "astronaut.png,an astronaut waves,101,64,64,9,astronaut\n"
        "chelsea.png,a cat turns its head,102,64,64,9,chelsea\n"
        "chelsea.png,a cat blinks,103,64,64,13,blink\n")  # seeds no other test runs: no cache
    out = tmp_path / "videos"
    start = time.time()
    args = ["--rows", str(tmp_path / "rows.csv"), "--out", str(out), "--server", server.url,
            "--workflow", str(tiny_api_workflow(tmp_path / "wf.json")), "--no-progress",
            "--set", f"1.unet_name={TINY['stage1']}",
            "--set", "2.lora_name=tiny_lightx2v_lora.safetensors",
            "--set", f"3.vae_name={TINY['vae1']}",
            "--set", f"Load Stage II model (Wan 2.2 TI2V 5B or SwiftI2V).unet_name={TINY['stage2_48']}",
            "--set", f"12.vae_name={TINY['vae2']}", "--set", "14.steps=2", "--timeout", "900"]
    assert batch_main(args) == 0, capsys.readouterr().err
    assert "lora key not loaded" not in server.log_text()
    import av
    for name, length in (("astronaut", 9), ("chelsea", 9), ("blink", 13)):
        with av.open(str(out / f"{name}.mp4")) as c:
            frames = [f for f in c.decode(video=0)]
        assert len(frames) == length and (frames[0].width, frames[0].height) == (64, 64)
        check_card(json.loads((out / f"{name}.json").read_text()), length,
                   json.loads(BatchState(out).rows[name]["plan"]))
    beside = [p.with_suffix(".json") for p in server.output.rglob("*.mp4")
              if p.stat().st_mtime > start and p.with_suffix(".json").exists()]
    assert len(beside) == 3                    # Save Video's files in ComfyUI's output folder
    assert sorted(frames_of(json.loads(p.read_text())) for p in beside) == [9, 9, 13]
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")}
    capsys.readouterr()
    assert batch_main(args) == 0
    assert "3 row(s) already done, skipped: astronaut, chelsea, blink" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.mp4")} == stamps
    capsys.readouterr()
    batch_main(["--report", "--out", str(out)])
    lines = capsys.readouterr().err.splitlines()
    start_at = lines.index("run cost of 3 row(s), from their run cards:")
    assert [line.split()[0] for line in lines[start_at + 2:start_at + 7]] == [
        "astronaut", "blink", "chelsea", "median", "max"]


def check_card(card, length, plan):
    """The bundled graph's card: Stage I, the Reference Builder and Stage II, each with the run's
    frame count and size, Stage II with the plan it returned; the versions and device."""
    assert [s["stage"] for s in card["stages"]] == ["stage1", "reference", "stage2"]
    assert [s["frames"] for s in card["stages"]] == [length] * 3
    assert [s["size"] for s in card["stages"]] == ["16x16", "64x64", "64x64"]  # Stage I at W/4
    assert card["stages"][2]["plan"] == plan and card["stages"][2]["steps"] == 2
    assert all(s["wall_s"] > 0 and s["peak_host_rss_gib"] > 0.1 for s in card["stages"])
    assert card["comfyui"] != "unknown" and card["torch"] and card["device"] == "cpu"
    assert card["attention"] != "unknown"


def test_missing_node_type_is_reported(server, tmp_path, capsys):
    wf = json.loads((ROOT / "workflows" / "api" / "swifti2v_2k_api.json").read_text())
    wf["99"] = {"class_type": "NoSuchNode", "inputs": {}}
    (tmp_path / "wf.json").write_text(json.dumps(wf))
    from PIL import Image
    Image.new("RGB", (64, 64)).save(tmp_path / "a.png")
    (tmp_path / "rows.csv").write_text("image,prompt\na.png,x\n")
    rc = batch_main(["--rows", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "o"),
                     "--server", server.url, "--workflow", str(tmp_path / "wf.json"),
                     "--no-progress"])
    assert rc == 2
    assert "missing node types NoSuchNode" in capsys.readouterr().err
