"""The batch client against a fake ComfyUI on 127.0.0.1 (HTTP and a silent websocket): a prompt
that finishes between the client's two look-ups, and a server that went away and came back."""
import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from swift_batch.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
API = json.loads((ROOT / "workflows" / "api" / "swifti2v_2k_api.json").read_text())
FRAMES = next(n["inputs"]["length"] for n in API.values() if "length" in n["inputs"]
              and isinstance(n["inputs"]["length"], int))


class FakeComfy:
    """What the batch client asks of ComfyUI. A queued prompt is running until the first
    look-up (``/queue`` or ``/history``) after it was queued has been answered; then it is
    moved to the history, between that look-up and the client's next one. ``refuse_ws``: the
    first websocket connections are dropped (a server that went away, then answers again)."""

    def __init__(self, video: bytes, refuse_ws: int = 0, cards=None):
        self.video, self.refuse_ws, self.cards = video, refuse_ws, cards
        self.running, self.history, self.requests = [], {}, []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, body, code=200, kind="application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.requests.append(self.path)
                if self.path.startswith("/ws"):
                    return fake.websocket(self)
                if self.path.startswith("/object_info"):
                    return self.reply({n["class_type"]: {} for n in API.values()})
                if self.path.startswith("/system_stats"):
                    return self.reply({"system": {}})
                if self.path.startswith("/view"):
                    return self.reply(fake.video, kind="video/mp4")
                if self.path.startswith("/queue"):
                    with fake.lock:
                        body = {"queue_running": [[0, p] for p in fake.running],
                                "queue_pending": []}
                        fake.finish()
                    return self.reply(body)
                m = re.match(r"/history/(.+)", self.path)
                if m:
                    with fake.lock:
                        body = {m[1]: fake.history[m[1]]} if m[1] in fake.history else {}
                        fake.finish()
                    return self.reply(body)
                self.reply({}, 404)

            def do_POST(self):
                fake.requests.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/upload/image"):
                    name = re.search(rb'filename="([^"]+)"', body)[1].decode()
                    sub = re.search(rb'name="subfolder"\r\n\r\n([^\r]*)', body)
                    return self.reply({"name": name, "subfolder": sub[1].decode() if sub else ""})
                if self.path.startswith("/prompt"):
                    pid = json.loads(body)["prompt_id"]
                    with fake.lock:
                        fake.running.append(pid)
                    return self.reply({"prompt_id": pid})
                self.reply({}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def finish(self):
        """The running prompts end now (called with the lock held, after a look-up's answer
        was read): out of the queue and into the history in one step, as ComfyUI does."""
        for pid in self.running:
            self.history[pid] = {"status": {"status_str": "success", "completed": True},
                                 "outputs": {"9": {"videos": [
                                     {"filename": f"{pid}.mp4", "subfolder": "", "type": "output"}]}}}
            if self.cards is not None:       # as the pack's nodes return them: ui entries
                for node, card in self.cards(len(self.history)).items():
                    self.history[pid]["outputs"][node] = {"swifti2v_card": [json.dumps(card)]}
        self.running = []

    def websocket(self, handler):
        """A websocket that accepts and then says nothing (the client falls back on look-ups),
        or one dropped before the handshake while ``refuse_ws`` lasts."""
        with self.lock:
            refuse, self.refuse_ws = self.refuse_ws > 0, max(0, self.refuse_ws - 1)
        if refuse:
            handler.close_connection = True
            return
        key = handler.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        handler.send_response(101)
        handler.send_header("Upgrade", "websocket")
        handler.send_header("Connection", "Upgrade")
        handler.send_header("Sec-WebSocket-Accept", accept)
        handler.end_headers()
        handler.wfile.flush()
        try:
            while handler.connection.recv(1024):      # until the client closes it
                pass
        except OSError:
            pass
        handler.close_connection = True

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def video(tmp_path):
    from tests.test_batch import tiny_video
    tiny_video(tmp_path / "v.mp4", FRAMES)
    return (tmp_path / "v.mp4").read_bytes()


@pytest.fixture
def rows(tmp_path):
    from PIL import Image
    Image.new("RGB", (96, 64), (200, 10, 10)).save(tmp_path / "red.png")
    (tmp_path / "rows.csv").write_text("image,prompt,name\nred.png,x,a\nred.png,y,b\n")
    return tmp_path / "rows.csv"


def run_batch(rows, fake):
    """The batch over ``fake`` (closed after it): the exit code."""
    try:
        return main(["--rows", str(rows), "--out", str(rows.parent / "out"), "--server",
                     fake.url, "--no-progress", "--retry-after", "0.2"])
    finally:
        fake.close()


def card(*stages) -> dict:
    """A run card as the pack's bridge writes one (swift_core.cards), stages (kind, seconds)."""
    from swift_core.cards import new_card
    c = new_card("p", {"pack": "0.1.0", "device": "cuda:0"})
    c["stages"] = [{"stage": k, "wall_s": t, "peak_device_gib": t / 10, "peak_host_rss_gib": 1.0,
                    "frames": 81} for k, t in stages]
    return c


def test_each_rows_run_card_is_kept_and_the_report_tabulates_them(tmp_path, video, capsys):
    """Stage II returns the card so far and the Segment Decoder the whole one: the batch keeps
    the fuller card per row, in its state and beside the video, and ``--report`` prints one
    line per row, then the median and max."""
    from PIL import Image
    from swift_batch.state import BatchState
    Image.new("RGB", (96, 64), (200, 10, 10)).save(tmp_path / "red.png")
    (tmp_path / "rows.csv").write_text("image,prompt,name\nred.png,x,a\nred.png,y,b\nred.png,z,c\n")

    def cards(i):
        return {"12": card(("stage1", 10.0 * i), ("stage2", 20.0 * i)),
                "13": card(("stage1", 10.0 * i), ("stage2", 20.0 * i), ("decoder", 1.0 * i))}
    assert run_batch(tmp_path / "rows.csv", FakeComfy(video, cards=cards)) == 0
    out = tmp_path / "out"
    rows = BatchState(out).rows
    got = {name: [s["stage"] for s in rows[name]["card"]["stages"]] for name in "abc"}
    assert got == {n: ["stage1", "stage2", "decoder"] for n in "abc"}
    assert json.loads((out / "a.json").read_text()) == rows["a"]["card"]
    capsys.readouterr()
    main(["--report", "--out", str(out)])
    lines = capsys.readouterr().err.splitlines()
    start = lines.index("run cost of 3 row(s), from their run cards:")
    head, *table = lines[start + 1:start + 7]
    assert head.split()[:4] == ["run", "Stage", "I", "s"] and "s/frame" in head
    assert [t.split()[0] for t in table] == ["a", "b", "c", "median", "max"]
    totals = sorted(float(t.split()[4]) for t in table[:3])
    assert totals == [31.0, 62.0, 93.0]
    assert float(table[3].split()[4]) == totals[1] and float(table[4].split()[4]) == totals[2]
    assert float(table[0].split()[5]) == pytest.approx(float(table[0].split()[4]) / 81, abs=0.01)


def test_a_prompt_that_finishes_between_the_two_lookups_is_downloaded(rows, video, capsys):
    """The fake ends a prompt right after the client's first look-up: asked history-then-queue
    the prompt is in neither and the one server was dropped (every row failed); asked
    queue-then-history it is found done, downloaded, and the server keeps the next row."""
    fake = FakeComfy(video)
    rc = run_batch(rows, fake)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "went away" not in err and "no server left" not in err
    for name in ("a", "b"):
        assert (rows.parent / "out" / f"{name}.mp4").read_bytes() == video
    lookups = [p for p in fake.requests if p.startswith(("/queue", "/history"))]
    assert lookups.index(next(p for p in lookups if p.startswith("/queue"))) == 0


def test_a_server_that_went_away_is_asked_again_before_rows_fail(rows, video, capsys):
    """The only server drops its websocket once (gone, its row handed back); asked again before
    the rows are failed for want of servers, it answers and runs both rows."""
    fake = FakeComfy(video, refuse_ws=1)
    rc = run_batch(rows, fake)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "went away" in err and "answer(s) again" in err and "no server left" not in err
    assert all((rows.parent / "out" / f"{n}.mp4").is_file() for n in ("a", "b"))
