"""evaluate(): accuracy over a loader, and its early end when a stop signal is asked for."""
import numpy as np

import mindspore as ms
import mindspore.dataset as ds
from mindspore import nn

from mindcv.engine import evaluate


class CountingNet(nn.Cell):
    """Logits that make class (first feature) the prediction; counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def construct(self, x):
        self.calls += 1
        return ms.ops.one_hot(x[:, 0].astype(ms.int32), 5, ms.Tensor(1.0), ms.Tensor(0.0))


def _loader():
    labels = np.arange(12, dtype=np.int32) % 5
    images = np.stack([labels, np.zeros_like(labels)], axis=1).astype(np.float32)
    images[:3, 0] = (labels[:3] + 1) % 5  # three wrong top-1
    return ds.NumpySlicesDataset((images, labels), ["image", "label"], shuffle=False).batch(4)


def test_evaluate_counts_top1_and_top5(pynative_mode):
    metrics = evaluate(CountingNet(), _loader(), progress=False)
    assert metrics["samples"] == 12 and np.isclose(metrics["top1"], 75.0) and metrics["top5"] == 100.0


def test_evaluate_stops_before_the_next_batch_when_interrupted(pynative_mode):
    net, asked = CountingNet(), []

    def interrupted():
        asked.append(net.calls)
        return len(asked) == 2

    assert evaluate(net, _loader(), progress=False, interrupted=interrupted) is None
    assert asked == [0, 1] and net.calls == 1
