"""Write the pack's subgraph blueprints (``subgraphs/*.json``) from the templates' own node lists:
the whole pipeline as one node with a few widgets, for ComfyUI 0.33+ (its ``/global_subgraphs``
serves every ``custom_nodes/*/subgraphs/*.json``; the frontend lists them in the node library
under "Subgraph Blueprints").

    python -m tools.make_blueprints     # subgraphs/SwiftI2V 2K.json, subgraphs/SwiftI2V Stage II only.json

A blueprint is a workflow of one node whose ``type`` is the id of the subgraph it defines in
``definitions.subgraphs``; inside, links from the subgraph's inputs start at node -10 and links
to its outputs end at node -20. Inputs that feed widgets (the prompt, size, models) appear on the
outer node as widgets (``proxyWidgets`` ``["-1", name]``).
"""
from __future__ import annotations

import uuid

from tools import make_workflows as mw

OUT = mw.ROOT / "subgraphs"
IN_NODE, OUT_NODE = -10, -20
CATEGORY = "Video generation and editing/Image to video"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

#: the Stage I model choices the 2K blueprint offers: (input name, label, node id, widget)
STAGE1_MODELS = [("stage1_model", "Stage I model", 1, "unet_name"),
                 ("stage1_lora", "4-step LoRA", 2, "lora_name"),
                 ("stage1_vae", "Stage I VAE", 3, "vae_name"),
                 ("clip_vision", "CLIP vision", 5, "clip_name")]
STAGE2_MODELS = [("text_encoder", "text encoder", 4, "clip_name"),
                 ("stage2_model", "Stage II model", 11, "unet_name"),
                 ("stage2_vae", "Stage II VAE", 12, "vae_name")]


def keep(nodes: list[dict], ids: set[int]) -> list[dict]:
    """Copies of the nodes with these ids (their links are rewired in place)."""
    return [{**n, "links": dict(n["links"]), "widgets": dict(n["widgets"])}
            for n in nodes if n["id"] in ids]


def subgraph_inputs(nodes: list[dict], inputs: list[tuple]) -> None:
    """Point each input's targets at the subgraph's input node: ``inputs`` are
    ``(name, type, label, [(node id, input name), ...])``."""
    by_id = {n["id"]: n for n in nodes}
    for k, (_, _, _, targets) in enumerate(inputs):
        for nid, input_name in targets:
            by_id[nid]["links"][input_name] = (IN_NODE, k)


def io_entry(kind: str, bp: str, name: str, type_: str, label: str, link_ids, pos) -> dict:
    entry = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"swifti2v/{bp}/{kind}/{name}")),
             "name": name, "type": type_, "linkIds": link_ids, "pos": pos}
    return entry | ({"label": label} if label and label != name else {})


def widget_default(nodes: list[dict], targets) -> object:
    nid, input_name = targets[0]
    return next(n for n in nodes if n["id"] == nid)["widgets"].get(input_name)


def blueprint(name: str, nodes: list[dict], inputs: list[tuple], outputs: list[tuple],
              description: str, note: str) -> dict:
    """One blueprint: ``nodes`` wired to ``inputs`` (see subgraph_inputs) and ``outputs``
    ``(name, type, (node id, slot))``."""
    subgraph_inputs(nodes, inputs)
    inner = mw.ui_workflow(nodes, "blueprint/" + name, [], note)
    links = inner["links"]
    by_id = {n["id"]: n for n in inner["nodes"]}
    for j, (_, type_, (nid, slot)) in enumerate(outputs):
        lid = len(links) + 1
        links.append([lid, nid, slot, OUT_NODE, j, type_])
        by_id[nid]["outputs"][slot]["links"].append(lid)
    left, right = -320, max(n["pos"][0] + n["size"][0] for n in inner["nodes"]) + 80
    sg_inputs = [io_entry("in", name, n, t, label, [lk[0] for lk in links
                                                    if lk[1] == IN_NODE and lk[2] == k],
                          [left + 110, 100 + 20 * k])
                 for k, (n, t, label, _) in enumerate(inputs)]
    sg_outputs = [io_entry("out", name, n, t, "", [lk[0] for lk in links
                                                   if lk[3] == OUT_NODE and lk[4] == j],
                           [right + 20, 100 + 20 * j])
                  for j, (n, t, _) in enumerate(outputs)]
    sg_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "swifti2v/blueprint/" + name))
    definition = {
        "id": sg_id, "version": 1,
        "state": {"lastGroupId": 0, "lastNodeId": inner["last_node_id"],
                  "lastLinkId": len(links), "lastRerouteId": 0},
        "revision": 0, "config": {}, "name": name,
        "inputNode": {"id": IN_NODE, "bounding": [left, 80, 140, 40 + 20 * len(inputs)]},
        "outputNode": {"id": OUT_NODE, "bounding": [right, 80, 120, 40 + 20 * len(outputs)]},
        "inputs": sg_inputs, "outputs": sg_outputs, "widgets": [],
        "nodes": inner["nodes"], "groups": [],
        "links": [{"id": lid, "origin_id": o, "origin_slot": os_, "target_id": t,
                   "target_slot": ts, "type": typ} for lid, o, os_, t, ts, typ in links],
        "extra": {}, "category": CATEGORY, "description": description}
    widget_inputs = [(n, targets) for n, t, _, targets in inputs if t in WIDGET_TYPES]
    outer = {
        "id": inner["last_node_id"] + 1, "type": sg_id, "pos": [100, 100], "size": [420, 560],
        "flags": {}, "order": 0, "mode": 0,
        "inputs": [{"name": n, "type": t, "link": None}
                   | ({"label": label} if label and label != n else {})
                   | ({"widget": {"name": n}} if t in WIDGET_TYPES else {})
                   for n, t, label, _ in inputs],
        "outputs": [{"name": n, "type": t, "links": []} for n, t, _ in outputs],
        "properties": {"proxyWidgets": [["-1", n] for n, _ in widget_inputs]},
        "widgets_values": [widget_default(nodes, targets) for _, targets in widget_inputs],
        "title": name}
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "swifti2v/blueprint-workflow/" + name)),
            "revision": 0, "last_node_id": outer["id"], "last_link_id": 0, "nodes": [outer],
            "links": [], "groups": [], "config": {},
            "extra": {"ds": {"scale": 1, "offset": [0, 0]}, "frontendVersion": "1.49.0"},
            "version": 0.4, "definitions": {"subgraphs": [definition]}}


def models(choices) -> list[tuple]:
    return [(n, "COMBO", label, [(nid, w)]) for n, label, nid, w in choices]


def blueprint_2k() -> dict:
    """Stage I, the Reference Builder and Stage II in one node: your image in, the video out."""
    nodes = keep(mw.graph_2k(), {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 18})
    for n in nodes:                    # no bypassed 360P LoRA inside: Stage I takes the 4-step one
        if n["id"] == 10:
            n["links"]["model"] = (2, 0)
    inputs = [("image", "IMAGE", "your image", [(9, "image"), (10, "image"), (13, "image")]),
              ("prompt", "STRING", "", [(7, "text")]),
              ("width", "INT", "", [(10, "width")]), ("height", "INT", "", [(10, "height")]),
              ("frames", "INT", "", [(10, "length")]),
              ("seed", "INT", "", [(10, "seed"), (14, "seed")]),
              *models(STAGE1_MODELS), *models(STAGE2_MODELS)]
    return blueprint("SwiftI2V 2K", nodes, inputs, [("video", "VIDEO", (14, 1)),
                                                     ("plan", "STRING", (14, 2))],
                     "SwiftI2V image to 2K video: Wan 2.1 I2V 14B makes a motion reference at "
                     "W/4 x H/4, Wan 2.2 TI2V 5B re-synthesises it at your size segment by "
                     "segment (CSG), anchored on your image. Connect Save Video to the video.",
                     mw.NOTE_2K)


def blueprint_stage2() -> dict:
    """Stage II alone: any low-res video (another I2V model, Load Video) and your image in."""
    nodes = keep(mw.graph_2k(), {4, 7, 8, 11, 12, 13, 14, 18})
    inputs = [("low_res", "IMAGE", "low-res video", [(13, "low_res")]),
              ("image", "IMAGE", "your image", [(13, "image")]),
              ("prompt", "STRING", "", [(7, "text")]),
              ("width", "INT", "", [(13, "width")]), ("height", "INT", "", [(13, "height")]),
              ("seed", "INT", "", [(14, "seed")]), ("denoise", "FLOAT", "", [(14, "denoise")]),
              *models(STAGE2_MODELS)]
    return blueprint("SwiftI2V Stage II only", nodes, inputs,
                     [("video", "VIDEO", (14, 1)), ("plan", "STRING", (14, 2))],
                     "SwiftI2V Stage II: re-synthesises any low-res video of 4k+1 frames at your "
                     "size (Wan 2.2 TI2V 5B, CSG), anchored on your high-resolution image. "
                     "Connect Save Video to the video.", mw.NOTE_2K)


BLUEPRINTS = {"SwiftI2V 2K": blueprint_2k, "SwiftI2V Stage II only": blueprint_stage2}


def main():
    OUT.mkdir(exist_ok=True)
    for name, make in BLUEPRINTS.items():
        mw.write_json(OUT / f"{name}.json", make())
        print(f"wrote {OUT}/{name}.json")


if __name__ == "__main__":
    main()
