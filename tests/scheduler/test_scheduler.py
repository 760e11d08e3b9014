import math

import pytest

from mindcv.scheduler import SCHEDULERS, create_scheduler
from mindcv.foundation.errors import UnknownNameError

S = 10  # steps per epoch


def test_every_scheduler_returns_one_rate_per_step():
    for name in SCHEDULERS:
        warmup = 0 if name in ("one_cycle", "cyclic") else 2
        lrs = create_scheduler(S, name, lr=0.1, warmup_epochs=warmup, decay_epochs=3, milestones=[2],
                               num_epochs=7)
        assert len(lrs) == 7 * S, name
        assert all(math.isfinite(x) and x >= 0 for x in lrs), name


def test_warmup_cosine_matches_closed_form():
    lr, min_lr, warmup, decay, factor = 1e-3, 1e-5, 5, 295, 1e-3
    lrs = create_scheduler(S, "warmup_cosine_decay", lr=lr, min_lr=min_lr, warmup_epochs=warmup,
                           warmup_factor=factor, decay_epochs=decay, num_epochs=300)
    for i in (0, 1, 7, 49):
        assert lrs[i] == pytest.approx(lr * (factor + (1 - factor) * (i / S) / warmup), rel=1e-12)
    for i in (50, 51, 777, 1500, 2999):
        t = (i - warmup * S) / S
        assert lrs[i] == pytest.approx(min_lr + (lr - min_lr) * (1 + math.cos(math.pi * t / decay)) / 2, rel=1e-12)
    assert lrs[50] == pytest.approx(lr)


def test_cosine_runs_over_decay_epochs_then_holds_min_lr():
    lrs = create_scheduler(S, "cosine_decay", lr=1.0, min_lr=0.1, warmup_epochs=0, decay_epochs=4, num_epochs=8)
    assert lrs[2 * S] == pytest.approx(0.55)  # half way through the 4 decay epochs
    assert lrs[4 * S:] == [0.1] * (4 * S)


def test_cosine_cycles_restart_from_decayed_peak():
    lrs = create_scheduler(S, "cosine_decay", lr=1.0, min_lr=0.0, warmup_epochs=0, decay_epochs=2,
                           num_epochs=6, num_cycles=2, cycle_decay=0.5)
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[2 * S] == pytest.approx(0.5)
    assert lrs[2 * S + 5] == pytest.approx(0.25 * (1 + math.cos(math.pi * 0.25)))
    assert lrs[4 * S:] == [0.0] * (2 * S)


def test_epoch_stair_keeps_the_rate_within_an_epoch():
    lrs = create_scheduler(S, "warmup_cosine_decay", lr=1.0, min_lr=0.0, warmup_epochs=2, warmup_factor=0.1,
                           decay_epochs=4, num_epochs=6, lr_epoch_stair=True)
    assert lrs[:S] == [0.1] * S
    assert lrs[S:2 * S] == [pytest.approx(0.55)] * S
    assert lrs[3 * S + 9] == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


def test_step_multistep_exponential_polynomial_follow_mindcv_formulas():
    step = create_scheduler(S, "step_decay", lr=1.0, warmup_epochs=1, decay_epochs=2, decay_rate=0.5, num_epochs=8)
    assert [step[S + j * S + 3] for j in range(7)] == [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]
    multi = create_scheduler(S, "multi_step_decay", lr=1.0, warmup_epochs=0, decay_rate=0.1, milestones=[2, 5],
                             num_epochs=7)
    assert [multi[e * S + 9] for e in range(7)] == pytest.approx([1, 1, 0.1, 0.1, 0.1, 0.01, 0.01])
    expo = create_scheduler(S, "exponential_decay", lr=2.0, warmup_epochs=0, decay_rate=0.9, num_epochs=3)
    assert expo[13] == pytest.approx(2.0 * 0.9 ** 1.3)
    poly = create_scheduler(S, "polynomial_decay", lr=2.0, warmup_epochs=1, decay_rate=2.0, num_epochs=5)
    assert poly[S + 15] == pytest.approx(2.0 * (1 - 1.5 / 4) ** 2)


def test_one_cycle_and_cyclic_shapes():
    one = create_scheduler(S, "one_cycle", lr=1.0, min_lr=1e-4, warmup_epochs=0, num_epochs=10)
    assert one[0] == pytest.approx(1.0 / 25)
    assert max(one) == pytest.approx(1.0, rel=1e-3)
    assert one[-1] == pytest.approx(1e-4)
    cyc = create_scheduler(S, "cyclic", lr=1.0, min_lr=0.2, warmup_epochs=0, num_epochs=4, num_cycles=2)
    assert (cyc[0], cyc[5], cyc[10], cyc[15], cyc[20]) == pytest.approx((0.2, 0.6, 1.0, 0.6, 0.2))


def test_unknown_scheduler_lists_accepted_names():
    with pytest.raises(UnknownNameError, match="cosine_decay") as info:
        create_scheduler(S, "cosine")
    assert "Accepted: " + ", ".join(SCHEDULERS) in str(info.value)


def test_whole_run_schedulers_reject_warmup():
    with pytest.raises(ValueError, match="warmup_epochs=0"):
        create_scheduler(S, "one_cycle", warmup_epochs=3)
