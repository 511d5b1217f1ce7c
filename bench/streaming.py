"""Streaming Stage II against Stage II then the Segment Decoder, side by side, in a real ComfyUI.

CPU: the tiny random Wan 2.2 DiT of the host tests and the FULL-SIZE random Wan 2.2 VAE, at 64x64.
Every configuration runs in a fresh ComfyUI server process (COMFYUI_PATH / COMFYUI_PYTHON as for
the host tests).

1. Time to the first segment on disk: from the moment Stage II starts to the moment the frames
   of its first segment (frame 0 + M blocks) can be decoded from the video file, as a fraction of
   the time to the complete video, at 81 frames (7 segments). Streaming: Stage II decodes each segment as soon as it is
   final. Sequential: Stage II, then the Segment Decoder writing the same file as it goes.
2. Peak RSS of the server (VmHWM) running the default streaming workflow at 17 and at 65 frames.

    COMFYUI_PATH=... COMFYUI_PYTHON=... python -m bench.streaming
"""
from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from swift_batch.client import ComfyClient
from swift_testing.comfy_host.graphs import pipeline
from swift_testing.comfy_host.server import ComfyServer, comfyui_path, tiny_models

M, STEPS = 3, 12


def graph(frames: int, streaming: bool) -> dict:
    g = pipeline(stage2="stage2_96", steps2=STEPS, length=frames, m=M, n=1, compare=False,
                 save_name="bench", prefix="bench/decoder")
    del g["15"]                                       # the test saver: not part of a user's graph
    if streaming:
        del g["13"]
        g["12"]["inputs"].update(vae=["4", 0], frame_rate=16.0, tile_size=1024, overlap=64,
                                 color_match="off")
        g["70"] = {"class_type": "SaveVideo", "inputs": {"video": ["12", 1],
                                                         "filename_prefix": "bench/video",
                                                         "format": "auto", "codec": "auto"}}
    else:
        g["13"]["inputs"]["save_video"] = False
        g["70"] = {"class_type": "SaveVideo", "inputs": {"video": ["13", 1],
                                                         "filename_prefix": "bench/video",
                                                         "format": "auto", "codec": "auto"}}
    return g


def frames_in(path: Path) -> int:
    import av
    try:
        with av.open(str(path)) as c:
            return sum(1 for _ in c.decode(video=0))
    except Exception:
        return 0


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(frames: int, streaming: bool) -> dict:
    models = tiny_models(comfyui_path())
    srv = ComfyServer(Path(tempfile.mkdtemp(prefix="swifti2v-bench-")), models).start()
    try:
        client = ComfyClient(srv.url, timeout=60)
        # warm: models loaded and Stage I + reference cached, so the timed run is Stage II onward
        warm = graph(frames, streaming)
        warm["12"]["inputs"]["steps"] = 1
        client.run(warm, timeout=1800)
        work = srv.output / ".swifti2v_work"            # this process's folder under it
        # the growing file (*.part.mp4), and the same file once renamed when complete
        pattern = "swifti2v_stage2_*.mp4" if streaming else "swifti2v_decoder_*.mp4"
        old = set(work.glob(f"*/{pattern}"))
        first_segment = 1 + 4 * M
        marks, done = {}, threading.Event()

        def on_event(kind, data):
            if kind == "executing" and data.get("node") == "12":
                marks.setdefault("start", time.monotonic())

        def poll():
            while not done.is_set():
                for p in set(work.glob(f"*/{pattern}")) - old:
                    if "first" not in marks and frames_in(p) >= first_segment:
                        marks["first"] = time.monotonic()
                time.sleep(0.02)

        t = threading.Thread(target=poll, daemon=True)
        t.start()
        client.run(graph(frames, streaming), on_event=on_event, timeout=3600)
        marks["end"] = time.monotonic()
        done.set()
        t.join()
        total = marks["end"] - marks["start"]
        first = marks.get("first", marks["end"]) - marks["start"]
        r = {"frames": frames, "streaming": streaming, "total_s": total, "first_s": first,
             "first_fraction": first / total, "peak_rss_mib": vm_hwm_mib(srv.proc.pid)}
        print(r, flush=True)
        return r
    finally:
        srv.stop()


def main():
    if not comfyui_path():
        sys.exit("set COMFYUI_PATH and COMFYUI_PYTHON (see tests/host, README: Host tests)")
    stream, seq = run(81, True), run(81, False)
    small, large = run(17, True), run(65, True)
    print(f"\nCPU, tiny DiT + full-size random Wan 2.2 VAE, 64x64, M={M} N=1, {STEPS} steps; "
          "each configuration in a fresh ComfyUI process")
    print("| 81 frames (7 segments) | Stage II start -> first segment on disk | -> complete video "
          "| fraction |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in (("streaming (Stage II with its VAE)", stream),
                    ("sequential (Stage II, then Segment Decoder)", seq)):
        print(f"| {name} | {r['first_s']:.1f} s | {r['total_s']:.1f} s | "
              f"{r['first_fraction']:.0%} |")
    print(f"first segment on disk, streaming / sequential fraction: "
          f"{stream['first_fraction']:.2f} / {seq['first_fraction']:.2f} (goal: <= 0.25)")
    print("| default workflow (streaming) | frames | server peak RSS MiB | total s |")
    print("| --- | ---: | ---: | ---: |")
    for r in (small, large):
        print(f"| 64x64 | {r['frames']} | {r['peak_rss_mib']:.0f} | {r['total_s']:.1f} |")
    print(f"peak RSS 65 / 17 frames: {large['peak_rss_mib'] / small['peak_rss_mib']:.3f} "
          "(goal: <= 1.15)")


if __name__ == "__main__":
    main()
