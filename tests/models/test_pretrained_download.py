"""pretrained=True downloads the published checkpoint (from a local server here), verifies and caches it."""
import functools
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

from mindcv.models import create_model, twins
from mindcv.utils import DownloadError, save_checkpoint_atomic


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def do_GET(self):
        _CountingHandler.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def weight_server(tmp_path):
    """Serves a generated svt_small checkpoint (in the seed's naming, as published) on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    model = create_model("svt_small")
    state = {p.name: p.asnumpy() + 0.5 for p in model.get_parameters()}
    from mindcv.models.naming import mindcv_to_seed_name

    save_checkpoint_atomic({mindcv_to_seed_name(k): v for k, v in state.items()}, str(served / "svt_s_new.ckpt"))
    handler = functools.partial(_CountingHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _CountingHandler.requests = []
    yield f"http://127.0.0.1:{server.server_port}/svt_s_new.ckpt", served / "svt_s_new.ckpt", state
    server.shutdown()


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _publish(monkeypatch, url, sha256):
    monkeypatch.setitem(twins.default_cfgs, "svt_small", dict(twins.default_cfgs["svt_small"], url=url, sha256=sha256))


def test_download_verifies_caches_and_loads(weight_server, monkeypatch):
    url, served_file, state = weight_server
    _publish(monkeypatch, url, _sha256(served_file))
    model = create_model("svt_small", pretrained=True)
    assert np.array_equal(model.blocks[2][8].attn.qkv.weight.asnumpy(), state["blocks.2.8.attn.qkv.weight"])
    cached = os.path.join(os.environ["MINDCV_CACHE_DIR"], "svt_s_new.ckpt")
    assert os.path.isfile(cached)
    create_model("svt_small", pretrained=True, num_classes=4)
    assert _CountingHandler.requests == ["/svt_s_new.ckpt"]


def test_wrong_checksum_is_rejected_and_nothing_cached(weight_server, monkeypatch):
    url, _, _ = weight_server
    _publish(monkeypatch, url, "0" * 64)
    with pytest.raises(DownloadError, match="Checksum mismatch for http://127.0.0.1"):
        create_model("svt_small", pretrained=True)
    assert os.listdir(os.environ["MINDCV_CACHE_DIR"]) == []


def test_unreachable_url_names_it_and_the_local_alternative(monkeypatch):
    url = "http://127.0.0.1:9/Twins/converted/svt_s_new.ckpt"
    _publish(monkeypatch, url, None)
    with pytest.raises(DownloadError, match=r"Could not download http://127\.0\.0\.1:9/.*checkpoint_path="):
        create_model("svt_small", pretrained=True)
