"""In PYNATIVE mode (MindSpore's default) a model from create_model runs its forward, the backward of a plain
``value_and_grad`` loop through it, create_loss's loss and create_optimizer's update, as compiled graphs: the same
logits, losses, gradients and updated weights as GRAPH mode or as op by op."""
import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

from mindcv.foundation.errors import InvalidValueError
from mindcv.models import create_model
from mindcv.engine import TrainStep
from mindcv.foundation import JIT_SWITCH
from mindcv.loss import create_loss
from mindcv.optim import create_optimizer

_IMAGES = np.random.default_rng(0).standard_normal((2, 3, 32, 32), dtype=np.float32)
_LABELS = np.array([1, 3], np.int32)


def _logits_and_gradients(weights):
    """Eval logits, then two AdamW training steps' loss and gradients (drop path active: each step draws new
    masks), and the model after them."""
    model = create_model("svt_small", num_classes=5, drop_path_rate=0.3)
    ms.load_param_into_net(model, weights, strict_load=True)
    model.set_train(False)
    logits = model(ms.Tensor(_IMAGES)).asnumpy()
    model.set_train(True)
    loss_fn = nn.CrossEntropyLoss()
    params = model.trainable_params()

    def forward(images, labels):
        return loss_fn(model(images), labels)

    grad_fn = ms.value_and_grad(forward, None, params)
    optimizer = create_optimizer(model, "adamw", lr=0.01, weight_decay=0.05)
    steps = []
    for _ in range(2):
        loss, grads = grad_fn(ms.Tensor(_IMAGES), ms.Tensor(_LABELS))
        steps.append((float(loss.asnumpy()), [g.asnumpy() for g in grads]))
        optimizer(grads)
    return model, logits, steps


def test_pynative_logits_and_gradients_equal_graph_modes(pynative_mode):
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    initial = create_model("svt_small", num_classes=5, drop_path_rate=0.3)

    def weights():
        return {p.name: ms.Parameter(p.data.copy(), name=p.name) for p in initial.get_parameters()}

    graph_model, graph_logits, graph_steps = _logits_and_gradients(weights())
    ms.set_context(mode=ms.PYNATIVE_MODE)
    model, logits, steps = _logits_and_gradients(weights())
    np.testing.assert_allclose(logits, graph_logits, rtol=0, atol=1e-5)
    assert [loss for loss, _ in steps] == pytest.approx([loss for loss, _ in graph_steps], abs=1e-5)
    assert steps[0][0] != steps[1][0]  # the second step drew other masks, in both modes
    for (_, grads), (_, graph_grads) in zip(steps, graph_steps):
        for grad, graph_grad in zip(grads, graph_grads):
            np.testing.assert_allclose(grad, graph_grad, rtol=1e-4, atol=1e-5)
    updated = 0
    for param, graph_param in zip(model.trainable_params(), graph_model.trainable_params()):
        np.testing.assert_allclose(param.asnumpy(), graph_param.asnumpy(), rtol=0, atol=1e-5)
        updated += not np.array_equal(param.asnumpy(), initial.parameters_dict()[param.name].asnumpy())
    assert updated > 0.9 * len(model.trainable_params())  # the update ran (a zero-gradient bias stays)


def test_the_optimizer_update_and_the_train_step_are_compiled_too():
    model = create_model("svt_small", num_classes=5)
    optimizer = create_optimizer(model, "adamw")
    assert hasattr(optimizer.construct, "__wrapped_by_jit__")
    step = TrainStep(nn.WithLossCell(model, nn.CrossEntropyLoss()), optimizer)
    assert hasattr(step.construct, "__wrapped_by_jit__")


def test_the_forward_is_compiled_unless_the_switch_is_off(monkeypatch):
    assert hasattr(create_model("svt_small", num_classes=5).construct, "__wrapped_by_jit__")
    monkeypatch.setenv(JIT_SWITCH, "0")
    assert not hasattr(create_model("svt_small", num_classes=5).construct, "__wrapped_by_jit__")
    monkeypatch.setenv(JIT_SWITCH, "off")
    with pytest.raises(InvalidValueError, match=r"MINDCV_JIT='off': use 1 .* or 0"):
        create_model("svt_small", num_classes=5)


def test_the_loss_is_compiled_with_the_value_and_gradient_of_op_by_op(pynative_mode, monkeypatch):
    rng = np.random.default_rng(1)
    logits = ms.Tensor(rng.standard_normal((4, 5)).astype(np.float32))
    labels = ms.Tensor(np.array([0, 1, 4, 2], np.int32))
    results = []
    for switch in ("1", "0"):
        monkeypatch.setenv(JIT_SWITCH, switch)
        loss_fn = create_loss("CE", label_smoothing=0.1)
        assert hasattr(loss_fn.construct, "__wrapped_by_jit__") == (switch == "1")
        value, grad = ms.value_and_grad(loss_fn)(logits, labels)
        results.append((float(value.asnumpy()), grad.asnumpy()))
    (compiled, compiled_grad), (op_by_op, op_by_op_grad) = results
    assert compiled == pytest.approx(op_by_op, rel=1e-6)
    np.testing.assert_allclose(compiled_grad, op_by_op_grad, rtol=1e-5, atol=1e-7)
    assert np.abs(compiled_grad).max() > 0
