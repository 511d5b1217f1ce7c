"""The bundled workflows, checked against the nodes' own schemas (tests/data/node_schemas.json)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WF = ROOT / "workflows"
TEMPLATES = sorted(p.stem for p in WF.glob("*.json"))
SCHEMAS = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())
FRONTEND_ONLY = {"Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


@pytest.fixture(params=TEMPLATES)
def name(request):
    return request.param


@pytest.fixture
def ui(name):
    return json.loads((WF / f"{name}.json").read_text())


@pytest.fixture
def api(name):
    return json.loads((WF / "api" / f"{name}_api.json").read_text())


def test_templates_folder_holds_only_ui_workflows_and_thumbnails():
    assert TEMPLATES == ["swifti2v_2k", "swifti2v_2k_after_wan22_a14b", "swifti2v_2k_app",
                         "swifti2v_2k_long"]
    # one templates folder: ComfyUI lists the *.json of each of these it finds in a pack
    for other in ("example_workflows", "example", "examples", "workflow"):
        assert not (ROOT / other).exists(), other
    for name in TEMPLATES:
        ui = json.loads((WF / f"{name}.json").read_text())
        assert "nodes" in ui and "links" in ui         # a UI graph, never an API prompt
        assert (WF / f"{name}.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
        assert (WF / "api" / f"{name}_api.json").exists()


def sockets(t):
    return [e for e in SCHEMAS[t]["inputs"] if e["type"] not in WIDGET_TYPES]


def widget_map(node):
    """UI widgets_values -> {input name: value}, dropping the frontend's extra values."""
    values = list(node["widgets_values"])
    out = {}
    for e in SCHEMAS[node["type"]]["inputs"]:
        if e["type"] in WIDGET_TYPES and values:
            out[e["name"]] = values.pop(0)
            if e.get("control_after_generate"):
                assert values.pop(0) in ("fixed", "randomize", "increment", "decrement")
            if e.get("image_upload"):
                assert values.pop(0) == "image"
    assert values == [], f"node {node['id']}: extra widget values {values}"
    return out


def test_node_types_are_ours_or_core(ui, api):
    for n in ui["nodes"]:
        assert n["type"] in SCHEMAS or n["type"] in FRONTEND_ONLY, n["type"]
    ours = {n["type"] for n in ui["nodes"] if n["type"].startswith("SwiftI2V")}
    assert ours >= {"SwiftI2VHybridReference", "SwiftI2VStage2Sampler"}
    assert all(n["class_type"] in SCHEMAS for n in api.values())
    assert ui["version"] == 0.4 and ui["last_node_id"] >= max(n["id"] for n in ui["nodes"])
    assert ui["last_link_id"] == max(lk[0] for lk in ui["links"])
    assert any(n["type"] in FRONTEND_ONLY for n in ui["nodes"]) and len(ui["groups"]) >= 2


def test_links_join_outputs_to_inputs_of_the_same_type(ui):
    nodes = {n["id"]: n for n in ui["nodes"]}
    for lid, src, src_slot, dst, dst_slot, typ in ui["links"]:
        out_t = SCHEMAS[nodes[src]["type"]]["outputs"][src_slot]
        inp = nodes[dst]["inputs"][dst_slot]
        assert inp["link"] == lid and lid in nodes[src]["outputs"][src_slot]["links"]
        want = next(e for e in SCHEMAS[nodes[dst]["type"]]["inputs"] if e["name"] == inp["name"])
        assert out_t == want["type"] == inp["type"] == typ, (lid, out_t, want["type"])
    for n in ui["nodes"]:
        if n["type"] in FRONTEND_ONLY:
            continue
        for e, inp in zip(sockets(n["type"]), n["inputs"]):
            assert inp["name"] == e["name"]
            assert inp["link"] is not None or e["optional"], f"{n['type']}.{e['name']} unwired"
        for inp in n["inputs"][len(sockets(n["type"])):]:       # linked widgets
            assert inp["widget"] == {"name": inp["name"]} and inp["link"] is not None


def test_widget_values_are_valid(ui):
    for n in ui["nodes"]:
        if n["type"] in FRONTEND_ONLY:
            continue
        values = widget_map(n)
        for e in SCHEMAS[n["type"]]["inputs"]:
            if e["type"] not in WIDGET_TYPES:
                continue
            assert e["name"] in values or e["optional"], f"{n['type']}.{e['name']} missing"
            v = values.get(e["name"])
            if e["type"] == "COMBO" and e["options"] is not None:
                assert v in e["options"], (n["type"], e["name"], v)
            if e["type"] in ("INT", "FLOAT"):
                assert e.get("min", -1e30) <= v <= e.get("max", 1e30), (n["type"], e["name"], v)


BYPASS = 4


def through_bypassed(ui, src, slot):
    """The source a link really has once bypassed nodes pass their input of the same type on."""
    nodes = {n["id"]: n for n in ui["nodes"]}
    while nodes[src]["mode"] == BYPASS:
        typ = SCHEMAS[nodes[src]["type"]]["outputs"][slot]
        inp = next(i for i in nodes[src]["inputs"] if i["type"] == typ)
        src, slot = next((x[1], x[2]) for x in ui["links"] if x[0] == inp["link"])
    return src, slot


def test_ui_and_api_are_the_same_graph(ui, api):
    """The API graph is the UI graph as the frontend queues it: bypassed nodes left out, their
    input passed on."""
    nodes = {n["id"]: n for n in ui["nodes"]
             if n["type"] not in FRONTEND_ONLY and n["mode"] != BYPASS}
    assert set(api) == {str(i) for i in nodes}
    for i, n in nodes.items():
        a = api[str(i)]
        assert a["class_type"] == n["type"]
        assert a["_meta"]["title"] == n.get("title", n["type"])
        links = {k: v for k, v in a["inputs"].items() if isinstance(v, list)}
        widgets = {k: v for k, v in a["inputs"].items() if not isinstance(v, list)}
        assert widgets == {k: v for k, v in widget_map(n).items() if k not in links}
        ui_links = {}
        for inp in n["inputs"]:
            if inp["link"] is not None:
                lk = next(x for x in ui["links"] if x[0] == inp["link"])
                src, slot = through_bypassed(ui, lk[1], lk[2])
                ui_links[inp["name"]] = [str(src), slot]
        assert links == ui_links


def test_the_templates_take_the_streaming_path(api):
    """Stage II with its VAE -> VIDEO -> core Save Video: no full-length frame tensor."""
    types = {k: v["class_type"] for k, v in api.items()}
    (s2,) = [k for k, t in types.items() if t == "SwiftI2VStage2Sampler"]
    (save,) = [v for v in api.values() if v["class_type"] == "SaveVideo"]
    assert save["inputs"]["video"] == [s2, 1]
    vae = api[s2]["inputs"]["vae"][0]
    assert api[vae]["inputs"]["vae_name"] == "wan2.2_vae.safetensors"
    assert not {"SwiftI2VSegmentDecoder", "CreateVideo", "VAEDecode"} & {
        t for k, t in types.items() if api[k]["inputs"].get("samples") == [s2, 0]}


def test_stage2_samples_on_the_trained_shift(api):
    """Core's ModelSamplingSD3 sets Stage II's shift to the one training uses by default (ComfyUI
    would give the file Wan 2.1's 8.0): the Stage II model goes through it and nothing else."""
    from swift_core.schedule import WAN_SHIFT
    (s2,) = [v for v in api.values() if v["class_type"] == "SwiftI2VStage2Sampler"]
    shift = api[s2["inputs"]["model"][0]]
    assert shift["class_type"] == "ModelSamplingSD3" and shift["inputs"]["shift"] == WAN_SHIFT
    assert api[shift["inputs"]["model"][0]]["class_type"] == "UNETLoader"


def test_the_360p_lora_ships_bypassed_after_the_few_step_lora():
    ui = json.loads((WF / "swifti2v_2k.json").read_text())
    nodes = {n["id"]: n for n in ui["nodes"]}
    (lora,) = [n for n in ui["nodes"] if n["type"] == "LoraLoaderModelOnly" and n["mode"] == BYPASS]
    assert lora["widgets_values"] == ["swifti2v_stage1_360p_lora.safetensors", 1.0]
    src = next(x for x in ui["links"] if x[0] == lora["inputs"][0]["link"])[1]
    assert nodes[src]["title"] == "LightX2V 4-step LoRA"
    (s1,) = [n for n in ui["nodes"] if n["type"] == "SwiftI2VStage1Sampler"]
    assert next(x for x in ui["links"] if x[0] == s1["inputs"][0]["link"])[1] == lora["id"]


def test_stage1_data_workflow_writes_stage1_samples():
    wf = json.loads((WF / "api" / "swifti2v_stage1_data_api.json").read_text())
    (writer,) = [v["inputs"] for v in wf.values() if v["class_type"] == "SwiftI2VStage1SampleWriter"]
    (clips,) = [k for k, v in wf.items() if v["class_type"] == "SwiftI2VLoadClips"]
    assert (writer["width"], writer["height"]) == (2560, 1408)
    assert writer["name"] == [clips, 2] and writer["start"] == [clips, 1]
    assert wf[writer["model"][0]]["class_type"] == "UNETLoader"


def test_training_data_workflow_gives_each_clip_its_noise_and_kind():
    wf = json.loads((WF / "api" / "swifti2v_training_data_api.json").read_text())
    (clips,) = [k for k, v in wf.items() if v["class_type"] == "SwiftI2VLoadClips"]
    (tr,) = [v["inputs"] for v in wf.values() if v["class_type"] == "SwiftI2VStageTransition"]
    assert tr["name"] == [clips, 2] and tr["start"] == [clips, 1]
    assert (tr["strength"], tr["strength_reading"], tr["steps"], tr["synthesize_fraction"]) == (
        0.1, "before_shift", 1, 0.5)


def test_paper_defaults_and_model_links(ui, api, name):
    s2 = next(v for v in api.values() if v["class_type"] == "SwiftI2VStage2Sampler")["inputs"]
    # m=0: auto, the largest M up to the paper's 3 that fits the card
    assert (s2["steps"], s2["cfg"], s2["m"], s2["n"], s2["mode"]) == (4, 1.0, 0, 1, "auto")
    assert s2["tile_size"] == 0
    ref = next(v for v in api.values() if v["class_type"] == "SwiftI2VHybridReference")["inputs"]
    s1 = [v["inputs"] for v in api.values() if v["class_type"] == "SwiftI2VStage1Sampler"]
    if s1:                                   # the size is typed once, on the Stage I Sampler
        (s1,) = s1
        assert (s1["width"], s1["height"], s1["length"], s1["steps"], s1["cfg"]) == \
            (2560, 1408, 161 if name.endswith("_long") else 81, 4, 1.0)
        stage1_id = next(k for k, v in api.items() if v["class_type"] == "SwiftI2VStage1Sampler")
        assert (ref["width"], ref["height"]) == ([stage1_id, 2], [stage1_id, 3])
    else:
        assert (ref["width"], ref["height"]) == (2560, 1408)
    loaders = [n for n in ui["nodes"] if n["type"] in
               ("UNETLoader", "LoraLoaderModelOnly", "VAELoader", "CLIPLoader", "CLIPVisionLoader")]
    names = set()
    (note,) = [n for n in ui["nodes"] if n["type"] == "MarkdownNote"]
    for n in [n for n in loaders if n["mode"] == BYPASS]:     # the user's own file: no link
        assert "models" not in n["properties"] and n["widgets_values"][0] in note["widgets_values"][0]
    for n in [n for n in loaders if n["mode"] != BYPASS]:
        (m,) = n["properties"]["models"]
        assert m["url"].startswith("https://huggingface.co/") and m["url"].endswith(m["name"])
        assert m["name"] == n["widgets_values"][0] and m["directory"]
        names.add(m["name"])
    for m in names:                               # the note lists every model file and folder
        assert m in note["widgets_values"][0]
    assert "└── models/" in note["widgets_values"][0]
    if name == "swifti2v_2k":
        assert {"wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors", "wan2.2_ti2v_5B_fp16.safetensors",
                "wan_2.1_vae.safetensors", "wan2.2_vae.safetensors",
                "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "clip_vision_h.safetensors",
                "wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors"} == names


def test_files_are_what_the_generator_writes(ui, api, name):
    from tools import make_workflows as mw
    if name in mw.APP_TEMPLATES:
        assert mw.app_template(name) == (ui, api), "run: python -m tools.make_workflows"
        return
    make, groups, note, _ = mw.TEMPLATES[name]
    nodes = make()
    assert mw.ui_workflow(nodes, name, groups, note) == ui, "run: python -m tools.make_workflows"
    assert mw.api_workflow(nodes) == api, "run: python -m tools.make_workflows"


def test_the_app_mode_template_offers_image_prompt_size_frames_and_shows_the_video():
    """App Mode (frontend 1.49+): the 2K graph, opened as a form of five inputs and the video."""
    app = json.loads((WF / "swifti2v_2k_app.json").read_text())
    full = json.loads((WF / "swifti2v_2k.json").read_text())
    assert app["extra"]["linearMode"] is True
    assert app["nodes"] == full["nodes"] and app["links"] == full["links"]
    nodes = {n["id"]: n for n in app["nodes"]}
    offered = [(nodes[i]["type"], w) for i, w in app["extra"]["linearData"]["inputs"]]
    assert offered == [("LoadImage", "image"), ("CLIPTextEncode", "text"),
                       ("SwiftI2VStage1Sampler", "width"), ("SwiftI2VStage1Sampler", "height"),
                       ("SwiftI2VStage1Sampler", "length")]
    assert nodes[app["extra"]["linearData"]["inputs"][1][0]]["title"] == "Positive Prompt"
    (out,) = app["extra"]["linearData"]["outputs"]
    assert nodes[out]["type"] == "SaveVideo"


@pytest.mark.parametrize("bp_name", ["SwiftI2V 2K", "SwiftI2V Stage II only"])
def test_blueprints_are_generated_and_wired(bp_name):
    """subgraphs/*.json: one outer node of the subgraph's type; every subgraph input and output
    joined to inner sockets of its type; widget inputs promoted on the outer node."""
    from tools import make_blueprints as mb
    bp = json.loads((ROOT / "subgraphs" / f"{bp_name}.json").read_text())
    assert mb.BLUEPRINTS[bp_name]() == bp, "run: python -m tools.make_blueprints"
    (outer,) = bp["nodes"]
    (sg,) = bp["definitions"]["subgraphs"]
    assert outer["type"] == sg["id"] and sg["name"] == outer["title"] == bp_name
    inner = {n["id"]: n for n in sg["nodes"]}
    links = {lk["id"]: lk for lk in sg["links"]}
    for k, inp in enumerate(sg["inputs"]):
        assert inp["linkIds"], inp["name"]
        for lid in inp["linkIds"]:
            lk = links[lid]
            assert (lk["origin_id"], lk["origin_slot"]) == (-10, k)
            target = inner[lk["target_id"]]["inputs"][lk["target_slot"]]
            assert target["link"] == lid and target["type"] == inp["type"] == lk["type"]
    for j, out in enumerate(sg["outputs"]):
        (lid,) = out["linkIds"]
        lk = links[lid]
        assert (lk["target_id"], lk["target_slot"]) == (-20, j)
        assert lid in inner[lk["origin_id"]]["outputs"][lk["origin_slot"]]["links"]
    widgets = [i["name"] for i in sg["inputs"] if i["type"] in WIDGET_TYPES]
    assert outer["properties"]["proxyWidgets"] == [["-1", w] for w in widgets]
    assert len(outer["widgets_values"]) == len(widgets)
    assert [i["name"] for i in outer["inputs"]] == [i["name"] for i in sg["inputs"]]
    assert [o["type"] for o in sg["outputs"]] == ["VIDEO", "STRING"]
    for name in ("prompt", "width", "height", "seed", "stage2_model", "stage2_vae"):
        assert name in widgets, name
    types = {n["type"] for n in sg["nodes"]}
    assert "SwiftI2VStage2Sampler" in types and "SwiftI2VHybridReference" in types
    assert ("SwiftI2VStage1Sampler" in types) == (bp_name == "SwiftI2V 2K")
    assert all(n["mode"] == 0 for n in sg["nodes"])           # nothing bypassed inside


def test_long_template_runs_stage1_through_core_context_windows():
    """161 frames; the Stage I Sampler's model comes through core's Wan Context Windows in
    81-frame static windows (the Seam Report's stage1_model too), the 360P LoRA before them."""
    api = json.loads((WF / "api" / "swifti2v_2k_long_api.json").read_text())
    (cw,) = [k for k, v in api.items() if v["class_type"] == "WanContextWindowsManual"]
    s1 = next(v for v in api.values() if v["class_type"] == "SwiftI2VStage1Sampler")["inputs"]
    assert s1["model"] == [cw, 0] and s1["length"] == 161
    w = api[cw]["inputs"]
    assert (w["context_length"], w["context_schedule"]) == (81, "standard_static")
    assert (w["context_length"] - 1) % 4 == 0 and 0 < w["context_overlap"] < w["context_length"]
    assert api[w["model"][0]]["class_type"] == "LoraLoaderModelOnly"
    ui = json.loads((WF / "swifti2v_2k_long.json").read_text())
    seam = next(n for n in ui["nodes"] if n["type"] == "SwiftI2VSeamReport")
    link = next(i["link"] for i in seam["inputs"] if i["name"] == "stage1_model")
    assert next(lk for lk in ui["links"] if lk[0] == link)[1] == int(cw)
