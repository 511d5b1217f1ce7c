"""Start a real ComfyUI (``--cpu``, 127.0.0.1) with this pack and the test nodes, isolated dirs."""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def pack_env(comfy: str | None = None, **extra) -> dict:
    """Environment for a ComfyUI process that imports ``swift_core`` / ``swift_testing`` (the test
    nodes, the helper scripts): only those two packages on its path, through a folder of links,
    so the pack's ``nodes`` package never shadows ComfyUI's ``nodes`` module."""
    lib = Path(tempfile.gettempdir()) / "swifti2v-pythonpath" / hashlib.sha1(
        str(ROOT).encode()).hexdigest()[:10]
    lib.mkdir(parents=True, exist_ok=True)
    for name in ("swift_core", "swift_testing"):
        if not (lib / name).exists():
            (lib / name).symlink_to(ROOT / name, target_is_directory=True)
    env = dict(os.environ, PYTHONPATH=str(lib), **extra)
    if comfy:
        env["COMFYUI_PATH"] = comfy
    return env


def run_helper(module: str, *args: str, **kw) -> subprocess.CompletedProcess:
    """``python -m swift_testing.comfy_host.<module>`` in ComfyUI's Python, inside ComfyUI."""
    return subprocess.run([comfyui_python(), "-m", f"swift_testing.comfy_host.{module}", *args],
                          cwd=comfyui_path(), env=pack_env(comfyui_path()), check=True,
                          capture_output=True, text=True, **kw)
PACK_NAME = "ComfyUI-SwiftI2V"
TEST_NODES = ROOT / "tests" / "host" / "custom_nodes" / "swifti2v_test_nodes"


def comfyui_path() -> str | None:
    return os.environ.get("COMFYUI_PATH") or None


def comfyui_python() -> str:
    return os.environ.get("COMFYUI_PYTHON") or sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_models(comfy: str) -> Path:
    """Tiny random model files, made once per ComfyUI checkout and cached in the temp dir."""
    key = hashlib.sha1(os.path.realpath(comfy).encode()).hexdigest()[:10]
    out = Path(tempfile.gettempdir()) / f"swifti2v-tiny-models-{key}"
    run_helper("make_tiny_models", str(out))
    return out


@functools.lru_cache(maxsize=1)
def comfy_sampling_names() -> tuple[list[str], list[str]]:
    """``KSampler.SAMPLERS`` and ``KSampler.SCHEDULERS`` of the ComfyUI at COMFYUI_PATH."""
    code = ("import sys, json; sys.argv = ['main.py', '--cpu']; import comfy.options; "
            "comfy.options.enable_args_parsing(); import comfy.samplers as s; "
            "print('NAMES=' + json.dumps([s.KSampler.SAMPLERS, s.KSampler.SCHEDULERS]))")
    out = subprocess.run([comfyui_python(), "-c", code], cwd=comfyui_path(), check=True,
                         capture_output=True, text=True).stdout
    line = [x for x in out.splitlines() if x.startswith("NAMES=")][-1]
    samplers, schedulers = json.loads(line[len("NAMES="):])
    return samplers, schedulers


class ComfyServer:
    def __init__(self, workdir: Path, models: Path, extra_args=(), log_name: str = "server.log"):
        """A ComfyUI on ``workdir``'s folders; another one on the same ``workdir`` (another port,
        its own ``log_name``) is a second instance of the same install."""
        self.comfy = comfyui_path()
        self.workdir = Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = self.workdir / "output"
        self.input = self.workdir / "input"
        nodes = self.workdir / "custom_nodes"
        for d in (self.output, self.input, nodes, self.workdir / "temp", self.workdir / "user"):
            d.mkdir(parents=True, exist_ok=True)
        for link, target in ((nodes / PACK_NAME, ROOT), (nodes / TEST_NODES.name, TEST_NODES)):
            if not link.exists():
                link.symlink_to(target, target_is_directory=True)
        for img in ("astronaut.png", "chelsea.png", "example.png"):   # example.png: ComfyUI ships it
            src = Path(self.comfy) / "input" / img
            if src.exists():
                shutil.copy(src, self.input / img)
        self.yaml = self.workdir / "extra_model_paths.yaml"
        self.yaml.write_text(f"swifti2v_test:\n  base_path: {models}\n"
                             f"  diffusion_models: diffusion_models\n  vae: vae\n  loras: loras\n"
                             f"  custom_nodes: {nodes}\n")
        self.args = [comfyui_python(), "main.py", "--cpu", "--listen", "127.0.0.1",
                     "--port", str(self.port), "--extra-model-paths-config", str(self.yaml),
                     "--output-directory", str(self.output), "--input-directory", str(self.input),
                     "--temp-directory", str(self.workdir / "temp"),
                     "--user-directory", str(self.workdir / "user"),
                     "--preview-method", "latent2rgb",
                     "--disable-all-custom-nodes", "--whitelist-custom-nodes", PACK_NAME,
                     TEST_NODES.name, *extra_args]
        self.log_path = self.workdir / log_name
        self.proc = None

    def start(self, timeout: float = 180.0) -> "ComfyServer":
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.args, cwd=self.comfy, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=pack_env(self.comfy))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited at start:\n{self.log_text()[-3000:]}")
            try:
                if requests.get(self.url + "/system_stats", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"ComfyUI did not start within {timeout} s:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def version(self) -> str:
        return requests.get(self.url + "/system_stats", timeout=5).json()["system"].get(
            "comfyui_version", "?")

    def kill(self) -> None:
        """As the kernel's OOM killer would: no clean-up in the process."""
        self.proc.kill()
        self.proc.wait(20)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "log", None):
            self.log.close()
