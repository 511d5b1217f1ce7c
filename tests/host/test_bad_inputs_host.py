"""Every bad input refused by name before heavy work, through the API of a real ComfyUI.

Each case asserts: the prompt is refused, the message names the input and the rule, and no pack
node did any work first: either ComfyUI rejected the prompt at validation (no node ran), or the
refusing node is the only pack node that ran (upstream pack nodes are cached from the warm-up
run of the valid graph just before) and no pack node reported progress.
"""
import pytest

from swift_batch.client import PromptError

from swift_testing.comfy_host.graphs import TINY, pipeline

PACK_NODES = {"10", "11", "12", "13"}     # Stage I, Reference Builder, Stage II, Segment Decoder


def graph():
    return pipeline(decoder=True, compare=False, save_name="bad", prefix="bad/video")


def widget(node, **values):
    def edit(g):
        g[node]["inputs"].update(values)
    return edit


def image(node_inputs, frames, width, height):
    def edit(g):
        g["40"] = {"class_type": "SwiftTestImage",
                   "inputs": {"frames": frames, "width": width, "height": height}}
        for node, name in node_inputs:
            g[node]["inputs"][name] = ["40", 0]
    return edit


def both(*edits):
    def edit(g):
        for e in edits:
            e(g)
    return edit


VALIDATION = "validation"
CASES = [
    # --- refused by ComfyUI's prompt validation: nothing runs
    ("stage1 width not x32", widget("10", width=70), "width=70: must be a positive multiple of 32",
     VALIDATION),
    ("stage1 width over max", widget("10", width=8224), "width=8224: must be between 0 and 8192",
     VALIDATION),
    ("stage1 negative height", widget("10", height=-32),
     "height=-32: must be a positive multiple of 32", VALIDATION),
    ("stage1 length not 4k+1", widget("10", length=8), "length=8: must be 4k+1", VALIDATION),
    ("stage1 length below min", widget("10", length=1), "length=1: must be between 5 and 1025",
     VALIDATION),
    ("stage1 length over max", widget("10", length=1029),
     "length=1029: must be between 5 and 1025", VALIDATION),
    ("stage1 steps 0", widget("10", steps=0), "steps", VALIDATION),
    ("stage1 cfg negative", widget("10", cfg=-1.0), "cfg", VALIDATION),
    ("stage1 unknown sampler", widget("10", sampler_name="nope"),
     "sampler_name='nope': must be one of euler,", VALIDATION),
    ("stage1 unknown crop", widget("10", crop="middle"),
     "crop='middle': must be one of center, disabled", VALIDATION),
    ("reference width not x32", widget("11", width=100),
     "width=100: must be a positive multiple of 32", VALIDATION),
    ("reference tile negative", widget("11", tile_size=-16), "tile_size", VALIDATION),
    ("reference tile not x16", widget("11", tile_size=1000),
     "tile_size=1000: must be a multiple of 16 pixels", VALIDATION),
    ("decoder overlap not x16", widget("13", overlap=40),
     "overlap=40: must be a multiple of 16 pixels", VALIDATION),
    ("reference chunk 0", widget("11", blocks_per_chunk=0), "blocks_per_chunk", VALIDATION),
    ("stage2 m negative", widget("12", m=-1),
     "m=-1: must be a whole number >= 0 (0 = auto, else the segment length M", VALIDATION),
    ("stage2 m over max", widget("12", m=300), "m=300: must be between 0 and 256", VALIDATION),
    ("stage2 n negative", widget("12", n=-1),
     "n=-1: must be a whole number >= 0 (the neighbour count N", VALIDATION),
    ("stage2 denoise over max", widget("12", denoise=1.5),
     "denoise=1.5: must be between 0.0 and 1.0", VALIDATION),
    ("stage2 refine denoise 0", widget("12", mode="refine", denoise=0.0),
     "denoise=0.0: must be in (0, 1]", VALIDATION),
    ("stage2 unknown rope", widget("12", rope="nope"),
     "rope='nope': must be one of window, absolute", VALIDATION),
    ("decoder unknown colour match", widget("13", color_match="wavelet"),
     "color_match='wavelet': must be one of off, lab", VALIDATION),
    ("decoder prefix escapes", widget("13", filename_prefix="../escape/video"),
     "filename_prefix='../escape/video': must stay inside ComfyUI's output folder", VALIDATION),
    ("decoder prefix absolute", widget("13", filename_prefix="/tmp/abs/video"),
     "filename_prefix='/tmp/abs/video': must be a relative path", VALIDATION),
    ("decoder blocks 0", widget("13", blocks_per_step=0), "blocks_per_step", VALIDATION),
    ("decoder fps 0", widget("13", frame_rate=0.0), "frame_rate", VALIDATION),
    # --- refused by the first pack node to run, before it loads or samples anything
    ("stage1 given Wan 2.2 TI2V", widget("1", unet_name=TINY["stage2_48"]),
     "model: Stage I needs a Wan I2V model", "10"),
    ("stage1 given Wan 2.2 VAE", widget("10", vae=["4", 0]),
     "vae: expected the Wan 2.1 VAE", "10"),
    ("stage1 empty image", image([("10", "image")], 0, 64, 64),
     "image: expected an IMAGE batch [N>=1, H, W, 3], got shape (0, 64, 64, 3)", "10"),
    ("stage1 image too small for size 0",
     both(image([("10", "image"), ("11", "image")], 1, 20, 12), widget("10", width=0, height=0),
          widget("11", width=0, height=0)),
     "image: 20x12 px is too small for width=0 (size from the image), which needs at least 32 px",
     "10"),
    ("stage1 huge request", both(widget("10", width=8192, height=8192, length=1025),
                                 widget("11", width=8192, height=8192)),
     "width=8192, height=8192, length=1025: Stage I's 1025 frames of 2048x2048 needs about", "10"),
    ("reference given Wan 2.1 VAE", widget("11", vae=["3", 0]),
     "vae: expected the Wan 2.2 VAE (48 latent channels", "11"),
    ("reference would stretch low_res", widget("11", width=128, crop="disabled"),
     "low_res: frames of 16x16 (aspect 1.00) would be stretched by 100% to the 128x64 target",
     "11"),
    ("reference low_res not 4k+1", image([("11", "low_res")], 8, 16, 16),
     "low_res frame count=8: must be 4k+1", "11"),
    ("stage2 given Wan 2.1 I2V", widget("2", unet_name=TINY["stage1"]),
     "model: the Stage II model must take 96 input channels", "12"),
    ("stage2 mode does not fit model", widget("12", mode="swifti2v"),
     "mode='swifti2v': the loaded Stage II model has 48 input channels", "12"),
    ("stage2 auto refine denoise 0", widget("12", denoise=0.0), "denoise=0.0: must be in (0, 1]",
     "12"),
    ("stage2 given Wan 2.1 VAE to stream", widget("12", vae=["3", 0]),
     "vae: expected the Wan 2.2 VAE (48 latent channels", "12"),
    ("stage2 given a Wan 2.1 latent", widget("12", reference=["10", 1]),
     "reference: expected the Hybrid Reference Builder's latent", "12"),
    ("decoder given Wan 2.1 VAE", widget("13", vae=["3", 0]),
     "vae: expected the Wan 2.2 VAE (48 latent channels", "13"),
    ("decoder given the Stage I latent", widget("13", samples=["10", 1]),
     "samples: expected a Wan 2.2 video latent [1, 48, T', H', W'], got (1, 16, 3, 2, 2)", "13"),
]


@pytest.mark.parametrize("edit,needle,refused_by", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_is_refused_by_name_before_heavy_work(client, edit, needle, refused_by):
    if refused_by != VALIDATION:
        client.run(graph(), timeout=900)     # the valid graph: upstream pack nodes now cached
    g = graph()
    edit(g)
    ran, progressed = [], []

    def on_event(kind, data):
        node = data.get("node")
        if kind == "executing" and node in PACK_NODES:
            ran.append(node)
        if kind == "progress" and node in PACK_NODES:
            progressed.append(node)

    with pytest.raises(PromptError) as e:
        client.run(g, on_event=on_event, timeout=900)
    message = str(e.value)
    assert needle in message, message
    if refused_by == VALIDATION:
        assert "refused the prompt" in message and ran == [], (message, ran)
        # one failed check, one error entry: on the node that holds the input, with its message
        errors = {n: info["errors"] for n, info in e.value.details["node_errors"].items()}
        assert [len(v) for v in errors.values()] == [1], errors
        assert needle in next(iter(errors.values()))[0]["details"], errors
    else:
        assert e.value.details.get("node_id") == refused_by, message
        assert ran == [refused_by], ran           # the first and only pack node that ran
        assert progressed == [], progressed       # and it refused before any work


def save_video(g, prefix):
    g["70"] = {"class_type": "SaveVideo", "inputs": {
        "video": ["12", 1], "filename_prefix": prefix, "format": "auto", "codec": "auto"}}
    return g


def test_stage2_video_without_vae_is_refused_by_name_never_none(client):
    """Stage II's VIDEO wired to Save Video with no vae connected: Stage II refuses by name before
    any work; and where Stage II's result is cached from a run without that consumer, Save Video
    is stopped with the same message (core's ExecutionBlocker), never handed a None."""
    needle = "vae: the video output needs the vae input"
    g = pipeline(decoder=False, compare=False, save_name="novae", seed1=11)
    g["12"]["inputs"]["seed"] = 11
    progressed = []

    def on_event(kind, data):
        if kind == "progress" and data.get("node") in PACK_NODES:
            progressed.append(data.get("node"))

    client.run(g, timeout=900)                   # upstream cached; Stage II without consumer runs
    g2 = save_video(dict(g), "novae/video")
    g2["12"] = {**g["12"], "inputs": {**g["12"]["inputs"], "seed": 12}}   # Stage II runs again
    progressed.clear()
    with pytest.raises(PromptError) as e:
        client.run(g2, on_event=on_event, timeout=900)
    assert needle in str(e.value) and e.value.details.get("node_id") == "12", str(e.value)
    assert "12" not in progressed, progressed    # refused before any sampling step
    # Stage II's inputs as in the first run: where core serves its result from the cache (seen on
    # 0.33), Save Video is stopped by the blocked output; where core runs it again (seen on 0.8.0),
    # Stage II refuses as above
    g3 = save_video(dict(g), "novae/video")
    with pytest.raises(PromptError) as e:
        client.run(g3, timeout=900)
    assert needle in str(e.value) and e.value.details.get("node_id") in ("12", "70"), str(e.value)
    assert e.value.details.get("node_id") == "12" or "Execution Blocked" in str(e.value)
