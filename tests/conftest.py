import os
from pathlib import Path

HOST = Path(__file__).resolve().parent / "host"
HOST_SKIP = ("host tests (tests/host) skipped: COMFYUI_PATH is not set; set COMFYUI_PATH and "
             "COMFYUI_PYTHON to a ComfyUI checkout and its Python (docs/developing.md: Host tests)")


def pytest_ignore_collect(collection_path, config):
    if not os.environ.get("COMFYUI_PATH") and Path(collection_path).resolve() == HOST:
        return True
    return None


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not os.environ.get("COMFYUI_PATH"):
        terminalreporter.write_line(HOST_SKIP)
