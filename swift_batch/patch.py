"""Patch an API-format workflow for one batch row."""
from __future__ import annotations

import copy
import json

from .rows import Row

SAMPLERS = ("SwiftI2VStage1Sampler", "SwiftI2VStage2Sampler")
SIZED = ("SwiftI2VStage1Sampler", "SwiftI2VHybridReference")
SAVERS = ("SaveVideo", "SwiftI2VSegmentDecoder")
WRITERS = ("SwiftI2VSampleWriter", "SwiftI2VStage1SampleWriter")
#: what makes a clip's low-res version: Stage I itself, or the Stage I Stand-in
DEGRADERS = ("SwiftI2VStageTransition", "SwiftI2VStage1StandIn")
FEW_STEP_LORA = "LightX2V 4-step LoRA"


class WorkflowError(ValueError):
    pass


def find(workflow: dict, *, class_type=None, title=None) -> list[str]:
    return [k for k, n in workflow.items()
            if (class_type is None or n.get("class_type") in
                ((class_type,) if isinstance(class_type, str) else class_type))
            and (title is None or n.get("_meta", {}).get("title") == title)]


def node_ref(workflow: dict, ref: str) -> str:
    """A node id, or a node title (``_meta.title``)."""
    if ref in workflow:
        return ref
    ids = find(workflow, title=ref)
    if len(ids) != 1:
        raise WorkflowError(f"--set: no single node with id or title {ref!r} "
                            f"({len(ids)} found)")
    return ids[0]


def apply_sets(workflow: dict, sets: list[str]) -> dict:
    """``NODE.INPUT=VALUE`` overrides (VALUE parsed as JSON when it is JSON)."""
    wf = copy.deepcopy(workflow)
    for s in sets:
        target, sep, value = s.partition("=")
        ref, dot, key = target.rpartition(".")
        if not sep or not dot:
            raise WorkflowError(f"--set {s!r}: expected NODE.INPUT=VALUE")
        try:
            val = json.loads(value)
        except json.JSONDecodeError:
            val = value
        wf[node_ref(wf, ref)]["inputs"][key] = val
    return wf


def add_stage1_lora(workflow: dict, lora_name: str, after: str = FEW_STEP_LORA) -> dict:
    """The 360P LoRA (core's LoraLoaderModelOnly, strength 1) after the node titled ``after``:
    every model input that took that node's output takes the new loader's."""
    wf = copy.deepcopy(workflow)
    ids = find(wf, title=after)
    if len(ids) != 1:
        raise WorkflowError(f"--stage1-lora: the workflow has no single node titled {after!r} to "
                            "put the 360P LoRA after")
    new = str(max(int(k) for k in wf if k.isdigit()) + 1)
    for n in wf.values():
        for key, value in n["inputs"].items():
            if value == [ids[0], 0]:
                n["inputs"][key] = [new, 0]
    wf[new] = {"class_type": "LoraLoaderModelOnly", "_meta": {"title": "360P LoRA"},
               "inputs": {"lora_name": lora_name, "strength_model": 1.0, "model": [ids[0], 0]}}
    return wf


def set_prompts(wf: dict, row: Row) -> None:
    """The row's prompt (or caption) and negative into the nodes titled for them."""
    pos = find(wf, title="Positive Prompt")
    if len(pos) != 1:
        raise WorkflowError("workflow: expected one node titled 'Positive Prompt'")
    wf[pos[0]]["inputs"]["text"] = row.prompt
    if row.negative is not None:
        for k in find(wf, title="Negative Prompt"):
            wf[k]["inputs"]["text"] = row.negative


def patch_for_row(workflow: dict, row: Row, image_name: str, prefix: str) -> dict:
    wf = copy.deepcopy(workflow)
    loads = find(wf, class_type="LoadImage")
    if len(loads) != 1:
        raise WorkflowError(f"workflow: expected one LoadImage node, found {len(loads)}")
    wf[loads[0]]["inputs"]["image"] = image_name
    set_prompts(wf, row)
    for k in find(wf, class_type=SAMPLERS):
        if row.seed is not None:
            wf[k]["inputs"]["seed"] = row.seed
    for k in find(wf, class_type=SIZED):
        for key in ("width", "height"):
            linked = isinstance(wf[k]["inputs"].get(key), list)   # taken from another node
            if getattr(row, key) is not None and not linked:
                wf[k]["inputs"][key] = getattr(row, key)
    if row.frames is not None:
        for k in find(wf, class_type="SwiftI2VStage1Sampler"):
            wf[k]["inputs"]["length"] = row.frames
    savers = find(wf, class_type=SAVERS)
    if not savers:
        raise WorkflowError("workflow: no SaveVideo or SwiftI2V Segment Decoder node")
    for k in savers:
        wf[k]["inputs"]["filename_prefix"] = f"{prefix}/{row.name}"
    return wf


def patch_for_data_row(workflow: dict, row: Row, video_name: str, folder: str,
                       defaults: dict) -> dict:
    """The training-data workflow for one video row: the uploaded video, its caption, clip
    options (row columns over ``defaults``), seed, the share of synthesized clips (a row's
    ``synthesize`` 0/1: none or all of its clips), and the output folder."""
    wf = copy.deepcopy(workflow)
    loads = find(wf, class_type="SwiftI2VLoadClips")
    if len(loads) != 1:
        raise WorkflowError(f"workflow: expected one SwiftI2VLoadClips node, found {len(loads)}")
    clips = wf[loads[0]]["inputs"]
    clips["video"] = video_name
    for key, column in (("start", "start"), ("stride", "stride"), ("max_clips", "clips"),
                        ("length", "frames"), ("frame_step", "frame_step")):
        value = getattr(row, column) if getattr(row, column) is not None else defaults.get(column)
        if value is not None:
            clips[key] = value
    set_prompts(wf, row)
    for k in find(wf, class_type=DEGRADERS):
        if row.seed is not None:
            wf[k]["inputs"]["seed"] = row.seed
        if row.synthesize is not None:                    # the row's own: all or none
            wf[k]["inputs"]["synthesize_fraction"] = 1.0 if row.synthesize else 0.0
        elif defaults.get("synthesize_fraction") is not None:
            wf[k]["inputs"]["synthesize_fraction"] = float(defaults["synthesize_fraction"])
    for k in find(wf, class_type=(*DEGRADERS, "SwiftI2VStage1SampleWriter")):
        for key in ("width", "height"):
            if getattr(row, key) is not None:
                wf[k]["inputs"][key] = getattr(row, key)
    writers = find(wf, class_type=WRITERS)
    if not writers:
        raise WorkflowError("workflow: no SwiftI2V Training Sample Writer node")
    for k in writers:
        wf[k]["inputs"]["folder"] = folder
    return wf
