"""``mindcv.scheduler.dynamic_lr`` called as MindCV's tests/modules/test_scheduler.py calls it (same arguments),
checked against closed forms written here in numpy and against values MindCV's test lists."""
import numpy as np
import pytest

from mindcv.foundation.errors import InvalidValueError, UnknownNameError
from mindcv.scheduler import create_scheduler, dynamic_lr

S, E = 2, 10  # MindCV's test: 2 steps per epoch, 10 epochs
STEP = np.arange(S * E)
EPOCH = STEP // S  # whole epochs elapsed at each step
FRACTION = STEP / S  # fractional epochs elapsed at each step


def _close(lrs, expected):
    assert len(lrs) == len(expected)
    np.testing.assert_allclose(lrs, expected, rtol=1e-12, atol=1e-15)


def test_constant_lr_scales_the_first_total_iters_epochs():
    _close(dynamic_lr.constant_lr(0.5, 4, lr=0.05, steps_per_epoch=S, epochs=E), np.where(EPOCH < 4, 0.025, 0.05))


@pytest.mark.parametrize("refined", [False, True])
def test_linear_lr_ramps_from_start_to_end_factor(refined):
    t = FRACTION if refined else EPOCH
    rule = dynamic_lr.linear_refined_lr if refined else dynamic_lr.linear_lr
    expected = 0.05 * (0.5 + 0.5 * np.minimum(t, 4) / 4)
    _close(rule(0.5, 1.0, 4, lr=0.05, steps_per_epoch=S, epochs=E), expected)
    assert expected[1] == pytest.approx(0.028125 if refined else 0.025)  # MindCV's listed value


@pytest.mark.parametrize("refined", [False, True])
def test_polynomial_lr_reaches_zero_at_total_iters(refined):
    t = FRACTION if refined else EPOCH
    rule = dynamic_lr.polynomial_refined_lr if refined else dynamic_lr.polynomial_lr
    _close(rule(4, 1.0, lr=0.05, steps_per_epoch=S, epochs=E), 0.05 * (1 - np.minimum(t, 4) / 4))
    _close(rule(4, 2.0, lr=0.05, steps_per_epoch=S, epochs=E), 0.05 * (1 - np.minimum(t, 4) / 4) ** 2)


@pytest.mark.parametrize("refined", [False, True])
def test_exponential_lr_multiplies_by_gamma_per_epoch(refined):
    t = FRACTION if refined else EPOCH
    rule = dynamic_lr.exponential_refined_lr if refined else dynamic_lr.exponential_lr
    lrs = rule(0.9, lr=0.05, steps_per_epoch=S, epochs=E)
    _close(lrs, 0.05 * 0.9 ** t)
    assert lrs[19] == pytest.approx(0.018376967361843143 if refined else 0.01937102445, rel=1e-12)


def test_step_and_multi_step_lr_decay_at_epoch_boundaries():
    _close(dynamic_lr.step_lr(3, 0.5, lr=0.05, steps_per_epoch=S, epochs=E), 0.05 * 0.5 ** (EPOCH // 3))
    multi = dynamic_lr.multi_step_lr([6, 3], 0.5, lr=0.05, steps_per_epoch=S, epochs=E)  # unsorted milestones
    _close(multi, 0.05 * 0.5 ** ((EPOCH >= 3).astype(int) + (EPOCH >= 6)))
    assert multi[-1] == 0.0125


@pytest.mark.parametrize("refined", [False, True])
def test_cosine_decay_lr_cycles_then_holds_eta_min(refined):
    decay, cycles, cycle_decay = 3, 2, 0.5
    rule = dynamic_lr.cosine_decay_refined_lr if refined else dynamic_lr.cosine_decay_lr
    lrs = rule(decay, 0.1, eta_max=2.0, steps_per_epoch=S, epochs=E, num_cycles=cycles, cycle_decay=cycle_decay)
    cycle, within = STEP // (S * decay), STEP % (S * decay)
    t = within / S if refined else within // S
    peak = 2.0 * cycle_decay ** cycle
    expected = np.where(cycle < cycles, 0.1 + (peak - 0.1) * (1 + np.cos(np.pi * t / decay)) / 2, 0.1)
    _close(lrs, expected)
    # A run shorter than the cycles is cut, not stretched.
    short = rule(decay, 0.1, eta_max=2.0, steps_per_epoch=S, epochs=4, num_cycles=cycles, cycle_decay=cycle_decay)
    assert short == lrs[:4 * S]


def test_cosine_annealing_lr_is_pytorchs_closed_form():
    lrs = dynamic_lr.cosine_annealing_lr(5, 0.0, eta_max=1.0, steps_per_epoch=S, epochs=15)
    epoch = np.arange(S * 15) // S
    _close(lrs, (1 + np.cos(np.pi * epoch / 5)) / 2)
    assert lrs[2] == pytest.approx(0.9045084971874737) and lrs[10] == pytest.approx(0.0, abs=1e-15)


def test_cosine_annealing_warm_restarts_lr_restarts_with_longer_periods():
    lrs = dynamic_lr.cosine_annealing_warm_restarts_lr(5, 2, 0.0, eta_max=1.0, steps_per_epoch=S, epochs=15)
    # Periods of 5 then 10 epochs; within one, the phase runs from 0 towards pi step by step.
    step = np.arange(S * 15)
    start, period = np.where(step < 5 * S, 0, 5 * S), np.where(step < 5 * S, 5 * S, 10 * S)
    np.testing.assert_allclose(lrs, (1 + np.cos(np.pi * (step - start) / period)) / 2, rtol=1e-12, atol=1e-15)
    assert lrs[9] == pytest.approx(0.024471741852423234) and lrs[10] == 1.0
    assert lrs[29] == pytest.approx(0.00615582970243117)


def _one_cycle_expected(steps, max_lr, pct, div, final_div, three_phase, cos=True):
    initial = max_lr / div
    phases = [(pct * steps - 1, initial, max_lr)]
    if three_phase:
        phases.append((2 * pct * steps - 2, max_lr, initial))
    phases.append((steps - 1, phases[-1][2], initial / final_div))
    expected, begin = np.zeros(steps), 0.0
    step = np.arange(steps)
    for index, (end, start_lr, end_lr) in enumerate(phases):
        inside = (step > begin if index else step >= 0) & ((step <= end) if index < len(phases) - 1 else True)
        fraction = (step - begin) / (end - begin)
        shape = (1 - np.cos(np.pi * fraction)) / 2 if cos else fraction
        expected = np.where(inside, start_lr + (end_lr - start_lr) * shape, expected)
        begin = end
    return expected


def test_one_cycle_lr_matches_mindcvs_values():
    lrs = dynamic_lr.one_cycle_lr(2.5, 0.3, "cos", 25.0, 10000.0, False, steps_per_epoch=S, epochs=15)
    np.testing.assert_allclose(lrs, _one_cycle_expected(30, 2.5, 0.3, 25.0, 1e4, False), rtol=1e-12, atol=1e-15)
    assert (lrs[0], lrs[8], lrs[15], lrs[29]) == pytest.approx((0.1, 2.5, 1.8750025, 1e-05), rel=1e-12)


def test_one_cycle_lr_three_phase_and_linear_anneal():
    lrs = dynamic_lr.one_cycle_lr(2.0, 0.25, "linear", 10.0, 100.0, True, steps_per_epoch=4, epochs=10)
    np.testing.assert_allclose(lrs, _one_cycle_expected(40, 2.0, 0.25, 10.0, 100.0, True, cos=False), rtol=1e-12)
    assert lrs[9] == pytest.approx(2.0) and lrs[18] == pytest.approx(0.2) and lrs[-1] == pytest.approx(0.002)
    with pytest.raises(UnknownNameError, match="Accepted: cos, linear"):
        dynamic_lr.one_cycle_lr(2.0, anneal_strategy="cosine", steps_per_epoch=1, epochs=10)


@pytest.mark.parametrize("mode", ["triangular", "triangular2", "exp_range"])
def test_cyclic_lr_triangles(mode):
    base, top, up, gamma = 0.1, 2.5, 5, 0.97
    lrs = dynamic_lr.cyclic_lr(base, top, up, up, mode, gamma, None, "cycle", steps_per_epoch=S, epochs=15)
    step = np.arange(S * 15)
    cycle = np.floor(1 + step / (2 * up))
    triangle = np.maximum(0, 1 - np.abs(step / up - 2 * cycle + 1))  # the CLR paper's formula
    scale = {"triangular": 1.0, "triangular2": 0.5 ** (cycle - 1), "exp_range": gamma ** step}[mode]
    np.testing.assert_allclose(lrs, base + (top - base) * triangle * scale, rtol=1e-12, atol=1e-15)
    if mode == "triangular":
        assert (lrs[1], lrs[5], lrs[10]) == pytest.approx((0.58, 2.5, 0.1))  # MindCV's listed values


def test_cyclic_lr_custom_scale_fn_and_unequal_halves():
    lrs = dynamic_lr.cyclic_lr(0.0, 1.0, 2, 6, scale_fn=lambda step: 0.5, scale_mode="iterations",
                               steps_per_epoch=4, epochs=2)
    assert lrs == pytest.approx([0.0, 0.25, 0.5, 0.5 * 5 / 6, 0.5 * 4 / 6, 0.5 * 3 / 6, 0.5 * 2 / 6, 0.5 * 1 / 6])
    with pytest.raises(UnknownNameError, match="exp_range"):
        dynamic_lr.cyclic_lr(0.0, 1.0, mode="sawtooth", steps_per_epoch=1, epochs=1)


def test_create_scheduler_is_warmup_then_the_dynamic_lr_rule():
    kw = dict(steps_per_epoch=3, epochs=8)
    combined = create_scheduler(3, "warmup_cosine_decay", lr=0.4, min_lr=0.01, warmup_epochs=2, warmup_factor=0.1,
                                decay_epochs=5, num_epochs=10, num_cycles=2, cycle_decay=0.5)
    assert combined == (dynamic_lr.linear_refined_lr(0.1, 1.0, 2, lr=0.4, steps_per_epoch=3, epochs=2)
                        + dynamic_lr.cosine_decay_refined_lr(5, 0.01, eta_max=0.4, num_cycles=2, cycle_decay=0.5,
                                                             **kw))
    stair = create_scheduler(3, "exponential_decay", lr=0.4, warmup_epochs=2, warmup_factor=0.1, decay_rate=0.8,
                             num_epochs=10, lr_epoch_stair=True)
    assert stair == (dynamic_lr.linear_lr(0.1, 1.0, 2, lr=0.4, steps_per_epoch=3, epochs=2)
                     + dynamic_lr.exponential_lr(0.8, lr=0.4, **kw))
    one_cycle = create_scheduler(3, "one_cycle", lr=0.4, min_lr=0.0, warmup_epochs=0, num_epochs=10)
    assert one_cycle[-1] == 0.0 and max(one_cycle) == pytest.approx(0.4, rel=1e-3)


def test_create_scheduler_takes_whole_epochs_only():
    with pytest.raises(InvalidValueError, match="warmup_epochs must be a whole number"):
        create_scheduler(3, "cosine_decay", warmup_epochs=1.5, num_epochs=10)
    assert create_scheduler(3, "constant", lr=0.5, warmup_epochs=0, num_epochs=2.0) == [0.5] * 6
