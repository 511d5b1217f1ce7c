"""One ComfyUI install, several instances (one per GPU): a video being streamed survives another
instance starting (ComfyUI empties its temp folder at start-up), and the files of a killed
instance are removed later, never those of a live one.

A test node holds instance A's VAE decoder after its first segment while the file ``hold``
exists, so A has part of its video on disk, unfinished, for as long as the test needs."""
import threading
import time

import av
import pytest

from swift_batch.client import output_files

from swift_testing.comfy_host.graphs import pipeline
from swift_testing.comfy_host.server import ComfyServer

WORK = ".swifti2v_work"


def frames_in(path) -> int:
    try:
        with av.open(str(path)) as c:
            return sum(1 for _ in c.decode(video=0))
    except Exception:
        return 0


def held_graph(name, hold, *, decoder_saves=False, length=17, steps=2):
    """Stage II streaming to core's Save Video (or, ``decoder_saves``, Stage II then the Segment
    Decoder writing its own file), through a VAE held after its first segment."""
    g = pipeline(stage2="stage2_96", steps2=steps, length=length, m=1, n=1, save_name=name,
                 prefix=f"{name}/decoder", compare=False, decoder=decoder_saves)
    g["16"] = {"class_type": "SwiftTestHoldVAE", "inputs": {"vae": ["4", 0], "hold": str(hold),
                                                            "after": 2}}
    if decoder_saves:
        g["13"]["inputs"].update(vae=["16", 0], save_video=True)
    else:
        g["12"]["inputs"].update(vae=["16", 0], frame_rate=16.0, tile_size=1024, overlap=64,
                                 color_match="off")
        g["70"] = {"class_type": "SaveVideo", "inputs": {"video": ["12", 1],
                                                         "filename_prefix": f"{name}/video",
                                                         "format": "auto", "codec": "auto"}}
    return g


def partials(output):
    return sorted(str(p.relative_to(output)) for p in output.rglob("*.part*"))


def run_in_thread(client, graph):
    box = {}

    def go():
        try:
            box["entry"] = client.run(graph, timeout=900)
        except BaseException as e:                   # reported by the test
            box["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t, box


def wait_for_partial(folder, pattern, timeout=300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in folder.glob(f"*/{pattern}") if frames_in(p) >= 1]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no {pattern} with a decodable frame appeared in {folder}")


@pytest.mark.parametrize("decoder_saves", [False, True], ids=["stage2_stream", "decoder_save_video"])
def test_a_second_instance_starting_leaves_a_running_stream_alone(client, server, models,
                                                                 tmp_path, decoder_saves):
    name = f"two_{int(decoder_saves)}"
    hold = tmp_path / "hold"
    hold.write_text("held")
    work = server.output / WORK
    thread, box = run_in_thread(client, held_graph(name, hold, decoder_saves=decoder_saves))
    b = None
    try:
        part = wait_for_partial(work, "*.part.mp4")      # A's first segment is on disk, held
        b = ComfyServer(server.workdir, models, log_name=f"server_b_{name}.log").start()
        assert part.exists(), "instance B's start-up removed A's growing video"
        from swift_batch.client import ComfyClient
        entry_b = ComfyClient(b.url, timeout=60).run(
            held_graph(f"{name}_b", tmp_path / "no_hold", length=9), timeout=900)
        assert [f for f in output_files(entry_b) if f["filename"].endswith(".mp4")]
    finally:
        hold.unlink(missing_ok=True)                     # let A finish
        thread.join(900)
        if b is not None:
            b.stop()
    assert "error" not in box, box.get("error")
    (video,) = [f for f in output_files(box["entry"]) if f["filename"].endswith(".mp4")
                and f["subfolder"] == name]
    assert frames_in(server.output / video["subfolder"] / video["filename"]) == 17   # every frame
    assert partials(server.output) == []                 # no partial file anywhere
    assert not (work / part.parent.name / part.name).exists()


def test_a_killed_instance_leaves_nothing_after_the_next_run_and_a_live_one_is_kept(
        client, server, models, tmp_path):
    """C is killed mid-stream (its partial file stays); C restarted removes its dead
    predecessor's folder, never A's, which is still writing; A then finishes."""
    from swift_batch.client import ComfyClient
    hold = tmp_path / "hold"
    hold.write_text("held")
    work = server.output / WORK
    thread, box = run_in_thread(client, held_graph("live_a", hold))
    c = None
    try:
        part_a = wait_for_partial(work, "*.part.mp4")
        c = ComfyServer(server.workdir, models, log_name="server_c1.log").start()
        ComfyClient(c.url, timeout=60).queue(held_graph("killed_c", hold))
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list(work.glob("*/*.part.mp4"))) < 2:
            time.sleep(0.2)
        parts = [p for p in work.glob("*/*.part.mp4") if p.parent != part_a.parent]
        assert len(parts) == 1, parts                    # C's own folder, its growing video
        dead_folder = parts[0].parent
        c.kill()                                         # no clean-up: the file stays
        assert parts[0].exists()
        c = ComfyServer(server.workdir, models, log_name="server_c2.log").start()
        assert not dead_folder.exists(), "the dead instance's folder was not removed"
        assert part_a.exists(), "a live instance's growing video was removed"
        entry = ComfyClient(c.url, timeout=60).run(held_graph("after_c", tmp_path / "no_hold",
                                                              length=9), timeout=900)
        assert [f for f in output_files(entry) if f["filename"].endswith(".mp4")]
        assert "removed 1 work folder(s) of ComfyUI processes that are gone" in c.log_text()
    finally:
        hold.unlink(missing_ok=True)
        thread.join(900)
        if c is not None:
            c.stop()
    assert "error" not in box, box.get("error")
    (video,) = [f for f in output_files(box["entry"]) if f["filename"].endswith(".mp4")
                and f["subfolder"] == "live_a"]
    assert frames_in(server.output / video["subfolder"] / video["filename"]) == 17
    assert partials(server.output) == []
