import math

import numpy as np
import pytest

from mindspore import Tensor

from mindcv.loss import LOSSES, create_loss
from mindcv.foundation.errors import UnknownNameError

LOGITS = np.array([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]], np.float32)
LABELS = np.array([0, 1], np.int32)


def _log_softmax(row):
    return [x - math.log(sum(math.exp(v) for v in row)) for x in row]


def test_label_smoothed_cross_entropy_equals_hand_computed_value():
    eps, classes = 0.1, 3
    expected = 0.0
    for row, label in zip(LOGITS.tolist(), LABELS.tolist()):
        target = [eps / classes + (1 - eps) * (c == label) for c in range(classes)]
        expected -= sum(t * lp for t, lp in zip(target, _log_softmax(row)))
    expected /= len(LABELS)
    loss = create_loss("CE", label_smoothing=eps)(Tensor(LOGITS), Tensor(LABELS))
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_soft_labels_give_the_expected_cross_entropy():
    soft = np.array([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6]], np.float32)
    expected = -np.mean([sum(t * lp for t, lp in zip(s, _log_softmax(r))) for r, s in zip(LOGITS.tolist(),
                                                                                          soft.tolist())])
    assert float(create_loss("CE")(Tensor(LOGITS), Tensor(soft))) == pytest.approx(expected, rel=1e-6)


def test_one_hot_soft_labels_equal_hard_labels():
    one_hot = np.eye(3, dtype=np.float32)[LABELS]
    for name in LOSSES:
        loss = create_loss(name, label_smoothing=0.2)
        assert float(loss(Tensor(LOGITS), Tensor(one_hot))) == pytest.approx(
            float(loss(Tensor(LOGITS), Tensor(LABELS))), rel=1e-6)


def test_class_weights_and_reduction():
    weight = np.array([1.0, 2.0, 0.5], np.float32)
    per_sample = create_loss("CE", weight=weight, reduction="none")(Tensor(LOGITS), Tensor(LABELS)).asnumpy()
    expected = [-w * _log_softmax(r)[y] for r, y, w in zip(LOGITS.tolist(), LABELS.tolist(), weight[LABELS])]
    np.testing.assert_allclose(per_sample, expected, rtol=1e-6)
    summed = create_loss("CE", weight=weight, reduction="sum")(Tensor(LOGITS), Tensor(LABELS))
    assert float(summed) == pytest.approx(sum(expected), rel=1e-6)


def test_binary_cross_entropy_smooths_targets_as_mindcv():
    eps, classes = 0.2, 3
    targets = np.eye(classes)[LABELS] * (1 - eps) + eps / classes
    probs = 1 / (1 + np.exp(-LOGITS.astype(np.float64)))
    expected = -np.mean(targets * np.log(probs) + (1 - targets) * np.log(1 - probs))
    loss = create_loss("BCE", label_smoothing=eps)(Tensor(LOGITS), Tensor(LABELS))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_auxiliary_logits_count_with_aux_factor():
    main, aux, labels = Tensor(LOGITS), Tensor(LOGITS[:, ::-1].copy()), Tensor(LABELS)
    plain = create_loss("CE")
    combined = create_loss("CE", aux_factor=0.4)((main, aux), labels)
    assert float(combined) == pytest.approx(float(plain(main, labels)) + 0.4 * float(plain(aux, labels)), rel=1e-6)
    assert float(plain((main, aux), labels)) == pytest.approx(float(plain(main, labels)))


def test_unknown_loss_and_bad_arguments_are_rejected():
    with pytest.raises(UnknownNameError, match="Accepted: BCE, CE"):
        create_loss("focal")
    with pytest.raises(ValueError, match="reduction"):
        create_loss("CE", reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        create_loss("CE", label_smoothing=1.5)
