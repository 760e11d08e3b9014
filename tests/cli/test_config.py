"""The config schema checks YAML values exactly like command-line values."""
import glob
import os
import re

import pytest

from mindcv.foundation import LauncherError
from mindcv.models import is_model
from mindcv.cli.config import ConfigError, create_parser, load_yaml_config, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "configs", "twins", "*.yaml")))


def _yaml(tmp_path, text):
    path = tmp_path / "c.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
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
    ("- a\n- b\n", "must be a mapping of option: value lines, e.g. 'model: svt_small', not a list: ['a', 'b']."),
    ("- model: svt_small\n- lr: 0.1\n",
     "not a list: [{'model': 'svt_small'}, {'lr': 0.1}] (drop the '- ' before each key)."),
    ("svt_small\n", "not a string: 'svt_small'."),
    ("lr: [1\n", "is not valid YAML: expected ',' or ']', but got '<stream end>' at line 2, column 1."),
    (b"lr: 0.1\n# r\xe9glage\n", "c.yaml is not UTF-8 text: byte 0xe9 at position 11 (line 2) cannot be decoded"),
    ("image_resize: 31\n", "image_resize: 31 is out of range; it must be >= 32"),
])
def test_bad_yaml_values_name_key_value_and_accepted(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        load_yaml_config(_yaml(tmp_path, text))
    assert message in str(info.value)


def test_every_mistake_of_a_yaml_file_is_reported_at_once(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_yaml_config(_yaml(tmp_path, "lerning_rate: 0.1\nbatch_size: 0\nlr: 0.01\n"))
    assert str(info.value).startswith("2 config mistakes: ")
    assert "unknown key 'lerning_rate'" in str(info.value) and "batch_size: 0 is out of range" in str(info.value)


def test_the_smallest_image_is_32_pixels():
    assert parse_args(["--image_resize", "32"]).image_resize == 32
    with pytest.raises(ConfigError, match="image_resize: '31' is out of range; it must be >= 32"):
        parse_args(["--image_resize", "31"])


def test_every_config_mistake_is_reported_at_once(tmp_path):
    path = _yaml(tmp_path, "lerning_rate: 0.1\nscheduler: cosine\n")
    with pytest.raises(ConfigError) as info:
        parse_args(["-c", path, "--model", "svt_smal", "--opt", "adamx", "--loss", "focal", "--interpolation",
                    "bilnear", "--dataset", "imagenet21k", "--auto_augment", "randomaug-m9", "--batch_size", "0",
                    "--batch-size", "8", "--color_jitter", "0.1", "0.2"], check_names=True)
    message = str(info.value)
    assert message.startswith("11 config mistakes: ") and "\n" not in message
    for mistake in (f"{path}: unknown key 'lerning_rate'.",
                    "command line: interpolation: 'bilnear' is not accepted; choose one of bicubic, bilinear",
                    "command line: loss: 'focal' is not accepted; choose one of CE, BCE",
                    "command line: batch_size: '0' is out of range; it must be >= 1",
                    "unrecognized arguments: --batch-size 8",
                    "command line: color_jitter: [0.1, 0.2] has 2 values, not 1 or 3 or 4",
                    "command line: dataset: Unknown dataset 'imagenet21k'. Did you mean: imagenet?",
                    "command line: auto_augment: Unknown auto_augment policy 'randomaug'. Did you mean: randaug",
                    "command line: model: Unknown model 'svt_smal'. Did you mean: svt_small",
                    "command line: opt: Unknown optimizer 'adamx'.",
                    f"{path}: scheduler: Unknown scheduler 'cosine'. Did you mean: cosine_decay"):
        assert mistake in message


def test_names_are_checked_only_when_asked():
    """MindCV's recipes name models not registered here; tools read them without checking the names."""
    assert parse_args(["--model", "vit_b32_224"]).model == "vit_b32_224"
    with pytest.raises(ConfigError, match="^command line: model: Unknown model 'vit_b32_224'"):
        parse_args(["--model", "vit_b32_224"], check_names=True)


def test_a_name_is_checked_after_the_command_line_overrides_the_yaml(tmp_path):
    path = _yaml(tmp_path, "model: svt_smal\nopt: AdamW\ndataset: CIFAR10\n")
    args = parse_args(["-c", path, "--model", "pcpvt_small"], check_names=True)
    assert (args.model, args.opt, args.dataset) == ("pcpvt_small", "AdamW", "CIFAR10")  # builders ignore the case


def test_auto_augment_is_checked_by_its_own_parser():
    with pytest.raises(ConfigError, match="auto_augment: Unknown option 'x3' in auto_augment 'randaug-m9-x3'"):
        parse_args(["--auto_augment", "randaug-m9-x3"], check_names=True)
    assert parse_args(["--auto_augment", "randaug-m9-mstd0.5-inc1"], check_names=True).auto_augment


LAUNCHES = {
    "msrun": {"MS_ROLE": "MS_WORKER", "MS_WORKER_NUM": "8", "DEVICE_ID": "3"},
    "mpirun": {"OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_RANK": "3"},
}


@pytest.mark.parametrize("environment, message", [
    ({**LAUNCHES["msrun"], "CUDA_VISIBLE_DEVICES": "0,1"},
     "this process was given device DEVICE_ID=3 while CUDA_VISIBLE_DEVICES='0,1' makes 2 device(s) visible"),
    ({**LAUNCHES["mpirun"], "CUDA_VISIBLE_DEVICES": "0"},
     "device OMPI_COMM_WORLD_LOCAL_RANK=3 while CUDA_VISIBLE_DEVICES='0' makes 1 device(s) visible"),
], ids=["msrun_more_workers_than_gpus", "mpirun_more_processes_than_gpus"])
def test_a_launch_that_cannot_form_the_job_is_refused(monkeypatch, environment, message):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(LauncherError, match=re.escape(message)):
        parse_args(["--distribute", "True", "--device_target", "GPU"])
    parse_args(["--distribute", "True", "--device_target", "GPU"], check_launch=False)
    parse_args(["--distribute", "False", "--device_target", "GPU"])


@pytest.mark.parametrize("environment", [
    {**LAUNCHES["msrun"], "CUDA_VISIBLE_DEVICES": "0,1,2,3"},
    {**LAUNCHES["mpirun"], "MS_WORKER_NUM": "2"},  # msrun's count, left over without msrun: MindSpore ignores it
    # mpirun starting MindSpore's dynamic cluster: its world holds the scheduler besides the 2 workers
    {"MS_ROLE": "MS_WORKER", "MS_WORKER_NUM": "2", "OMPI_COMM_WORLD_SIZE": "3"},
    {**LAUNCHES["msrun"], "ASCEND_RT_VISIBLE_DEVICES": "0"},  # the GPU run does not use Ascend's devices
], ids=["enough_gpus", "msrun_count_without_msrun", "mpirun_starting_the_dynamic_cluster", "other_device_kind"])
def test_a_launch_that_forms_the_job_is_accepted(monkeypatch, environment):
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert parse_args(["--distribute", "True", "--device_target", "GPU"]).distribute


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
