"""Parameter groups: which parameters get weight decay, and per-layer learning-rate scales."""
import re

from mindspore import nn

from ..utils.errors import UnknownNameError


def _leaf(param):
    return param.name.rsplit(".", 1)[-1]


def _mindspore_default_decays(param):
    """MindSpore's own rule for a flat parameter list: no decay for names containing ``gamma`` or ``beta``."""
    return "gamma" not in param.name and "beta" not in param.name


def _decays_unless_norm_bias_or_1d(param):
    return _leaf(param) not in ("gamma", "beta", "bias") and param.ndim > 1


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


_NESTED_BLOCK = re.compile(r"^(?:blocks|layers|stages)\.(\d+)\.(\d+)\.")
_FLAT_BLOCK = re.compile(r"^(?:blocks|layers)\.(\d+)\.")
_PER_STAGE = re.compile(r"^\w+\.(\d+)\.")
_HEAD_PREFIXES = ("norm", "fc_norm", "head", "classifier")


def layer_ids(names):
    """Depth of every parameter: 0 for the stem, 1..L for blocks in execution order, L + 1 for the head.

    Reads the usual names: ``blocks.<stage>.<i>`` (staged models such as Twins), ``blocks.<i>`` (flat ViTs);
    other per-stage modules (``patch_embeds.<stage>``, ``pos_block.<stage>``) sit just before their stage's
    first block; ``norm``/``head``/``classifier`` are the head; everything else is the stem.
    """
    nested = [tuple(map(int, m.groups())) for m in map(_NESTED_BLOCK.match, names) if m]
    stage_depths = {}
    for stage, index in nested:
        stage_depths[stage] = max(stage_depths.get(stage, 0), index + 1)
    offsets, total = {}, 0
    for stage in sorted(stage_depths):
        offsets[stage], total = total, total + stage_depths[stage]
    flat_depth = 1 + max((int(m.group(1)) for m in map(_FLAT_BLOCK.match, names) if m), default=-1)
    num_layers = total or flat_depth

    def layer_of(name):
        if (m := _NESTED_BLOCK.match(name)) and offsets:
            return offsets[int(m.group(1))] + int(m.group(2)) + 1
        if (m := _FLAT_BLOCK.match(name)) and not offsets:
            return int(m.group(1)) + 1
        if name.split(".", 1)[0] in _HEAD_PREFIXES:
            return num_layers + 1
        if (m := _PER_STAGE.match(name)) and int(m.group(1)) in offsets:
            return offsets[int(m.group(1))]
        return 0

    return {name: layer_of(name) for name in names}, num_layers


def _scaled(lr, scale):
    if scale == 1.0:
        return lr
    if isinstance(lr, nn.Cell):
        raise ValueError("layer_decay needs lr as a number or a per-step list, not a LearningRateSchedule.")
    if isinstance(lr, (int, float)):
        return lr * scale
    return [float(x) * scale for x in lr]


def build_param_groups(params, lr, weight_decay, decays, layer_decay=1.0):
    """MindSpore parameter groups: one per (weight decay, lr scale), in the parameters' own order.

    With ``layer_decay`` < 1 a parameter at depth ``d`` of ``L`` layers trains at ``lr * layer_decay**(L + 1 - d)``.
    """
    if layer_decay != 1.0:
        depth, num_layers = layer_ids([p.name for p in params])
        scales = [layer_decay ** (num_layers + 1 - depth[p.name]) for p in params]
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
