"""Run cards: what one run cost, stage by stage, and what it ran with.

A card is plain JSON (no torch here: the batch client reads and tabulates cards on machines
without it). The bridge (``nodes.bridge.run_card``) measures each pack node that runs and
appends one *stage record* to the card of the prompt running; the card goes beside the saved
video (same stem, ``.json``), out of the Stage II Sampler and the Segment Decoder as a STRING,
into ComfyUI's history (the ``swifti2v_card`` ui entry) and into the batch client's state.

A stage record holds ``stage`` (one of :data:`STAGES`), ``node_id``, ``wall_s``, ``device_s``
(CUDA events around the node, where it ran on a CUDA device), ``peak_device_gib`` (torch's
peak allocated memory, reset at the node's start), ``peak_host_rss_gib`` (the process's RSS
high-water mark: on a CPU the only peak there is, and never reset), and what the stage ran:
``frames``, ``size``, ``steps``, ``sampler``, ``scheduler``, ``plan`` (Stage II: the plan that
ran and, after an out-of-memory re-plan, ``plan_first``: the one it started with), ``tile_size``.
"""
from __future__ import annotations

import json
import os
import statistics
import uuid

CARD_VERSION = 1

#: stage key -> the name a user sees (the node's display name without "SwiftI2V")
STAGES = {
    "stage1": "Stage I",
    "reference": "Reference Builder",
    "stage2": "Stage II",
    "decoder": "Segment Decoder",
    "transition": "Stage Transition",
    "training_sample": "Training Sample Writer",
    "stage1_sample": "Stage I Sample Writer",
}


def new_card(prompt_id: str | None, environment: dict) -> dict:
    return {"swifti2v_card": CARD_VERSION, "prompt_id": prompt_id, **environment, "stages": []}


def stage_line(rec: dict) -> str:
    """One console line of a finished stage."""
    parts = [f"{rec['wall_s']:.2f} s"]
    if rec.get("device_s") is not None:
        parts[0] += f" (device {rec['device_s']:.2f} s)"
    if rec.get("peak_device_gib") is not None:
        parts.append(f"peak {rec['peak_device_gib']:.2f} GiB on {rec.get('device', 'the device')}")
    parts.append(f"host RSS high-water {rec['peak_host_rss_gib']:.2f} GiB")
    if rec.get("frames"):
        parts.append(f"{rec['frames']} frames" + (f" at {rec['size']}" if rec.get("size") else ""))
    if rec.get("steps"):
        parts.append(f"{rec['steps']} steps {rec.get('sampler', '')}/{rec.get('scheduler', '')}")
    plan = rec.get("plan")
    if plan:
        parts.append(f"m={plan['m']} n={plan['n']}, {len(plan['segments'])} segments"
                     + (f", VAE tile {plan['tile_size']}" if plan.get("tile_size") else "")
                     + (f", re-planned {len(plan['changes'])}x" if plan.get("changes") else ""))
    return f"SwiftI2V run card: {STAGES.get(rec['stage'], rec['stage'])}: " + "; ".join(parts)


def to_text(card: dict) -> str:
    return json.dumps(card, indent=1)


def write_beside(video_path, card: dict) -> str:
    """``card`` as ``<video stem>.json`` next to a video (temporary name, then renamed)."""
    target = os.path.splitext(str(video_path))[0] + ".json"
    tmp = f"{target}.{uuid.uuid4().hex[:8]}.part"
    with open(tmp, "w") as f:
        f.write(to_text(card))
    os.replace(tmp, target)
    return target


def read_card(text) -> dict | None:
    """A card from its JSON text (or a dict), or None for anything else."""
    try:
        card = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return None
    if not isinstance(card, dict) or "swifti2v_card" not in card \
            or not isinstance(card.get("stages"), list):
        return None
    return card


def fullest(texts) -> dict | None:
    """Of a prompt's cards (one per node that returned one), the one with the most stages: the
    last node's, which holds every stage before it."""
    cards = [c for c in map(read_card, texts) if c is not None]
    return max(cards, key=lambda c: len(c["stages"]), default=None)


def frames_of(card: dict) -> int:
    return max((int(s.get("frames") or 0) for s in card["stages"]), default=0)


def cost_table(named_cards: list[tuple[str, dict]]) -> list[str]:
    """The report's table: one line per run (seconds per stage, total, seconds per output
    frame, the highest device peak), then the median and max of each column."""
    stages = [k for k in STAGES if any(s["stage"] == k for _, c in named_cards
                                       for s in c["stages"])]
    head = ["run"] + [f"{STAGES[k]} s" for k in stages] + ["total s", "s/frame", "peak GiB"]
    rows = []
    for name, card in named_cards:
        secs = {k: sum(s["wall_s"] for s in card["stages"] if s["stage"] == k) for k in stages}
        total = sum(secs.values())
        frames = frames_of(card)
        peaks = [s.get("peak_device_gib") if s.get("peak_device_gib") is not None
                 else s.get("peak_host_rss_gib", 0.0) for s in card["stages"]]
        rows.append([name] + [secs[k] for k in stages]
                    + [total, total / frames if frames else 0.0, max(peaks, default=0.0)])
    columns = list(zip(*(r[1:] for r in rows))) if rows else []
    summary = [["median"] + [statistics.median(col) for col in columns],
               ["max"] + [max(col) for col in columns]] if rows else []
    widths = [max(len(str(h)), 8) for h in head]
    widths[0] = max([len(head[0])] + [len(r[0]) for r in rows + summary])

    def line(cells):
        return "  ".join(f"{c:>{w}.2f}" if isinstance(c, float) else f"{c:<{w}}"
                         if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(head)] + [line(r) for r in rows] + [line(r) for r in summary]
