"""Per-step learning-rate lists with MindCV's semantics: an optional linear warm-up, then one decay rule."""
import bisect
import logging
import math

from ..foundation.errors import InvalidValueError, UnknownNameError

_logger = logging.getLogger(__name__)


def _epoch_position(step, steps_per_epoch, stair):
    """Fractional epochs elapsed at ``step``, or whole epochs when the rate changes once per epoch."""
    return step // steps_per_epoch if stair else step / steps_per_epoch


def _warmup(lr, warmup_factor, warmup_epochs, steps_per_epoch, stair):
    """Linear ramp from ``warmup_factor * lr`` towards ``lr`` over ``warmup_epochs``."""
    return [
        lr * (warmup_factor + (1.0 - warmup_factor) * _epoch_position(i, steps_per_epoch, stair) / warmup_epochs)
        for i in range(int(warmup_epochs * steps_per_epoch))
    ]


def _cosine(epoch, cfg):
    """Cosine from ``lr`` to ``min_lr`` over ``decay_epochs``, repeated ``num_cycles`` times, then ``min_lr``.

    Cycle ``c`` starts from ``lr * cycle_decay**c``.
    """
    cycle = int(epoch // cfg["decay_epochs"])
    if cycle >= cfg["num_cycles"]:
        return cfg["min_lr"]
    peak = cfg["lr"] * cfg["cycle_decay"] ** cycle
    t = epoch - cycle * cfg["decay_epochs"]
    return cfg["min_lr"] + 0.5 * (peak - cfg["min_lr"]) * (1.0 + math.cos(math.pi * t / cfg["decay_epochs"]))


def _step(epoch, cfg):
    return cfg["lr"] * cfg["decay_rate"] ** (int(epoch) // cfg["decay_epochs"])


def _multi_step(epoch, cfg):
    return cfg["lr"] * cfg["decay_rate"] ** bisect.bisect_right(sorted(cfg["milestones"]), int(epoch))


def _exponential(epoch, cfg):
    return cfg["lr"] * cfg["decay_rate"] ** epoch


def _polynomial(epoch, cfg):
    main_epochs = cfg["main_epochs"]
    return cfg["lr"] * (1.0 - min(epoch, main_epochs) / main_epochs) ** cfg["decay_rate"]


def _constant(epoch, cfg):
    return cfg["lr"]


# Rules of the decay phase, as functions of the epochs elapsed since warm-up ended.
_EPOCH_RULES = {
    "constant": _constant,
    "cosine_decay": _cosine,
    "warmup_cosine_decay": _cosine,
    "exponential_decay": _exponential,
    "step_decay": _step,
    "multi_step_decay": _multi_step,
    "polynomial_decay": _polynomial,
}

_USES_DECAY_EPOCHS = {"cosine_decay", "warmup_cosine_decay", "step_decay"}

# Step decay and multi-step decay change at epoch boundaries whatever lr_epoch_stair says.
_ALWAYS_STAIR = {"step_decay", "multi_step_decay"}


def _one_cycle(cfg, num_steps):
    """PyTorch's OneCycleLR (cosine, 30 % rising): ``lr / 25`` up to ``lr``, then down to ``min_lr``."""
    initial = cfg["lr"] / 25.0
    peak_step = 0.3 * num_steps - 1
    lrs = []
    for i in range(num_steps):
        if i <= peak_step:
            start, end, pct = initial, cfg["lr"], i / peak_step
        else:
            start, end, pct = cfg["lr"], cfg["min_lr"], (i - peak_step) / (num_steps - 1 - peak_step)
        lrs.append(end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * pct)))
    return lrs


def _cyclic(cfg, num_steps):
    """PyTorch's triangular CyclicLR between ``min_lr`` and ``lr``, ``num_cycles`` full cycles."""
    half_cycle = max(1, int(num_steps / cfg["num_cycles"] / 2))
    lrs = []
    for i in range(num_steps):
        x = (i % (2 * half_cycle)) / half_cycle
        rise = x if x <= 1.0 else 2.0 - x
        lrs.append(cfg["min_lr"] + (cfg["lr"] - cfg["min_lr"]) * rise)
    return lrs


# Rules that shape the whole run themselves: they take no warm-up and no per-epoch stair.
_STEP_RULES = {
    "one_cycle": _one_cycle,
    "cyclic": _cyclic,
}

SCHEDULERS = sorted([*_EPOCH_RULES, *_STEP_RULES])


def create_scheduler(steps_per_epoch, scheduler="constant", lr=0.01, min_lr=1e-6, warmup_epochs=3,
                     warmup_factor=0.0, decay_epochs=10, decay_rate=0.9, milestones=None, num_epochs=200,
                     num_cycles=1, cycle_decay=1.0, lr_epoch_stair=False):
    """The learning rate of every training step, ``num_epochs * steps_per_epoch`` values.

    Warm-up (first ``warmup_epochs``) rises linearly from ``warmup_factor * lr``; the chosen rule then runs
    from the end of warm-up. ``cosine_decay`` spans ``decay_epochs`` (repeated ``num_cycles`` times, each
    peak scaled by ``cycle_decay``) and holds ``min_lr`` afterwards. With ``lr_epoch_stair`` the rate
    changes once per epoch instead of every step. Accepted names: ``SCHEDULERS``.
    """
    if scheduler not in SCHEDULERS:
        raise UnknownNameError("scheduler", scheduler, SCHEDULERS)
    if steps_per_epoch < 1 or num_epochs < 1:
        raise InvalidValueError(f"steps_per_epoch ({steps_per_epoch}) and num_epochs ({num_epochs}) must be positive.")
    if not 0 <= warmup_epochs <= num_epochs:
        raise InvalidValueError(f"warmup_epochs ({warmup_epochs}) must lie between 0 and num_epochs ({num_epochs}).")
    if scheduler in _USES_DECAY_EPOCHS and decay_epochs <= 0:
        raise InvalidValueError(f"The {scheduler} scheduler needs decay_epochs > 0, got {decay_epochs}.")
    if warmup_epochs + decay_epochs > num_epochs and scheduler in ("cosine_decay", "warmup_cosine_decay"):
        _logger.warning("warmup_epochs + decay_epochs (%s) > num_epochs (%s): the cosine never reaches min_lr.",
                        warmup_epochs + decay_epochs, num_epochs)

    num_steps = num_epochs * steps_per_epoch
    main_epochs = num_epochs - warmup_epochs
    cfg = dict(lr=lr, min_lr=min_lr, decay_epochs=decay_epochs, decay_rate=decay_rate,
               milestones=milestones or [], num_cycles=num_cycles, cycle_decay=cycle_decay, main_epochs=main_epochs)

    if scheduler in _STEP_RULES:
        if warmup_epochs > 0 or lr_epoch_stair:
            raise InvalidValueError(f"The {scheduler} scheduler shapes the whole run itself: set warmup_epochs=0 and "
                                    "lr_epoch_stair=False.")
        return _STEP_RULES[scheduler](cfg, num_steps)

    warmup = _warmup(lr, warmup_factor, warmup_epochs, steps_per_epoch, lr_epoch_stair) if warmup_epochs else []
    rule = _EPOCH_RULES[scheduler]
    stair = lr_epoch_stair or scheduler in _ALWAYS_STAIR
    main = [rule(_epoch_position(j, steps_per_epoch, stair), cfg) for j in range(num_steps - len(warmup))]
    return warmup + main
