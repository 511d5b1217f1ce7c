"""The bundled workflows, checked against the nodes' own schemas (tests/data/node_schemas.json)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WF = ROOT / "workflows"
SCHEMAS = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())
FRONTEND_ONLY = {"Note", "MarkdownNote"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


@pytest.fixture(scope="module")
def ui():
    return json.loads((WF / "swifti2v_2k.json").read_text())


@pytest.fixture(scope="module")
def api():
    return json.loads((WF / "swifti2v_2k_api.json").read_text())


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
    assert ours == {"SwiftI2VStage1Sampler", "SwiftI2VHybridReference", "SwiftI2VStage2Sampler",
                    "SwiftI2VSegmentDecoder"}
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


def test_ui_and_api_are_the_same_graph(ui, api):
    nodes = {n["id"]: n for n in ui["nodes"] if n["type"] not in FRONTEND_ONLY}
    assert set(api) == {str(i) for i in nodes}
    for i, n in nodes.items():
        a = api[str(i)]
        assert a["class_type"] == n["type"]
        assert a["_meta"]["title"] == n.get("title", n["type"])
        links = {k: v for k, v in a["inputs"].items() if isinstance(v, list)}
        widgets = {k: v for k, v in a["inputs"].items() if not isinstance(v, list)}
        assert widgets == widget_map(n)
        ui_links = {}
        for inp in n["inputs"]:
            if inp["link"] is not None:
                lk = next(x for x in ui["links"] if x[0] == inp["link"])
                ui_links[inp["name"]] = [str(lk[1]), lk[2]]
        assert links == ui_links


def test_paper_defaults_and_model_links(ui, api):
    s1 = next(v for v in api.values() if v["class_type"] == "SwiftI2VStage1Sampler")["inputs"]
    s2 = next(v for v in api.values() if v["class_type"] == "SwiftI2VStage2Sampler")["inputs"]
    assert (s1["width"], s1["height"], s1["length"], s1["steps"], s1["cfg"]) == (2560, 1408, 81, 4, 1.0)
    assert (s2["steps"], s2["cfg"], s2["m"], s2["n"], s2["mode"]) == (4, 1.0, 3, 1, "auto")
    loaders = [n for n in ui["nodes"] if n["type"] in
               ("UNETLoader", "LoraLoaderModelOnly", "VAELoader", "CLIPLoader", "CLIPVisionLoader")]
    names = set()
    for n in loaders:
        (m,) = n["properties"]["models"]
        assert m["url"].startswith("https://huggingface.co/") and m["url"].endswith(m["name"])
        assert m["name"] == n["widgets_values"][0] and m["directory"]
        names.add(m["name"])
    assert {"wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors", "wan2.2_ti2v_5B_fp16.safetensors",
            "wan_2.1_vae.safetensors", "wan2.2_vae.safetensors",
            "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "clip_vision_h.safetensors",
            "wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors"} == names
    assert (WF / "swifti2v_2k.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_files_are_what_the_generator_writes(ui, api):
    import importlib.util
    spec = importlib.util.spec_from_file_location("mw", ROOT / "tools" / "make_workflows.py")
    mw = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mw)
    nodes = mw.graph()
    assert mw.ui_workflow(nodes) == ui, "run: python tools/make_workflows.py"
    assert mw.api_workflow(nodes) == api, "run: python tools/make_workflows.py"
