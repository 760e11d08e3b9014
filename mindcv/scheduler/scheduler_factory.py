"""``create_scheduler``: MindCV's named schedules, an optional linear warm-up followed by one ``dynamic_lr`` rule."""
import logging
from types import SimpleNamespace

from ..foundation.errors import InvalidValueError, UnknownNameError
from . import dynamic_lr

_logger = logging.getLogger(__name__)


def _either(stair_rule, refined_rule, phase):
    """The per-epoch rule with ``lr_epoch_stair``, the per-step one otherwise."""
    return stair_rule if phase.stair else refined_rule


def _constant(phase):
    return [phase.lr] * (phase.steps_per_epoch * phase.epochs)


def _cosine(phase):
    rule = _either(dynamic_lr.cosine_decay_lr, dynamic_lr.cosine_decay_refined_lr, phase)
    return rule(phase.decay_epochs, phase.min_lr, eta_max=phase.lr, steps_per_epoch=phase.steps_per_epoch,
                epochs=phase.epochs, num_cycles=phase.num_cycles, cycle_decay=phase.cycle_decay)


def _exponential(phase):
    rule = _either(dynamic_lr.exponential_lr, dynamic_lr.exponential_refined_lr, phase)
    return rule(phase.decay_rate, lr=phase.lr, steps_per_epoch=phase.steps_per_epoch, epochs=phase.epochs)


def _polynomial(phase):
    rule = _either(dynamic_lr.polynomial_lr, dynamic_lr.polynomial_refined_lr, phase)
    return rule(phase.epochs, phase.decay_rate, lr=phase.lr, steps_per_epoch=phase.steps_per_epoch,
                epochs=phase.epochs)


def _step(phase):
    return dynamic_lr.step_lr(phase.decay_epochs, phase.decay_rate, lr=phase.lr,
                              steps_per_epoch=phase.steps_per_epoch, epochs=phase.epochs)


def _multi_step(phase):
    return dynamic_lr.multi_step_lr(phase.milestones, phase.decay_rate, lr=phase.lr,
                                    steps_per_epoch=phase.steps_per_epoch, epochs=phase.epochs)


def _one_cycle(phase):
    """Up from ``lr / 25`` to ``lr`` in the first 30 % of the steps, then down to ``min_lr``."""
    div_factor = 25.0
    final_div_factor = phase.lr / div_factor / phase.min_lr if phase.min_lr > 0 else float("inf")
    return dynamic_lr.one_cycle_lr(phase.lr, div_factor=div_factor, final_div_factor=final_div_factor,
                                   steps_per_epoch=phase.steps_per_epoch, epochs=phase.epochs)


def _cyclic(phase):
    """``num_cycles`` triangles between ``min_lr`` and ``lr`` over the run."""
    half_cycle = max(1, int(phase.steps_per_epoch * phase.epochs / phase.num_cycles / 2))
    return dynamic_lr.cyclic_lr(phase.min_lr, phase.lr, half_cycle, steps_per_epoch=phase.steps_per_epoch,
                                epochs=phase.epochs)


# Rules of the phase after warm-up, each a function of that phase's settings (``epochs`` = epochs after warm-up).
_RULES = {
    "constant": _constant,
    "cosine_decay": _cosine,
    "warmup_cosine_decay": _cosine,
    "exponential_decay": _exponential,
    "polynomial_decay": _polynomial,
    "step_decay": _step,
    "multi_step_decay": _multi_step,
    "one_cycle": _one_cycle,
    "cyclic": _cyclic,
}

# Rules that shape the whole run themselves: they take no warm-up and no per-epoch stair.
_WHOLE_RUN = {"one_cycle", "cyclic"}

_USES_DECAY_EPOCHS = {"cosine_decay", "warmup_cosine_decay", "step_decay"}

SCHEDULERS = sorted(_RULES)


def _whole_epochs(name, value):
    if int(value) != value:
        raise InvalidValueError(f"{name} must be a whole number of epochs, got {value}.")
    return int(value)


def _warmup(lr, warmup_factor, warmup_epochs, steps_per_epoch, stair):
    """Linear ramp from ``warmup_factor * lr`` towards ``lr`` over ``warmup_epochs``."""
    if warmup_factor == 0 and stair:
        _logger.warning("warmup_factor 0 with lr_epoch_stair: the whole first epoch trains at lr 0 (try 0.01).")
    ramp = dynamic_lr.linear_lr if stair else dynamic_lr.linear_refined_lr
    return ramp(warmup_factor, 1.0, warmup_epochs, lr=lr, steps_per_epoch=steps_per_epoch, epochs=warmup_epochs)


def create_scheduler(steps_per_epoch, scheduler="constant", lr=0.01, min_lr=1e-6, warmup_epochs=3,
                     warmup_factor=0.0, decay_epochs=10, decay_rate=0.9, milestones=None, num_epochs=200,
                     num_cycles=1, cycle_decay=1.0, lr_epoch_stair=False):
    """The learning rate of every training step, ``num_epochs * steps_per_epoch`` values.

    Warm-up (first ``warmup_epochs``) rises linearly from ``warmup_factor * lr``; the chosen rule then runs
    from the end of warm-up. ``cosine_decay`` spans ``decay_epochs`` (repeated ``num_cycles`` times, each
    peak scaled by ``cycle_decay``) and holds ``min_lr`` afterwards; ``step_decay`` multiplies by
    ``decay_rate`` every ``decay_epochs``, ``multi_step_decay`` at each of ``milestones``;
    ``exponential_decay`` by ``decay_rate`` per epoch; ``polynomial_decay`` reaches 0 at the end with power
    ``decay_rate``. With ``lr_epoch_stair`` the rate changes once per epoch instead of every step (step and
    multi-step decay always do). Accepted names: ``SCHEDULERS``.
    """
    if scheduler not in _RULES:
        raise UnknownNameError("scheduler", scheduler, SCHEDULERS)
    if steps_per_epoch < 1 or num_epochs < 1:
        raise InvalidValueError(f"steps_per_epoch ({steps_per_epoch}) and num_epochs ({num_epochs}) must be positive.")
    if not 0 <= warmup_epochs <= num_epochs:
        raise InvalidValueError(f"warmup_epochs ({warmup_epochs}) must lie between 0 and num_epochs ({num_epochs}).")
    if scheduler in _USES_DECAY_EPOCHS and decay_epochs <= 0:
        raise InvalidValueError(f"The {scheduler} scheduler needs decay_epochs > 0, got {decay_epochs}.")
    if scheduler in _WHOLE_RUN and (warmup_epochs > 0 or lr_epoch_stair):
        raise InvalidValueError(f"The {scheduler} scheduler shapes the whole run itself: set warmup_epochs=0 and "
                                "lr_epoch_stair=False.")
    if warmup_epochs + decay_epochs > num_epochs and scheduler in ("cosine_decay", "warmup_cosine_decay"):
        _logger.warning("warmup_epochs + decay_epochs (%s) > num_epochs (%s): the cosine never reaches min_lr.",
                        warmup_epochs + decay_epochs, num_epochs)
    num_epochs = _whole_epochs("num_epochs", num_epochs)
    warmup_epochs = _whole_epochs("warmup_epochs", warmup_epochs)
    if scheduler in _USES_DECAY_EPOCHS:
        decay_epochs = _whole_epochs("decay_epochs", decay_epochs)

    warmup = _warmup(lr, warmup_factor, warmup_epochs, steps_per_epoch, lr_epoch_stair) if warmup_epochs else []
    phase = SimpleNamespace(lr=lr, min_lr=min_lr, decay_epochs=decay_epochs, decay_rate=decay_rate,
                            milestones=milestones or [], num_cycles=num_cycles, cycle_decay=cycle_decay,
                            stair=lr_epoch_stair, steps_per_epoch=steps_per_epoch, epochs=num_epochs - warmup_epochs)
    return warmup + _RULES[scheduler](phase)
