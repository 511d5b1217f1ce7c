import pytest

from .server import ComfyServer, comfyui_path, tiny_models


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
