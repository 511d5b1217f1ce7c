"""Stage II streams its video: each segment decoded as soon as it is final and appended to a file
in the pack's work folder of this ComfyUI process (``<output>/.swifti2v_work/<process>/``), which
core's Save Video then names and keeps."""
import threading
import time

import av
import numpy as np
import pytest
from safetensors.torch import load_file

from swift_batch.client import PromptError, output_files

from swift_testing.comfy_host.graphs import pipeline


def stream_graph(name, steps2=30, length=33, m=3):
    g = pipeline(stage2="stage2_96", steps2=steps2, length=length, m=m, n=1, save_name=name,
                 prefix=f"{name}/decoder", compare=False)
    g["12"]["inputs"].update(vae=["4", 0], frame_rate=16.0, tile_size=1024, overlap=64,
                             color_match="off")
    g["13"]["inputs"]["save_video"] = False
    g["70"] = {"class_type": "SaveVideo", "inputs": {"video": ["12", 1],
                                                     "filename_prefix": f"{name}/video",
                                                     "format": "auto", "codec": "auto"}}
    return g


def decodable_frames(path):
    try:
        with av.open(str(path)) as c:
            return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    except Exception:                       # not a complete fragment yet
        return []


def luma_psnr(a, b):
    """PSNR of the luma (BT.601) of two RGB frames: 4:2:0 video keeps luma at full resolution,
    while the random VAE's noise-like colours lose most of their chroma (about 13 dB in RGB)."""
    w = np.array([0.299, 0.587, 0.114])
    mse = float(np.mean((a.astype(np.float64) @ w - b.astype(np.float64) @ w) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


WORK = ".swifti2v_work"


def test_video_grows_while_stage2_runs_and_equals_the_decoder(client, server):
    work = server.output / WORK
    before = set(work.glob("*/swifti2v_*"))
    seen, done = [], threading.Event()

    def poll():
        while not done.is_set():
            for p in set(work.glob("*/swifti2v_stage2_*.part.mp4")) - before:
                size = p.stat().st_size if p.exists() else 0
                seen.append((p.name, size, len(decodable_frames(p)), time.monotonic()))
            time.sleep(0.05)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        entry = client.run(stream_graph("stream"), timeout=900)
    finally:
        done.set()
        t.join()
    names = {n for n, *_ in seen}
    assert len(names) == 1, names                   # one growing file, under a temp name
    sizes = [s for _, s, _, _ in seen]
    assert len(set(sizes)) >= 3 and sizes == sorted(sizes), sizes   # it grew, step by step
    # frames of the first segment (frame 0 + 3 blocks = 13 frames) were readable mid-run
    assert max(f for _, _, f, _ in seen) >= 13
    assert not list(work.glob("*/swifti2v_*.part.mp4"))         # renamed when complete
    (video,) = [f for f in output_files(entry) if f["filename"].endswith(".mp4")
                and f["subfolder"] == "stream"]
    frames = decodable_frames(server.output / video["subfolder"] / video["filename"])
    assert len(frames) == 33 and frames[0].shape == (64, 64, 3)
    ref = load_file(str(server.output / "swifti2v_test" / "stream.safetensors"))["images"]
    ref = (ref.clamp(0, 1) * 255).round().byte().numpy()
    assert ref.shape == (33, 64, 64, 3)
    # same frames as the Segment Decoder on the same latent, within what x264 (crf 17) allows on
    # the random VAE's busy pictures (measured: 37.9 dB luma at worst); a one-frame shift is far
    # below (measured: 16 dB at best), so the comparison can fail
    assert min(luma_psnr(a, b) for a, b in zip(frames, ref)) > 32.0
    assert max(luma_psnr(a, b) for a, b in zip(frames[:-1], ref[1:])) < 25.0


def test_cancel_while_streaming_leaves_no_file(client, server):
    work = server.output / WORK
    before = set(work.glob("*/swifti2v_*"))
    fired = threading.Event()

    def on_event(kind, data):
        if kind == "progress" and data.get("node") == "12" and data.get("value", 0) >= 40 \
                and not fired.is_set():
            fired.set()
            client.interrupt()

    with pytest.raises(PromptError, match="interrupted"):
        client.run(stream_graph("stream_cancel", steps2=100), on_event=on_event, timeout=900)
    assert fired.is_set()
    assert set(work.glob("*/swifti2v_*")) == before                  # no temp file behind
    folder = server.output / "stream_cancel"
    assert not folder.exists() or list(folder.iterdir()) == []       # nothing under a final name


def test_changed_vae_protocol_falls_back_to_core_and_the_video_is_still_right(client, server):
    """A Wan 2.2 VAE whose encoder/decoder no longer take the cache protocol the pack drives (a
    test node changes their signature, as a core rewrite would): Stage II and the Reference
    Builder notice before any work, log one line each, and use core's own VAE; the streamed video
    has every frame, the right size, and is close to core's VAE Decode of the same latent."""
    g = pipeline(stage2="stage2_96", steps2=2, length=33, m=3, n=1, save_name="protocol",
                 decoder=False, compare=True)
    g["16"] = {"class_type": "SwiftTestChangeVAEProtocol", "inputs": {"vae": ["4", 0]}}
    g["11"]["inputs"]["vae"] = ["16", 0]
    g["12"]["inputs"].update(vae=["16", 0], frame_rate=16.0, tile_size=1024, overlap=64,
                             color_match="off")
    g["70"] = {"class_type": "SaveVideo", "inputs": {"video": ["12", 1],
                                                     "filename_prefix": "protocol/video",
                                                     "format": "auto", "codec": "auto"}}
    log_before = len(server.log_text())
    entry = client.run(g, timeout=900)
    log = server.log_text()[log_before:]
    lines = [x for x in log.splitlines() if "differs from the protocol the pack streams with" in x]
    assert len(lines) == 2, log[-3000:]                            # encode once, decode once
    assert any("decoding each finished segment" in x for x in lines)
    assert any("encoding the whole clip at once" in x for x in lines)
    assert "forward takes" in lines[0]                             # says what differs
    (video,) = [f for f in output_files(entry) if f["filename"].endswith(".mp4")]
    frames = decodable_frames(server.output / video["subfolder"] / video["filename"])
    assert len(frames) == 33 and frames[0].shape == (64, 64, 3)
    ref = load_file(str(server.output / "swifti2v_test" / "protocol.safetensors"))["images_b"]
    ref = (ref.clamp(0, 1) * 255).round().byte().numpy()
    psnr = [luma_psnr(a, b) for a, b in zip(frames, ref)]
    print("fallback vs core VAE Decode, luma PSNR per frame:", [round(p, 1) for p in psnr])
    # core's decode of the video so far, new frames kept: equal to core's decode within what x264
    # allows (a 2-block warm-up instead measured 14-19 dB after the first segment); a one-frame
    # shift is far below
    assert min(psnr) > 32.0
    assert max(luma_psnr(a, b) for a, b in zip(frames[:-1], ref[1:])) < 25.0


def test_decoder_gives_the_same_frames_whatever_the_chunk_plan(client, server):
    """One Stage II latent (25 frames, 7 latent blocks, 64x64) decoded by the Segment Decoder 2
    blocks at a time, 3 at a time and whole, at the whole frame and in 32 px tiles: the causal
    state carried across calls (one per tile) makes the time chunking exact, equal to core's
    one-shot decode within float rounding (1e-5 on 0..1). Tiles against the whole frame differ by
    their blend of the overlap by design (on a random VAE, by a lot): not compared."""
    g = pipeline(stage2="stage2_96", length=25, m=3, decoder=False, compare=True,
                 save_name="chunk_plan")
    plans = {"b2": (2, 0), "b3": (3, 0), "whole": (7, 0), "tiled_b2": (2, 32),
             "tiled_whole": (7, 32)}
    for i, (name, (blocks, tile)) in enumerate(plans.items()):
        g[str(30 + i)] = {"class_type": "SwiftI2VSegmentDecoder", "inputs": {
            "samples": ["12", 0], "vae": ["4", 0], "blocks_per_step": blocks,
            "tile_size": tile, "overlap": 16, "color_match": "off", "save_video": False,
            "filename_prefix": "swifti2v_test/chunk_plan", "frame_rate": 16.0,
            "return_frames": True}}
        g[str(40 + i)] = {"class_type": "SwiftTestSaveTensors", "inputs": {
            "name": f"chunk_plan_{name}", "images": [str(30 + i), 0]}}
    client.run(g, timeout=1800)
    out = server.output / "swifti2v_test"
    t = {name: load_file(str(out / f"chunk_plan_{name}.safetensors"))["images"] for name in plans}
    assert tuple(t["whole"].shape) == (25, 64, 64, 3)
    for name, same_as in (("b2", "whole"), ("b3", "whole"), ("tiled_b2", "tiled_whole")):
        assert (t[name] - t[same_as]).abs().max() <= 1e-5, name
    core = load_file(str(out / "chunk_plan.safetensors"))["images_b"]
    assert (t["whole"] - core).abs().max() <= 1e-5
    # the comparison can fail: the tiles' own decode is far from the whole frame's
    assert (t["tiled_whole"] - t["whole"]).abs().max() > 1e-2
