"""Command-line and YAML configuration of the scripts, from one schema per script.

A schema gives every key its type, default, accepted values and help; argparse and the YAML loader both
use it, so a YAML value is checked exactly like the same value on the command line. Precedence:
command line > YAML (``-c/--config``, train.py and validate.py) > schema default. Every mistake found in a
parse is reported at once, in one ConfigError.
"""
import argparse
import difflib
import inspect
import math
import os
import reprlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional

import yaml

from ..deploy.export import EXPORT_FORMATS
from ..foundation.checkpoint_io import write_atomic
from ..foundation.errors import ConfigError, LauncherError, UnknownNameError, UserError
from ..data import DATASETS, INTERPOLATIONS
from ..data.auto_augment import create_augment_policy
from ..loss import LOSSES
from ..models.layers import PRECISIONS
from ..models.registry import resolve_model_name
from ..optim import OPTIMIZERS
from ..scheduler import SCHEDULERS

__all__ = ["EXPORT_SCHEMA", "INFER_SCHEMA", "SCHEMA", "call_with_options", "create_parser", "load_yaml_config",
           "options_for", "parse_args", "parse_export_args", "parse_infer_args", "save_config"]


def str2bool(value):
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in ("true", "1", "yes", "y", "on"):
        return True
    if lowered in ("false", "0", "no", "n", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean (use True or False)")


def optional(kind):
    def convert(value):
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
            return None
        return kind(value)
    convert.__name__ = f"optional {kind.__name__}"
    return convert


def erase_fill(value):
    return "random" if str(value).strip().lower() == "random" else finite_float(value)


def finite_float(value):
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    help: str
    type: Callable = str
    choices: Optional[tuple] = None
    nargs: Optional[str] = None  # "2" for pairs, "*" for lists
    check: Optional[Callable] = None  # predicate on the converted value
    accepted: str = ""  # how to describe values that fail ``check``
    aliases: tuple = ()
    counts: Optional[tuple] = None  # nargs "+": the accepted numbers of values; one value stands alone
    required: bool = False
    positional: bool = False
    switch: bool = False  # a flag without a value: given means True
    known_by: Optional[Callable] = None  # raises the builder's own error for a name it cannot build


def _registered(kind, names, fold=str):
    """``known_by`` for a builder that looks ``fold(name)`` up in its table ``names``."""
    def check(name):
        if fold(name) not in names:
            raise UnknownNameError(kind, name, names)
    return check


def _positive(accepted="> 0"):
    return dict(check=lambda v: v > 0, accepted=accepted)


def _non_negative():
    return dict(check=lambda v: v >= 0, accepted=">= 0")


def _probability():
    return dict(check=lambda v: 0 <= v <= 1, accepted="in [0, 1]")


def _rate():
    return dict(check=lambda v: 0 <= v < 1, accepted="in [0, 1)")


SCHEMA = {
    "System": [
        Option("mode", 0, "0: GRAPH mode (fast), 1: PYNATIVE mode", int, choices=(0, 1)),
        Option("device_target", "auto", "device to run on; auto picks Ascend, then GPU, then CPU",
               choices=("auto", "CPU", "GPU", "Ascend")),
        Option("distribute", False, "data-parallel training over all launched processes", str2bool,
               aliases=("--distributed",)),
        Option("dataset_sink_mode", True, "feed training steps through MindSpore's data sink where the device has "
               "one (Ascend, GPU); on CPU the Python loop runs", str2bool),
        Option("seed", 42, "random seed (each rank derives its own augmentation seed from it)", int),
        Option("debug", False, "show full tracebacks for errors", str2bool),
    ],
    "Dataset": [
        Option("dataset", "imagenet", "dataset kind: imagenet/'' (ImageFolder), cifar10, cifar100, mnist",
               known_by=_registered("dataset", DATASETS, fold=str.lower)),
        Option("data_dir", None, "dataset root (ImageFolder: <data_dir>/<split>/<class>/<image>)", optional(str)),
        Option("train_split", "train", "sub-folder of data_dir used for training"),
        Option("val_split", "val", "sub-folder of data_dir used for validation"),
        Option("shuffle", True, "shuffle the training data", str2bool),
        Option("dataset_download", False, "download the dataset when it is missing", str2bool),
        Option("num_samples", None, "use only this many samples", optional(int)),
        Option("batch_size", 32, "batch size per device", int, **_positive(">= 1")),
        Option("drop_remainder", True, "drop the last incomplete training batch", str2bool),
        Option("num_parallel_workers", 8, "data-loading workers", int, **_positive(">= 1")),
        Option("aug_repeats", 0, "repeated augmentation: copies of each sample per epoch (0: off)", int,
               **_non_negative()),
        Option("aug_splits", 0, "AugMix/JSD training: 3 turns each batch into clean + two augmented copies (needs "
               "auto_augment; pair it with loss jsd); 0: off", int, choices=(0, 3)),
        Option("eval_shuffle", False, "validate.py reads the validation set in shuffled order", str2bool),
    ],
    "Augmentation": [
        Option("image_resize", 224, "training crop / evaluation crop size", int, check=lambda v: v >= 32,
               accepted=">= 32 (the Twins models reduce the image 32 times; a smaller one leaves no tokens)"),
        Option("scale", (0.08, 1.0), "RandomResizedCrop area range", finite_float, nargs="2"),
        Option("ratio", (0.75, 1.333), "RandomResizedCrop aspect-ratio range", finite_float, nargs="2"),
        Option("hflip", 0.5, "horizontal flip probability", finite_float, **_probability()),
        Option("vflip", 0.0, "vertical flip probability", finite_float, **_probability()),
        Option("color_jitter", 0.4, "colour jitter: one strength for brightness, contrast and saturation, or 3 "
               "values, or 4 with hue (none/0: off)", optional(finite_float), nargs="+", counts=(1, 3, 4)),
        Option("interpolation", "bilinear", "resize interpolation", choices=tuple(sorted(INTERPOLATIONS))),
        Option("auto_augment", None, "timm-style policy, e.g. randaug-m9-mstd0.5-inc1, autoaug, trivialaugwide",
               optional(str), known_by=create_augment_policy),
        Option("re_prob", 0.0, "random erasing probability", finite_float, **_probability()),
        Option("re_scale", (0.02, 0.33), "random erasing area range", finite_float, nargs="2"),
        Option("re_ratio", (0.3, 3.3), "random erasing aspect-ratio range", finite_float, nargs="2"),
        Option("re_value", 0.0, "random erasing fill: 'random' (per-pixel noise) or a number", erase_fill),
        Option("re_max_attempts", 10, "random erasing: tries to place a box before giving up", int,
               **_positive(">= 1")),
        Option("mean", None, "normalisation mean per channel, 0-255 or 0-1 scale (default: the dataset's)",
               finite_float, nargs="+"),
        Option("std", None, "normalisation std per channel, 0-255 or 0-1 scale (default: the dataset's)",
               finite_float, nargs="+", check=lambda v: v > 0, accepted="> 0"),
        Option("crop_pct", 0.875, "evaluation: resize to image_resize / crop_pct, then centre crop (above 1: the crop "
               "is padded)", finite_float, **_positive()),
        Option("mixup", 0.0, "mixup alpha (0: off)", finite_float, **_non_negative()),
        Option("cutmix", 0.0, "cutmix alpha (0: off)", finite_float, **_non_negative()),
        Option("cutmix_prob", 1.0, "probability of cutmix when both are on", finite_float, **_probability()),
    ],
    "Model": [
        Option("model", "svt_small", "model name (see mindcv.list_models())", known_by=resolve_model_name),
        Option("num_classes", None, "number of classes (default: the dataset's)", optional(int),
               **_positive(">= 1")),
        Option("in_channels", 3, "input channels", int, **_positive(">= 1")),
        Option("pretrained", False, "load the published weights", str2bool),
        Option("ckpt_path", "", "checkpoint to start from (finetune) or to resume with resume_opt"),
        Option("resume_opt", False, "also restore optimizer state, epoch and step from ckpt_path", str2bool),
        Option("drop_rate", 0.0, "dropout before the classifier", finite_float, **_rate()),
        Option("drop_path_rate", 0.0, "stochastic depth rate of the last block", finite_float, **_rate()),
        Option("freeze_stages", -1, "finetuning: keep the patch embedding (0) and the first K stages fixed (-1: none)",
               int, check=lambda v: v >= -1, accepted=">= -1"),
        Option("ema", False, "keep an exponential moving average of the weights", str2bool),
        Option("ema_decay", 0.9999, "EMA decay", finite_float, **_rate()),
    ],
    "Checkpoints and logs": [
        Option("ckpt_save_dir", "./ckpt", "where checkpoints and logs are written"),
        Option("ckpt_save_policy", "latest_k", "which checkpoints to keep", choices=("latest_k", "top_k")),
        Option("keep_checkpoint_max", 10, "number of checkpoints kept", int, **_positive(">= 1")),
        Option("ckpt_save_interval", 1, "save every N epochs", int, **_positive(">= 1")),
        Option("ckpt_save_steps", 0, "also save the state inside an epoch every N steps, to <model>-partial.ckpt "
               "(0: off); SIGTERM/SIGINT always save it", int, check=lambda v: v >= 0, accepted=">= 0"),
        Option("auto_resume", False, "resume from the newest valid checkpoint in ckpt_save_dir", str2bool),
        Option("log_interval", 100, "steps between log lines", int, **_positive(">= 1")),
        Option("val_while_train", False, "validate during training", str2bool),
        Option("val_interval", 1, "validate every N epochs", int, **_positive(">= 1")),
    ],
    "Loss": [
        Option("loss", "CE", "loss function",
               choices=tuple(LOSSES) + tuple(name.lower() for name in LOSSES if name.lower() != name)),
        Option("label_smoothing", 0.0, "label smoothing", finite_float, **_rate()),
        Option("reduction", "mean", "how the loss combines the samples of a batch", choices=("mean", "sum", "none")),
        Option("aux_factor", 0.0, "weight of the auxiliary logits' loss, for models that return them",
               finite_float, **_non_negative()),
    ],
    "Optimizer": [
        Option("opt", "adamw", "optimizer name", known_by=_registered("optimizer", OPTIMIZERS, fold=str.lower)),
        Option("lr", 0.001, "peak learning rate", finite_float, **_non_negative()),
        Option("momentum", 0.9, "momentum / beta1", finite_float, **_rate()),
        Option("weight_decay", 0.05, "weight decay", finite_float, **_non_negative()),
        Option("weight_decay_filter", "norm_and_bias", "parameters exempt from weight decay",
               choices=("disable", "auto", "norm_and_bias")),
        Option("use_nesterov", False, "Nesterov momentum", str2bool),
        Option("eps", None, "optimizer epsilon (default: the optimizer's own)", optional(finite_float),
               **_positive()),
        Option("filter_bias_and_bn", None, "older MindCV switch; when set, True means weight_decay_filter="
               "norm_and_bias and False means disable", optional(str2bool)),
        Option("layer_decay", 1.0, "layer-wise lr decay (1: off)", finite_float, **_positive()),
        Option("clip_grad", False, "clip gradients by global norm", str2bool),
        Option("clip_value", 5.0, "max global gradient norm", finite_float, **_positive()),
        Option("gradient_accumulation_steps", 1, "micro-batches per optimizer step", int, **_positive(">= 1")),
    ],
    "Learning-rate schedule": [
        Option("scheduler", "cosine_decay", "learning-rate schedule (warm-up given by warmup_epochs)",
               known_by=_registered("scheduler", SCHEDULERS)),
        Option("epoch_size", 300, "number of training epochs", int, **_positive(">= 1")),
        Option("min_lr", 1e-6, "lowest learning rate", finite_float, **_non_negative()),
        Option("warmup_epochs", 5, "warm-up epochs", int, **_non_negative()),
        Option("warmup_factor", 0.0, "warm-up starts at warmup_factor * lr", finite_float, **_non_negative()),
        Option("decay_epochs", 295, "epochs over which the lr decays", int, **_non_negative()),
        Option("decay_rate", 0.9, "decay rate of step/exponential/polynomial schedules", finite_float,
               **_non_negative()),
        Option("multi_step_decay_milestones", (30, 60, 90), "epochs where multi_step_decay decays", int,
               nargs="*"),
        Option("lr_epoch_stair", False, "change the lr once per epoch instead of every step", str2bool),
        Option("num_cycles", 1, "cosine cycles", int, **_positive(">= 1")),
        Option("cycle_decay", 1.0, "peak decay between cycles", finite_float, **_non_negative()),
    ],
    "Mixed precision": [
        Option("amp_level", "O0", "MindSpore automatic mixed precision level", choices=("O0", "O1", "O2", "O3")),
        Option("amp_cast_list", None, "custom list of ops cast to fp16 (None: MindSpore's default)",
               optional(str)),
        Option("precision", "fp32", "train.py: precision of the trained network's matmuls on CPU, forward and "
               "backward; bf16: bf16 operands, fp32 sums, weights and optimizer (AVX-512-BF16 or AMX; elsewhere fp32 "
               "with a warning)", choices=PRECISIONS),
        Option("val_amp_level", "O0", "validate.py: mixed precision level of the evaluated network",
               choices=("O0", "O1", "O2", "O3")),
        Option("val_precision", "fp32", "validate.py: precision of the evaluated network's matmuls on CPU; bf16: "
               "bf16 operands, fp32 sums (AVX-512-BF16 or AMX; elsewhere fp32 with a warning)",
               choices=PRECISIONS),
        Option("loss_scale_type", "fixed", "loss scaling; auto: MindSpore's choice for amp_level (dynamic from 2**24 "
               "for O2, none otherwise)", choices=("fixed", "dynamic", "auto")),
        Option("loss_scale", 1.0, "(initial) loss scale", finite_float, **_positive()),
        Option("drop_overflow_update", False, "skip the update of steps whose gradients overflow", str2bool),
    ],
}


def _weights_options():
    """The options naming a model and its trained weights, shared by infer.py and export.py."""
    return [
        Option("model", None, "model name, e.g. svt_small or twins_pcpvt_base", required=True),
        Option("ckpt_path", "", "MindSpore checkpoint to load"),
        Option("pretrained", False, "use the published ImageNet-1k weights instead of --ckpt_path", switch=True),
        Option("num_classes", None, "classifier size (default: that of the weights; given, it must match them)",
               optional(int), **_positive(">= 1")),
    ]


def _run_options():
    return [
        Option("device_target", "auto", "device to run on; auto picks Ascend, then GPU, then CPU",
               choices=("auto", "CPU", "GPU", "Ascend")),
        Option("debug", False, "show full tracebacks for errors", switch=True),
    ]


def _image_size_option(help_text):
    return Option("image_size", None, help_text, int, nargs="2", check=lambda v: v >= 1, accepted=">= 1")


INFER_SCHEMA = {
    "Images": [
        Option("images", None, "image files and folders (searched recursively)", nargs="*", positional=True),
        Option("image_path", None, "the same, MindCV's spelling: --image_path IMAGE_OR_FOLDER [...]", nargs="+"),
    ],
    "Model and weights": _weights_options(),
    "Prediction": [
        Option("class_names", "", "text file, one class name per line (default: class_names.txt beside the "
               "checkpoint, else ImageNet-1k's names for 1000 classes, else class indices)"),
        Option("topk", 5, "how many classes to print per image", int, **_positive(">= 1")),
        Option("batch_size", 8, "images per forward pass", int, **_positive(">= 1")),
        _image_size_option("crop size HEIGHT WIDTH (default: the model's input size)"),
        Option("crop_pct", None, "resize to image_size / crop_pct before the centre crop (default: the model's)",
               optional(finite_float), **_positive()),
        Option("interpolation", None, "resize interpolation (default: the model's)", optional(str),
               choices=(None,) + tuple(sorted(INTERPOLATIONS))),
        Option("json", False, "print the predictions as JSON", switch=True),
        Option("precision", "fp32", "precision of the matmuls on CPU; bf16: bf16 operands, fp32 sums (AVX-512-BF16 "
               "or AMX; elsewhere fp32 with a warning)", choices=PRECISIONS),
    ],
    "Run": _run_options(),
}

EXPORT_SCHEMA = {
    "Model and weights": _weights_options(),
    "Export": [
        Option("format", "MINDIR", f"one of {', '.join(EXPORT_FORMATS)} (AIR: Ascend only), any case"),
        _image_size_option("input size HEIGHT WIDTH (default: the model's input size)"),
        Option("batch_size", 1, "the exported graph's fixed batch size", int, **_positive(">= 1")),
        Option("output", "", "file path, extension optional (default: <model>_<H>x<W>_bs<B>.<format extension>)"),
    ],
    "Run": _run_options(),
}

OPTIONS = {option.name: option for group in SCHEMA.values() for option in group}


def _check_value(option, value, source):
    """The converted value, or ConfigError naming the key, the bad value and what is accepted."""
    if value is None and option.nargs and option.default is None:  # a list option left unset
        return None
    try:
        if option.nargs:
            if not isinstance(value, (list, tuple)):
                value = [value]
            if option.nargs == "2" and len(value) != 2:
                raise ValueError(f"{list(value)} does not have 2 values")
            converted = _counted(option, tuple(option.type(v) for v in value))
        else:
            converted = option.type(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: {option.name}: {value!r} is not valid ({err}); expected "
                          f"{_describe_type(option)}.") from None
    if option.choices is not None and converted not in option.choices:
        raise ConfigError(f"{source}: {option.name}: {value!r} is not accepted; choose one of "
                          f"{', '.join(map(str, option.choices))}.")
    values = converted if isinstance(converted, tuple) else (converted,)
    if option.check is not None and not all(v is None or option.check(v) for v in values):
        raise ConfigError(f"{source}: {option.name}: {value!r} is out of range; it must be {option.accepted}.")
    return converted


def _counted(option, values):
    """A list option's values, checked against ``option.counts``; a single value unwrapped."""
    if option.counts is None:
        return values
    if len(values) not in option.counts:
        raise ValueError(f"{list(values)} has {len(values)} values, not {' or '.join(map(str, option.counts))}")
    return values[0] if len(values) == 1 else values


def _describe_type(option):
    name = getattr(option.type, "__name__", "value")
    names = {"str2bool": "True or False", "finite_float": "a number", "int": "an integer", "str": "a string"}
    base = names.get(name, name)
    if option.nargs == "2":
        return f"two values, each {base}"
    if option.counts:
        return f"{' or '.join(map(str, option.counts))} values, each {base}"
    return f"a list, each {base}" if option.nargs else base


def load_yaml_config(path):
    """Checked values of a YAML config; one ConfigError names every unknown key (with the closest valid key)
    and every refused value."""
    values, mistakes = _read_yaml_config(path)
    _raise_if_any(mistakes)
    return values


def _read_yaml_config(path):
    """(the checked values, the mistakes) of a YAML config."""
    content = _read_yaml(path)
    if content is None:
        return {}, []
    if not isinstance(content, dict):
        raise _not_a_mapping(path, content)
    values, mistakes = {}, []
    for key, value in content.items():
        name = "distribute" if key == "distributed" else key
        if name not in OPTIONS:
            close = difflib.get_close_matches(str(key), OPTIONS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            mistakes.append(f"{path}: unknown key '{key}'.{hint} Run with --help to list the valid keys.")
            continue
        try:
            values[name] = _check_value(OPTIONS[name], value, path)
        except ConfigError as err:
            mistakes.append(str(err))
    return values, mistakes


def _read_yaml(path):
    """The content of a YAML file, which must be UTF-8 text."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ConfigError(f"Cannot read config file {path}: {err.strerror}.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path} is not UTF-8 text: byte 0x{data[err.start]:02x} at position {err.start} (line "
                          f"{line}) cannot be decoded (Latin-1 or another encoding?); save it as UTF-8.") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark, problem = getattr(err, "problem_mark", None), getattr(err, "problem", None) or str(err).splitlines()[0]
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML: {problem}{where}.") from None


_YAML_KINDS = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}


def _not_a_mapping(path, content):
    kind = _YAML_KINDS.get(type(content), type(content).__name__)
    keys_as_items = isinstance(content, list) and content and all(isinstance(item, dict) for item in content)
    hint = " (drop the '- ' before each key)" if keys_as_items else ""
    return ConfigError(f"{path} must be a mapping of option: value lines, e.g. 'model: svt_small', not a {kind}: "
                       f"{reprlib.repr(content)}{hint}.")


def _raise_if_any(mistakes):
    if len(mistakes) == 1:
        raise ConfigError(mistakes[0])
    if mistakes:
        raise ConfigError(f"{len(mistakes)} config mistakes: {'; '.join(m.rstrip('.') for m in mistakes)}.")


@dataclass(frozen=True)
class _Refused:
    """A command-line value the schema refused, kept until the parse has found every mistake."""
    message: str


class _Checked:
    """argparse ``type=`` that applies the schema's conversion and checks to one command-line token."""

    def __init__(self, option):
        self.option = option
        self.__name__ = option.name

    def __call__(self, text):
        single = Option(**{**self.option.__dict__, "nargs": None})
        try:
            return _check_value(single, text, "command line")
        except ConfigError as err:
            return _Refused(str(err))


def _help(option):
    if option.choices is None:
        return option.help
    return f"{option.help} [{', '.join(map(str, option.choices))}]"


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes raise ConfigError (one line from the CLI runner) instead of printing the usage."""

    def error(self, message):
        raise ConfigError(f"{message} (see --help)")


def _add_option(group, option, default):
    if option.positional:
        group.add_argument(option.name, type=_Checked(option), help=_help(option), nargs=option.nargs)
    elif option.switch:
        group.add_argument(f"--{option.name}", *option.aliases, dest=option.name, action="store_true",
                           help=option.help)
    elif option.type is str2bool:  # as MindCV's: a bare --flag means True, and --flag True/False still works
        group.add_argument(f"--{option.name}", *option.aliases, dest=option.name, default=default,
                           type=_Checked(option), help=_help(option), metavar="BOOL", nargs="?", const=True)
    else:
        group.add_argument(f"--{option.name}", *option.aliases, dest=option.name, default=default,
                           type=_Checked(option), help=_help(option), metavar=option.name.upper(),
                           nargs={"2": 2, "*": "*", "+": "+"}.get(option.nargs), required=option.required)


def create_parser(description, defaults=None, schema=None, config_file=True):
    """The argparse parser of ``schema`` (default: train.py/validate.py's), with ``defaults`` over the schema's."""
    defaults = defaults or {}
    parser = _Parser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if config_file:
        parser.add_argument("-c", "--config", default="", help="YAML file whose keys set the defaults below")
    for title, options in (schema or SCHEMA).items():
        group = parser.add_argument_group(title)
        for option in options:
            _add_option(group, option, defaults.get(option.name, option.default))
    return parser


def _parse(parser, argv):
    """(the namespace, the mistakes): the values the schema refused and the arguments no option takes."""
    args, unknown = parser.parse_known_args(argv)
    mistakes = [item.message for value in vars(args).values()
                for item in (value if isinstance(value, (list, tuple)) else [value]) if isinstance(item, _Refused)]
    if unknown:
        mistakes.append(f"unrecognized arguments: {' '.join(unknown)} (see --help)")
    return args, mistakes


def _parsed(parser, argv):
    args, mistakes = _parse(parser, argv)
    _raise_if_any(mistakes)
    return args


def parse_infer_args(argv=None):
    return _parsed(create_parser("Top-k predictions of a MindCV-Twins model for images.", schema=INFER_SCHEMA,
                                 config_file=False), argv)


def parse_export_args(argv=None):
    return _parsed(create_parser("Export a MindCV-Twins model to MINDIR, ONNX or AIR.", schema=EXPORT_SCHEMA,
                                 config_file=False), argv)


def save_config(args, path):
    """The resolved options as a YAML file that ``-c`` reads back (MindCV's ``save_args``), written atomically."""
    values = {name: list(value) if isinstance(value, tuple) else value for name, value in vars(args).items()
              if name in OPTIONS}

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(values, f, sort_keys=False)

    write_atomic(write, path)


def options_for(function, args, exclude=()):
    """The parsed options named as ``function``'s keyword-only parameters, as keyword arguments: the command line
    passes options to library code by name, never the namespace."""
    return {name: getattr(args, name) for name, parameter in inspect.signature(function).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in exclude and hasattr(args, name)}


def call_with_options(function, args, *positional, **given):
    """``function(*positional, **given)`` with its other keyword-only parameters from ``args``."""
    return function(*positional, **options_for(function, args, exclude=given), **given)


def parse_args(argv=None, description="MindCV-Twins", check_names=False, check_launch=True):
    """Parse the command line over the YAML config named by ``-c/--config``; one ConfigError reports every
    mistake found.

    ``check_names``: also ask each builder whether it knows its name (model, opt, scheduler, dataset,
    auto_augment), as the scripts do before any work starts; tools reading recipes of models not registered
    here leave it off. ``check_launch``: with ``distribute``, LauncherError for a launch environment that cannot
    form the job (off for scripts that run one process whatever ``distribute`` says)."""
    argv = sys.argv[1:] if argv is None else argv
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("-c", "--config", default="")
    config = pre.parse_known_args(argv)[0].config
    from_yaml, mistakes = _read_yaml_config(config) if config else ({}, [])
    args, refused = _parse(create_parser(description, from_yaml), argv)
    mistakes += refused + _count_mistakes(args)
    if check_names:
        mistakes += _name_mistakes(args, from_yaml, config)
    _raise_if_any(mistakes)
    if check_launch and args.distribute:
        _check_launch_environment(args.device_target)
    return args


def _count_mistakes(args):
    """Command-line lists (converted one token at a time) made tuples; those with a wrong count are mistakes."""
    mistakes = []
    for option in OPTIONS.values():
        value = getattr(args, option.name)
        if option.nargs and isinstance(value, list):
            try:
                setattr(args, option.name, _counted(option, tuple(value)))
            except ValueError as err:
                mistakes.append(f"command line: {option.name}: {err}; expected {_describe_type(option)}.")
    return mistakes


def _name_mistakes(args, from_yaml, config):
    """The names their builders do not know, each with where it was set."""
    mistakes = []
    for option in OPTIONS.values():
        value = getattr(args, option.name)
        if option.known_by is None or value is None:
            continue
        try:
            option.known_by(value)
        except UserError as err:
            source = config if from_yaml.get(option.name) == value else "command line"
            mistakes.append(f"{source}: {option.name}: {err}")
    return mistakes


# Each launched process drives the device of this index among the visible ones (msrun and rank tables set
# DEVICE_ID; under mpirun MindSpore takes the local rank).
_DEVICE_INDEX_ENV = ("DEVICE_ID", "OMPI_COMM_WORLD_LOCAL_RANK")
_VISIBLE_DEVICES_ENV = {"GPU": "CUDA_VISIBLE_DEVICES", "Ascend": "ASCEND_RT_VISIBLE_DEVICES"}


def _check_launch_environment(device_target):
    """LauncherError for a launch that cannot form a job, found before ``init()`` would wait for processes that
    never join until the cluster times out."""
    for target, visible_env in _VISIBLE_DEVICES_ENV.items():
        if device_target in (target, "auto") and visible_env in os.environ:
            _check_device_index(visible_env)


def _check_device_index(visible_env):
    """This process's device index must name one of the devices ``visible_env`` leaves visible."""
    visible = [device for device in os.environ[visible_env].split(",") if device.strip()]
    index_env = next((name for name in _DEVICE_INDEX_ENV if os.environ.get(name, "").strip().isdigit()), None)
    if index_env is not None and int(os.environ[index_env]) >= len(visible):
        raise LauncherError(
            f"--distribute True, but this process was given device {index_env}={os.environ[index_env].strip()} "
            f"while {visible_env}={os.environ[visible_env]!r} makes {len(visible)} device(s) visible: start at "
            f"most {len(visible)} processes per node (msrun --local_worker_num, mpirun -n) or make more devices "
            "visible.")
