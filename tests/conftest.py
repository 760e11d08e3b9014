import os

import pytest

import mindspore as ms

ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture
def pynative_mode():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    yield
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Downloads in tests never touch the user's checkpoint cache."""
    monkeypatch.setenv("MINDCV_CACHE_DIR", str(tmp_path / "cache"))


def pytest_configure(config):
    os.environ.setdefault("GLOG_v", "3")
