import json
import socket
import uuid
from pathlib import Path

import pytest

from swift_batch.__main__ import main
from swift_batch.client import ComfyClient, ServerUnreachable
from swift_batch.patch import WorkflowError, apply_sets, patch_for_row
from swift_batch.rows import RowError, check_image, read_rows

ROOT = Path(__file__).resolve().parents[1]
API = json.loads((ROOT / "workflows" / "api" / "swifti2v_2k_api.json").read_text())


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]        # closed once the socket is


@pytest.fixture
def images(tmp_path):
    from PIL import Image
    Image.new("RGB", (96, 64), (200, 10, 10)).save(tmp_path / "red.png")
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    return tmp_path


def test_csv_rows(images):
    (images / "rows.csv").write_text(
        "image,prompt,seed,width,height,frames,name\n"
        "red.png,a red square,7,1024,576,33,\n"
        "red.png,again,,,,,\n"
        ",no image,,,,,\n"
        "red.png,bad seed,seven,,,,\n"
        "red.png,bad size,1,1000,576,,\n"
        "red.png,bad frames,1,,,80,\n")
    rows = read_rows(images / "rows.csv")
    a, b = rows[0], rows[1]
    assert (a.seed, a.width, a.height, a.frames, a.name) == (7, 1024, 576, 33, "red")
    assert a.image == images / "red.png" and b.name == "red_2"
    assert [str(r) for r in rows[2:]] == [
        "row 3: 'image' is empty (a path to an image file is required)",
        "row 4: seed='seven' is not a whole number",
        "row 5: width=1000: must be a positive multiple of 32, e.g. 992 or 1024",
        "row 6: frames=80: must be 4k+1 (1, 5, 9, ..., 81), e.g. 77 or 81"]


def test_jsonl_rows(images):
    (images / "rows.jsonl").write_text(
        '{"image": "red.png", "prompt": "p", "seed": 3, "name": "my clip"}\n\n'
        'not json\n[1]\n{"image": "red.png"}\n')
    rows = read_rows(images / "rows.jsonl")
    assert rows[0].name == "my_clip" and rows[0].seed == 3
    assert "not valid JSON" in str(rows[1]) and "expected a JSON object" in str(rows[2])
    assert str(rows[3]) == "row 4: 'prompt' is empty"


def test_unreadable_and_missing_images(images):
    (images / "rows.csv").write_text("image,prompt\nbroken.png,x\nnope.png,y\n")
    broken, missing = read_rows(images / "rows.csv")
    with pytest.raises(RowError, match=r"row 1: image '.*broken.png' cannot be read"):
        check_image(broken)
    with pytest.raises(RowError, match=r"row 2: image '.*nope.png' does not exist"):
        check_image(missing)


def test_patch_for_row(images):
    (images / "rows.csv").write_text("image,prompt,negative,seed,width,height,frames\n"
                                     "red.png,hello,ugly,5,1024,576,33\n")
    (row,) = read_rows(images / "rows.csv")
    wf = patch_for_row(API, row, "swifti2v/red.png", "batch")
    by_type = {}
    for n in wf.values():
        by_type.setdefault(n["class_type"], []).append(n["inputs"])
    assert by_type["LoadImage"][0]["image"] == "swifti2v/red.png"
    texts = {n["_meta"]["title"]: n["inputs"].get("text") for n in wf.values()}
    assert texts["Positive Prompt"] == "hello" and texts["Negative Prompt"] == "ugly"
    assert by_type["SwiftI2VStage1Sampler"][0]["seed"] == by_type["SwiftI2VStage2Sampler"][0]["seed"] == 5
    s1 = by_type["SwiftI2VStage1Sampler"][0]
    assert (s1["width"], s1["height"]) == (1024, 576)
    ref = by_type["SwiftI2VHybridReference"][0]         # linked to the Stage I Sampler: kept so
    assert isinstance(ref["width"], list) and isinstance(ref["height"], list)
    assert by_type["SwiftI2VStage1Sampler"][0]["length"] == 33
    assert by_type["SaveVideo"][0]["filename_prefix"] == "batch/red"
    assert API["10"]["inputs"]["seed"] == 42                 # the template is untouched


def test_set_overrides_by_id_or_title():
    wf = apply_sets(API, ["11.unet_name=mine.safetensors",
                          "Load Stage I VAE (Wan 2.1).vae_name=x.safetensors", "14.m=2"])
    assert wf["11"]["inputs"]["unet_name"] == "mine.safetensors" and wf["14"]["inputs"]["m"] == 2
    assert wf["3"]["inputs"]["vae_name"] == "x.safetensors"
    with pytest.raises(WorkflowError, match="no single node with id or title 'Nope'"):
        apply_sets(API, ["Nope.x=1"])


def test_server_unreachable_is_a_clear_error(images, capsys):
    port = closed_port()
    with pytest.raises(ServerUnreachable, match=f"cannot reach ComfyUI at http://127.0.0.1:{port}"):
        ComfyClient(f"http://127.0.0.1:{port}", timeout=5).object_info()
    (images / "rows.csv").write_text("image,prompt\nred.png,x\n")
    rc = main(["--rows", str(images / "rows.csv"), "--out", str(images / "out"),
               "--server", f"http://127.0.0.1:{port}", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"cannot reach ComfyUI at http://127.0.0.1:{port}" in err
    assert "no usable ComfyUI server" in err


def tiny_video(path, frames):
    import av
    import numpy as np
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=16)
        s.width = s.height = 32
        s.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.full((32, 32, 3), i * 3 % 255, np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


def test_resume_skips_done_rows_and_bad_rows_do_not_stop_the_batch(images, capsys):
    (images / "rows.csv").write_text("image,prompt\nred.png,x\n,missing image\n")
    out = images / "out"
    out.mkdir()
    tiny_video(out / "red.mp4", 81)                 # the workflow's 81 frames, complete
    before = (out / "red.mp4").read_bytes()
    rc = main(["--rows", str(images / "rows.csv"), "--out", str(out),
               "--server", f"http://127.0.0.1:{closed_port()}", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1                            # the bad row failed; nothing needed the server
    assert "already done, skipped: red" in err and "row 2: 'image' is empty" in err
    assert (out / "red.mp4").read_bytes() == before


def test_an_incomplete_video_is_not_done(images, capsys):
    """A truncated file, or one with fewer frames than the row asks, is run (or fetched) again."""
    from swift_batch.__main__ import main
    out = images / "out"
    out.mkdir()
    tiny_video(out / "red.mp4", 81)
    (out / "red.mp4").write_bytes((out / "red.mp4").read_bytes()[:-400])      # cut short
    tiny_video(out / "blue.mp4", 40)                                          # too few frames
    (images / "rows.csv").write_text("image,prompt,name\nred.png,x,red\nred.png,y,blue\n")
    rc = main(["--rows", str(images / "rows.csv"), "--out", str(out),
               "--server", f"http://127.0.0.1:{closed_port()}", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "already done" not in err and "no usable ComfyUI server" in err


def test_prompt_ids_are_stable_and_change_with_the_row(images):
    from argparse import Namespace
    from swift_batch.runner import make_job
    from swift_batch.rows import read_rows
    (images / "rows.csv").write_text("image,prompt,seed\nred.png,x,1\nred.png,x,2\n")
    wf = json.loads((ROOT / "workflows" / "api" / "swifti2v_2k_api.json").read_text())
    args = Namespace(data=False, out=images / "out", prefix="p")
    a, b = read_rows(images / "rows.csv", None)
    ja, ja2, jb = make_job(wf, a, args), make_job(wf, a, args), make_job(wf, b, args)
    assert ja.prompt_id == ja2.prompt_id != jb.prompt_id            # the seed changed
    assert str(uuid.UUID(ja.prompt_id)) == ja.prompt_id             # canonical, as 0.33 asks
    assert ja.upload_name.startswith("swifti2v/") and ja.upload_name.endswith("/red.png")
    assert ja.frames == 81
    other = Namespace(data=False, out=images / "elsewhere", prefix="p")
    assert make_job(wf, a, other).prompt_id != ja.prompt_id          # another output


DATA_API = json.loads((ROOT / "workflows" / "api" / "swifti2v_training_data_api.json")
                      .read_text())


def test_data_rows(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "rows.csv").write_text(
        "video,caption,start,stride,clips,frames,synthesize\n"
        "a.mp4,a cat walks,8,40,3,33,0\n"
        "a.mp4,again,,,,,\n"
        ",no video,,,,,\n"
        "a.mp4,,,,,,\n"
        "a.mp4,bad clips,,,0,,\n"
        "a.mp4,bad synth,,,,,maybe\n")
    rows = read_rows(tmp_path / "rows.csv", data=True)
    a, b = rows[0], rows[1]
    assert (a.video, a.prompt, a.start, a.stride, a.clips, a.frames, a.synthesize) == (
        tmp_path / "a.mp4", "a cat walks", 8, 40, 3, 33, False)
    assert b.name == "a_2" and b.synthesize is None and b.image is None
    assert [str(r) for r in rows[2:]] == [
        "row 3: 'video' is empty (a path to a video file is required)",
        "row 4: 'caption' is empty",
        "row 5: clips=0: must be a whole number >= 1",
        "row 6: synthesize='maybe' must be 0/1 or true/false"]


def test_patch_for_data_row(tmp_path):
    from swift_batch.patch import patch_for_data_row
    (tmp_path / "rows.csv").write_text("video,caption,seed,clips,synthesize\nv.mp4,waves,5,2,0\n"
                                       "w.mp4,rain,,,\n")
    r1, r2 = read_rows(tmp_path / "rows.csv", data=True)
    defaults = {"start": 4, "stride": 10, "clips": 7, "frame_step": 2,
                "synthesize_fraction": 0.7}
    wf = patch_for_data_row(DATA_API, r1, "swifti2v/v.mp4", "data/v", defaults)
    clips = next(n for n in wf.values() if n["class_type"] == "SwiftI2VLoadClips")["inputs"]
    assert (clips["video"], clips["start"], clips["stride"], clips["max_clips"],
            clips["frame_step"]) == ("swifti2v/v.mp4", 4, 10, 2, 2)   # row column over default
    tr = next(n for n in wf.values() if n["class_type"] == "SwiftI2VStageTransition")["inputs"]
    assert tr["seed"] == 5 and tr["synthesize_fraction"] == 0.0    # the row's 0: no clip
    writer = next(n for n in wf.values() if n["class_type"] == "SwiftI2VSampleWriter")["inputs"]
    assert writer["folder"] == "data/v"
    assert next(n for n in wf.values() if n["_meta"]["title"] == "Positive Prompt")[
        "inputs"]["text"] == "waves"
    wf2 = patch_for_data_row(DATA_API, r2, "w.mp4", "data/w", {})
    tr2 = next(n for n in wf2.values() if n["class_type"] == "SwiftI2VStageTransition")["inputs"]
    assert tr2["synthesize_fraction"] == 0.5 and tr2["seed"] == 42   # the workflow's own
    wf3 = patch_for_data_row(DATA_API, r2, "w.mp4", "data/w", defaults)
    tr3 = next(n for n in wf3.values() if n["class_type"] == "SwiftI2VStageTransition")["inputs"]
    assert tr3["synthesize_fraction"] == 0.7                          # --plain-fraction 0.3
    assert DATA_API == json.loads((ROOT / "workflows" / "api" /
                                   "swifti2v_training_data_api.json").read_text())   # not mutated


def test_stage1_lora_goes_after_the_few_step_lora_everywhere_it_is_used():
    from swift_batch.patch import add_stage1_lora
    for name in ("swifti2v_2k_api", "swifti2v_training_data_api"):
        wf = json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text())
        few = next(k for k, n in wf.items() if n["_meta"]["title"] == "LightX2V 4-step LoRA")
        users = [k for k, n in wf.items() if n["inputs"].get("model") == [few, 0]]
        out = add_stage1_lora(wf, "mine.safetensors")
        (new,) = set(out) - set(wf)
        assert out[new]["inputs"] == {"lora_name": "mine.safetensors", "strength_model": 1.0,
                                      "model": [few, 0]}
        assert users and all(out[k]["inputs"]["model"] == [new, 0] for k in users)
        assert "360P LoRA" not in json.dumps(wf)                       # not mutated
    with pytest.raises(WorkflowError, match="no single node titled 'LightX2V 4-step LoRA'"):
        add_stage1_lora({}, "mine.safetensors")


def test_stage1_data_needs_data_and_picks_its_workflow(tmp_path, capsys):
    from swift_batch.__main__ import STAGE1_DATA_WORKFLOW, parse_args
    assert STAGE1_DATA_WORKFLOW == ROOT / "workflows" / "api" / "swifti2v_stage1_data_api.json"
    with pytest.raises(SystemExit):
        parse_args(["--rows", "r.csv", "--out", "o", "--stage1"])
    assert "--stage1 makes Stage I training samples: use it with --data" in capsys.readouterr().err
    assert parse_args(["--rows", "r.csv", "--out", "o", "--data", "--stage1"]).stage1


def test_plain_fraction_must_be_a_share():
    from swift_batch.__main__ import parse_args
    assert parse_args(["--rows", "r.csv", "--out", "o", "--plain-fraction", "0.3"]
                      ).plain_fraction == 0.3
    for bad in ("1.5", "-0.1", "half"):
        with pytest.raises(SystemExit):
            parse_args(["--rows", "r.csv", "--out", "o", "--plain-fraction", bad])


def test_default_workflows_are_the_bundled_api_files():
    from swift_batch.__main__ import DATA_WORKFLOW, DEFAULT_WORKFLOW
    assert DEFAULT_WORKFLOW == ROOT / "workflows" / "api" / "swifti2v_2k_api.json"
    assert DATA_WORKFLOW == ROOT / "workflows" / "api" / "swifti2v_training_data_api.json"
    for path in (DEFAULT_WORKFLOW, DATA_WORKFLOW):
        assert all("class_type" in n for n in json.loads(path.read_text()).values())


def write_video(path, frames):
    import av
    import numpy as np
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("libx264", rate=16, options={"crf": "4"})
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            arr = (f.clamp(0, 1) * 255).round().byte().numpy().astype(np.uint8)
            c.mux(s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")))
        c.mux(s.encode())


def test_report_flags_a_batch_video_with_seams_at_its_recorded_plan(tmp_path, capsys):
    """--report reads the plan the batch recorded from Stage II's plan output: the steps sit at
    its boundaries, so they are flagged; the same video read with an m=3 plan is not."""
    from swift_batch.__main__ import main
    from swift_batch.state import BatchState
    from swift_core.plan import describe_plan, plan_segments
    from swift_core.seams import boundary_frames
    from tests.test_seams import pan, with_steps

    plan = plan_segments(21, 4, 1)                  # boundaries 17, 33, 49, 65 (m=3: 13, 25, ..)
    video = with_steps(pan(), boundary_frames(plan))
    write_video(tmp_path / "a.mp4", video)
    BatchState(tmp_path).update("a", status="done", output=str(tmp_path / "a.mp4"),
                                plan=describe_plan(plan, m=4, n=1))
    assert main(["--out", str(tmp_path), "--report"]) == 0
    got = json.loads((tmp_path / "a.seams.json").read_text())
    assert (tmp_path / "a.seams.png").stat().st_size > 1000
    assert got["boundaries"] == boundary_frames(plan) and "luma_step" in got["flagged"]
    assert got["plan_from"] == "the Stage II sampler"
    assert "a.mp4: seams at segment boundaries" in capsys.readouterr().err
    # with no record, m and n are used: m=3 puts its boundaries elsewhere
    (tmp_path / "swifti2v_batch_state.json").unlink()
    assert main(["--out", str(tmp_path), "--report", "--m", "3"]) == 0
    got = json.loads((tmp_path / "a.seams.json").read_text())
    assert got["plan_from"] == "m=3, n=1" and "luma_step" not in got["flagged"]


def test_batch_records_and_describes_the_stage2_plan():
    from swift_batch.runner import describe, stage2_plan
    from swift_core.plan import describe_plan, plan_segments
    text = describe_plan(plan_segments(21, 3, 1), m=3, n=1, chosen={"m": "m=auto -> 3: ..."},
                         tile_size=1408)
    entry = {"outputs": {"70": {"images": []}, "14": {"swifti2v_plan": [text]}}}
    assert stage2_plan(entry) == text and stage2_plan({"outputs": {}}) is None
    assert describe(text).startswith("plan m=3 n=1, 7 segments, VAE tile 1408; m=auto -> 3")


def test_inputs_a_newer_comfyui_requires_get_its_defaults_and_nothing_else_changes():
    from swift_batch.client import fill_defaults
    info = {"WanContextWindowsManual": {"input": {"required": {
        "model": ["MODEL"], "context_length": ["INT", {"default": 81}],
        "freenoise": ["BOOLEAN", {"default": True}], "fuse_method": [["pyramid", "flat"], {}]}}}}
    prompt = {"21": {"class_type": "WanContextWindowsManual",
                     "inputs": {"model": ["2", 0], "context_length": 33}},
              "9": {"class_type": "Unknown", "inputs": {"x": 1}}}
    out, filled = fill_defaults(prompt, info)
    assert filled == ["21.freenoise=True"]
    assert out["21"]["inputs"] == {"model": ["2", 0], "context_length": 33, "freenoise": True}
    assert out["9"] == prompt["9"] and "freenoise" not in prompt["21"]["inputs"]   # a copy
