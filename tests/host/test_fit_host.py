"""What fits the card, chosen for the user: ``m=0`` / ``tile_size=0`` (auto) resolve to a number
that is logged and returned in the plan output; a window (or VAE tile) that runs out of memory
is retried smaller, and the run finishes with every frame."""
import json
import re
from pathlib import Path

import av
import torch
from safetensors.torch import load_file

from swift_batch.client import output_files

from swift_testing.comfy_host.graphs import pipeline


def saved(server, name):
    return load_file(str(server.output / "swifti2v_test" / f"{name}.safetensors"))


def plan_of(entry):
    assert "12" in entry["outputs"], entry["outputs"]
    return json.loads(entry["outputs"]["12"]["swifti2v_plan"][0])


def rss_mib(server) -> float:
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def frames_in(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def video_graph(name, length=17, m=0, tile_size=0, width=64, height=64, steps2=2):
    g = pipeline(stage2="stage2_96", steps2=steps2, length=length, m=m, n=1, save_name=name,
                 width=width, height=height, decoder=False, compare=False)
    g["12"]["inputs"].update(vae=["4", 0], frame_rate=16.0, tile_size=tile_size, overlap=64,
                             color_match="off")
    g["70"] = {"class_type": "SaveVideo", "inputs": {"video": ["12", 1],
                                                     "filename_prefix": f"{name}/video",
                                                     "format": "auto", "codec": "auto"}}
    return g


def saved_video(server, entry, name):
    (video,) = [f for f in output_files(entry) if f["filename"].endswith(".mp4")
                and f["subfolder"] == name]
    return server.output / video["subfolder"] / video["filename"]


def test_auto_m_and_tile_resolve_logged_and_equal_a_fixed_run(client, server):
    before = len(server.log_text())
    entry = client.run(video_graph("auto_fit"), timeout=900)
    log = server.log_text()[before:]
    plan = plan_of(entry)
    m = re.search(r"SwiftI2V: m=auto -> (\d+)", log)
    tile = re.search(r"SwiftI2V: tile_size=auto -> (\d+)", log)
    assert m and tile, log[-2000:]
    assert plan["m"] == int(m.group(1)) == 3          # plenty free on this host: the cap, M=3
    assert plan["tile_size"] == int(tile.group(1)) == 64          # the whole 64x64 frame
    assert plan["auto"]["m"].startswith("m=auto -> 3") and plan["changes"] == []
    assert "(weights resident)" in plan["auto"]["m"]         # the card keeps Stage II loaded
    assert plan["segments"] == [[1, 3], [4, 4]]      # 17 frames: 5 latent blocks
    fixed = client.run(video_graph("fixed_fit", m=3, tile_size=64), timeout=900)
    assert plan_of(fixed)["auto"] == {}
    assert torch.equal(saved(server, "auto_fit")["latent"], saved(server, "fixed_fit")["latent"])


def oom_graph(name, max_blocks=3, seed=0):
    g = video_graph(name, m=3)
    g["12"]["inputs"]["seed"] = seed            # a new run each time, not ComfyUI's cache
    g["40"] = {"class_type": "SwiftTestOOMAbove", "inputs": {"model": ["2", 0],
                                                             "max_blocks": max_blocks}}
    g["12"]["inputs"]["model"] = ["40", 0]
    return g


def test_window_out_of_memory_is_retried_smaller_without_leaking(client, server):
    """Windows above 3 blocks raise torch's OutOfMemoryError (holding a 256 MB tensor): M drops
    3 -> 2 -> 1, every frame is there, and three such runs leave the server's RSS flat: a leak
    would add 512 MB a run; RSS moves about 50 MB from run to run anyway."""
    rss = []
    for i in range(3):
        before = len(server.log_text())
        entry = client.run(oom_graph(f"oom_{i}", seed=i), timeout=900)
        log = server.log_text()[before:]
        plan = plan_of(entry)
        assert plan["segments"] == [[1, 2], [3, 3], [4, 4]], plan
        assert len(plan["changes"]) == 2 and "m 3 -> 2" in plan["changes"][0]
        assert "m 2 -> 1" in plan["changes"][1]
        assert log.count("SwiftI2V: out of memory in segment") == 2, log[-2000:]
        latent = saved(server, f"oom_{i}")["latent"]
        assert latent.shape[2] == 5 and latent.isfinite().all()
        assert frames_in(saved_video(server, entry, f"oom_{i}")) == 17
        card = json.loads(entry["outputs"]["12"]["swifti2v_card"][0])
        (stage2,) = [s for s in card["stages"] if s["stage"] == "stage2"]
        assert stage2["plan_first"]["segments"] == [[1, 3], [4, 4]]       # both plans
        assert stage2["plan"]["segments"] == plan["segments"] and stage2["frames"] == 17
        beside = json.loads(saved_video(server, entry, f"oom_{i}").with_suffix(".json").read_text())
        assert beside["stages"][-1]["plan"]["changes"] == plan["changes"]
        rss.append(rss_mib(server))
    assert max(rss) - min(rss) < 256, rss


def test_vae_out_of_memory_halves_the_tile_and_keeps_the_causal_state(client, server):
    """A decoder that fails on tiles wider than 16 latent units (256 px) at 512x256: the tile
    is halved from the whole frame to 256 px, the frames equal a run at 256 px from the start."""
    g = video_graph("vae_oom", width=512, height=256, length=9, m=3)
    g["41"] = {"class_type": "SwiftTestOOMVAE", "inputs": {"vae": ["4", 0], "max_latent": 16}}
    g["12"]["inputs"]["vae"] = ["41", 0]
    before = len(server.log_text())
    entry = client.run(g, timeout=900)
    assert "out of memory in the VAE decoder: tile_size 512 -> 256 px from block 0" in \
        server.log_text()[before:]
    plan = plan_of(entry)
    assert plan["tile_size"] == 512 and "tile_size 512 -> 256" in plan["changes"][-1]
    fixed = client.run(video_graph("vae_256", width=512, height=256, length=9, m=3,
                                   tile_size=256), timeout=900)
    a = saved_video(server, entry, "vae_oom")
    b = saved_video(server, fixed, "vae_256")
    assert frames_in(a) == frames_in(b) == 9
    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        fa = [f.to_ndarray(format="rgb24") for f in ca.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in cb.decode(video=0)]
    assert all((x == y).all() for x, y in zip(fa, fb))      # as if 256 px from the start


def reference_graph(name, vae=("4", 0), tile_size=512):
    """The Reference Builder alone at 512x256 (9 frames) on test images, its latent saved."""
    g = pipeline(decoder=False, compare=False)
    g = {k: g[k] for k in ("4",)}
    g.update({
        "40": {"class_type": "SwiftTestImage", "inputs": {"frames": 9, "width": 128, "height": 64}},
        "41": {"class_type": "SwiftTestImage", "inputs": {"frames": 1, "width": 512, "height": 256}},
        "11": {"class_type": "SwiftI2VHybridReference", "inputs": {
            "low_res": ["40", 0], "image": ["41", 0], "vae": list(vae), "width": 512,
            "height": 256, "crop": "center", "upscale_method": "bicubic",
            "tile_size": tile_size, "overlap": 64, "blocks_per_chunk": 1}},
        "15": {"class_type": "SwiftTestSaveTensors", "inputs": {"name": name,
                                                                "reference": ["11", 0]}}})
    return g


def test_encode_out_of_memory_retries_with_smaller_tiles(client, server):
    """An encoder that fails on tiles wider than 256 px: the Reference Builder halves its tile
    512 -> 256 and encodes the clip again from the first chunk, with a log line and the change
    on the run card; the latent equals a run at 256 px from the start."""
    g = reference_graph("enc_oom")
    g["42"] = {"class_type": "SwiftTestOOMVAE", "inputs": {"vae": ["4", 0], "max_latent": 128,
                                                           "part": "encoder"}}
    g["11"]["inputs"]["vae"] = ["42", 0]
    before = len(server.log_text())
    client.run(g, timeout=900)
    assert "out of memory in the VAE encoder: tile_size 512 -> 256 px from the first chunk " \
           "again" in server.log_text()[before:]
    client.run(reference_graph("enc_256", tile_size=256), timeout=900)
    a, b = saved(server, "enc_oom")["reference"], saved(server, "enc_256")["reference"]
    assert a.shape == b.shape == (1, 48, 3, 16, 32) and torch.equal(a, b)
