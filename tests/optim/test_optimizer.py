import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

from mindcv.foundation.errors import CheckpointError, InvalidValueError, UnknownNameError
from mindcv.models import create_model
from mindcv.optim import OPTIMIZERS, WEIGHT_DECAY_FILTERS, create_optimizer, optimizer_state
from mindcv.optim.param_groups import layer_ids

W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], np.float32)
B0 = np.array([0.1, -0.2], np.float32)
X = np.array([[1.0, 2.0, -1.0], [0.5, -1.5, 2.0], [-2.0, 0.0, 1.0], [1.0, 1.0, 1.0]], np.float32)
Y = np.array([0, 1, 1, 0], np.int32)


@pytest.fixture(scope="module")
def svt_small():
    return create_model("svt_small")


def _no_decay_names(optimizer):
    return {p.name for p, decays in zip(optimizer.parameters, optimizer.decay_flags) if not decays}


def _leaf(name):
    return name.rsplit(".", 1)[-1]


def test_norm_and_bias_exempts_exactly_twins_norms_and_biases(svt_small):
    params = svt_small.trainable_params()
    optimizer = create_optimizer(params, "adamw", weight_decay=0.05, weight_decay_filter="norm_and_bias")
    expected = {p.name for p in params if _leaf(p.name) in ("gamma", "beta", "bias")}
    assert len(expected) == 97 + 48 + 48
    assert _no_decay_names(optimizer) == expected
    decayed = {p.name for p in params} - expected
    assert all(_leaf(name) == "weight" for name in decayed)
    decays = [float(wd.asnumpy()) for p, wd in zip(optimizer.parameters, optimizer.weight_decay) if p.name in decayed]
    assert decays == pytest.approx([0.05] * len(decayed))


def test_auto_exempts_exactly_the_norm_parameters(svt_small):
    params = svt_small.trainable_params()
    optimizer = create_optimizer(params, "adamw", weight_decay=0.05, weight_decay_filter="auto")
    assert _no_decay_names(optimizer) == {p.name for p in params if _leaf(p.name) in ("gamma", "beta")}


def test_disable_decays_every_parameter(svt_small):
    optimizer = create_optimizer(svt_small, "adamw", weight_decay=0.05, weight_decay_filter="disable")
    assert _no_decay_names(optimizer) == set()


def test_a_model_cell_adds_its_no_weight_decay_names(svt_small):
    optimizer = create_optimizer(svt_small, "adamw", weight_decay=0.05, weight_decay_filter="norm_and_bias")
    pos_block = {p.name for p in svt_small.trainable_params() if p.name.startswith("pos_block.")}
    assert {n for n in pos_block if n.endswith(".weight")} <= _no_decay_names(optimizer)
    norm_bias = {p.name for p in svt_small.trainable_params() if _leaf(p.name) in ("gamma", "beta", "bias")}
    assert _no_decay_names(optimizer) == norm_bias | pos_block


def test_caller_parameter_groups_are_used_as_given():
    net = nn.Dense(3, 2)
    groups = [{"params": [net.weight], "weight_decay": 0.3}, {"params": [net.bias], "lr": 0.5}]
    optimizer = create_optimizer(groups, "momentum", lr=0.1, weight_decay_filter="norm_and_bias")
    assert optimizer.decay_flags == (True, False)
    assert float(optimizer.get_lr_parameter(net.bias).asnumpy()) == pytest.approx(0.5)


def test_unknown_filter_and_optimizer_names_list_the_accepted_ones():
    with pytest.raises(ValueError, match="Accepted: auto, disable, norm_and_bias"):
        create_optimizer(nn.Dense(3, 2), "adamw", weight_decay_filter="bias")
    with pytest.raises(UnknownNameError, match="Did you mean: .*adamw") as info:
        create_optimizer(nn.Dense(3, 2), "adamx")
    assert "Accepted: " + ", ".join(sorted(OPTIMIZERS)) in str(info.value)
    assert set(WEIGHT_DECAY_FILTERS) == {"disable", "auto", "norm_and_bias"}


def test_layer_decay_scales_twins_learning_rates_by_depth(svt_small):
    lr = [1.0, 0.5]
    optimizer = create_optimizer(svt_small, "adamw", lr=lr, weight_decay=0.05, layer_decay=0.5,
                                 weight_decay_filter="norm_and_bias")
    num_layers = 2 + 2 + 10 + 4
    schedules = {p.name: optimizer.get_lr_parameter(p).asnumpy() for p in optimizer.parameters}

    def scale(name):
        np.testing.assert_allclose(schedules[name], schedules[name][0] * np.array(lr), rtol=1e-6)
        return float(schedules[name][0])

    assert scale("head.weight") == pytest.approx(1.0)
    assert scale("norm.gamma") == pytest.approx(1.0)
    assert scale("blocks.3.3.attn.proj.weight") == pytest.approx(0.5)  # last block: depth L
    assert scale("blocks.0.0.norm1.gamma") == pytest.approx(0.5 ** num_layers)
    assert scale("blocks.2.0.mlp.fc1.bias") == pytest.approx(0.5 ** (num_layers - 4))
    assert scale("patch_embeds.0.proj.weight") == pytest.approx(0.5 ** (num_layers + 1))
    assert scale("patch_embeds.2.proj.weight") == pytest.approx(0.5 ** (num_layers + 1 - 4))


def _dense():
    net = nn.Dense(3, 2)
    net.weight.set_data(Tensor(W0))
    net.bias.set_data(Tensor(B0))
    return net


def _grads():
    """Gradient of the summed cross entropy of the fixed batch at the initial weights."""
    logits = X @ W0.T + B0
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    delta = probs - np.eye(2)[Y]
    return delta.T @ X, delta.sum(0)


def _train(optimizer_name, steps, loss_scale=1.0, **kwargs):
    net = _dense()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")

    class ScaledLoss(nn.Cell):
        def __init__(self):
            super().__init__()
            self.net = net

        def construct(self, x, y):
            return loss_fn(self.net(x), y) * loss_scale

    optimizer = create_optimizer(net, optimizer_name, loss_scale=loss_scale, **kwargs)
    step = nn.TrainOneStepCell(ScaledLoss(), optimizer)
    for _ in range(steps):
        step(Tensor(X), Tensor(Y))
    return net, optimizer


def test_adamw_first_step_has_bias_correction_and_decoupled_decay():
    lr, wd, eps = 0.1, 0.2, 1e-8
    net, _ = _train("adamw", 1, lr=lr, weight_decay=wd, eps=eps)
    grad_w, grad_b = _grads()
    # Bias-corrected first step: m_hat = g, v_hat = g**2, so the step is g / (|g| + eps).
    expected_w = W0 * (1 - lr * wd) - lr * grad_w / (np.abs(grad_w) + eps)
    expected_b = B0 * (1 - lr * wd) - lr * grad_b / (np.abs(grad_b) + eps)
    np.testing.assert_allclose(net.weight.asnumpy(), expected_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.bias.asnumpy(), expected_b, rtol=1e-5, atol=1e-6)


def test_lion_first_step_is_the_gradient_sign():
    net, _ = _train("lion", 1, lr=0.01, weight_decay=0.5, weight_decay_filter="norm_and_bias")
    grad_w, grad_b = _grads()
    np.testing.assert_allclose(net.weight.asnumpy(), W0 * (1 - 0.01 * 0.5) - 0.01 * np.sign(grad_w), rtol=1e-6)
    np.testing.assert_allclose(net.bias.asnumpy(), B0 - 0.01 * np.sign(grad_b), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_steps_with_a_schedule_and_undoes_the_loss_scale(name):
    schedule = [0.01, 0.02, 0.03]
    plain, optimizer = _train(name, 3, lr=schedule, weight_decay=0.01, weight_decay_filter="norm_and_bias")
    scaled, _ = _train(name, 3, loss_scale=64.0, lr=schedule, weight_decay=0.01, weight_decay_filter="norm_and_bias")
    assert int(optimizer.global_step.asnumpy()[0]) == 3
    assert not np.allclose(plain.weight.asnumpy(), W0)
    np.testing.assert_allclose(scaled.weight.asnumpy(), plain.weight.asnumpy(), rtol=1e-4, atol=1e-6)


def test_optimizer_state_is_restored_from_a_checkpoint(tmp_path):
    _, trained = _train("adamw", 2, lr=0.1, weight_decay=0.1)
    path = str(tmp_path / "opt.ckpt")
    ms.save_checkpoint(trained, path)
    restored = create_optimizer(_dense(), "adamw", lr=0.1, weight_decay=0.1, checkpoint_path=path)
    saved_state, restored_state = optimizer_state(trained), optimizer_state(restored)
    assert set(restored_state) == set(saved_state) and "global_step" in restored_state
    for name, param in restored_state.items():
        np.testing.assert_array_equal(param.asnumpy(), saved_state[name].asnumpy())
    assert int(restored.global_step.asnumpy()[0]) == 2


def test_restoring_from_a_missing_or_foreign_checkpoint_fails_loudly(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        create_optimizer(_dense(), "adamw", checkpoint_path=str(tmp_path / "nope.ckpt"))
    path = str(tmp_path / "momentum.ckpt")
    ms.save_checkpoint(_train("momentum", 1)[1], path)
    with pytest.raises(CheckpointError, match="adam_m"):
        create_optimizer(_dense(), "adamw", checkpoint_path=path)


def test_layer_ids_follow_the_models_coarse_group_matcher(svt_small):
    names = ["patch_embeds.0.proj.weight", "blocks.0.1.attn.qkv.weight", "pos_block.0.proj.0.weight",
             "patch_embeds.1.proj.weight", "blocks.3.0.mlp.fc1.bias", "norm.gamma", "head.weight"]
    layers, last = layer_ids(names, svt_small.group_matcher(coarse=True))
    assert [layers[n] for n in names] == [0, 1, 1, 2, 3, 4, 4] and last == 4  # groups numbered over these names


def test_layer_decay_needs_a_model_that_declares_its_layers(svt_small):
    with pytest.raises(InvalidValueError, match="group_matcher"):
        create_optimizer(svt_small.trainable_params(), "adamw", layer_decay=0.5)
