import gc
import os

import pytest

import mindspore as ms

from .helpers import write_image_folder

ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory):
    """A 3-class ImageFolder (train 12, val 4 images per class) shared by the command-line tests."""
    return write_image_folder(tmp_path_factory.mktemp("shapes"))


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


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_graphs():
    """One pytest process compiles hundreds of graphs; MindSpore keeps each one's runtime memory until asked."""
    yield
    gc.collect()
    ms.ms_memory_recycle()
