"""The pack in ComfyUI's real frontend (headless Chromium): the bundled UI workflows load with no
missing nodes and widgets as saved, and the frontend offers the missing model files; on 0.33 the
App Mode template opens in App Mode, the blueprints sit in the node library and run to a video,
and with the locale set to zh the node names are Chinese. Needs node and a chromium (skips
otherwise)."""
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NODE = shutil.which("node")


def playwright_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "swifti2v-playwright"
    if not (d / "node_modules" / "playwright-core").exists():
        d.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--prefix", str(d), "playwright-core@1"], check=True,
                       capture_output=True, timeout=300)
    return d


pytestmark = pytest.mark.skipif(not (CHROMIUM and NODE), reason="needs node and chromium "
                                "(apt-get install chromium nodejs)")


def frontend(server, mode: str, *args: str):
    """What frontend_check.js saw in ``mode`` (its last stdout line, as JSON)."""
    d = playwright_dir()
    script = d / "frontend_check.js"
    shutil.copy(Path(__file__).with_name("frontend_check.js"), script)
    out = subprocess.run([NODE, str(script), server.url, CHROMIUM, mode, *map(str, args)], cwd=d,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def version(server) -> tuple[int, ...]:
    return tuple(int(x) for x in server.version().split(".")[:3])


def app_mode_frontend(server):
    """App Mode and subgraph blueprints in the node library: ComfyUI 0.33's frontend (1.49)."""
    if version(server) < (0, 33, 0):
        pytest.skip(f"App Mode and pack blueprints in the node library need ComfyUI 0.33+ "
                    f"(this is {server.version()})")


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "workflows").glob("*.json")))
def test_ui_workflow_loads_in_the_real_frontend(server, name):
    wf_path = ROOT / "workflows" / f"{name}.json"
    seen = frontend(server, "load", wf_path)
    wf = json.loads(wf_path.read_text())
    assert len(seen["nodes"]) == len(wf["nodes"])
    # loaders whose model file is missing (expected here: no weights) are the only nodes the
    # frontend may flag; 0.33's frontend marks them in red instead of a "Missing Models" dialog
    loaders = {str(n["id"]) for n in wf["nodes"] if n.get("properties", {}).get("models")}
    for n in seen["nodes"]:
        assert n["registered"], n                                # no missing node types
        assert not n["errors"] or str(n["id"]) in loaders, n     # no red pack node
    saved = {str(n["id"]): n for n in wf["nodes"]}
    for n in seen["nodes"]:
        values, want = [v for _, v in n["widgets"]], saved[str(n["id"])]["widgets_values"]
        # as saved; newer frontends may append widgets of their own (0.33's LoadImage)
        assert values[:len(want)] == want, (n["type"], values)
    dialog = "\n".join(seen["dialogs"])
    missing = [m for n in wf["nodes"] for m in n.get("properties", {}).get("models", [])]
    if any(n["errors"] for n in seen["nodes"]):                  # 0.33+: flagged on the loaders
        flagged = {str(n["id"]) for n in seen["nodes"] if n["errors"]}
        assert flagged == loaders, (flagged, loaders)
    else:                                                        # older: the download dialog
        for m in missing:
            assert f"{m['directory']} / {m['name']}" in dialog      # offered for download


def flagged_are_only_loaders(wf: dict, nodes: list[dict]) -> None:
    """No red node but the loaders of model files this machine lacks."""
    loaders = {str(n["id"]) for n in wf["nodes"] if n.get("properties", {}).get("models")}
    for n in nodes:
        assert n["registered"], n
        assert not n["errors"] or str(n["id"]) in loaders, n


def test_the_app_mode_template_opens_in_app_mode(server):
    app_mode_frontend(server)
    wf_path = ROOT / "workflows" / "swifti2v_2k_app.json"
    seen = frontend(server, "app", wf_path, "swifti2v_2k_app")
    wf = json.loads(wf_path.read_text())
    assert seen["initialMode"] == "app" and seen["mode"] == "app"
    assert len(seen["inputs"]) == len(wf["extra"]["linearData"]["inputs"]) == 5   # none dropped
    assert [str(o) for o in seen["outputs"]] == [str(o) for o in wf["extra"]["linearData"]["outputs"]]
    assert len(seen["nodes"]) == len(wf["nodes"])
    flagged_are_only_loaders(wf, seen["nodes"])


def test_the_blueprints_are_served_as_global_subgraphs(server):
    import requests
    listed = requests.get(server.url + "/global_subgraphs", timeout=30)
    if listed.status_code == 404:
        pytest.skip(f"ComfyUI {server.version()} serves no subgraph blueprints")
    ours = {v["name"]: k for k, v in listed.json().items()
            if v["info"]["node_pack"] == "custom_nodes.ComfyUI-SwiftI2V"}
    assert sorted(ours) == sorted(p.stem for p in (ROOT / "subgraphs").glob("*.json"))
    for name, key in ours.items():
        served = requests.get(server.url + f"/global_subgraphs/{key}", timeout=30).json()
        assert json.loads(served["data"]) == json.loads(
            (ROOT / "subgraphs" / f"{name}.json").read_text())


@pytest.mark.parametrize("name,frames", [("SwiftI2V 2K", 9), ("SwiftI2V Stage II only", 5)])
def test_a_blueprint_from_the_node_library_runs_to_a_video(server, client, tmp_path, name, frames):
    """Dropped on an empty canvas from the node library, wired Load Image -> blueprint -> Save
    Video, models picked in its widgets: the prompt the frontend makes runs to every frame."""
    from swift_testing.comfy_host.graphs import TINY, tiny_encoders
    app_mode_frontend(server)
    prefix = "swifti2v_blueprint/" + name.replace(" ", "_")
    widgets = {"__image": "astronaut.png", "__prefix": prefix, "prompt": "an astronaut waves",
               "width": 64, "height": 64, "frames": frames, "seed": 7,
               "stage1_model": TINY["stage1"], "stage1_lora": "tiny_lightx2v_lora.safetensors",
               "stage1_vae": TINY["vae1"], "stage2_model": TINY["stage2_48"],
               "stage2_vae": TINY["vae2"], "__repeat": frames}
    (tmp_path / "widgets.json").write_text(json.dumps(widgets))
    seen = frontend(server, "blueprint", name, tmp_path / "widgets.json")
    assert [name, "Subgraph Blueprints/Video generation and editing/Image to video"] in \
        seen["library"], seen["library"]
    shown = dict(seen["widgets"])
    for k in ("prompt", "width", "height", "seed", "stage2_model", "stage2_vae", "text_encoder"):
        assert k in shown, (k, shown)
    assert shown["width"] == 64 and shown["stage2_model"] == TINY["stage2_48"]
    prompt = seen["prompt"]
    types = sorted(n["class_type"] for n in prompt.values())
    assert "SwiftI2VStage2Sampler" in types and "SaveVideo" in types and "LoadImage" in types
    if name == "SwiftI2V Stage II only":        # any low-res video in: the image repeated
        assert "SwiftI2VStage1Sampler" not in types and "RepeatImageBatch" in types
    client.run(tiny_encoders(prompt), timeout=900)
    import av
    (path,) = sorted((server.output / "swifti2v_blueprint").glob(prefix.split("/")[1] + "*.mp4"))
    with av.open(str(path)) as c:
        got = [f for f in c.decode(video=0)]
    assert len(got) == frames and (got[0].width, got[0].height) == (64, 64)


def test_with_the_locale_set_to_zh_the_node_names_are_chinese(server):
    import requests
    app_mode_frontend(server)
    zh = json.loads((ROOT / "locales" / "zh" / "nodeDefs.json").read_text(encoding="utf-8"))
    types = ["SwiftI2VStage1Sampler", "SwiftI2VHybridReference", "SwiftI2VStage2Sampler"]
    requests.post(server.url + "/settings/Comfy.Locale", json="zh", timeout=30).raise_for_status()
    try:
        seen = frontend(server, "names", *types)
    finally:
        requests.post(server.url + "/settings/Comfy.Locale", json="en", timeout=30)
    for t in types:
        assert seen[t]["library"] == zh[t]["display_name"], (t, seen[t])
        assert seen[t]["placed"] == zh[t]["display_name"], (t, seen[t])
