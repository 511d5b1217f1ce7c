"""The Seam Report on a real Stage II run: the VIDEO read in chunks, the plan from the sampler's
plan output, the plot shown by ComfyUI; and a clear refusal without frames."""
import json

import pytest

from swift_batch.client import PromptError

from swift_testing.comfy_host.graphs import pipeline


def report_graph(name, m=1, with_plan=True, length=17):
    g = pipeline(stage2="stage2_96", steps2=2, length=length, m=m, n=1, save_name=name,
                 decoder=False, compare=False)
    g["12"]["inputs"].update(vae=["4", 0], frame_rate=16.0, tile_size=0, overlap=64,
                             color_match="off")
    g["50"] = {"class_type": "SwiftI2VSeamReport", "inputs": {
        "video": ["12", 1], "m": 2, "n": 1, "stage1": ["10", 0]}}
    if with_plan:
        g["50"]["inputs"]["plan"] = ["12", 2]
    return g


def test_report_on_the_stage2_video_follows_its_plan(client, server, tmp_path):
    entry = client.run(report_graph("seams_plan"), timeout=900)
    out = entry["outputs"]["50"]
    report = json.loads(out["swifti2v_seams"][0])
    plan = json.loads(entry["outputs"]["12"]["swifti2v_plan"][0])
    assert plan["segments"] == [[1, 1], [2, 2], [3, 3], [4, 4]]       # m=1 as asked
    assert report["frames"] == 17
    assert report["boundaries"] == [5, 9, 13]                         # from the plan, not m=2
    assert len(report["fidelity_psnr"]) == 4                          # one per segment
    assert set(report["metrics"]) == {"difference", "luma_step", "structure"}
    assert out["text"][0] == report["verdict"]
    (img,) = out["images"]                                            # the plot, previewed
    from PIL import Image
    with Image.open(client.download(img, str(tmp_path))) as png:
        assert png.size[0] == 960 and png.size[1] > 400


def test_report_without_plan_uses_m_and_n(client, server):
    entry = client.run(report_graph("seams_mn", with_plan=False), timeout=900)
    report = json.loads(entry["outputs"]["50"]["swifti2v_seams"][0])
    assert report["boundaries"] == [9]                                # m=2: blocks 1-2, 3-4


def test_report_without_frames_is_refused_by_name(client):
    g = {"50": {"class_type": "SwiftI2VSeamReport", "inputs": {"m": 3, "n": 1}}}
    with pytest.raises(PromptError, match="video / images"):
        client.run(g, timeout=300)
