"""Building models from their configs and loading weights into them, strictly and by name."""
import collections
import json
import logging
import os

import numpy as np

import mindspore as ms
from mindspore.nn.utils import no_init_parameters

from ..foundation.checkpoint_io import read_checkpoint
from ..foundation.download import download_url
from ..foundation.errors import CheckpointError, InvalidValueError
from ..foundation.jit import compile_construct
from .layers.drop import RANDOM_STEP
from .naming import to_mindcv_names
from .registry import is_model, list_models, model_entrypoint, resolve_model_name

__all__ = ["build_model_with_cfg", "load_checkpoint_into", "load_model_checkpoint", "load_pretrained"]

_logger = logging.getLogger(__name__)
_MAX_LISTED = 10


def build_model_with_cfg(model_cls, variant, pretrained, default_cfg, **kwargs):
    model = compile_construct(model_cls(**kwargs))
    model.default_cfg = dict(default_cfg, architecture=variant)
    if pretrained:
        load_pretrained(model, model.default_cfg)
    return model


def load_pretrained(model, default_cfg=None, num_classes=None, in_channels=None, filter_fn=None):
    """Download (or take from the cache) the weights at ``default_cfg['url']`` and load them into ``model``.

    A classifier of another size is left initialised and a first conv with other input channels is
    adapted, so ``num_classes`` and ``in_channels`` may differ from the released weights. Given (MindCV's
    signature), they must be the model's own. ``filter_fn(param_dict) -> param_dict`` edits the weights first.
    """
    default_cfg = default_cfg or model.default_cfg
    url = default_cfg.get("url")
    if not url:
        architecture = default_cfg.get("architecture", "this model")
        raise InvalidValueError(f"No pretrained weights are published for {architecture}.")
    _check_model_matches(model, default_cfg, num_classes, in_channels)
    path = download_url(url, sha256=default_cfg.get("sha256"))
    param_dict = _read_weights(path)
    filtered = param_dict if filter_fn is None else filter_fn(param_dict)
    # What the filter took out stays as the model initialised it, instead of counting as missing.
    filtered_out = set(to_mindcv_names(param_dict)) - set(to_mindcv_names(filtered))
    load_checkpoint_into(model, filtered, path, left_initialised=filtered_out)


def _check_model_matches(model, default_cfg, num_classes, in_channels):
    shapes = {p.name: tuple(p.shape) for p in model.get_parameters()}
    actual = {"num_classes": shapes.get(f"{default_cfg['classifier']}.weight", (0,))[0],
              "in_channels": shapes.get(f"{default_cfg['first_conv']}.weight", (0, 0))[1]}
    for name, given in (("num_classes", num_classes), ("in_channels", in_channels)):
        if given is not None and given != actual[name]:
            raise InvalidValueError(f"load_pretrained: {name}={given}, but the model was built with "
                                    f"{name}={actual[name]}; build the model with the {name} you want.")


def _read_weights(checkpoint_path):
    try:
        return read_checkpoint(checkpoint_path)
    except CheckpointError as err:
        if os.path.isfile(checkpoint_path):
            raise CheckpointError(f"{err} PyTorch weights must be converted first: "
                                  "python -m mindcv.models.convert SRC DST.ckpt") from err
        raise


def load_model_checkpoint(model, checkpoint_path, ema=False, auto_mapping=False):
    """Load a MindSpore checkpoint file into ``model`` (see ``load_checkpoint_into``)."""
    load_checkpoint_into(model, _read_weights(checkpoint_path), checkpoint_path, ema=ema, auto_mapping=auto_mapping)


def load_checkpoint_into(model, param_dict, source="checkpoint", ema=False, auto_mapping=False, left_initialised=()):
    """Load ``param_dict`` (name -> Parameter/Tensor/array) into ``model``, strictly and by name.

    Accepts our names, the reference's (LayerNorm weight/bias) and the seed port's. Entries that are
    training state of a model parameter the checkpoint also holds (``<prefix>.<param name>`` beside
    ``<param name>``, e.g. optimizer moments), dot-free scalars (``global_step``) and the dropout layers'
    ``random_step`` counters the model lacks are ignored (the model's own counters may be absent); with
    ``auto_mapping`` a wrapper prefix (``backbone.head.weight``) is matched to the model's name. With ``ema``
    the ``ema.``-prefixed copy is loaded. A classifier of another size is left initialised with a warning; a
    first conv with other input channels is adapted. Parameters named in ``left_initialised`` may be absent.
    Anything else missing, unexpected or of another shape raises CheckpointError, which names the model the
    weights belong to when it can tell.
    """
    if ema:
        param_dict = {k[len("ema."):]: v for k, v in param_dict.items() if k.startswith("ema.")}
        if not param_dict:
            raise CheckpointError(f"{source} holds no 'ema.' parameters; load it with ema=False.")
    expected = {p.name: p for p in model.get_parameters()}
    state, unexpected = _model_state(to_mindcv_names(param_dict), expected, auto_mapping)
    cfg = getattr(model, "default_cfg", {})
    left_initialised = _drop_mismatched_classifier(state, expected, cfg.get("classifier"), source) | set(
        left_initialised)
    _adapt_first_conv(state, expected, cfg.get("first_conv"))

    missing = sorted(k for k in expected if k not in state and k not in left_initialised and not _is_random_step(k))
    mismatched = sorted(f"{k} {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                        for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape))
    if missing or unexpected or mismatched:
        problems = [f"{title} ({len(items)}): {', '.join(items[:_MAX_LISTED])}"
                    f"{', ...' if len(items) > _MAX_LISTED else ''}"
                    for title, items in (("missing", missing), ("unexpected", sorted(unexpected)),
                                         ("shape mismatch", mismatched)) if items]
        raise _misfit_error(source, param_dict, expected, cfg.get("architecture", type(model).__name__),
                            cfg.get("classifier"), problems)
    ms.load_param_into_net(model, {k: ms.Parameter(_as_tensor(v), name=k) for k, v in state.items()},
                           strict_load=True)


def _misfit_error(source, param_dict, expected, arch, classifier, problems):
    """CheckpointError listing ``problems``, after what the checkpoint holds instead when that shows."""
    held = _held_instead(param_dict, expected, arch, classifier)
    return CheckpointError(f"{source} does not fit {arch}: " + "; ".join(([held] if held else []) + problems))


def _held_instead(param_dict, expected, arch, classifier):
    """What ``param_dict`` holds instead of ``arch``'s weights: the model named in the config a train.py
    checkpoint keeps, ``arch``'s shapes under other names, or the registered model whose parameter names and
    shapes it holds (no two Twins variants share their shapes); None when none of these shows."""
    trained = _trained_model(param_dict)
    if trained and not (is_model(trained) and resolve_model_name(trained) == arch):
        return _another_model(trained, f"its training config says model: {trained}", arch)
    shapes = _shapes(param_dict)
    if _is_renamed_copy(shapes, expected, classifier):
        return f"it holds {arch}'s parameter shapes under other names"
    name = next((name for name in list_models() if name != arch and _holds_model(shapes, name)), None)
    return _another_model(name, f"its parameter names and shapes are {name}'s", arch) if name else None


def _another_model(name, evidence, arch):
    return f"it holds {name} weights ({evidence}): load it into {name} (--model {name}) or give a {arch} checkpoint"


def _trained_model(param_dict):
    try:
        return json.loads(param_dict.get("config", "")).get("model")
    except (TypeError, ValueError, AttributeError):
        return None


def _shapes(param_dict):
    return {key: tuple(value.shape) for key, value in to_mindcv_names(param_dict).items() if hasattr(value, "shape")}


def _holds_model(shapes, name):
    """Whether ``shapes`` (checkpoint name -> shape) holds model ``name``'s parameters by name and shape, its
    classifier aside, and no parameter of another model."""
    with no_init_parameters():  # only the names and shapes are wanted
        model = model_entrypoint(name)()
    expected = {p.name: tuple(p.shape) for p in model.get_parameters() if not _is_random_step(p.name)}
    state, unexpected = _model_state(shapes, expected, auto_mapping=False)
    head = _classifier_names(getattr(model, "default_cfg", {}).get("classifier"))
    return not unexpected and all(key in head or state.get(key) == shape for key, shape in expected.items())


def _is_renamed_copy(shapes, expected, classifier):
    """Whether ``shapes`` holds a parameter of each of the model's shapes (``expected``), its classifier aside,
    under none of its names."""
    head = _classifier_names(classifier)
    wanted = {key: tuple(p.shape) for key, p in expected.items() if key not in head and not _is_random_step(key)}
    return not set(wanted) & set(shapes) and not collections.Counter(wanted.values()) - collections.Counter(
        shapes.values())


def _classifier_names(classifier):
    return {f"{classifier}.weight", f"{classifier}.bias"} if classifier else set()


def _as_tensor(value):
    return value if isinstance(value, ms.Tensor) else ms.Tensor(np.asarray(value))


def _model_state(param_dict, expected, auto_mapping):
    """Split into model parameters and unexpected keys, dropping training state of model parameters."""
    state, unexpected = {}, []
    for key, value in param_dict.items():
        if key in expected:
            state[key] = value
        elif "." not in key or _is_random_step(key) or _is_state_of_a_present_parameter(key, param_dict, expected):
            continue
        elif auto_mapping and (target := _unique_suffix_match(key, expected)):
            state[target] = value
        else:
            unexpected.append(key)
    return state, unexpected


def _is_random_step(name):
    """A dropout or drop-path layer's call count: training state, absent from weights of a model without the
    layer and from converted weights."""
    return name.rsplit(".", 1)[-1] == RANDOM_STEP


def _is_state_of_a_present_parameter(key, param_dict, expected):
    """``<prefix>.<param name>`` where the checkpoint holds ``<param name>`` itself: a copy kept for training
    (optimizer moments, EMA, accumulated gradients), not a weight under a wrapper's prefix."""
    rest = key.split(".", 1)[1]
    return rest in expected and rest in param_dict


def _unique_suffix_match(key, expected):
    """The model parameter whose name ends ``key`` or is ended by it (wrapper prefixes on either side), taking
    the longest such name; None when there is none or two tie."""
    matches = sorted((name for name in expected if name.endswith("." + key) or key.endswith("." + name)),
                     key=len, reverse=True)
    if not matches or (len(matches) > 1 and len(matches[0]) == len(matches[1])):
        return None
    return matches[0]


def _drop_mismatched_classifier(state, expected, classifier, source):
    """Finetuning: a checkpoint classifier of another size (or none in the model) is not loaded.

    Returns the model's classifier parameters that stay initialised."""
    weight, bias = f"{classifier}.weight", f"{classifier}.bias"
    if not classifier or weight not in state:
        return set()
    model_classes = tuple(expected[weight].shape)[0] if weight in expected else 0
    ckpt_classes = tuple(state[weight].shape)[0]
    if weight in expected and tuple(state[weight].shape) == tuple(expected[weight].shape):
        return set()
    state.pop(weight)
    state.pop(bias, None)
    _logger.warning("%s: the classifier '%s' has %d classes, the model %d: it is left initialised (finetuning).",
                    source, classifier, ckpt_classes, model_classes)
    return {weight, bias} & set(expected)


def _adapt_first_conv(state, expected, first_conv):
    """Fit RGB weights of the first conv to another number of input channels, as timm/MindCV do:
    summed for one channel, repeated (and rescaled) for more."""
    name = f"{first_conv}.weight"
    if not first_conv or name not in state or name not in expected:
        return
    weight = _as_tensor(state[name]).asnumpy()
    out_ch, in_ch = tuple(expected[name].shape)[:2]
    if weight.ndim != 4 or weight.shape[0] != out_ch or weight.shape[1] == in_ch:
        return
    if in_ch == 1:
        adapted = weight.sum(axis=1, keepdims=True)
    else:
        repeats = -(-in_ch // weight.shape[1])
        adapted = np.tile(weight, (1, repeats, 1, 1))[:, :in_ch] * (weight.shape[1] / in_ch)
    state[name] = adapted.astype(weight.dtype)
    _logger.info("Adapted %s from %d to %d input channels.", name, weight.shape[1], in_ch)
