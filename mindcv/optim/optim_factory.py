"""``create_optimizer``: MindCV's optimizer names on MindSpore's optimizers (hand-written where missing)."""
from mindspore import nn

from ..foundation.checkpoint_io import read_checkpoint
from ..foundation.errors import CheckpointError, InvalidValueError, UnknownNameError
from ..foundation.jit import compile_construct
from .adamw import AdamW
from .adan import Adan
from .lamb import Lamb
from .lion import Lion
from .nadam import NAdam
from .param_groups import build_param_groups, decay_rule

# rmsprop's eps when the caller gives none: MindCV's create_optimizer default, which only its rmsprop reads.
_RMSPROP_EPS = 1e-10


def _eps(hp):
    """The ``eps`` keyword when the caller gave one; otherwise the optimizer keeps its own default, as in MindCV."""
    return {} if hp["eps"] is None else {"eps": hp["eps"]}


def _sgd(groups, lr, hp, **kwargs):
    return nn.SGD(groups, learning_rate=lr, momentum=hp["momentum"], nesterov=hp["nesterov"],
                  loss_scale=hp["loss_scale"], **kwargs)


def _momentum(groups, lr, hp, **kwargs):
    if hp["nesterov"]:
        return _nesterov(groups, lr, hp, **kwargs)
    return nn.Momentum(groups, learning_rate=lr, momentum=hp["momentum"], loss_scale=hp["loss_scale"], **kwargs)


def _nesterov(groups, lr, hp, **kwargs):
    # Not nn.Momentum(use_nesterov=True): MindSpore's CPU kernel for it runs plain momentum. nn.SGD's kernel
    # applies Nesterov's update, and with no dampening its update is nn.Momentum's.
    return nn.SGD(groups, learning_rate=lr, momentum=hp["momentum"], nesterov=True, loss_scale=hp["loss_scale"],
                  **kwargs)


def _adam(groups, lr, hp, **kwargs):
    return nn.Adam(groups, learning_rate=lr, use_nesterov=hp["nesterov"], loss_scale=hp["loss_scale"], **_eps(hp),
                   **kwargs)


def _adamw(groups, lr, hp, **kwargs):
    return AdamW(groups, learning_rate=lr, loss_scale=hp["loss_scale"], **_eps(hp), **kwargs)


def _adan(groups, lr, hp, **kwargs):
    return Adan(groups, learning_rate=lr, loss_scale=hp["loss_scale"], **_eps(hp), **kwargs)


def _nadam(groups, lr, hp, **kwargs):
    return NAdam(groups, learning_rate=lr, schedule_decay=hp["schedule_decay"], loss_scale=hp["loss_scale"],
                 **_eps(hp), **kwargs)


def _lion(groups, lr, hp, **kwargs):
    return Lion(groups, learning_rate=lr, loss_scale=hp["loss_scale"], **kwargs)


def _lamb(groups, lr, hp, **kwargs):
    return Lamb(groups, learning_rate=lr, loss_scale=hp["loss_scale"], **_eps(hp), **kwargs)


def _rmsprop(groups, lr, hp, **kwargs):
    eps = _RMSPROP_EPS if hp["eps"] is None else hp["eps"]
    return nn.RMSProp(groups, learning_rate=lr, momentum=hp["momentum"], epsilon=eps, loss_scale=hp["loss_scale"],
                      **kwargs)


def _adagrad(groups, lr, hp, **kwargs):
    return nn.Adagrad(groups, learning_rate=lr, loss_scale=hp["loss_scale"], **kwargs)


# opt name -> builder(param_groups, lr, hyper-parameters, **optimizer-specific kwargs)
OPTIMIZERS = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adam": _adam,
    "adamw": _adamw,
    "adan": _adan,
    "nadam": _nadam,
    "lion": _lion,
    "lamb": _lamb,
    "rmsprop": _rmsprop,
    "adagrad": _adagrad,
}


def create_optimizer(model_or_params, opt="adam", lr=0.001, weight_decay=0, momentum=0.9, nesterov=False,
                     weight_decay_filter="disable", layer_decay=1.0, loss_scale=1.0, schedule_decay=4e-3,
                     checkpoint_path="", eps=None, **kwargs):
    """An optimizer over a model's trainable parameters (or a parameter list, or MindSpore parameter groups,
    which are used as given), with MindCV's options.

    ``opt``: a key of ``OPTIMIZERS`` (case-insensitive); ``'nesterov'`` is momentum SGD with Nesterov's update,
    which the ``nesterov`` flag turns on for ``sgd``, ``momentum`` and ``adam``. ``lr``: a number,
    a per-step list (``create_scheduler``) or a ``LearningRateSchedule``. ``weight_decay_filter``: ``'disable'``
    decays every parameter; ``'auto'`` follows MindSpore's default (names with ``gamma``/``beta``, i.e. norms,
    are not decayed; biases are); ``'norm_and_bias'`` also exempts names with ``bias`` (MindCV's rule) and every
    other 1-D parameter. When a Cell with ``no_weight_decay()`` is passed, those names are exempt too (except
    under ``'disable'``). ``layer_decay`` < 1 scales each layer's lr by ``layer_decay**(depth from the head)``,
    with the layers the model declares in ``group_matcher()``; 1 or None: off. ``loss_scale``: the fixed loss
    scale the gradients carry. ``schedule_decay``: NAdam's momentum schedule. ``checkpoint_path``: a checkpoint
    holding this optimizer's state (moments, step count) to resume from. ``eps``: the optimizer's epsilon; None
    leaves each optimizer its own default (1e-8 for the Adam family and Adan, 1e-6 for Lamb, 1e-10 for RMSProp:
    what MindCV's defaults give). Other keyword arguments (e.g. ``beta1``, ``beta2``) go to the optimizer itself.
    In PYNATIVE mode the update runs compiled (``MINDCV_JIT``).
    """
    name = str(opt).lower()
    if name not in OPTIMIZERS:
        raise UnknownNameError("optimizer", opt, OPTIMIZERS)
    if isinstance(model_or_params, nn.Cell):
        params = model_or_params.trainable_params()
        no_weight_decay = model_or_params.no_weight_decay() if hasattr(model_or_params, "no_weight_decay") else ()
        group_matcher = model_or_params.group_matcher() if hasattr(model_or_params, "group_matcher") else None
    else:
        params, no_weight_decay, group_matcher = list(model_or_params), (), None
    if not params:
        raise InvalidValueError("create_optimizer got no trainable parameters.")

    decays = decay_rule(weight_decay_filter, no_weight_decay)
    if isinstance(params[0], dict):  # the caller's own MindSpore parameter groups: used as given
        groups = params
    else:
        groups = build_param_groups(params, lr, weight_decay, decays, 1.0 if layer_decay is None else layer_decay,
                                    group_matcher)
    hyper_params = dict(momentum=float(momentum), nesterov=nesterov, loss_scale=float(loss_scale), eps=eps,
                        schedule_decay=schedule_decay)
    optimizer = compile_construct(OPTIMIZERS[name](groups, lr, hyper_params, **kwargs))
    if checkpoint_path:
        restore_optimizer_state(optimizer, checkpoint_path)
    return optimizer


def optimizer_state(optimizer):
    """The optimizer's own state parameters by name: moments, step count; not the weights or the lr table."""
    weights = {id(p) for p in optimizer.parameters}
    return {name: param for name, param in optimizer.parameters_and_names()
            if id(param) not in weights and not name.startswith("learning_rate")}


def restore_optimizer_state(optimizer, checkpoint_path):
    """Load ``optimizer``'s state from a checkpoint; every state tensor must be there with the right shape."""
    saved = read_checkpoint(checkpoint_path)
    state = optimizer_state(optimizer)
    missing = [name for name in state if name not in saved]
    if missing:
        raise CheckpointError(f"{checkpoint_path} lacks {len(missing)} of the {len(state)} optimizer state tensors "
                              f"(e.g. {', '.join(missing[:3])}); was it saved with the same optimizer and model?")
    wrong = [f"{n} {tuple(saved[n].shape)} vs {tuple(p.shape)}" for n, p in state.items()
             if tuple(saved[n].shape) != tuple(p.shape)]
    if wrong:
        raise CheckpointError(f"{checkpoint_path}: optimizer state shapes differ (saved vs expected): "
                              f"{'; '.join(wrong[:3])}")
    for name, param in state.items():
        param.set_data(saved[name].astype(param.dtype))
