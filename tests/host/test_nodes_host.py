"""The four nodes inside a real ComfyUI, through its HTTP API (skipped without COMFYUI_PATH)."""
import threading

import pytest
from safetensors.torch import load_file

from swift_batch.client import PromptError, output_files

from swift_testing.comfy_host.graphs import pipeline

NODES = {
    "SwiftI2VStage1Sampler": "SwiftI2V Stage I Sampler",
    "SwiftI2VHybridReference": "SwiftI2V Hybrid Reference Builder",
    "SwiftI2VStage2Sampler": "SwiftI2V CSG Stage II Sampler",
    "SwiftI2VSegmentDecoder": "SwiftI2V Segment Decoder",
    "SwiftI2VSeamReport": "SwiftI2V Seam Report",
}


def saved(server, name):
    return load_file(str(server.output / "swifti2v_test" / f"{name}.safetensors"))


def video_frames(path):
    import av
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-8))


def test_object_info_lists_the_inference_nodes(client):
    info = client.object_info()
    for node_id, title in NODES.items():
        assert node_id in info, node_id
        node = info[node_id]
        assert node["display_name"] == title and node["category"] == "SwiftI2V"
        for group in ("required", "optional"):
            for name, spec in node["input"].get(group, {}).items():
                assert spec[1].get("tooltip"), f"{node_id}.{name} has no tooltip"
    assert info["SwiftI2VStage2Sampler"]["output"] == ["LATENT", "VIDEO", "STRING", "STRING"]
    assert info["SwiftI2VSeamReport"]["output"] == ["IMAGE", "STRING"]
    assert info["SwiftI2VSeamReport"]["output_node"] is True
    assert info["SwiftI2VSegmentDecoder"]["output"] == ["IMAGE", "VIDEO", "STRING"]
    assert info["SwiftI2VHybridReference"]["output"] == ["LATENT"]
    assert info["SwiftI2VStage1Sampler"]["output"] == ["IMAGE", "LATENT", "INT", "INT"]


@pytest.mark.parametrize("stage2,opts", [
    ("stage2_48", dict(mode="auto", rope="window", cfg2=1.0, sampler2="euler")),
    ("stage2_96", dict(mode="swifti2v", rope="absolute", cfg2=2.5, sampler2="dpmpp_2m")),
])
def test_full_graph(client, server, stage2, opts):
    name = f"full_{stage2}"
    entry = client.run(pipeline(stage2=stage2, save_name=name, prefix=f"full/{name}", **opts),
                       timeout=900)
    files = [f for f in output_files(entry) if f["filename"].endswith(".mp4")]
    assert len(files) == 1
    frames = video_frames(server.output / files[0]["subfolder"] / files[0]["filename"])
    assert len(frames) == 9 and frames[0].shape == (64, 64, 3)
    t = saved(server, name)
    assert tuple(t["latent"].shape) == (1, 48, 3, 4, 4)
    assert (t["latent"][:, :, :1] == t["anchor"]).all()          # block 0 is the anchor, exactly
    assert not (t["latent"][:, :, 1:] == t["reference"][:, :, 1:]).all()
    assert tuple(t["images"].shape) == (9, 64, 64, 3)
    assert rel_err(t["images"], t["images_b"]) < 1e-3             # == ComfyUI's one-shot decode
    assert not list((server.output / "full").glob(".*.part"))


@pytest.mark.parametrize("crop", ["center", "disabled"])
def test_non_square_target_from_a_square_image(client, server, crop):
    g = pipeline(width=128, height=64, stage2="stage2_96", save_name=f"crop_{crop}",
                 prefix=f"crop/{crop}", compare=False)
    g["10"]["inputs"]["crop"] = g["11"]["inputs"]["crop"] = crop
    entry = client.run(g, timeout=900)
    (video,) = [f for f in output_files(entry) if f["filename"].endswith(".mp4")]
    frames = video_frames(server.output / video["subfolder"] / video["filename"])
    assert len(frames) == 9 and frames[0].shape == (64, 128, 3)
    if crop == "disabled":
        if not (server.output / "swifti2v_test" / "crop_center.safetensors").exists():
            g = pipeline(width=128, height=64, stage2="stage2_96", save_name="crop_center",
                         prefix="crop/center", compare=False)      # whatever order tests run in
            client.run(g, timeout=900)
        a, b = saved(server, "crop_center"), saved(server, "crop_disabled")
        assert not (a["anchor"] == b["anchor"]).all()       # a crop, not a stretch


def test_spatially_tiled_encode_and_decode_run_through_the_real_vae(client, server):
    """Tiles of 32 px (2 latent units, overlap clamped) on 64x64 frames: 4 tiles, own caches.
    Exactness is claimed for one tile (test_full_graph); with random weights tiles differ."""
    g = pipeline(save_name="tiled", prefix="tiled/video")
    g["11"]["inputs"]["tile_size"] = 32
    g["13"]["inputs"]["tile_size"] = 32
    client.run(g, timeout=900)
    t = saved(server, "tiled")
    assert tuple(t["reference"].shape) == (1, 48, 3, 4, 4) and t["reference"].isfinite().all()
    assert tuple(t["images"].shape) == (9, 64, 64, 3) and t["images"].isfinite().all()
    assert 0.0 <= float(t["images"].min()) and float(t["images"].max()) <= 1.0


def test_reference_really_reaches_the_96_channel_model(client, server):
    """A 96-channel model given no concat image silently gets zeros: the reference must matter."""
    for seed1 in (0, 1):            # another Stage I motion: same anchor, other reference
        client.run(pipeline(stage2="stage2_96", seed1=seed1, decoder=False, compare=False,
                            save_name=f"ref_{seed1}"), timeout=900)
    a, b = saved(server, "ref_0"), saved(server, "ref_1")
    assert (a["anchor"] == b["anchor"]).all()
    assert not (a["reference"][:, :, 1:] == b["reference"][:, :, 1:]).all()
    assert (a["latent"][:, :, 1:] - b["latent"][:, :, 1:]).abs().max() > 1e-4


def test_stage2_progress_covers_segments_times_steps_with_previews(client):
    events, previews, current = [], [], [None]

    def on_event(kind, data):
        if kind == "executing":
            current[0] = data.get("node")
        if kind == "progress" and data.get("node") == "12":
            events.append((data["value"], data["max"]))

    client.run(pipeline(steps2=3, m=1, decoder=False, compare=False, save_name="prog"),
               on_event=on_event, on_preview=lambda b: previews.append(current[0]),
               timeout=900)
    assert events[-1] == (6, 6) and [v for v, _ in events] == list(range(1, 7))  # 2 segs x 3
    assert previews.count("12") >= 6


def interrupt_on_progress(client, node):
    fired = threading.Event()

    def on_event(kind, data):
        if kind == "progress" and data.get("node") == node and not fired.is_set():
            fired.set()
            client.interrupt()

    return on_event, fired


@pytest.mark.parametrize("node,steps2", [("12", 100), ("13", 2)])
def test_interrupt_leaves_no_file_under_the_final_name(client, server, node, steps2):
    prefix = f"cancel_{node}/video"
    on_event, fired = interrupt_on_progress(client, node)
    with pytest.raises(PromptError, match="interrupted"):
        client.run(pipeline(steps2=steps2, prefix=prefix, save_name=f"c{node}"),
                   on_event=on_event, timeout=900)
    assert fired.is_set()
    folder = server.output / f"cancel_{node}"
    left = list(folder.iterdir()) if folder.exists() else []
    assert left == [], left


def test_chunked_reference_encoding_equals_one_shot_vae_encode(client, server):
    """The builder encodes block by block carrying the causal cache: same as ComfyUI's VAEEncode."""
    g = pipeline(upscale="nearest-exact", decoder=False, compare=False, save_name="enc")
    del g["12"], g["15"]["inputs"]["latent"]
    scale = {"upscale_method": "nearest-exact", "width": 64, "height": 64, "crop": "disabled"}
    g["20"] = {"class_type": "ImageScale", "inputs": {"image": ["10", 0], **scale}}
    g["21"] = {"class_type": "ImageScale", "inputs": {"image": ["7", 0], **scale}}
    g["22"] = {"class_type": "ImageFromBatch", "inputs": {"image": ["20", 0], "batch_index": 1,
                                                          "length": 8}}
    g["23"] = {"class_type": "ImageBatch", "inputs": {"image1": ["21", 0], "image2": ["22", 0]}}
    g["24"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["23", 0], "vae": ["4", 0]}}
    g["15"]["inputs"]["latent"] = ["24", 0]
    client.run(g, timeout=900)
    t = saved(server, "enc")
    assert t["reference"].shape == t["latent"].shape == (1, 48, 3, 4, 4)
    assert rel_err(t["reference"], t["latent"]) < 1e-3
