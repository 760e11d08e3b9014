"""Parameter groups: which parameters get weight decay, and per-layer learning-rate scales."""
import re

from mindspore import nn

from ..foundation.errors import InvalidValueError, UnknownNameError


def _mindspore_default_decays(param):
    """MindSpore's own rule for a flat parameter list: no decay for names containing ``gamma`` or ``beta``."""
    return "gamma" not in param.name and "beta" not in param.name


def _decays_unless_norm_bias_or_1d(param):
    """MindCV's rule (no decay for names containing ``gamma``, ``beta`` or ``bias``) and timm's (nor for any
    1-D parameter)."""
    return _mindspore_default_decays(param) and "bias" not in param.name and param.ndim > 1


# weight_decay_filter -> does this parameter get weight decay?
WEIGHT_DECAY_FILTERS = {
    "disable": lambda param: True,
    "auto": _mindspore_default_decays,
    "norm_and_bias": _decays_unless_norm_bias_or_1d,
}


def decay_rule(weight_decay_filter, no_weight_decay=()):
    """``param -> bool``: whether ``param`` is decayed under ``weight_decay_filter``.

    ``no_weight_decay`` (a model's own exemptions: parameter or module names) adds to every filter but
    ``'disable'``, which decays every parameter.
    """
    if weight_decay_filter not in WEIGHT_DECAY_FILTERS:
        raise UnknownNameError("weight_decay_filter", weight_decay_filter, WEIGHT_DECAY_FILTERS)
    base = WEIGHT_DECAY_FILTERS[weight_decay_filter]
    if weight_decay_filter == "disable" or not no_weight_decay:
        return base
    exempt = tuple(no_weight_decay)
    return lambda param: base(param) and not any(param.name == n or param.name.startswith(n + ".") for n in exempt)


def layer_ids(names, group_matcher):
    """Layer index of every parameter name, from a model's ``group_matcher()`` (timm's protocol): either a dict
    ``{"stem": regex, "blocks": regex or [(regex, suffix tuple or None), ...]}``, whose captured numbers order the
    blocks, or a function from name to a sortable key. Groups are numbered in key order from 0 (the stem); names
    that match nothing (the head) come last. Returns ({name: index}, last index)."""
    key_of = group_matcher if callable(group_matcher) else _regex_keys(group_matcher)
    keys = {name: tuple(float(part) for part in key_of(name)) for name in names}
    order = {key: index for index, key in enumerate(sorted(set(keys.values())))}
    return {name: order[key] for name, key in keys.items()}, len(order) - 1


def _regex_keys(matcher):
    """timm's dict matcher as a key function: (group ordinal, captured numbers..., suffix...)."""
    compiled = []
    for ordinal, spec in enumerate(matcher.values()):
        for pattern, suffix in ([(spec, None)] if isinstance(spec, str) else spec):
            compiled.append((re.compile(pattern), (ordinal,), tuple(suffix or ())))

    def key_of(name):
        for pattern, prefix, suffix in compiled:
            match = pattern.match(name)
            if match:
                return prefix + tuple(int(g) for g in match.groups() if g is not None) + suffix
        return (float("inf"),)

    return key_of


def _scaled(lr, scale):
    if scale == 1.0:
        return lr
    if isinstance(lr, nn.Cell):
        raise InvalidValueError("layer_decay needs lr as a number or a per-step list, not a LearningRateSchedule.")
    if isinstance(lr, (int, float)):
        return lr * scale
    return [float(x) * scale for x in lr]


def build_param_groups(params, lr, weight_decay, decays, layer_decay=1.0, group_matcher=None):
    """MindSpore parameter groups: one per (weight decay, lr scale), in the parameters' own order.

    With ``layer_decay`` < 1 a parameter in layer ``i`` of ``group_matcher``'s layers ``0..n`` (the head is ``n``)
    trains at ``lr * layer_decay**(n - i)``.
    """
    if layer_decay != 1.0:
        if group_matcher is None:
            raise InvalidValueError(f"layer_decay {layer_decay} needs the model itself (a Cell with group_matcher(), "
                                    "as the Twins models have) to tell its layers; use layer_decay 1.0 otherwise.")
        layer, last = layer_ids([p.name for p in params], group_matcher)
        scales = [layer_decay ** (last - layer[p.name]) for p in params]
    else:
        scales = [1.0] * len(params)
    groups = {}
    for param, scale in zip(params, scales):
        key = (weight_decay if decays(param) else 0.0, scale)
        groups.setdefault(key, []).append(param)
    param_groups = []
    for (group_decay, scale), members in groups.items():
        group = {"params": members, "weight_decay": group_decay}
        if scale != 1.0:
            group["lr"] = _scaled(lr, scale)
        param_groups.append(group)
    return param_groups + [{"order_params": list(params)}]
