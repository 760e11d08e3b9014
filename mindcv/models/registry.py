"""Model registry: name -> entrypoint, with the module each lives in and its default config."""
import fnmatch
import sys
from collections import defaultdict

from ..foundation.errors import UnknownNameError

__all__ = [
    "get_pretrained_cfg",
    "get_pretrained_cfg_value",
    "has_pretrained_cfg_key",
    "is_model_in_modules",
    "is_model",
    "is_model_pretrained",
    "list_models",
    "list_modules",
    "model_entrypoint",
    "register_model",
    "register_model_alias",
    "resolve_model_name",
]

_model_entrypoints = {}
_model_to_module = {}
_module_to_models = defaultdict(set)
_model_default_cfgs = {}
_model_aliases = {}


def register_model(fn):
    """Register ``fn`` under its own name; its module's ``default_cfgs[name]`` becomes the model's config."""
    module = sys.modules[fn.__module__]
    module_name = fn.__module__.split(".")[-1]
    name = fn.__name__
    if hasattr(module, "__all__"):
        module.__all__.append(name)
    else:
        module.__all__ = [name]
    _model_entrypoints[name] = fn
    _model_to_module[name] = module_name
    _module_to_models[module_name].add(name)
    _model_default_cfgs[name] = getattr(module, "default_cfgs", {}).get(name, {})
    return fn


def register_model_alias(alias, name):
    """Accept ``alias`` (another library's name for the model) wherever ``name`` is accepted."""
    if name not in _model_entrypoints:
        raise ValueError(f"Cannot alias '{alias}' to unregistered model '{name}'.")
    _model_aliases[alias] = name


def resolve_model_name(name):
    """The registered name for ``name`` or one of its aliases; unknown names raise with close matches."""
    if name in _model_entrypoints:
        return name
    if name in _model_aliases:
        return _model_aliases[name]
    raise UnknownNameError("model", name, list(_model_entrypoints) + list(_model_aliases))


def _as_list(patterns):
    if not patterns:
        return []
    return [patterns] if isinstance(patterns, str) else list(patterns)


def list_models(filter="", module="", pretrained=False, exclude_filters=""):
    """Sorted registered names, optionally matching ``filter`` wildcards, in ``module``, with weights."""
    names = _module_to_models.get(module, set()) if module else _model_entrypoints.keys()
    names = set(names)
    includes = _as_list(filter)
    if includes:
        names = {n for n in names if any(fnmatch.fnmatch(n, p) for p in includes)}
    for pattern in _as_list(exclude_filters):
        names -= set(fnmatch.filter(names, pattern))
    if pretrained:
        names = {n for n in names if is_model_pretrained(n)}
    return sorted(names)


def is_model(model_name):
    return model_name in _model_entrypoints or model_name in _model_aliases


def model_entrypoint(model_name):
    return _model_entrypoints[resolve_model_name(model_name)]


def list_modules():
    return sorted(_module_to_models)


def is_model_in_modules(model_name, module_names):
    """Whether ``model_name`` is registered in one of the modules ``module_names`` (e.g. ``["twins"]``)."""
    name = _model_aliases.get(model_name, model_name)
    return any(name in _module_to_models.get(module, ()) for module in module_names)


def get_pretrained_cfg(model_name):
    return dict(_model_default_cfgs[resolve_model_name(model_name)])


def get_pretrained_cfg_value(model_name, cfg_key):
    """One entry of ``model_name``'s default config (e.g. ``"url"``, ``"input_size"``), None when it has none."""
    return get_pretrained_cfg(model_name).get(cfg_key) if is_model(model_name) else None


def has_pretrained_cfg_key(model_name, cfg_key):
    return is_model(model_name) and cfg_key in get_pretrained_cfg(model_name)


def is_model_pretrained(model_name):
    return bool(is_model(model_name) and get_pretrained_cfg(model_name).get("url"))
