"""The config schema checks YAML values exactly like command-line values."""
import glob
import os

import pytest

from mindcv.models import is_model
from mindcv.cli.config import ConfigError, create_parser, load_yaml_config, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "twins", "*.yaml")))


def _yaml(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return str(path)


def test_every_variant_has_gpu_and_ascend_recipes():
    names = {os.path.basename(p) for p in CONFIGS}
    for short in ("svt_s", "svt_b", "svt_l", "pcpvt_s", "pcpvt_b", "pcpvt_l"):
        assert {f"{short}_gpu.yaml", f"{short}_ascend.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=os.path.basename)
def test_configs_load_and_follow_the_recipe(path):
    args = parse_args(["-c", path])
    assert is_model(args.model)
    if "demo" in path:
        return
    assert args.batch_size * 8 == 1024 and args.lr == pytest.approx(5e-4 * 1024 / 512)
    assert (args.opt, args.weight_decay, args.weight_decay_filter, args.eps) == ("adamw", 0.05, "norm_and_bias", 1e-8)
    assert (args.epoch_size, args.warmup_epochs, args.decay_epochs, args.min_lr) == (300, 5, 295, 1e-5)
    assert args.lr * args.warmup_factor == pytest.approx(1e-6)
    assert (args.auto_augment, args.re_prob, args.mixup, args.cutmix, args.label_smoothing) == \
        ("randaug-m9-mstd0.5-inc1", 0.25, 0.8, 1.0, 0.1)
    assert (args.interpolation, args.crop_pct, args.image_resize) == ("bicubic", 0.9, 224)
    expected_dpr = {"_s_": 0.2, "_b_": 0.3, "_l_": 0.5}
    assert args.drop_path_rate == next(v for k, v in expected_dpr.items() if k in os.path.basename(path))
    assert "global batch" in open(path).read()


def test_command_line_overrides_yaml_and_yaml_overrides_defaults(tmp_path):
    path = _yaml(tmp_path, "batch_size: 16\nlr: 0.01\nscale: [0.5, 1.0]\n")
    args = parse_args(["-c", path, "--lr", "0.2"])
    assert (args.batch_size, args.lr, args.scale) == (16, 0.2, (0.5, 1.0))
    assert args.epoch_size == 300


def test_seed_spelling_distributed_is_accepted(tmp_path):
    assert parse_args(["--distributed", "True"]).distribute is True
    assert parse_args(["-c", _yaml(tmp_path, "distributed: True\n")]).distribute is True


@pytest.mark.parametrize("text, message", [
    ("batch_szie: 8\n", "unknown key 'batch_szie'. Did you mean 'batch_size'?"),
    ("batch_size: 0\n", "batch_size: 0 is out of range; it must be >= 1"),
    ("lr: -0.1\n", "lr: -0.1 is out of range; it must be >= 0"),
    ("crop_pct: -0.5\n", "crop_pct: -0.5 is out of range; it must be > 0"),  # above 1 is MindCV's padded crop
    ("batch_size: eight\n", "batch_size: 'eight' is not valid"),
    ("amp_level: O4\n", "amp_level: 'O4' is not accepted; choose one of O0, O1, O2, O3"),
    ("distribute: maybe\n", "distribute: 'maybe' is not valid"),
    ("scale: [0.5]\n", "scale: [0.5] is not valid ([0.5] does not have 2 values)"),
    ("- a\n- b\n", "must be a mapping"),
    ("lr: [1\n", "is not valid YAML"),
])
def test_bad_yaml_values_name_key_value_and_accepted(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_yaml_config(_yaml(tmp_path, text))
    assert message in str(info.value)


def test_bad_command_line_value_is_rejected_like_yaml():
    with pytest.raises(ConfigError, match="batch_size: '0' is out of range; it must be >= 1"):
        parse_args(["--batch_size", "0"])
    with pytest.raises(ConfigError, match="unrecognized arguments: --batch-size"):
        parse_args(["--batch-size", "8"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="Cannot read config file /nonexistent.yaml"):
        parse_args(["-c", "/nonexistent.yaml"])


def test_help_groups_options_and_shows_defaults():
    text = " ".join(create_parser("x").format_help().split())
    for group in ("System:", "Dataset:", "Augmentation:", "Optimizer:", "Learning-rate schedule:"):
        assert group in text
    assert "(default: 300)" in text and "[O0, O1, O2, O3]" in text
