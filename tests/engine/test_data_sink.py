"""Which feed an epoch uses, and that both feeds give the train step every batch of the epoch once, in order.
MindSpore's sink itself needs Ascend or GPU; here its wiring is checked with a stand-in for ``ms.data_sink``."""
import numpy as np
import pytest

import mindspore as ms
import mindspore.dataset as ds

from mindcv.engine import data_sink
from mindcv.engine.data_sink import step_outputs, uses_data_sink


def _loader(batches=3):
    return ds.NumpySlicesDataset({"x": np.arange(batches * 2, dtype=np.float32).reshape(-1, 1),
                                  "y": np.arange(batches * 2, dtype=np.int32)}, shuffle=False).batch(2)


def _step(x, y):
    return float(x.asnumpy().sum()), int(y.asnumpy().sum())


def test_mindspore_has_no_data_sink_on_cpu():
    """Why the CPU runs the Python loop: MindSpore refuses a sink there (if a release adds one, this fails)."""
    with pytest.raises(ValueError, match="Data sinking supports ascend or gpu"):
        ms.data_sink(_step, _loader())


def test_sink_is_used_only_where_the_device_has_one(monkeypatch, caplog):
    caplog.set_level("INFO")
    assert not uses_data_sink(True) and "no data sink on CPU" in caplog.text
    assert not uses_data_sink(False)
    monkeypatch.setattr(data_sink.ms, "get_context", lambda key: "GPU")
    assert uses_data_sink(True)


def test_python_loop_feeds_every_batch_in_order():
    assert list(step_outputs(_step, _loader(), sink=False)) == [(1.0, 1), (5.0, 5), (9.0, 9)]


def test_sink_feeds_one_step_per_call_for_the_whole_epoch(monkeypatch):
    calls = []

    def fake_data_sink(fn, dataset, sink_size, jit_config):
        calls.append((fn, dataset, sink_size, type(jit_config)))
        batches = dataset.create_tuple_iterator(num_epochs=1)
        return lambda: fn(*next(batches))

    monkeypatch.setattr(data_sink.ms, "data_sink", fake_data_sink)
    loader = _loader()
    assert list(step_outputs(_step, loader, sink=True)) == [(1.0, 1), (5.0, 5), (9.0, 9)]
    assert calls == [(_step, loader, 1, ms.JitConfig)]
