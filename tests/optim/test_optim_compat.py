"""``create_optimizer`` called as MindCV's tests/modules/test_optim.py calls it, and ``adan`` (MindCV's
mindcv/optim/adan.py): parameters after a few steps checked against the update rules written here in numpy."""
import importlib

import numpy as np
import pytest

from mindspore import Parameter, Tensor, nn

from mindcv.optim import Adan, create_optimizer, optimizer_state

RNG = np.random.RandomState(3)
X = RNG.randn(8, 4).astype(np.float32)
Y = RNG.randint(0, 3, 8).astype(np.int32)
W0 = RNG.randn(3, 4).astype(np.float32)
B0 = RNG.randn(3).astype(np.float32) * 0.1


def _dense():
    net = nn.Dense(4, 3)
    net.weight.set_data(Tensor(W0))
    net.bias.set_data(Tensor(B0))
    return net


def _grads(w, b, x):
    """Gradients of the batch's mean cross entropy at (w, b)."""
    logits = x.astype(np.float64) @ w.T + b
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    delta = (probs - np.eye(3)[Y]) / len(Y)
    return delta.T @ x, delta.sum(0)


def _train(optimizer, net, steps, x=X):
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.CrossEntropyLoss()), optimizer)
    step.set_train()
    losses = [float(step(Tensor(x), Tensor(Y))) for _ in range(steps)]
    return net.weight.asnumpy(), net.bias.asnumpy(), losses


def _reference(update, steps, x=X, clip_norm=None, **hyper):
    """Parameters after ``steps`` of ``update(name, param, grad, state, step, **hyper)`` on the fixed batch, the
    gradients first clipped to global norm ``clip_norm`` when given."""
    params = {"weight": W0.astype(np.float64), "bias": B0.astype(np.float64)}
    states = {"weight": {}, "bias": {}}
    for step in range(1, steps + 1):
        grads = dict(zip(("weight", "bias"), _grads(params["weight"], params["bias"], x)))
        if clip_norm is not None:
            norm = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
            grads = {name: g * min(1.0, clip_norm / norm) for name, g in grads.items()}
        for name in params:
            params[name] = update(name, params[name], grads[name], states[name], step, **hyper)
    return params["weight"], params["bias"]


def _adan_update(name, param, grad, state, step, lrs, beta1, beta2, beta3, eps, decays):
    """MindCV's Adan: betas weigh the new values, no bias correction, decay divided by (1 + wd * step size)."""
    change = grad - state["prev"] if step > 1 else np.zeros_like(grad)
    state["m"] = (1 - beta1) * state.get("m", 0.0) + beta1 * grad
    state["v"] = (1 - beta2) * state.get("v", 0.0) + beta2 * change
    state["n"] = (1 - beta3) * state.get("n", 0.0) + beta3 * (grad + (1 - beta2) * change) ** 2
    state["prev"] = grad
    step_size = lrs[step - 1] / (eps + np.sqrt(state["n"]))
    param = param - step_size * (state["m"] + (1 - beta2) * state["v"])
    return param / (1 + decays[name] * step_size)


def test_adan_through_create_optimizer_follows_mindcvs_rule_with_decay_filter_and_schedule():
    lrs = [0.02, 0.05, 0.03, 0.01]
    net = _dense()
    optimizer = create_optimizer(net, "adan", lr=lrs, weight_decay=0.1, weight_decay_filter="norm_and_bias")
    weight, bias, _ = _train(optimizer, net, 4)
    expected = _reference(_adan_update, 4, lrs=lrs, beta1=0.98, beta2=0.92, beta3=0.99, eps=1e-8,
                          decays={"weight": 0.1, "bias": 0.0})
    np.testing.assert_allclose(weight, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected[1], rtol=1e-5, atol=1e-6)


def test_adan_betas_eps_and_group_learning_rates():
    net = _dense()
    groups = [{"params": [net.weight], "weight_decay": 0.05}, {"params": [net.bias], "lr": 0.2}]
    optimizer = create_optimizer(groups, "adan", lr=0.05, eps=1e-3, beta1=0.6, beta2=0.5, beta3=0.4)
    weight, bias, _ = _train(optimizer, net, 3)
    group_lrs = {"weight": [0.05] * 3, "bias": [0.2] * 3}

    def update(name, *args, **hyper):
        return _adan_update(name, *args, lrs=group_lrs[name], **hyper)

    expected = _reference(update, 3, beta1=0.6, beta2=0.5, beta3=0.4, eps=1e-3, decays={"weight": 0.05, "bias": 0.0})
    np.testing.assert_allclose(weight, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected[1], rtol=1e-5, atol=1e-6)


def test_adan_has_mindcvs_defaults_module_path_and_state_names():
    optimizer = Adan(_dense().trainable_params())
    hyper = [float(t.asnumpy()) for t in (optimizer.beta1, optimizer.beta2, optimizer.beta3, optimizer.eps)]
    assert hyper == pytest.approx([0.98, 0.92, 0.99, 1e-8])
    assert float(optimizer.learning_rate.asnumpy()) == pytest.approx(1e-3)
    assert {name.split(".")[0] for name in optimizer_state(optimizer)} == {
        "moment1", "moment2", "moment3", "prev_gradient", "global_step"}
    assert importlib.import_module("mindcv.optim.adan").Adan is Adan
    with pytest.raises(ValueError, match="beta3"):
        Adan(_dense().trainable_params(), beta3=1.5)
    with pytest.raises(TypeError):  # MindCV's positional use_locking would shift weight_decay into loss_scale
        Adan(_dense().trainable_params(), 1e-3, 0.98, 0.92, 0.99, 1e-8, False, 0.05)


def _momentum_update(name, param, grad, state, step, lr, momentum, nesterov, decays):
    grad = grad + decays[name] * param  # MindSpore's weight decay is L2, added to the gradient
    state["accum"] = momentum * state.get("accum", 0.0) + grad
    return param - lr * (grad + momentum * state["accum"] if nesterov else state["accum"])


# MindCV's test_sgd_optimizer: opt x nesterov x weight_decay_filter, lr 0.01, weight_decay 1e-5, momentum 0.9.
@pytest.mark.parametrize("opt,nesterov,weight_decay_filter", [
    ("sgd", True, "disable"), ("sgd", False, "auto"), ("momentum", True, "norm_and_bias"),
    ("momentum", False, "disable"), ("nesterov", False, "norm_and_bias")])
def test_sgd_and_momentum_follow_their_update_rules(opt, nesterov, weight_decay_filter):
    lr, wd = 0.5, 0.01  # larger than MindCV's test values so that the decay shows in the parameters
    net = _dense()
    optimizer = create_optimizer(net.trainable_params(), opt, lr=lr, weight_decay=wd, momentum=0.9,
                                 nesterov=nesterov, weight_decay_filter=weight_decay_filter)
    weight, bias, losses = _train(optimizer, net, 3)
    # 'nesterov' always runs Nesterov's update (on CPU, too); the filters differ here only in whether the bias
    # decays.
    expected = _reference(_momentum_update, 3, lr=lr, momentum=0.9, nesterov=nesterov or opt == "nesterov",
                          decays={"weight": wd, "bias": 0.0 if weight_decay_filter == "norm_and_bias" else wd})
    np.testing.assert_allclose(weight, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected[1], rtol=1e-5, atol=1e-6)
    assert losses[-1] < losses[0]


def _adam_update(name, param, grad, state, step, lr, eps):
    state["m"] = 0.9 * state.get("m", 0.0) + 0.1 * grad
    state["v"] = 0.999 * state.get("v", 0.0) + 0.001 * grad ** 2
    m_hat, v_hat = state["m"] / (1 - 0.9 ** step), state["v"] / (1 - 0.999 ** step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps)


@pytest.mark.parametrize("opt", ["adam", "adamW"])
def test_adam_and_adamw_default_eps_is_mindcvs(opt):
    """MindCV's create_optimizer hands its eps (default 1e-10) to rmsprop only: Adam and AdamW keep 1e-8."""
    net = _dense()
    optimizer = create_optimizer(net.trainable_params(), opt, lr=0.01)
    assert float(optimizer.eps.asnumpy()) == pytest.approx(1e-8)
    weight, bias, _ = _train(optimizer, net, 2)
    expected = _reference(_adam_update, 2, lr=0.01, eps=1e-8)
    np.testing.assert_allclose(weight, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected[1], rtol=1e-5, atol=1e-6)


def _adamw_update(name, param, grad, state, step, lr, weight_decay):
    return _adam_update(name, param * (1 - lr * weight_decay), grad, state, step, lr, 1e-8)


def test_adamw_clip_is_mindcvs_global_norm_clipping():
    """MindCV's AdamW takes clip=True (global norm 5); gradients of norm about 7, then smaller, make it show."""
    net, big = _dense(), X * 8
    optimizer = create_optimizer(net, "adamw", lr=0.2, weight_decay=0.1, clip=True)
    weight, bias, _ = _train(optimizer, net, 3, big)
    expected = _reference(_adamw_update, 3, big, 5.0, lr=0.2, weight_decay=0.1)
    unclipped = _reference(_adamw_update, 3, big, lr=0.2, weight_decay=0.1)
    assert np.abs(unclipped[0] - expected[0]).max() > 0.01
    np.testing.assert_allclose(weight, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias, expected[1], rtol=1e-5, atol=1e-6)


def test_rmsprop_and_lamb_default_eps_and_explicit_eps():
    assert create_optimizer(_dense().trainable_params(), "rmsprop", lr=0.01).epsilon == pytest.approx(1e-10)
    assert float(create_optimizer(_dense().trainable_params(), "lamb").eps.asnumpy()) == pytest.approx(1e-6)
    assert float(create_optimizer(_dense().trainable_params(), "adamw", eps=1e-6).eps.asnumpy()) == \
        pytest.approx(1e-6)


def test_mindcv_parameter_groups_with_auto_filter_and_layer_decay_none():
    """MindCV's test_param_lr_*_filter_bias_and_bn_optimizer: its groups (with grad_centralization) and 'auto'."""
    net = _dense()
    groups = [{"params": [net.weight], "weight_decay": 0.01, "grad_centralization": True},
              {"params": [net.bias], "lr": 0.1}, {"order_params": net.trainable_params()}]
    optimizer = create_optimizer(groups, "momentum", lr=0.01, weight_decay=1e-5, momentum=0.9, nesterov=False,
                                 weight_decay_filter="auto", layer_decay=None)
    assert float(optimizer.get_lr_parameter(net.bias).asnumpy()) == pytest.approx(0.1)
    losses = _train(optimizer, net, 5)[2]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("arguments", [
    dict(opt="momentum", momentum=-0.1), dict(opt="momentum", loss_scale=-1.0), dict(opt="adamW", weight_decay=-0.1),
    dict(opt="adamW", lr=-0.1), dict(opt="bdam"), dict(opt="mindspore")])
def test_wrong_values_are_rejected(arguments):
    """MindCV's test_wrong_*_optimizer: the same calls raise one of the types its tests accept."""
    settings = dict(lr=0.01, weight_decay=1e-5, momentum=0.9, loss_scale=1.0, nesterov=False,
                    weight_decay_filter="disable")
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        create_optimizer(_dense().trainable_params(), **{**settings, **arguments})


def test_wrong_parameter_groups_are_rejected():
    net = _dense()
    for bad in ([net.weight, "test"], [1, 2, 3, 4]):
        groups = [{"params": bad, "weight_decay": 0.01}, {"params": [net.bias], "lr": 0.0}]
        with pytest.raises((RuntimeError, TypeError, ValueError)):
            create_optimizer(groups, "momentum", lr=0.01, weight_decay_filter="auto")


def test_mindcvs_norm_and_bias_rule_exempts_names_containing_bias():
    class RelativeBias(nn.Cell):
        def __init__(self):
            super().__init__()
            self.dense = nn.Dense(4, 3)
            self.relative_position_bias_table = Parameter(Tensor(np.zeros((5, 3), np.float32)),
                                                          name="relative_position_bias_table")

    optimizer = create_optimizer(RelativeBias(), "adamw", weight_decay=0.05, weight_decay_filter="norm_and_bias")
    decays = {p.name: flag for p, flag in zip(optimizer.parameters, optimizer.decay_flags)}
    assert decays == {"dense.weight": True, "dense.bias": False, "relative_position_bias_table": False}


def test_layer_decay_none_is_mindcvs_off():
    optimizer = create_optimizer(_dense().trainable_params(), "adamw", lr=[0.1, 0.2], layer_decay=None)
    assert not optimizer.is_group_lr
