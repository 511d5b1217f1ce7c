"""Write the node translations in ComfyUI's custom-node locale layout.

    python -m tools.make_locales        # writes locales/zh/nodeDefs.json, locales/ja/nodeDefs.json

ComfyUI serves ``<pack>/locales/<lang>/nodeDefs.json`` through ``/i18n`` and its frontend shows
the node names, input names, output names and tooltips in the user's language (English where a
text has no translation). The text is in ``tools/locale_text.py``; the inputs and outputs of each
node come from the schema snapshot (``tests/data/node_schemas.json``), so a node input added
without its translation fails here (and in the tests) instead of showing English.
"""
from __future__ import annotations

import json
from pathlib import Path

from .locale_text import COMMON, NODES
from .snapshot_schemas import SNAPSHOT

ROOT = Path(__file__).resolve().parents[1]
LANGS = ("zh", "ja")


def node_defs(lang: str, schemas: dict) -> dict:
    """``nodeDefs`` for ``lang``: every SwiftI2V node of ``schemas``, every input and output."""
    out = {}
    for node_id, schema in schemas.items():
        if not node_id.startswith("SwiftI2V"):
            continue
        if node_id not in NODES[lang]:
            raise KeyError(f"{lang}: no translation of node {node_id}")
        display, description, inputs, outputs = NODES[lang][node_id]
        entry = {"display_name": display, "description": description, "inputs": {}}
        for spec in schema["inputs"]:
            name = spec["name"]
            own = inputs.get(name, (None, None))
            common = COMMON[lang].get(name, (None, None))
            label, tip = own[0] or common[0], own[1] or common[1]
            if not label or not tip:
                raise KeyError(f"{lang}: {node_id}.{name} has no translated "
                               + ("name" if not label else "tooltip"))
            entry["inputs"][name] = {"name": label, "tooltip": tip}
        if len(outputs) != len(schema["output_names"]):
            raise KeyError(f"{lang}: {node_id} has {len(schema['output_names'])} outputs, "
                           f"{len(outputs)} translated")
        if outputs:
            entry["outputs"] = {str(i): {"name": n, "tooltip": t}
                                for i, (n, t) in enumerate(outputs)}
        out[node_id] = entry
    return out


def render(lang: str) -> str:
    schemas = json.loads(SNAPSHOT.read_text())
    return json.dumps(node_defs(lang, schemas), indent=1, ensure_ascii=False) + "\n"


def main() -> None:
    for lang in LANGS:
        path = ROOT / "locales" / lang / "nodeDefs.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(lang), encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
