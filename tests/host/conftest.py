import pytest

from swift_testing.comfy_host.server import ComfyServer, comfy_sampling_names, comfyui_path, tiny_models


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


def pytest_generate_tests(metafunc):
    """Parametrize over the running ComfyUI's own lists: every sampler, every scheduler."""
    for arg, key in (("sampler_name", 0), ("scheduler_name", 1)):
        if arg in metafunc.fixturenames:
            metafunc.parametrize(arg, comfy_sampling_names()[key])


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``-n``), every host test goes to one worker: one ComfyUI server for
    them all, never two host tests at once (``--dist loadgroup``)."""
    for item in items:
        if "tests/host/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.xdist_group("comfyui"))
