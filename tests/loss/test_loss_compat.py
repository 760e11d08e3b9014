"""``create_loss`` and the loss classes called with MindCV's names and arguments, as MindCV's
tests/modules/test_loss.py calls them; values checked against numpy formulas written here and against the values
MindCV's test lists."""
import importlib
import logging

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, nn

from mindcv.loss import (AsymmetricLossMultilabel, AsymmetricLossSingleLabel, BinaryCrossEntropySmooth,
                         CrossEntropySmooth, JSDCrossEntropy, create_loss)
from mindcv.optim import create_optimizer

RNG = np.random.RandomState(7)
N, C = 6, 5
LOGITS = RNG.randn(N, C).astype(np.float32) * 2
AUX = [RNG.randn(N, C).astype(np.float32), RNG.randn(N, C).astype(np.float32)]
LABELS = RNG.randint(0, C, N).astype(np.int32)
ONE_HOT = np.eye(C, dtype=np.float32)[LABELS]

# MindCV's ASL test inputs and the losses its test expects.
ASL_LOGITS = np.array([[0.38317937, 0.82873726, 0.8164871, 0.6443424],
                       [0.77863216, 0.17288171, 0.69345415, 0.26514006],
                       [0.14249292, 0.38524792, 0.97271717, 0.90531427]], np.float32)


@pytest.fixture(params=[ms.GRAPH_MODE, ms.PYNATIVE_MODE], ids=["graph", "pynative"])
def mode(request):
    ms.set_context(mode=request.param)
    yield request.param
    ms.set_context(mode=ms.GRAPH_MODE)


def _log_softmax(x):
    x = x.astype(np.float64)
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x.astype(np.float64))


def _reduce(terms, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": np.asarray}[reduction](terms)


def _ce(logits, eps, reduction):
    target = (1 - eps) * ONE_HOT + eps / C
    return _reduce(-(target * _log_softmax(logits)).sum(-1), reduction)


def _bce(logits, eps, reduction, weight=1.0):
    target = (1 - eps) * ONE_HOT + eps / C  # MindCV smooths binary targets towards 1/C, not 1/2
    return _reduce(-weight * (target * _log_sigmoid(logits) + (1 - target) * _log_sigmoid(-logits)), reduction)


# (name, reduction, label_smoothing, aux_factor, auxiliary heads) as MindCV's test_loss combines them: auxiliary
# heads exist only with aux_factor > 0.
CASES = [(name, reduction, eps, aux, heads) for name in ("CE", "BCE") for reduction in ("mean", "sum")
         for eps in (0.0, 0.1) for aux, heads in ((0.0, 0), (0.2, 1), (0.2, 2))]


@pytest.mark.parametrize("name,reduction,eps,aux_factor,heads", CASES)
def test_ce_and_bce_with_reduction_smoothing_and_auxiliary_heads(name, reduction, eps, aux_factor, heads):
    loss = create_loss(name=name, weight=None, reduction=reduction, label_smoothing=eps, aux_factor=aux_factor)
    labels = Tensor(LABELS) if name == "CE" else Tensor(ONE_HOT)  # MindCV's test feeds BCE one-hot rows
    formula = _ce if name == "CE" else _bce
    logits = (Tensor(LOGITS), *[Tensor(a) for a in AUX[:heads]]) if heads else Tensor(LOGITS)
    expected = formula(LOGITS, eps, reduction) + aux_factor * sum(formula(a, eps, reduction) for a in AUX[:heads])
    assert float(loss(logits, labels)) == pytest.approx(expected, rel=2e-5)


def test_bce_class_weight_and_reduction_none():
    weight = np.array([0.5, 1.0, 2.0, 0.0, 1.5], np.float32)
    loss = create_loss("BCE", weight=Tensor(weight), reduction="none", label_smoothing=0.1)
    np.testing.assert_allclose(loss(Tensor(LOGITS), Tensor(LABELS)).asnumpy(),
                               _bce(LOGITS, 0.1, "none", weight), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["CE", "BCE", "asl_single_label"])
def test_training_with_each_loss_lowers_it(name):
    """MindCV's test_loss/test_asl: ten Adam steps through the loss (here with an auxiliary head) lower it."""
    class TwoHeads(nn.Cell):
        def __init__(self):
            super().__init__()
            self.body = nn.Dense(8, 16, activation="relu")
            self.head, self.aux_head = nn.Dense(16, C), nn.Dense(16, C)

        def construct(self, x):
            features = self.body(x)
            return self.head(features), self.aux_head(features)

    network = TwoHeads()
    loss = create_loss(name=name, reduction="mean", label_smoothing=0.1, aux_factor=0.2)
    optimizer = create_optimizer(network.trainable_params(), "adam", lr=0.001, weight_decay=1e-7)
    step = nn.TrainOneStepCell(nn.WithLossCell(network, loss), optimizer)
    step.set_train()
    x = Tensor(RNG.randn(N, 8).astype(np.float32))
    labels = Tensor(ONE_HOT) if name == "BCE" else Tensor(LABELS)
    first = float(step(x, labels))
    for _ in range(10):
        last = float(step(x, labels))
    assert last < first


def test_asl_single_label_values_from_mindcvs_test(mode):
    loss = create_loss(name="asl_single_label", weight=None, reduction="mean", label_smoothing=0.1, aux_factor=0.0)
    assert float(loss(Tensor(ASL_LOGITS), Tensor([1, 1, 1], ms.int32))) == pytest.approx(1.1247127, rel=1e-5)
    zeros = Tensor(np.zeros((3, 5), np.float32))
    assert float(loss(zeros, Tensor(np.zeros(3, np.int32)))) == pytest.approx(1.1847522, rel=1e-5)


def _asl_single(logits, targets, eps, gamma_pos=1, gamma_neg=4, weight=1.0):
    """Per-sample loss; for one-hot targets the focus is (1 - p) ** gamma_pos on the target class and
    p ** gamma_neg elsewhere, and soft targets interpolate the base and the exponent."""
    log_p = _log_softmax(logits)
    p = np.exp(log_p)
    if np.isin(targets, (0, 1)).all():
        focus = np.where(targets == 1, (1 - p) ** gamma_pos, p ** gamma_neg)
    else:
        focus = (1 - p * targets - (1 - p) * (1 - targets)) ** (gamma_pos * targets + gamma_neg * (1 - targets))
    smoothed = targets * (1 - eps) + eps / logits.shape[-1]
    return (-weight * smoothed * log_p * focus).sum(-1)


def test_asl_single_label_closed_form_reductions_weight_and_soft_labels():
    weight = np.array([1.0, 0.5, 2.0, 1.0, 0.25], np.float32)
    per_sample = _asl_single(LOGITS, ONE_HOT, 0.2, weight=weight)
    none = create_loss("asl_single_label", weight=Tensor(weight), reduction="none", label_smoothing=0.2)
    np.testing.assert_allclose(none(Tensor(LOGITS), Tensor(LABELS)).asnumpy(), per_sample, rtol=2e-5)
    summed = AsymmetricLossSingleLabel(gamma_pos=2, gamma_neg=3, reduction="sum", smoothing=0.0)
    assert float(summed(Tensor(LOGITS), Tensor(LABELS))) == pytest.approx(
        _asl_single(LOGITS, ONE_HOT, 0.0, 2, 3).sum(), rel=2e-5)
    soft = np.abs(RNG.randn(N, C)).astype(np.float32)
    soft /= soft.sum(-1, keepdims=True)
    mean = create_loss("asl_single_label", label_smoothing=0.1)
    assert float(mean(Tensor(LOGITS), Tensor(soft))) == pytest.approx(_asl_single(LOGITS, soft, 0.1).mean(), rel=2e-5)


def test_asl_multi_label_values_from_mindcvs_test(mode, caplog):
    loss = create_loss(name="asl_multi_label", weight=None, reduction="mean", label_smoothing=0.1, aux_factor=0.0)
    labels = Tensor([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], ms.int32)
    assert float(loss(Tensor(ASL_LOGITS), labels)) == pytest.approx(1.8657642, rel=1e-5)
    zeros = Tensor(np.zeros((3, 5), np.float32))
    assert float(loss(zeros, Tensor(np.zeros((3, 5), np.int32)))) == pytest.approx(0.3677258, rel=1e-5)
    with caplog.at_level(logging.WARNING, logger="mindcv.loss.loss_factory"):
        create_loss("asl_multi_label", reduction="mean", label_smoothing=0.1)
    assert "reduction='mean' and label_smoothing=0.1 not applied" in caplog.text


def _asl_multi(logits, targets, gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-8):
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    p_neg = np.minimum(1 - p + clip, 1.0) if clip > 0 else 1 - p
    log_likelihood = targets * np.log(np.maximum(p, eps)) + (1 - targets) * np.log(np.maximum(p_neg, eps))
    p_true = p * targets + p_neg * (1 - targets)
    return -log_likelihood * (1 - p_true) ** (gamma_pos * targets + gamma_neg * (1 - targets))


def test_asl_multi_label_closed_form_and_class_reductions():
    multi_hot = (RNG.rand(N, C) > 0.6).astype(np.float32)
    terms = _asl_multi(LOGITS, multi_hot)
    assert float(create_loss("asl_multi_label", reduction="sum")(Tensor(LOGITS), Tensor(multi_hot))) == \
        pytest.approx(terms.sum(), rel=2e-5)
    mean = AsymmetricLossMultilabel(reduction="mean")
    assert float(mean(Tensor(LOGITS), Tensor(multi_hot))) == pytest.approx(terms.mean(), rel=2e-5)
    # gamma_pos=0 (the ASL paper's setting) keeps the focusing of the negatives.
    plain_positives = AsymmetricLossMultilabel(gamma_neg=2, gamma_pos=0, clip=0.0, reduction="none")
    np.testing.assert_allclose(plain_positives(Tensor(LOGITS), Tensor(multi_hot)).asnumpy(),
                               _asl_multi(LOGITS, multi_hot, 2, 0, 0.0), rtol=2e-5, atol=1e-7)


def test_jsd_cross_entropy_in_training_and_evaluation():
    splits, alpha, eps = 3, 12, 0.1
    logits = RNG.randn(3 * 2, C).astype(np.float32)
    labels = LABELS[:6]
    log_p = _log_softmax(logits).reshape(splits, 2, C)
    p = np.exp(log_p)
    log_m = np.log(np.clip(p.mean(0), 1e-7, 1))
    clean = (-((1 - eps) * np.eye(C)[labels[:2]] + eps / C) * log_p[0]).sum(-1).mean()
    expected = clean + alpha * (p * (log_p - log_m)).sum() / 2 / splits
    loss = create_loss("jsd", label_smoothing=eps)
    assert isinstance(loss, JSDCrossEntropy)
    loss.set_train(True)
    assert float(loss(Tensor(logits), Tensor(labels))) == pytest.approx(expected, rel=2e-5)
    loss.set_train(False)
    evaluation = (-((1 - eps) * np.eye(C)[labels] + eps / C) * _log_softmax(logits)).sum(-1).mean()
    assert float(loss(Tensor(logits), Tensor(labels))) == pytest.approx(evaluation, rel=2e-5)


def test_mindcvs_module_paths_and_constructor_keywords():
    for module, names in {"asymmetric": ["AsymmetricLossMultilabel", "AsymmetricLossSingleLabel"],
                          "binary_cross_entropy_smooth": ["BinaryCrossEntropySmooth"],
                          "cross_entropy_smooth": ["CrossEntropySmooth"], "jsd": ["JSDCrossEntropy"],
                          "loss_factory": ["create_loss"]}.items():
        imported = importlib.import_module(f"mindcv.loss.{module}")
        for name in names:
            assert getattr(imported, name) is getattr(importlib.import_module("mindcv.loss"), name)
    ce = CrossEntropySmooth(smoothing=0.1, aux_factor=0.0, reduction="mean", weight=None)
    assert float(ce(Tensor(LOGITS), Tensor(LABELS))) == pytest.approx(_ce(LOGITS, 0.1, "mean"), rel=2e-5)
    pos_weight = np.full(C, 2.0, np.float32)
    bce = BinaryCrossEntropySmooth(smoothing=0.0, aux_factor=0.0, reduction="mean", weight=None,
                                   pos_weight=Tensor(pos_weight))
    expected = -np.mean(2.0 * ONE_HOT * _log_sigmoid(LOGITS) + (1 - ONE_HOT) * _log_sigmoid(-LOGITS))
    assert float(bce(Tensor(LOGITS), Tensor(ONE_HOT))) == pytest.approx(expected, rel=2e-5)
    JSDCrossEntropy(num_splits=3, alpha=12, smoothing=0.1, weight=None, reduction="mean", aux_factor=0.0)


def test_names_are_case_insensitive_and_unknown_ones_list_the_accepted():
    assert isinstance(create_loss("ASL_Single_Label"), AsymmetricLossSingleLabel)
    assert isinstance(create_loss("bce"), BinaryCrossEntropySmooth)
    with pytest.raises(ValueError, match="Accepted: BCE, CE, asl_multi_label, asl_single_label, jsd"):
        create_loss("focal")
