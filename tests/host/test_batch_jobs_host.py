"""The batch client against real ComfyUI servers when things go wrong: the client killed while its
row runs, two clients on one server and Ctrl-C on one, a server killed mid-row, a truncated
video. Every row's video exactly once, and --status --json saying what is on disk."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from swift_batch.__main__ import main as batch_main
from swift_batch.client import ComfyClient
from swift_batch.jobs import video_frames
from swift_batch.state import STATE_NAME

from swift_testing.comfy_host.graphs import TINY, tiny_api_workflow
from swift_testing.comfy_host.server import ComfyServer

ROOT = Path(__file__).resolve().parents[2]
FRAMES = 33


def args_for(server_urls, rows, out, wf, extra=()):
    urls = [a for u in server_urls for a in ("--server", u)]
    return ["--rows", str(rows), "--out", str(out), *urls, "--workflow", str(wf), "--no-progress",
            "--timeout", "900", "--set", f"1.unet_name={TINY['stage1']}",
            "--set", "2.lora_name=tiny_lightx2v_lora.safetensors",
            "--set", f"3.vae_name={TINY['vae1']}", "--set", f"12.vae_name={TINY['vae2']}",
            "--set", f"11.unet_name={TINY['stage2_48']}", "--set", "14.m=1",
            "--set", "14.steps=30", *extra]


def rows_file(path, server, names):
    path.write_text("image,prompt,seed,width,height,frames,name\n" + "".join(
        f"astronaut.png,a row called {n},{i + 1},64,64,{FRAMES},{n}\n" for i, n in enumerate(names)))
    import shutil
    shutil.copy(server.input / "astronaut.png", path.parent / "astronaut.png")
    return path


def spawn(args):
    return subprocess.Popen([sys.executable, "-m", "swift_batch", *args], cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def state(out) -> dict:
    p = Path(out) / STATE_NAME
    try:
        return json.loads(p.read_text())["rows"] if p.exists() else {}
    except ValueError:
        return {}


def wait_for(cond, timeout=300.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def running_on(client, out, name):
    """The row's prompt id once the server runs it."""
    pid = state(out).get(name, {}).get("prompt_id")
    return pid if pid and pid in client.queue_ids()[0] else None


def status_json(out) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "swift_batch", "--status", "--json", "--out",
                        str(out)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def executions(server) -> int:
    return server.log_text().count("Prompt executed in")


def check_status_matches_disk(out):
    for r in status_json(out):
        on_disk = video_frames(Path(r["output"])) == FRAMES
        assert r["complete_on_disk"] == on_disk, r
        assert (r["status"] == "done") == on_disk, r


def test_killed_client_reattaches_and_a_truncated_video_is_fetched_again(server, tmp_path):
    client = ComfyClient(server.url)
    wf = tiny_api_workflow(tmp_path / "wf.json")
    rows, out = rows_file(tmp_path / "rows.csv", server, ["kill"]), tmp_path / "out"
    args = args_for([server.url], rows, out, wf)
    before = executions(server)
    proc = spawn(args)
    pid = wait_for(lambda: running_on(client, out, "kill"), what="the row running")
    proc.kill()                                          # no clean-up, like kill -9
    proc.wait(30)
    assert batch_main(args) == 0                         # attaches to the running prompt
    video = out / "kill.mp4"
    assert video_frames(video) == FRAMES
    assert executions(server) - before == 1              # one execution of the row, not two
    assert client.history(pid)["status"]["status_str"] == "success"
    assert sorted(p.name for p in out.glob("*.mp4")) == ["kill.mp4"]
    check_status_matches_disk(out)
    video.write_bytes(video.read_bytes()[:-2000])        # truncated: not done
    check_status_matches_disk(out)
    assert batch_main(args) == 0                         # fetched from the history, not rerun
    assert video_frames(video) == FRAMES and executions(server) - before == 1
    check_status_matches_disk(out)
    plan = json.loads(state(out)["kill"]["plan"])         # the Stage II plan output, recorded
    assert plan["segments"][0][0] == 1 and plan["segments"][-1][1] == (FRAMES - 1) // 4
    assert batch_main(["--out", str(out), "--report"]) == 0   # the seam report, on that plan
    report = json.loads((out / "kill.seams.json").read_text())
    assert report["frames"] == FRAMES and report["plan_from"] == "the Stage II sampler"


def test_ctrl_c_cancels_only_the_clients_own_prompts(server, tmp_path):
    client = ComfyClient(server.url)
    wf = tiny_api_workflow(tmp_path / "wf.json")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rows_a = rows_file(tmp_path / "a" / "rows.csv", server, ["a1", "a2"])
    rows_b = rows_file(tmp_path / "b" / "rows.csv", server, ["b1"])
    out_a, out_b = tmp_path / "a" / "out", tmp_path / "b" / "out"
    a = spawn(args_for([server.url, server.url], rows_a, out_a, wf))   # two rows in flight
    wait_for(lambda: all(state(out_a).get(n, {}).get("status") == "submitted"
                         for n in ("a1", "a2")) and len(client.queue_ids()[1]) >= 1,
             what="both of A's prompts queued")
    b = spawn(args_for([server.url], rows_b, out_b, wf))
    b_pid = wait_for(lambda: (lambda p: p if p in client.queue_ids()[1] else None)(
        state(out_b).get("b1", {}).get("prompt_id")), what="B's prompt queued")
    a_pids = {n: state(out_a)[n]["prompt_id"] for n in ("a1", "a2")}
    a.send_signal(signal.SIGINT)
    a_out, _ = a.communicate(timeout=120)
    assert a.returncode == 130, a_out
    assert "stopped: 1 queued prompt(s) of this batch removed, 1 interrupted" in a_out, a_out
    b_out, _ = b.communicate(timeout=600)
    assert b.returncode == 0, b_out                      # the other client's prompt survived
    assert video_frames(out_b / "b1.mp4") == FRAMES
    running, pending = client.queue_ids()
    for name, pid in a_pids.items():
        assert pid not in running and pid not in pending
        entry = client.history(pid)
        assert not entry or entry["status"]["status_str"] != "success", name
    assert not list(out_a.glob("*.mp4"))
    assert {r["name"]: r["status"] for r in status_json(out_a)} == {"a1": "cancelled",
                                                                     "a2": "cancelled"}
    assert client.history(b_pid)["status"]["status_str"] == "success"
    check_status_matches_disk(out_b)


def test_a_server_killed_mid_row_hands_the_row_to_another(server, models, tmp_path):
    wf = tiny_api_workflow(tmp_path / "wf.json")
    rows, out = rows_file(tmp_path / "rows.csv", server, ["one", "two"]), tmp_path / "out"
    second = ComfyServer(tmp_path / "second", models).start()
    try:
        c2 = ComfyClient(second.url)
        before = executions(server)
        proc = spawn(args_for([server.url, second.url], rows, out, wf, ["--retry-after", "2"]))
        on_second = wait_for(lambda: next((n for n, r in state(out).items()
                                           if r.get("server") == second.url
                                           and running_on(c2, out, n)), None),
                             what="a row running on the second server")
        second.kill()
        log, _ = proc.communicate(timeout=900)
    finally:
        second.stop()
    assert proc.returncode == 0, log
    assert f"server {second.url} went away" in log
    assert sorted(p.name for p in out.glob("*.mp4")) == ["one.mp4", "two.mp4"]
    assert all(video_frames(out / f"{n}.mp4") == FRAMES for n in ("one", "two"))
    assert executions(server) - before == 2              # each row once where it finished
    where = {r["name"]: r["server"] for r in status_json(out)}
    assert where == {"one": server.url, "two": server.url}, where
    assert on_second in where
    check_status_matches_disk(out)

