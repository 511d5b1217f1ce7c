import pytest

from .server import ComfyServer, comfyui_path, tiny_models

SKIP_REASON = ("host tests need a real ComfyUI: set COMFYUI_PATH and COMFYUI_PYTHON as printed by "
               "../shared/tools/comfyui-host/setup.sh (see README, 'Host tests')")


def pytest_collection_modifyitems(config, items):
    if comfyui_path():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "tests/host/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def models():
    return tiny_models(comfyui_path())


@pytest.fixture(scope="session")
def server(tmp_path_factory, models):
    srv = ComfyServer(tmp_path_factory.mktemp("comfyui"), models).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    from swift_batch.client import ComfyClient
    return ComfyClient(server.url, timeout=60)
