"""The artist's surface in a real ComfyUI: the reference as a core LATENT (Save / Load Latent),
any low-res video as Stage I (core Load Video, any-size IMAGE batches), the size typed once."""
import shutil

import torch
from safetensors.torch import load_file

from swift_testing.comfy_host.graphs import pipeline


def saved(server, name):
    return load_file(str(server.output / "swifti2v_test" / f"{name}.safetensors"))


def test_reference_saved_and_loaded_with_core_latent_nodes_gives_the_same_stage2(client, server):
    g = pipeline(stage2="stage2_96", decoder=False, compare=False, save_name="direct")
    g["50"] = {"class_type": "SaveLatent", "inputs": {"samples": ["11", 0],
                                                      "filename_prefix": "swifti2v_ref/ref"}}
    client.run(g, timeout=900)
    (path,) = sorted((server.output / "swifti2v_ref").glob("ref_*.latent"))
    shutil.copy(path, server.input / "swifti2v_ref.latent")
    g2 = pipeline(stage2="stage2_96", decoder=False, compare=False, save_name="reloaded")
    g2["51"] = {"class_type": "LoadLatent", "inputs": {"latent": "swifti2v_ref.latent"}}
    g2["12"]["inputs"]["reference"] = ["51", 0]
    g2["15"]["inputs"]["reference"] = ["51", 0]
    for k in ("10", "11"):                     # Stage I and the builder are not needed now
        del g2[k]
    client.run(g2, timeout=900)
    a, b = saved(server, "direct"), saved(server, "reloaded")
    assert torch.equal(a["reference"], b["reference"])
    assert torch.equal(a["latent"], b["latent"])
    assert (b["latent"][:, :, :1] == b["reference"][:, :, :1]).all()      # block 0: the anchor


def write_video(path, frames=9, width=48, height=40, fps=16):
    """A 4k+1-frame clip of a real photo panned sideways, in a size unlike Stage I's."""
    import av
    from PIL import Image
    photo = Image.open(path.parent / "astronaut.png").convert("RGB").resize((width + 4 * frames,
                                                                            height))
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            crop = photo.crop((4 * i, 0, 4 * i + width, height))
            for pkt in s.encode(av.VideoFrame.from_image(crop)):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_core_load_video_feeds_the_reference_builder(client, server):
    write_video(server.input / "swifti2v_clip.mp4")
    g = pipeline(stage2="stage2_96", decoder=False, compare=False, save_name="from_video")
    g["60"] = {"class_type": "LoadVideo", "inputs": {"file": "swifti2v_clip.mp4"}}
    g["61"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["60", 0]}}
    g["11"]["inputs"]["low_res"] = ["61", 0]
    del g["10"]
    client.run(g, timeout=900)
    t = saved(server, "from_video")
    assert tuple(t["reference"].shape) == (1, 48, 3, 4, 4)
    assert (t["latent"][:, :, :1] == t["reference"][:, :, :1]).all() and t["latent"].isfinite().all()


def test_any_size_image_batch_feeds_the_builder_and_the_size_is_typed_once(client, server):
    g = pipeline(stage2="stage2_96", width=128, height=64, decoder=False, compare=False,
                 save_name="any_size")
    g["40"] = {"class_type": "SwiftTestImage", "inputs": {"frames": 9, "width": 50, "height": 30}}
    g["11"]["inputs"].update(low_res=["40", 0], width=["10", 2], height=["10", 3])
    g["15"]["inputs"]["latent_b"] = ["10", 1]       # Stage I runs: it gives the size
    client.run(g, timeout=900)
    t = saved(server, "any_size")
    assert tuple(t["reference"].shape) == (1, 48, 3, 4, 8)     # 128x64 from the Stage I node
    assert t["latent"].isfinite().all()


def test_the_node_translations_are_served_for_zh_and_ja(server):
    """ComfyUI's /i18n serves the pack's locales/<lang>/nodeDefs.json to the frontend."""
    import json
    from pathlib import Path

    import requests
    served = requests.get(server.url + "/i18n", timeout=60).json()
    root = Path(__file__).resolve().parents[2] / "locales"
    for lang in ("zh", "ja"):
        ours = json.loads((root / lang / "nodeDefs.json").read_text(encoding="utf-8"))
        defs = served[lang]["nodeDefs"]
        for node_id, entry in ours.items():
            assert defs[node_id]["display_name"] == entry["display_name"], (lang, node_id)
            assert defs[node_id]["inputs"] == entry["inputs"], (lang, node_id)
    assert served["zh"]["nodeDefs"]["SwiftI2VStage2Sampler"]["display_name"] == \
        "SwiftI2V CSG 第二阶段采样器"
