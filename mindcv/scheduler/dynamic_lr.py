"""Learning-rate schedules as per-step lists, with MindCV's names and PyTorch's ``lr_scheduler`` semantics.

Each function takes its PyTorch scheduler's positional arguments, plus keyword-only ``steps_per_epoch`` and
``epochs`` (the list holds ``steps_per_epoch * epochs`` rates) and the base rate (``lr``, or ``eta_max`` for the
cosine schedules). PyTorch's epoch schedulers change the rate once per epoch; each ``*_refined_lr`` twin moves
it at every step, with the epoch count taken as ``step / steps_per_epoch``. ``create_scheduler`` builds its
named schedules from these functions.
"""
import math
from bisect import bisect_right

from ..foundation.errors import UnknownNameError

__all__ = [
    "constant_lr",
    "cosine_annealing_lr",
    "cosine_annealing_warm_restarts_lr",
    "cosine_decay_lr",
    "cosine_decay_refined_lr",
    "cyclic_lr",
    "exponential_lr",
    "exponential_refined_lr",
    "linear_lr",
    "linear_refined_lr",
    "multi_step_lr",
    "one_cycle_lr",
    "polynomial_lr",
    "polynomial_refined_lr",
    "step_lr",
]


def _per_step(rate_at, steps_per_epoch, epochs, refined):
    """``rate_at(t)`` at every step, ``t`` the epochs elapsed: whole epochs, or fractional when ``refined``."""
    return [rate_at(i / steps_per_epoch if refined else i // steps_per_epoch)
            for i in range(steps_per_epoch * epochs)]


def _half_cosine(low, high, phase):
    """``high`` at phase 0, ``low`` at phase pi."""
    return low + 0.5 * (high - low) * (1.0 + math.cos(phase))


def constant_lr(factor, total_iters, *, lr, steps_per_epoch, epochs):
    """``lr * factor`` for the first ``total_iters`` epochs, then ``lr``."""
    return _per_step(lambda t: lr * factor if t < total_iters else lr, steps_per_epoch, epochs, refined=False)


def _linear(start_factor, end_factor, total_iters, lr, steps_per_epoch, epochs, refined):
    start, end = lr * start_factor, lr * end_factor
    return _per_step(lambda t: start + min(t, total_iters) / total_iters * (end - start), steps_per_epoch, epochs,
                     refined)


def linear_lr(start_factor, end_factor, total_iters, *, lr, steps_per_epoch, epochs):
    """From ``lr * start_factor`` to ``lr * end_factor`` in ``total_iters`` epochs, then held."""
    return _linear(start_factor, end_factor, total_iters, lr, steps_per_epoch, epochs, refined=False)


def linear_refined_lr(start_factor, end_factor, total_iters, *, lr, steps_per_epoch, epochs):
    return _linear(start_factor, end_factor, total_iters, lr, steps_per_epoch, epochs, refined=True)


def _polynomial(total_iters, power, lr, steps_per_epoch, epochs, refined):
    return _per_step(lambda t: lr * (1 - min(t, total_iters) / total_iters) ** power, steps_per_epoch, epochs,
                     refined)


def polynomial_lr(total_iters, power, *, lr, steps_per_epoch, epochs):
    """``lr * (1 - t / total_iters) ** power``, reaching 0 at ``total_iters`` epochs."""
    return _polynomial(total_iters, power, lr, steps_per_epoch, epochs, refined=False)


def polynomial_refined_lr(total_iters, power, *, lr, steps_per_epoch, epochs):
    return _polynomial(total_iters, power, lr, steps_per_epoch, epochs, refined=True)


def exponential_lr(gamma, *, lr, steps_per_epoch, epochs):
    """``lr * gamma ** t``."""
    return _per_step(lambda t: lr * gamma ** t, steps_per_epoch, epochs, refined=False)


def exponential_refined_lr(gamma, *, lr, steps_per_epoch, epochs):
    return _per_step(lambda t: lr * gamma ** t, steps_per_epoch, epochs, refined=True)


def step_lr(step_size, gamma, *, lr, steps_per_epoch, epochs):
    """``lr`` times ``gamma`` once every ``step_size`` epochs."""
    return _per_step(lambda t: lr * gamma ** math.floor(t / step_size), steps_per_epoch, epochs, refined=False)


def multi_step_lr(milestones, gamma, *, lr, steps_per_epoch, epochs):
    """``lr`` times ``gamma`` at each epoch of ``milestones``."""
    milestones = sorted(milestones)
    return _per_step(lambda t: lr * gamma ** bisect_right(milestones, t), steps_per_epoch, epochs, refined=False)


def _cosine_decay(decay_epochs, eta_min, eta_max, steps_per_epoch, epochs, num_cycles, cycle_decay, refined):
    cycle_steps = steps_per_epoch * decay_epochs

    def rate_at_step(step):
        cycle, within = divmod(step, cycle_steps)
        if cycle >= num_cycles:
            return eta_min
        t = within / steps_per_epoch if refined else within // steps_per_epoch
        return _half_cosine(eta_min, eta_max * cycle_decay ** cycle, math.pi * t / decay_epochs)

    return [rate_at_step(step) for step in range(steps_per_epoch * epochs)]


def cosine_decay_lr(decay_epochs, eta_min, *, eta_max, steps_per_epoch, epochs, num_cycles=1, cycle_decay=1.0):
    """Half cosines from ``eta_max * cycle_decay ** c`` down to ``eta_min``, each ``decay_epochs`` long, for
    cycles ``c < num_cycles``; ``eta_min`` after the last one."""
    return _cosine_decay(decay_epochs, eta_min, eta_max, steps_per_epoch, epochs, num_cycles, cycle_decay,
                         refined=False)


def cosine_decay_refined_lr(decay_epochs, eta_min, *, eta_max, steps_per_epoch, epochs, num_cycles=1, cycle_decay=1.0):
    return _cosine_decay(decay_epochs, eta_min, eta_max, steps_per_epoch, epochs, num_cycles, cycle_decay,
                         refined=True)


def cosine_annealing_lr(t_max, eta_min, *, eta_max, steps_per_epoch, epochs):
    """PyTorch's ``CosineAnnealingLR`` closed form: a cosine of period ``2 * t_max`` epochs between the bounds."""
    return _per_step(lambda t: _half_cosine(eta_min, eta_max, math.pi * t / t_max), steps_per_epoch, epochs,
                     refined=False)


def cosine_annealing_warm_restarts_lr(te, tm, eta_min, *, eta_max, steps_per_epoch, epochs):
    """SGDR: a half cosine over ``te`` epochs that restarts from ``eta_max`` with its period multiplied by ``tm``.

    The phase moves every step and restarts at the epoch that ends a period.
    """
    lrs, phase = [], 0.0
    period, restart_epoch = te, te
    for epoch in range(epochs):
        for _ in range(steps_per_epoch):
            lrs.append(_half_cosine(eta_min, eta_max, phase))
            phase = phase + math.pi / period / steps_per_epoch
            if phase >= math.pi:
                phase -= math.pi
        if epoch + 1 == restart_epoch:
            phase, period = 0.0, period * tm
            restart_epoch += period
    return lrs


def _cosine_anneal(start, end, fraction):
    return end + (start - end) / 2.0 * (math.cos(math.pi * fraction) + 1)


def _linear_anneal(start, end, fraction):
    return (end - start) * fraction + start


_ANNEALS = {"cos": _cosine_anneal, "linear": _linear_anneal}


def one_cycle_lr(max_lr, pct_start=0.3, anneal_strategy="cos", div_factor=25.0, final_div_factor=10000.0,
                 three_phase=False, *, steps_per_epoch, epochs):
    """PyTorch's ``OneCycleLR``: from ``max_lr / div_factor`` up to ``max_lr`` in the first ``pct_start`` of the
    steps, then down to ``max_lr / div_factor / final_div_factor``; with ``three_phase`` it first comes back to
    the initial rate, symmetrically, before the final descent."""
    if anneal_strategy not in _ANNEALS:
        raise UnknownNameError("anneal_strategy", anneal_strategy, _ANNEALS)
    anneal = _ANNEALS[anneal_strategy]
    initial = max_lr / div_factor
    final = initial / final_div_factor
    steps = steps_per_epoch * epochs
    peak = float(pct_start * steps) - 1
    # (last step of the phase, rate at its start, rate at its end); each phase starts where the previous ended.
    phases = [(peak, initial, max_lr)]
    if three_phase:
        phases.append((float(2 * pct_start * steps) - 2, max_lr, initial))
    phases.append((float(steps) - 1, phases[-1][2], final))

    def rate_at(step):
        begin = 0
        for end, start_lr, end_lr in phases[:-1]:
            if step <= end:
                return anneal(start_lr, end_lr, (step - begin) / (end - begin))
            begin = end
        end, start_lr, end_lr = phases[-1]
        return anneal(start_lr, end_lr, (step - begin) / (end - begin))

    return [rate_at(step) for step in range(steps)]


def cyclic_lr(base_lr, max_lr, step_size_up=2000, step_size_down=None, mode="triangular", gamma=1.0,
              scale_fn=None, scale_mode="cycle", *, steps_per_epoch, epochs):
    """PyTorch's ``CyclicLR``: triangles between ``base_lr`` and ``max_lr``, ``step_size_up`` steps up and
    ``step_size_down`` (default: the same) down. ``mode``: ``triangular`` (constant height), ``triangular2``
    (height halved every cycle) or ``exp_range`` (height times ``gamma ** step``); a ``scale_fn`` of the
    cycle number (``scale_mode='cycle'``) or of the step (``'iterations'``) replaces the mode."""
    if scale_fn is None:
        modes = {
            "triangular": (lambda cycle: 1.0, "cycle"),
            "triangular2": (lambda cycle: 1 / (2.0 ** (cycle - 1)), "cycle"),
            "exp_range": (lambda step: gamma ** step, "iterations"),
        }
        if mode not in modes:
            raise UnknownNameError("cyclic_lr mode", mode, modes)
        scale_fn, scale_mode = modes[mode]
    up = float(step_size_up)
    total = up + (float(step_size_down) if step_size_down is not None else up)
    up_ratio = up / total

    def rate_at(step):
        cycle = math.floor(1 + step / total)
        x = 1.0 + step / total - cycle
        height = (max_lr - base_lr) * (x / up_ratio if x <= up_ratio else (x - 1) / (up_ratio - 1))
        return base_lr + height * scale_fn(cycle if scale_mode == "cycle" else step)

    return [rate_at(step) for step in range(steps_per_epoch * epochs)]
