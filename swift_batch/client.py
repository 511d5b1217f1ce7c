"""A small client of ComfyUI's HTTP + websocket API (requests and websocket-client)."""
from __future__ import annotations

import json
import os
import time
import uuid
from typing import Callable, Optional
from urllib.parse import urlparse

import requests


class ComfyError(RuntimeError):
    """Something went wrong talking to ComfyUI or running a prompt."""


class ServerUnreachable(ComfyError):
    pass


class PromptLost(ComfyError):
    """The server no longer knows the prompt (restarted, or its queue was cleared)."""


class PromptError(ComfyError):
    """ComfyUI refused the prompt (validation) or a node failed while running it."""

    def __init__(self, message: str, details: Optional[dict] = None):
        super().__init__(message)
        self.details = details or {}


def format_node_errors(body: dict) -> str:
    parts = []
    err = body.get("error") or {}
    if isinstance(err, dict) and err.get("message"):
        parts.append(err["message"] + (f": {err['details']}" if err.get("details") else ""))
    for node_id, info in (body.get("node_errors") or {}).items():
        for e in info.get("errors", []):
            parts.append(f"node {node_id} ({info.get('class_type')}): {e.get('message')}"
                         + (f": {e['details']}" if e.get("details") else ""))
    return "; ".join(parts) or json.dumps(body)[:500]


def fill_defaults(prompt: dict, object_info: dict) -> tuple[dict, list[str]]:
    """``prompt`` with every required input this ComfyUI declares, the workflow leaves out, and
    the schema gives a default for, set to that default (a workflow saved on another ComfyUI
    version: 0.8 added WanContextWindowsManual's required ``freenoise``); and those inputs as
    ``id.name=value``. Nothing the workflow sets is changed."""
    out, filled = {}, []
    for node_id, n in prompt.items():
        schema = (object_info.get(n.get("class_type")) or {}).get("input", {})
        inputs = dict(n.get("inputs", {}))
        for name, spec in (schema.get("required") or {}).items():
            opts = spec[1] if isinstance(spec, (list, tuple)) and len(spec) > 1 else {}
            if name not in inputs and isinstance(opts, dict) and "default" in opts:
                inputs[name] = opts["default"]
                filled.append(f"{node_id}.{name}={opts['default']!r}")
        out[node_id] = {**n, "inputs": inputs}
    return out, filled


class ComfyClient:
    def __init__(self, url: str = "http://127.0.0.1:8188", timeout: float = 30.0,
                 client_id: Optional[str] = None):
        """``client_id``: the websocket identity; a batch keeps one per output folder, so a re-run
        receives the progress of prompts an earlier run queued."""
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client_id = client_id or uuid.uuid4().hex
        #: this server's /object_info once :meth:`adopt` has read it: queued prompts then get
        #: the defaults of required inputs they leave out (:func:`fill_defaults`)
        self.schema: Optional[dict] = None

    # -- plain HTTP
    def _request(self, method: str, path: str, **kw) -> requests.Response:
        try:
            r = requests.request(method, self.url + path, timeout=self.timeout, **kw)
        except requests.ConnectionError as e:
            raise ServerUnreachable(f"cannot reach ComfyUI at {self.url}: is the server running "
                                    f"and the address right? ({type(e).__name__})") from None
        except requests.Timeout:
            raise ServerUnreachable(f"ComfyUI at {self.url} did not answer within "
                                    f"{self.timeout:.0f} s") from None
        return r

    def _json(self, method: str, path: str, **kw):
        r = self._request(method, path, **kw)
        if r.status_code >= 400:
            raise ComfyError(f"{method} {path} -> HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    def object_info(self) -> dict:
        return self._json("GET", "/object_info")

    def missing_node_types(self, prompt: dict) -> list[str]:
        have = self.schema or self.object_info()
        return sorted({n["class_type"] for n in prompt.values()} - set(have))

    def adopt(self, prompt: dict) -> list[str]:
        """Reads this server's node schemas, which :meth:`queue` then completes ``prompt``-like
        workflows from; returns the inputs it will fill in ``prompt`` (``id.name=value``)."""
        self.schema = self.object_info()
        return fill_defaults(prompt, self.schema)[1]

    def queue_remaining(self) -> int:
        return int(self._json("GET", "/prompt").get("exec_info", {}).get("queue_remaining", 0))

    def upload_image(self, path: str, subfolder: str = "swifti2v") -> str:
        """Upload into ComfyUI's input folder; returns the name a LoadImage node takes."""
        with open(path, "rb") as f:
            r = self._request("POST", "/upload/image",
                              files={"image": (os.path.basename(path), f)},
                              data={"type": "input", "subfolder": subfolder, "overwrite": "true"})
        if r.status_code >= 400:
            raise ComfyError(f"upload of {path} refused: HTTP {r.status_code}: {r.text[:200]}")
        info = r.json()
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]

    def alive(self) -> bool:
        try:
            return self._request("GET", "/system_stats").status_code < 400
        except ServerUnreachable:
            return False

    def queue(self, prompt: dict, prompt_id: Optional[str] = None) -> str:
        """Queue ``prompt`` (under ``prompt_id`` when given: ComfyUI 0.3.64 and later keep a
        client's id); returns its id."""
        if self.schema is not None:
            prompt = fill_defaults(prompt, self.schema)[0]
        body = {"prompt": prompt, "client_id": self.client_id}
        if prompt_id is not None:
            body["prompt_id"] = prompt_id
        r = self._request("POST", "/prompt", json=body)
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"error": {"message": r.text[:300]}}
            raise PromptError(f"ComfyUI refused the prompt: {format_node_errors(body)}", body)
        return r.json()["prompt_id"]

    def interrupt(self, prompt_id: Optional[str] = None) -> None:
        """Stop the running prompt: only ``prompt_id`` when given (never another user's)."""
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id} if prompt_id else {})

    def queue_ids(self) -> tuple[list[str], list[str]]:
        """Ids of the running and of the pending prompts."""
        q = self._json("GET", "/queue")
        return ([str(e[1]) for e in q.get("queue_running", [])],
                [str(e[1]) for e in q.get("queue_pending", [])])

    def delete_queued(self, prompt_ids: list[str]) -> None:
        if prompt_ids:
            r = self._request("POST", "/queue", json={"delete": list(prompt_ids)})
            if r.status_code >= 400:
                raise ComfyError(f"POST /queue delete -> HTTP {r.status_code}: {r.text[:300]}")

    def locate(self, prompt_id: str) -> Optional[str]:
        """Where ``prompt_id`` stands here: ``done``, ``failed``, ``running``, ``queued``, or
        None when this server does not know it.

        The queue is asked before the history: a prompt leaves the queue only once it is in the
        history, so a prompt that finishes between the two requests is seen in the second (asked
        the other way round it would be in neither and look unknown).
        """
        running, pending = self.queue_ids()
        if prompt_id in running or prompt_id in pending:
            return "running" if prompt_id in running else "queued"
        entry = self.history(prompt_id)
        if entry:
            return "done" if succeeded(entry) else "failed"
        return None

    def history(self, prompt_id: str) -> dict:
        return self._json("GET", f"/history/{prompt_id}").get(prompt_id, {})

    def download(self, file_info: dict, dest_dir: str) -> str:
        r = self._request("GET", "/view", params={"filename": file_info["filename"],
                                                  "subfolder": file_info.get("subfolder", ""),
                                                  "type": file_info.get("type", "output")},
                          stream=True)
        if r.status_code >= 400:
            raise ComfyError(f"download of {file_info['filename']} failed: HTTP {r.status_code}")
        os.makedirs(dest_dir, exist_ok=True)
        final = os.path.join(dest_dir, os.path.basename(file_info["filename"]))
        tmp = final + ".part"
        with open(tmp, "wb") as f:
            for block in r.iter_content(1 << 20):
                f.write(block)
        os.replace(tmp, final)
        return final

    # -- websocket
    def ws_url(self) -> str:
        u = urlparse(self.url)
        scheme = "wss" if u.scheme == "https" else "ws"
        return f"{scheme}://{u.netloc}{u.path}/ws?clientId={self.client_id}"

    def run(self, prompt: dict, on_event: Optional[Callable[[str, dict], None]] = None,
            timeout: float = 3600.0, on_preview: Optional[Callable[[bytes], None]] = None,
            prompt_id: Optional[str] = None) -> dict:
        """Queue ``prompt`` (as ``prompt_id`` when given), follow it, return its history entry.

        ``on_event(type, data)`` sees every message of this prompt (progress, executing, ...);
        ``on_preview(bytes)`` the binary preview frames (JPEG/PNG behind an 8-byte header).
        Raises PromptError when the prompt is refused, fails or is interrupted.
        """
        ws = self._connect()
        try:
            return self._follow(ws, self.queue(prompt, prompt_id), on_event, timeout, on_preview)
        finally:
            ws.close()

    def wait(self, prompt_id: str, on_event: Optional[Callable[[str, dict], None]] = None,
             timeout: float = 3600.0) -> dict:
        """Follow a prompt already queued (by this client or an earlier run of it) to its end."""
        ws = self._connect()
        try:
            return self._follow(ws, prompt_id, on_event, timeout, None)
        finally:
            ws.close()

    def _connect(self):
        import websocket  # websocket-client
        try:
            return websocket.create_connection(self.ws_url(), timeout=self.timeout)
        except (OSError, websocket.WebSocketException) as e:
            raise ServerUnreachable(f"cannot open ComfyUI's websocket at {self.ws_url()} "
                                    f"({type(e).__name__})") from None

    def _follow(self, ws, prompt_id: str, on_event, timeout: float, on_preview) -> dict:
        """Messages of ``prompt_id`` until it ends; every few seconds the server's history and
        queue are asked too, so an end whose message was missed (attached late) is seen."""
        import websocket
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise ComfyError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
            ws.settimeout(2.0)
            try:
                raw = ws.recv()
            except websocket.WebSocketTimeoutException:
                where = self.locate(prompt_id)
                if where in ("done", "failed"):
                    break
                if where is None:
                    raise PromptLost(f"{self.url} no longer knows prompt {prompt_id}")
                continue
            except (OSError, websocket.WebSocketException) as e:
                raise ServerUnreachable(f"lost ComfyUI at {self.url} while following prompt "
                                        f"{prompt_id} ({type(e).__name__})") from None
            if not isinstance(raw, str):                   # binary preview frames
                if on_preview is not None:
                    on_preview(raw)
                continue
            msg = json.loads(raw)
            kind, data = msg.get("type"), msg.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if on_event is not None:
                on_event(kind, data)
            if kind == "execution_error":
                raise PromptError(f"node {data.get('node_id')} ({data.get('node_type')}) "
                                  f"failed: {data.get('exception_message', '').strip()}", data)
            if kind == "execution_interrupted":
                raise PromptError(f"prompt {prompt_id} was interrupted", data)
            if kind == "executing" and data.get("node") is None \
                    and data.get("prompt_id") == prompt_id:
                break
        entry = self.history(prompt_id)
        if not succeeded(entry):
            msgs = [m for m in (entry.get("status") or {}).get("messages", [])
                    if m and m[0] in ("execution_error", "execution_interrupted")]
            detail = msgs[-1][1] if msgs else {}
            raise PromptError(f"prompt {prompt_id} did not succeed: "
                              f"{detail.get('exception_message', detail) or 'no outputs'}", detail)
        entry["prompt_id"] = prompt_id
        return entry


def succeeded(entry: dict) -> bool:
    """A history entry of a prompt that ran to its end without error."""
    status = entry.get("status") or {}
    return bool(entry) and status.get("status_str", "success") == "success" \
        and status.get("completed", True)


def output_files(history_entry: dict) -> list[dict]:
    """Every file a finished prompt wrote to the output folder (videos, images, samples)."""
    files = []
    for node_out in (history_entry.get("outputs") or {}).values():
        for key in ("images", "gifs", "videos", "animated", "swifti2v_samples"):
            for item in node_out.get(key) or []:
                if isinstance(item, dict) and item.get("type") == "output" and "filename" in item:
                    files.append(item)
    return files
