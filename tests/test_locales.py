"""Node names, input names and tooltips in Chinese and Japanese, in ComfyUI's custom-node locale
layout (``locales/<lang>/nodeDefs.json``), complete for every SwiftI2V node of the schema
snapshot and as ``tools.make_locales`` writes them."""
import json
import re
from pathlib import Path

import pytest

from tools.make_locales import LANGS, render

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = {"zh": re.compile(r"[\u4e00-\u9fff]"), "ja": re.compile(r"[\u3040-\u30ff]")}


@pytest.mark.parametrize("lang", LANGS)
def test_locale_files_are_current_and_complete(lang):
    path = ROOT / "locales" / lang / "nodeDefs.json"
    assert path.read_text(encoding="utf-8") == render(lang), \
        "stale: run python -m tools.make_locales"
    defs = json.loads(path.read_text(encoding="utf-8"))
    schemas = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())
    ours = {k: v for k, v in schemas.items() if k.startswith("SwiftI2V")}
    assert set(defs) == set(ours)
    for node_id, schema in ours.items():
        entry = defs[node_id]
        assert SCRIPT[lang].search(entry["display_name"]), entry["display_name"]
        assert SCRIPT[lang].search(entry["description"])
        assert set(entry["inputs"]) == {i["name"] for i in schema["inputs"]}
        for name, text in entry["inputs"].items():
            assert text["name"] and SCRIPT[lang].search(text["tooltip"]), (node_id, name)
        assert len(entry.get("outputs", {})) == len(schema["output_names"])


def test_a_missing_translation_is_named():
    from tools.make_locales import node_defs
    schemas = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())
    schemas["SwiftI2VStage2Sampler"]["inputs"].append({"name": "brand_new", "type": "INT"})
    with pytest.raises(KeyError, match="zh: SwiftI2VStage2Sampler.brand_new has no translated name"):
        node_defs("zh", schemas)
