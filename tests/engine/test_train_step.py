"""TrainStep: the update it applies equals the hand-computed one for each of its options."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv.engine.train_step import TrainStep, create_loss_scale, swap_ema_weights


def _net(seed=0):
    ms.set_seed(seed)
    net = nn.Dense(4, 3, weight_init="normal", bias_init="zeros")
    return net


def _batch(n, seed=0):
    rng = np.random.RandomState(seed)
    return ms.Tensor(rng.randn(n, 4).astype(np.float32)), ms.Tensor(rng.randint(0, 3, n).astype(np.int32))


def _weights(net):
    return [p.asnumpy().copy() for p in net.trainable_params()]


def _grads(net, x, y):
    loss_net = nn.WithLossCell(net, nn.CrossEntropyLoss())
    return [g.asnumpy() for g in ms.grad(loss_net, grad_position=None, weights=net.trainable_params())(x, y)]


def test_plain_step_is_sgd():
    net = _net()
    x, y = _batch(4)
    before, grads = _weights(net), _grads(net, x, y)
    TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), nn.SGD(net.trainable_params(), 0.5))(x, y)
    for b, g, a in zip(before, grads, _weights(net)):
        assert np.allclose(a, b - 0.5 * g, atol=1e-6)


def test_gradient_accumulation_equals_one_step_on_the_whole_batch():
    x, y = _batch(4)
    whole, accumulated = _net(), _net()
    TrainStep(nn.WithLossCell(whole, nn.CrossEntropyLoss()), nn.SGD(whole.trainable_params(), 0.5))(x, y)
    step = TrainStep(nn.WithLossCell(accumulated, nn.CrossEntropyLoss()), nn.SGD(accumulated.trainable_params(), 0.5),
                     gradient_accumulation_steps=2)
    before = _weights(accumulated)
    step(x[:2], y[:2])
    assert all(np.array_equal(b, a) for b, a in zip(before, _weights(accumulated)))  # no update after one micro-batch
    step(x[2:], y[2:])
    for w, a in zip(_weights(whole), _weights(accumulated)):
        assert np.allclose(w, a, atol=1e-6)


@pytest.mark.parametrize("fused_norm", [True, False], ids=["fused-kernel-norm", "per-gradient-norm"])
def test_clip_grad_limits_the_global_norm(fused_norm):
    net = _net()
    x, y = _batch(4)
    before, grads = _weights(net), _grads(net, x, y)
    norm = np.sqrt(sum((g ** 2).sum() for g in grads))
    clip = norm / 4
    step = TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), nn.SGD(net.trainable_params(), 1.0), clip_grad=True,
                     clip_value=float(clip))
    if fused_norm:
        assert step.sum_of_squares is not None
    else:
        step.sum_of_squares = None
    step(x, y)
    change = np.sqrt(sum(((b - a) ** 2).sum() for b, a in zip(before, _weights(net))))
    assert change == pytest.approx(clip, rel=1e-4)


def test_clip_grad_hands_adamw_its_factor():
    """AdamW scales the gradients by the clipping factor inside its update, as a separate pass over them would."""
    from mindcv.optim import create_optimizer

    x, y = _batch(4)
    norm = np.sqrt(sum((g ** 2).sum() for g in _grads(_net(), x, y)))

    def train(clip_grad, factor_inside):
        net = _net()
        # eps of the gradients' size: the step then depends on their scale, and so on the clipping
        optimizer = create_optimizer(net, "adamw", lr=0.1, weight_decay=0.1, eps=float(norm))
        step = TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), optimizer, clip_grad=clip_grad,
                         clip_value=float(norm / 4))
        assert step.optimizer_scales
        step.optimizer_scales = factor_inside
        for _ in range(3):
            step(x, y)
        return _weights(net)

    inside, outside, unclipped = train(True, True), train(True, False), train(False, True)
    assert np.abs(inside[0] - unclipped[0]).max() > 1e-3
    for a, b in zip(inside, outside):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_ema_follows_the_weights_with_mindcv_warmup_and_swaps_in_for_evaluation():
    net = _net()
    step = TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), nn.SGD(net.trainable_params(), 0.5), ema=True,
                     ema_decay=0.9)
    step.updates.set_data(ms.Tensor(2000.0, ms.float32))  # where the warm-up factor is no longer close to 0
    expected = _weights(net)
    for seed, updates in zip(range(3), (2001, 2002, 2003)):
        step(*_batch(4, seed))
        decay = 0.9 * (1 - np.exp(-updates / 2000))
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, _weights(net))]
    assert float(step.updates.asnumpy()) == 2003
    assert all(np.allclose(e, a.asnumpy(), atol=1e-6) for e, a in zip(expected, step.ema_weights))
    trained = _weights(net)
    with swap_ema_weights(step):
        assert all(np.allclose(e, w, atol=1e-6) for e, w in zip(expected, _weights(net)))
    assert all(np.array_equal(t, w) for t, w in zip(trained, _weights(net)))


def test_dynamic_loss_scale_skips_overflowing_steps_and_lowers_the_scale():
    net = _net()
    step = TrainStep(nn.WithLossCell(net, nn.CrossEntropyLoss()), nn.SGD(net.trainable_params(), 0.5),
                     create_loss_scale("dynamic", 3e38))
    before = _weights(net)
    x, y = _batch(4)
    _, overflow, scale = step(x * 1e6, y)
    assert bool(overflow.asnumpy())
    assert all(np.array_equal(b, a) for b, a in zip(before, _weights(net)))
    assert float(step.scale_sense.asnumpy()) < 3e38


def test_training_steps_match_timm_with_torch_adamw(tmp_path):
    """Backward pass, TrainStep and AdamW together: svt_small at 64 px (LSA pads its windows there) follows
    the reference's loss over several AdamW steps."""
    import torch

    from mindcv.models import create_model
    from mindcv.optim import create_optimizer

    from ..models.reference import convert_reference, random_images, reference_model

    reference = reference_model("svt_small", num_classes=10)
    model = create_model("svt_small", num_classes=10, checkpoint_path=convert_reference(reference, tmp_path))
    optimizer = create_optimizer(model, opt="adamw", lr=1e-3, weight_decay=0.05, weight_decay_filter="disable",
                                 eps=1e-8)
    step = TrainStep(nn.WithLossCell(model, nn.CrossEntropyLoss()), optimizer)
    reference.train()
    torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3, weight_decay=0.05, eps=1e-8)
    images = random_images(8, 64, 64)
    labels = np.random.RandomState(0).randint(0, 10, 8)
    for _ in range(4):
        torch_optimizer.zero_grad()
        expected = torch.nn.functional.cross_entropy(reference(torch.from_numpy(images)), torch.from_numpy(labels))
        expected.backward()
        torch_optimizer.step()
        loss, overflow, _ = step(ms.Tensor(images), ms.Tensor(labels.astype(np.int32)))
        assert not bool(overflow.asnumpy())
        assert float(loss.asnumpy()) == pytest.approx(expected.item(), rel=1e-4, abs=1e-6)
