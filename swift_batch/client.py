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


class ComfyClient:
    def __init__(self, url: str = "http://127.0.0.1:8188", timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex

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
        have = self.object_info()
        return sorted({n["class_type"] for n in prompt.values()} - set(have))

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

    def queue(self, prompt: dict) -> str:
        r = self._request("POST", "/prompt", json={"prompt": prompt, "client_id": self.client_id})
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {"error": {"message": r.text[:300]}}
            raise PromptError(f"ComfyUI refused the prompt: {format_node_errors(body)}", body)
        return r.json()["prompt_id"]

    def interrupt(self) -> None:
        self._request("POST", "/interrupt")

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
            timeout: float = 3600.0, on_preview: Optional[Callable[[bytes], None]] = None) -> dict:
        """Queue ``prompt``, follow it over the websocket, return its history entry.

        ``on_event(type, data)`` sees every message of this prompt (progress, executing, ...);
        ``on_preview(bytes)`` the binary preview frames (JPEG/PNG behind an 8-byte header).
        Raises PromptError when the prompt is refused, fails or is interrupted.
        """
        import websocket  # websocket-client

        try:
            ws = websocket.create_connection(self.ws_url(), timeout=self.timeout)
        except (OSError, websocket.WebSocketException) as e:
            raise ServerUnreachable(f"cannot open ComfyUI's websocket at {self.ws_url()} "
                                    f"({type(e).__name__})") from None
        try:
            prompt_id = self.queue(prompt)
            deadline = time.monotonic() + timeout
            while True:
                if time.monotonic() > deadline:
                    raise ComfyError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
                ws.settimeout(max(1.0, min(60.0, deadline - time.monotonic())))
                try:
                    raw = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
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
                                      f"failed: {data.get('exception_message', '').strip()}",
                                      data)
                if kind == "execution_interrupted":
                    raise PromptError(f"prompt {prompt_id} was interrupted", data)
                if kind == "executing" and data.get("node") is None \
                        and data.get("prompt_id") == prompt_id:
                    break
        finally:
            ws.close()
        entry = self.history(prompt_id)
        entry["prompt_id"] = prompt_id
        return entry


def output_files(history_entry: dict) -> list[dict]:
    """Every file a finished prompt wrote to the output folder (videos, images, samples)."""
    files = []
    for node_out in (history_entry.get("outputs") or {}).values():
        for key in ("images", "gifs", "videos", "animated", "swifti2v_samples"):
            for item in node_out.get(key) or []:
                if isinstance(item, dict) and item.get("type") == "output" and "filename" in item:
                    files.append(item)
    return files
