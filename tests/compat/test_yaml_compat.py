"""A recipe written with MindCV's keys and value forms loads, and each key reaches the object it configures."""
import pytest

from mindcv.cli import call_with_options, options_for, parse_args
from mindcv.engine import recipe

# MindCV's key set and value forms (written from its config.py, not copied from a recipe file).
MINDCV_RECIPE = """\
mode: 0
dataset_sink_mode: True
distribute: False
val_while_train: True
val_interval: 1
log_interval: 50
dataset: imagenet
shuffle: True
dataset_download: False
num_parallel_workers: 2
batch_size: 4
drop_remainder: True
image_resize: 32
scale: [0.08, 1.0]
ratio: [0.75, 1.333]
hflip: 0.5
vflip: 0.0
color_jitter: [0.3, 0.2, 0.1]
interpolation: bicubic
auto_augment: augmix-m5-w4-d2
aug_splits: 3
re_prob: 0.25
re_scale: [0.02, 0.33]
re_ratio: [0.3, 3.3]
re_value: 0
re_max_attempts: 5
mean: [123.675, 116.28, 103.53]
std: [58.395, 57.12, 57.375]
crop_pct: 1.15
mixup: 0.0
cutmix: 0.0
cutmix_prob: 1.0
aug_repeats: 0
model: svt_small
in_channels: 3
pretrained: False
keep_checkpoint_max: 10
ckpt_save_interval: 1
ckpt_save_policy: top_k
epoch_size: 3
ema: False
clip_grad: True
clip_value: 15.0
gradient_accumulation_steps: 1
opt: adamw
momentum: 0.9
weight_decay: 0.05
use_nesterov: False
weight_decay_filter: norm_and_bias
eps: 1.0e-8
scheduler: cosine_decay
lr: 0.001
min_lr: 1.0e-6
warmup_epochs: 1
warmup_factor: 0.0
decay_epochs: 2
decay_rate: 0.9
multi_step_decay_milestones: [1, 2]
lr_epoch_stair: False
num_cycles: 1
cycle_decay: 1.0
loss: jsd
label_smoothing: 0.1
aux_factor: 0.4
reduction: sum
amp_level: O0
val_amp_level: O2
amp_cast_list: null
loss_scale_type: auto
loss_scale: 1024.0
drop_overflow_update: False
eval_shuffle: True
"""


@pytest.fixture
def mindcv_args(tmp_path, shapes_dataset):
    path = tmp_path / "mindcv_recipe.yaml"
    path.write_text(MINDCV_RECIPE)
    return parse_args(["-c", str(path), "--data_dir", shapes_dataset])


def _capture(monkeypatch, name):
    calls = []
    original = getattr(recipe, name)

    def capturing(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(recipe, name, capturing)
    return calls


def test_mindcv_value_forms_load(mindcv_args):
    assert mindcv_args.color_jitter == (0.3, 0.2, 0.1) and mindcv_args.crop_pct == 1.15
    assert mindcv_args.mean == (123.675, 116.28, 103.53) and mindcv_args.num_classes is None
    assert (mindcv_args.reduction, mindcv_args.aux_factor, mindcv_args.val_amp_level) == ("sum", 0.4, "O2")
    assert (mindcv_args.aug_splits, mindcv_args.eval_shuffle, mindcv_args.re_max_attempts) == (3, True, 5)
    assert mindcv_args.dataset_sink_mode is True


def test_augmentation_keys_reach_the_training_transforms_and_loader(mindcv_args, monkeypatch):
    transforms = _capture(monkeypatch, "create_transforms")
    loaders = _capture(monkeypatch, "create_loader")
    data = call_with_options(recipe.build_dataset, mindcv_args, "train")
    loader = recipe.build_train_loader(data, 1, **options_for(recipe.build_train_loader, mindcv_args,
                                                              exclude=("num_classes",)), num_classes=3)
    kwargs = transforms[0][1]
    assert kwargs["color_jitter"] == (0.3, 0.2, 0.1) and kwargs["re_max_attempts"] == 5 and kwargs["separate"]
    assert kwargs["mean"] == (123.675, 116.28, 103.53) and kwargs["std"] == (58.395, 57.12, 57.375)
    assert loaders[0][1]["separate"] is True
    images, labels = next(loader.create_tuple_iterator(num_epochs=1))
    assert images.shape == (12, 3, 32, 32) and labels.shape[0] == 12  # clean + two augmented copies of 4


def test_evaluation_keys_reach_the_eval_transforms(mindcv_args, monkeypatch):
    transforms = _capture(monkeypatch, "create_transforms")
    data = call_with_options(recipe.build_dataset, mindcv_args, "val", shuffle=mindcv_args.eval_shuffle)
    loader = call_with_options(recipe.build_eval_loader, mindcv_args, data)
    assert transforms[0][1]["crop_pct"] == 1.15 and transforms[0][1]["interpolation"] == "bicubic"
    images, _ = next(loader.create_tuple_iterator(num_epochs=1))
    assert images.shape == (4, 3, 32, 32)
    assert recipe.resolve_num_classes(data, mindcv_args.num_classes) == 3


def test_loss_and_step_keys_reach_the_loss_and_train_step(mindcv_args, monkeypatch):
    from mindcv.models import create_model

    losses = _capture(monkeypatch, "create_loss")
    model = create_model("svt_small", num_classes=3)
    step, loss_fn, lrs = call_with_options(recipe.build_train_step, mindcv_args, model, 9)
    assert losses[0][1] == {"reduction": "sum", "label_smoothing": 0.1, "aux_factor": 0.4}
    assert type(loss_fn).__name__ == "JSDCrossEntropy"
    assert step.clip_grad and step.clip_value == 15.0
    assert step.scale_sense.asnumpy() == 1.0  # auto at O0: no loss scaling, as mindspore.Model does
    assert len(lrs) == 27 and max(lrs) == pytest.approx(0.001)
