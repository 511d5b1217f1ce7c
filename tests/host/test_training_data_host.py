"""Training data (issue 10) in a real ComfyUI: Load Clips -> Stage Transition -> Sample Writer."""
import math

import pytest
import torch
from safetensors.torch import load_file

from swift_batch.client import PromptError, output_files
from swift_core.samples import read_sample
from swift_core.transition import clip_seed, clip_synthesized

from swift_testing.comfy_host.clips import panned_video
from swift_testing.comfy_host.graphs import data_pipeline


@pytest.fixture(scope="module")
def videos(server):
    photo = server.input / "astronaut.png"
    return {"panned.mp4": panned_video(photo, server.input / "panned.mp4", frames=17),
            "long.mp4": panned_video(photo, server.input / "long.mp4", frames=40, step=4)}


def saved(server, name):
    return load_file(str(server.output / "swifti2v_test" / f"{name}.safetensors"))


def psnr(a, b):
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def test_sample_file(client, server, videos):
    entry = client.run(data_pipeline(folder="data/one"), timeout=900)
    files = [f for f in output_files(entry) if f["filename"].endswith(".safetensors")]
    assert [(f["subfolder"], f["filename"]) for f in files] == [("data/one", "panned_000000.safetensors")]
    s = read_sample(str(server.output / "data" / "one" / "panned_000000.safetensors"))
    assert tuple(s.x0.shape) == (48, 5, 4, 6) and tuple(s.reference.shape) == (48, 5, 4, 6)
    assert tuple(s.context.shape) == (512, 4096)
    assert s.meta["width"] == "96" and s.meta["height"] == "64" and s.meta["frames"] == "17"
    assert s.meta["strength"] == "0.1" and s.meta["steps"] == "1"
    assert s.meta["seed"] == str(clip_seed(7, "panned", 0))         # the clip's own noise
    assert s.meta["synthesized"] == "true" and s.meta["source"] == "panned"
    assert s.meta["start"] == "0" and s.meta["pack_version"] and s.meta["dtype"] == "float32"
    assert s.meta["latent_space"] == "wan22-normalized"
    a, r = s.x0[:, :1], s.reference[:, :1]                 # the anchor is block 0 of x0 ...
    assert float((a - r).abs().max() / a.abs().max()) < 1e-3      # ... and of R
    assert not torch.allclose(s.x0[:, 1:], s.reference[:, 1:], atol=1e-3)   # R is not x0
    leftovers = [p.name for p in (server.output / "data" / "one").iterdir()]
    assert leftovers == ["panned_000000.safetensors"]            # no temp file left


def test_strength_starts_at_the_sigma_the_docs_state(client, server, videos):
    """s = 0.1 read before the shift: the Stage I model (ComfyUI's Wan 2.1 default, shift 8) is
    first called at sigma 8 * 0.1 / (1 + 7 * 0.1) = 0.471 (docs/training.md's table), and the
    sample records it; raw_sigma starts at 0.1 itself."""
    for reading, want in (("before_shift", 0.8 / 1.7), ("raw_sigma", 0.1)):
        g = data_pipeline(folder=f"data/sigma_{reading}", strength_reading=reading)
        g["30"] = {"class_type": "SwiftTestRecordModel", "inputs": {"model": ["1", 0],
                                                                    "tag": f"t_{reading}"}}
        g["21"]["inputs"]["model"] = ["30", 0]
        g["31"] = {"class_type": "SwiftTestSaveRecords", "inputs": {
            "model": ["1", 0], "latent": ["32", 0], "tag": f"t_{reading}"}}
        g["32"] = {"class_type": "VAEEncode", "inputs": {      # after the transition has run
            "pixels": ["21", 0], "vae": ["3", 0]}}
        client.run(g, timeout=900)
        rec = saved(server, f"t_{reading}")
        first = [float(rec[k].max()) / 1000 for k in sorted(rec) if k.startswith("t_")]
        assert len(first) == 1 and abs(first[0] - want) < 1e-4, (reading, first)   # k = 1
        s = read_sample(str(server.output / "data" / f"sigma_{reading}" /
                            "panned_000000.safetensors"))
        assert abs(float(s.meta["start_sigma"]) - want) < 1e-6
        assert s.meta["strength_reading"] == reading and s.meta["strength"] == "0.1"


def test_strength_one_is_plain_stage1(client, server, videos):
    g = data_pipeline(strength=1.0, steps=2, save_name="s1", stage1_compare=True,
                      folder="data/s1")
    g["10"]["inputs"]["seed"] = clip_seed(7, "panned", 0)      # the clip's noise
    client.run(g, timeout=900)
    t = saved(server, "s1")
    assert t["images"].shape == t["images_b"].shape == (17, 16, 32, 3)
    assert torch.equal(t["images"], t["images_b"])


def test_smaller_strength_stays_closer_to_the_clip(client, server, videos):
    """PSNR to the downsampled clip as the Stage I VAE gives it back (the tiny VAE is random, so
    its round trip is where s -> 0 leads): s = 0.01 (sigma 0.075 with the Wan 2.1 file's shift 8)
    is closer than s = 0.7 (sigma 0.949), same seed."""
    plain = data_pipeline(save_name="psnr_plain", folder="data/plain", synthesize_fraction=0.0)
    plain["24"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["21", 0], "vae": ["3", 0]}}
    plain["25"] = {"class_type": "VAEDecode", "inputs": {"samples": ["24", 0], "vae": ["3", 0]}}
    plain["15"]["inputs"]["images_b"] = ["25", 0]
    client.run(plain, timeout=900)
    target = saved(server, "psnr_plain")["images_b"]
    out = {}
    for s in (0.01, 0.7):
        client.run(data_pipeline(save_name=f"psnr_{s}", folder=f"data/{s}", strength=s),
                   timeout=900)
        out[s] = psnr(saved(server, f"psnr_{s}")["images"], target)
    assert out[0.01] > out[0.7] + 1.0, out
    s = read_sample(str(server.output / "data" / "plain" / "panned_000000.safetensors"))
    assert s.meta["synthesized"] == "false" and s.meta["steps"] == "0"


def test_long_video_yields_several_clips(client, server, videos):
    entry = client.run(data_pipeline(video="long.mp4", stride=8, max_clips=5, folder="data/long"),
                       timeout=900)
    names = sorted(f["filename"] for f in output_files(entry))
    assert names == ["long_000000.safetensors", "long_000008.safetensors",
                     "long_000016.safetensors"]
    x0 = [read_sample(str(server.output / "data" / "long" / n)).x0 for n in names]
    assert not torch.equal(x0[0], x0[1])


def test_frame_step_takes_every_nth_frame(client, server, videos):
    g = {"20": {"class_type": "SwiftI2VLoadClips", "inputs": {
             "video": "long.mp4", "length": 33, "start": 3, "stride": 0, "max_clips": 1}},
         "21": {"class_type": "SwiftI2VLoadClips", "inputs": {
             "video": "long.mp4", "length": 17, "start": 3, "stride": 0, "max_clips": 1,
             "frame_step": 2}},
         "15": {"class_type": "SwiftTestSaveTensors", "inputs": {      # frames 3..35
             "name": "frame_step", "images": ["21", 0], "images_b": ["20", 0]}}}
    client.run(g, timeout=900)
    t = saved(server, "frame_step")
    assert t["images"].shape[0] == 17 and t["images_b"].shape[0] == 33
    assert torch.equal(t["images"], t["images_b"][::2])   # frames 3, 5, ..., 35
    with pytest.raises(PromptError) as e:
        g["21"]["inputs"]["length"] = 21                  # 41 source frames from frame 3
        client.run(g, timeout=900)
    assert "length=21 (one frame in 2: 41 source frames) from start=3 needs at least 44" in str(e.value)


def test_video_name_becomes_a_plain_sample_name(client, server, videos):
    import shutil
    shutil.copy(videos["panned.mp4"], server.input / "my clip (1).mp4")
    entry = client.run(data_pipeline(video="my clip (1).mp4", folder="data/named"), timeout=900)
    assert [f["filename"] for f in output_files(entry)] == ["my clip _1_000000.safetensors"]


def bad_file(server):
    (server.input / "broken.mp4").write_bytes(b"this is not a video" * 10)
    return "broken.mp4"


CASES = [
    ("length not 4k+1", dict(length=16), "length=16: must be 4k+1", "validation"),
    ("video shorter than length", dict(length=21),
     "video='panned.mp4': 17 frames; a clip of length=21 from start=0 needs at least 21", "20"),
    ("strength 0", dict(strength=0.0), "strength=0.0: must be in (0, 1]", "validation"),
    ("strength above 1", dict(strength=1.5), "strength=1.5", "validation"),
    ("k below 1", dict(steps=0), "steps", "validation"),
    ("missing video", dict(video="nope.mp4"), "video='nope.mp4': no such file", "validation"),
    ("video escapes input", dict(video="../secret.mp4"),
     "video='../secret.mp4': must be a file inside ComfyUI's input folder", "validation"),
    ("unreadable video", dict(video="broken.mp4"), "video='broken.mp4': cannot be read as a video",
     "20"),
    ("folder escapes output", dict(folder="../out"),
     "folder='../out': must stay inside ComfyUI's output folder", "validation"),
    ("folder absolute", dict(folder="/tmp/x"), "folder='/tmp/x': must be a relative path",
     "validation"),
]


@pytest.mark.parametrize("kw,needle,refused_by", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(client, server, videos, kw, needle, refused_by):
    bad_file(server)
    ran = []

    def on_event(kind, data):
        if kind == "executing" and data.get("node") in ("20", "21", "22"):
            ran.append(data["node"])

    with pytest.raises(PromptError) as e:
        client.run(data_pipeline(**kw), on_event=on_event, timeout=900)
    assert needle in str(e.value), str(e.value)
    if refused_by == "validation":
        assert ran == [], ran
    else:
        assert e.value.details.get("node_id") == refused_by and ran == [refused_by], (ran, str(e.value))


def test_clip_frame_count_not_4k1(client):
    g = data_pipeline()
    g["40"] = {"class_type": "SwiftTestImage", "inputs": {"frames": 16, "width": 96, "height": 64}}
    g["21"]["inputs"]["clip"] = ["40", 0]
    with pytest.raises(PromptError) as e:
        client.run(g, timeout=900)
    assert "clip frame count=16: must be 4k+1" in str(e.value)
    assert e.value.details.get("node_id") == "21"


def test_batch_client_makes_data_over_a_csv_and_resumes(server, tmp_path, capsys):
    """Two videos, three clips: each clip has its own noise (seed from seed, video, start), the
    synthesized/plain mix is drawn per clip (--plain-fraction 0.76: walk_0 and cat_8 synthesized,
    cat_0 plain, by the stable hash), a re-run skips finished videos, and a run into another
    folder that makes ComfyUI compute everything again gives identical samples (same tensors,
    bit for bit, and metadata; safetensors writes its metadata map in no fixed order)."""
    from swift_batch.__main__ import main as batch_main
    from swift_testing.comfy_host.graphs import TINY, tiny_api_workflow
    photo = server.input / "astronaut.png"
    panned_video(photo, tmp_path / "walk.mp4", frames=17)
    panned_video(server.input / "chelsea.png", tmp_path / "cat.mp4", frames=26, step=3)
    (tmp_path / "rows.csv").write_text("video,caption\nwalk.mp4,an astronaut\ncat.mp4,a cat\n")

    def args(out, clips):
        return ["--data", "--rows", str(tmp_path / "rows.csv"), "--out", str(out),
                "--server", server.url,
                "--workflow", str(tiny_api_workflow(tmp_path / "wf.json", "swifti2v_training_data")),
                "--no-progress", "--stride", "8", "--clips", str(clips), "--plain-fraction", "0.76",
                "--set", f"1.unet_name={TINY['stage1']}",
                "--set", "2.lora_name=tiny_lightx2v_lora.safetensors",
                "--set", f"3.vae_name={TINY['vae1']}", "--set", f"12.vae_name={TINY['vae2']}",
                "--set", "30.length=17", "--set", "Stage Transition.width=96",
                "--set", "Stage Transition.height=64", "--timeout", "900"]

    out = tmp_path / "data"
    assert batch_main(args(out, 2)) == 0, capsys.readouterr().err
    files = sorted(out.glob("*/*.safetensors"))
    assert [f"{p.parent.name}/{p.name}" for p in files] == [
        "cat/cat_000000.safetensors", "cat/cat_000008.safetensors", "walk/walk_000000.safetensors"]
    metas = {p.stem: read_sample(str(p)).meta for p in files}
    for stem, meta in metas.items():
        video, start = stem.rsplit("_", 1)
        synthesized = clip_synthesized(0.24, video, int(start))
        assert meta["seed"] == str(clip_seed(42, video, int(start))), stem
        assert meta["synthesized"] == str(synthesized).lower(), stem
        assert meta["steps"] == ("1" if synthesized else "0"), stem
        if synthesized:          # the workflow's shift node (5): the paper's start for s = 0.1
            assert abs(float(meta["start_sigma"]) - 0.5 / 1.4) < 1e-6, (stem, meta)
    assert len({m["seed"] for m in metas.values()}) == 3                  # three noises
    assert [metas[k]["synthesized"] for k in ("walk_000000", "cat_000000", "cat_000008")] == [
        "true", "false", "true"]                                          # mixed within a video
    stamps = {str(p): p.stat().st_mtime_ns for p in files}
    capsys.readouterr()
    assert batch_main(args(out, 2)) == 0
    assert "2 row(s) already done, skipped: walk, cat" in capsys.readouterr().err
    assert {str(p): p.stat().st_mtime_ns for p in out.glob("*/*.safetensors")} == stamps
    again = tmp_path / "again"                 # max_clips 3 (still 2 fit): no cached node result
    assert batch_main(args(again, 3)) == 0
    for p in files:
        a, b = load_file(str(p)), load_file(str(again / p.parent.name / p.name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), p.name
        assert read_sample(str(again / p.parent.name / p.name)).meta == metas[p.stem], p.name
    # the samples ComfyUI wrote are what the trainer reads: two steps of swift_train on them
    from swift_testing.train_data import torchrun
    torchrun(1, "--data", out, "--out", tmp_path / "run", "--steps", 2, "--save-every", 2,
             "--precision", "fp32", "--no-progress")
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text() == "step_00000002"


def test_stand_in_workflow_makes_samples_without_a_stage1_model(server, tmp_path, capsys):
    """No Stage I at hand: ``--data --stand-in`` runs the bundled stand-in workflow (Load Clips
    -> Stage I Stand-in -> Sample Writer; no Wan 2.1 model in it). The clip drawn to be degraded
    (walk at 0, by the stable hash) gets a reference much further from its target than the
    plain clip (walk at 8), each with its own seed, and both record how they were made."""
    from swift_batch.__main__ import main as batch_main
    from swift_testing.comfy_host.graphs import TINY, tiny_api_workflow
    panned_video(server.input / "astronaut.png", tmp_path / "walk.mp4", frames=26, step=3)
    (tmp_path / "rows.csv").write_text("video,caption\nwalk.mp4,an astronaut\n")
    wf = tiny_api_workflow(tmp_path / "wf.json", "swifti2v_training_data_standin")
    assert "SwiftI2VStageTransition" not in wf.read_text() and "UNETLoader" not in wf.read_text()
    out = tmp_path / "data"
    assert batch_main([
        "--data", "--stand-in", "--rows", str(tmp_path / "rows.csv"), "--out", str(out),
        "--server", server.url, "--workflow", str(wf), "--no-progress", "--stride", "8",
        "--clips", "2", "--set", f"12.vae_name={TINY['vae2']}", "--set", "30.length=17",
        "--set", "Stage I Stand-in.width=96", "--set", "Stage I Stand-in.height=64",
        "--set", "Training Sample Writer.dtype=float32", "--timeout", "900"]) == 0, \
        capsys.readouterr().err
    files = sorted(out.glob("walk/*.safetensors"))
    assert [p.name for p in files] == ["walk_000000.safetensors", "walk_000008.safetensors"]
    errors = {}
    for p in files:
        s = read_sample(str(p))
        start = int(s.meta["start"])
        assert s.meta["strength_reading"] == "stand_in" and s.meta["steps"] == "0"
        assert s.meta["seed"] == str(clip_seed(42, "walk", start))
        assert s.meta["synthesized"] == str(clip_synthesized(0.5, "walk", start)).lower()
        errors[s.meta["synthesized"]] = float(((s.reference - s.x0)[:, 1:] ** 2).mean()
                                              / (s.x0[:, 1:] ** 2).mean())
    assert errors["true"] > 1.5 * errors["false"], errors
