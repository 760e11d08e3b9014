"""Dropout and drop-path masks: the right keep rate and scaling, and replayable from a layer's call count, so
that a resumed run draws the masks the uninterrupted run drew."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv.models import create_model
from mindcv.models.layers import DropPath, Dropout


def _training(layer):
    layer.set_train(True)
    return layer


def _ones(*shape):
    return ms.Tensor(np.ones(shape, np.float32))


@pytest.mark.parametrize("layer, shape, per_sample", [(DropPath(0.3), (20000, 2, 3), True),
                                                      (Dropout(0.2), (200, 300), False)])
def test_masks_keep_the_right_share_and_scale_the_kept(layer, shape, per_sample):
    rate = getattr(layer, "drop_prob", getattr(layer, "p", None))
    out = _training(layer)(_ones(*shape)).asnumpy()
    kept = out.reshape(shape[0], -1)[:, 0] > 0 if per_sample else out > 0
    if per_sample:
        assert (out == out[:, :1, :1]).all()  # one decision per sample
    sigma = np.sqrt(rate * (1 - rate) / kept.size)
    assert abs(kept.mean() - (1 - rate)) < 5 * sigma
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / (1 - rate)], rtol=1e-6)


def test_a_layer_restored_to_a_call_count_replays_the_following_masks():
    first = _training(DropPath(0.5))
    first.set_stream(7)
    x = _ones(64, 4)
    draws = [first(x).asnumpy() for _ in range(3)]
    assert not np.array_equal(draws[0], draws[1])
    resumed = _training(DropPath(0.5))
    resumed.set_stream(7)
    resumed.random_step.set_data(ms.Tensor(1, ms.int64))  # what a checkpoint after one step holds
    np.testing.assert_array_equal(resumed(x).asnumpy(), draws[1])
    np.testing.assert_array_equal(resumed(x).asnumpy(), draws[2])
    assert int(resumed.random_step.asnumpy()) == 3


def test_evaluation_is_the_identity_and_does_not_advance_the_count():
    layer = DropPath(0.5)
    layer.set_train(False)
    x = _ones(8, 4)
    np.testing.assert_array_equal(layer(x).asnumpy(), x.asnumpy())
    assert int(layer.random_step.asnumpy()) == 0


def _keys(model):
    return [int(cell.key.asnumpy()) for _, cell in model.cells_and_names() if isinstance(cell, (DropPath, Dropout))]


def test_streams_depend_on_the_layer_and_seed_not_on_what_was_built_before():
    ms.set_seed(11)
    first = _keys(create_model("svt_small", num_classes=3, drop_path_rate=0.2, drop_rate=0.1))
    DropPath(0.1)  # layers built in between do not shift the model's streams
    again = _keys(create_model("svt_small", num_classes=3, drop_path_rate=0.2, drop_rate=0.1))
    ms.set_seed(12)
    reseeded = _keys(create_model("svt_small", num_classes=3, drop_path_rate=0.2, drop_rate=0.1))
    assert first == again and len(set(first)) == len(first) == 35
    assert not set(first) & set(reseeded)


class _WeightedSum(nn.Cell):
    def __init__(self, layer, weight):
        super().__init__()
        self.layer, self.weight = layer, weight

    def construct(self, x, residual):
        return (self.layer(x, residual) * self.weight).sum()


def _pair(rate, stream):
    """The same DropPath twice: with its fused kernel, and computing with tensor operations."""
    fused, plain = _training(DropPath(rate)), _training(DropPath(rate))
    plain.fused = None
    for layer in (fused, plain):
        layer.set_stream(stream)
    return fused, plain


@pytest.mark.parametrize("rate", [0.1, 0.2 * 7 / 17, 0.5, 0.9])
def test_the_fused_residual_add_draws_the_masks_the_tensor_operations_draw(rate):
    if DropPath(rate).fused is None:
        pytest.skip("no kernel library on this machine")
    fused, plain = _pair(rate, stream=3)
    ones, zeros = _ones(32, 3, 2), ms.Tensor(np.zeros((32, 3, 2), np.float32))
    draws = [(fused(ones, zeros).asnumpy(), plain(ones, zeros).asnumpy()) for _ in range(12)]
    for with_kernel, with_tensors in draws:
        np.testing.assert_array_equal(with_kernel, with_tensors)
    assert len({tuple(draw[:, 0, 0]) for draw, _ in draws}) > 1


def test_the_fused_residual_add_and_its_gradients_equal_the_tensor_operations():
    if DropPath(0.4).fused is None:
        pytest.skip("no kernel library on this machine")
    fused, plain = _pair(0.4, stream=8)
    rng = np.random.default_rng(0)
    x, residual, weight = (ms.Tensor(rng.standard_normal((16, 5, 4)).astype(np.float32)) for _ in range(3))
    results = []
    for layer in (fused, plain):
        out, grads = ms.value_and_grad(_WeightedSum(layer, weight), (0, 1))(x, residual)
        results.append([out.asnumpy(), *[grad.asnumpy() for grad in grads]])
    for with_kernel, with_tensors in zip(*results):
        np.testing.assert_allclose(with_kernel, with_tensors, rtol=1e-6, atol=1e-6)
    assert int(fused.random_step.asnumpy()) == int(plain.random_step.asnumpy()) == 1


def test_the_fused_residual_add_takes_an_empty_batch():
    layer = _training(DropPath(0.5))
    if layer.fused is None:
        pytest.skip("no kernel library on this machine")
    empty = ms.Tensor(np.zeros((0, 3, 2), np.float32))
    assert layer(empty, empty).shape == (0, 3, 2)
