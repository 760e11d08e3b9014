"""AdamW's fused in-place kernel against its per-parameter form: parameter groups with their own schedules and
weight decays, a loss scale and global-norm clipping, in GRAPH and in PYNATIVE mode (where it runs compiled)."""
import numpy as np
import pytest

from mindspore import Tensor, nn

from mindcv.kernels import fused_kernels_available
from mindcv.optim import create_optimizer

pytestmark = pytest.mark.skipif(not fused_kernels_available(), reason="needs the CPU kernel library")

RNG = np.random.RandomState(5)
X = RNG.randn(16, 6).astype(np.float32)
Y = RNG.randint(0, 3, 16).astype(np.int32)


class TwoLayers(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(6, 5, weight_init="normal")
        self.norm = nn.LayerNorm((5,))
        self.fc2 = nn.Dense(5, 3, weight_init="normal")

    def construct(self, x):
        return self.fc2(self.norm(self.fc1(x)))


def _groups(net):
    fc1, norm, fc2 = net.fc1.trainable_params(), net.norm.trainable_params(), net.fc2.trainable_params()
    return [{"params": fc1, "lr": [0.05, 0.02, 0.01, 0.04], "weight_decay": 0.1},
            {"params": norm, "lr": [0.03, 0.03, 0.02, 0.01], "weight_decay": 0.0},
            {"params": fc2, "weight_decay": 0.3}]


def _train(fused, steps=4, loss_scale=8.0, clip=False):
    """Parameters and moments after ``steps`` with the fused kernel or with the per-parameter update."""
    net = TwoLayers()
    for param, value in zip(net.trainable_params(), np.random.RandomState(0).randn(6, 30)):
        param.set_data(Tensor(value[:int(np.prod(param.shape))].reshape(param.shape).astype(np.float32)))
    optimizer = create_optimizer(_groups(net), "adamw", lr=[0.1, 0.1, 0.05, 0.05], loss_scale=loss_scale, clip=clip)
    assert optimizer.fused_update is not None
    if not fused:
        optimizer.fused_update = None
    loss = nn.WithLossCell(net, nn.CrossEntropyLoss())
    step = nn.TrainOneStepCell(loss, optimizer, sens=loss_scale)
    for scale in np.linspace(1.0, 40.0, steps):  # growing inputs: gradients of several sizes, clipped or not
        step(Tensor(X * scale), Tensor(Y))
    return [p.asnumpy() for p in optimizer.parameters + optimizer.moments1 + optimizer.moments2]


@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_fused_adamw_equals_the_per_parameter_update(mode, clip, request):
    if mode == "pynative":
        request.getfixturevalue("pynative_mode")
    fused, reference = _train(True, clip=clip), _train(False, clip=clip)
    second_moments = fused[2 * len(fused) // 3:]
    assert all(np.abs(v).min() > 0 for v in second_moments)  # every element has seen gradients
    for got, expected in zip(fused, reference):
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-7)


def test_fused_adamw_sets_share_lr_and_weight_decay():
    optimizer = create_optimizer(_groups(TwoLayers()), "adamw", lr=0.1)
    # fc1's weight and bias share lr and decay; the norm is not decayed; fc2 decays at another rate.
    assert optimizer.set_of_parameter.asnumpy().tolist() == [0, 0, 1, 1, 2, 2]
    assert optimizer.set_leaders == (0, 2, 4)
