"""The pieces of a training or evaluation run, built from a recipe's options.

Every option is a keyword-only argument named as the config key it comes from (see ``mindcv.cli.config``), so
the command lines pass them by name and library code can call these with its own values.
"""
import os
import tempfile

import numpy as np

from mindspore import nn

from ..data import create_dataset, create_loader, create_transforms, dataset_for_epoch
from ..foundation.errors import InvalidValueError, MissingPathError
from ..loss import create_loss
from ..models import create_model
from ..optim import create_optimizer
from ..scheduler import create_scheduler
from .amp import apply_amp
from .train_step import TrainStep, create_loss_scale

__all__ = ["build_dataset", "build_eval_loader", "build_model", "build_train_loader", "build_train_step",
           "count_train_steps", "prepare_output_dir", "resolve_num_classes"]


def build_dataset(split, *, dataset, data_dir, num_classes=None, shuffle=True, num_samples=None, num_parallel_workers=8,
                  dataset_download=False, aug_repeats=0, seed=42, rank_id=0, device_num=1):
    """``split`` of the ``dataset`` kind under ``data_dir`` (this rank's shard when ``device_num`` > 1); a given
    ``num_classes`` must agree with the dataset's class count."""
    if not data_dir:
        raise MissingPathError("No dataset given: pass --data_dir DIR (an ImageFolder DIR/<split>/<class>/<image>) "
                               "or set data_dir in the YAML config.")
    sharded = device_num > 1
    data = create_dataset(dataset, data_dir, split, shuffle=shuffle, num_samples=num_samples,
                          num_shards=device_num if sharded else None, shard_id=rank_id if sharded else None,
                          num_parallel_workers=num_parallel_workers, download=dataset_download,
                          num_aug_repeats=aug_repeats if shuffle else 0, seed=seed)
    found = data.num_classes()
    if num_classes is not None and found is not None and found != num_classes:
        raise InvalidValueError(f"{data_dir}/{split} has {found} classes but num_classes is {num_classes}; "
                                f"set --num_classes {found} or leave it out.")
    return data


def resolve_num_classes(data, num_classes=None):
    """``num_classes`` when given, else the dataset's class count (as MindCV's train.py reads it)."""
    if num_classes is None:
        num_classes = data.num_classes()
    if num_classes is None:
        raise InvalidValueError("This dataset does not tell its number of classes: set --num_classes.")
    return int(num_classes)


def count_train_steps(data, **loader_options):
    """Optimizer steps per epoch of ``build_train_loader(data, 1, **loader_options)``; an error when the batch is
    larger than the data with drop_remainder."""
    steps = build_train_loader(data, 1, **loader_options).get_dataset_size()
    if steps == 0:
        raise InvalidValueError(
            f"batch_size {loader_options['batch_size']} is larger than the {data.get_dataset_size()} training "
            "images this rank reads, and drop_remainder is True: no step would run. Lower --batch_size or set "
            "--drop_remainder False.")
    return steps


def build_train_loader(data, epoch, *, dataset, batch_size, seed, num_classes, image_resize=224, auto_augment=None,
                       scale=(0.08, 1.0), ratio=(0.75, 1.333), hflip=0.5, vflip=0.0, color_jitter=0.4,
                       interpolation="bilinear", re_prob=0.0, re_scale=(0.02, 0.33), re_ratio=(0.3, 3.3),
                       re_value=0.0, re_max_attempts=10, mean=None, std=None,
                       aug_splits=0, drop_remainder=True, mixup=0.0, cutmix=0.0, cutmix_prob=1.0,
                       label_smoothing=0.0, num_parallel_workers=8):
    """Epoch ``epoch``'s batches (1-based) of ``data``: order and augmentation depend only on the seed and the
    epoch, so a resumed run reads exactly what an uninterrupted one would."""
    if aug_splits and not auto_augment:
        raise InvalidValueError(f"aug_splits {aug_splits} augments two copies of each batch with the auto_augment "
                                "policy: set auto_augment too (e.g. augmix-m5-w4-d2).")
    epoch_seed = int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])
    transform = create_transforms(dataset, image_resize, is_training=True, auto_augment=auto_augment, scale=scale,
                                  ratio=ratio, hflip=hflip, vflip=vflip, color_jitter=color_jitter,
                                  interpolation=interpolation, re_prob=re_prob, re_scale=re_scale, re_ratio=re_ratio,
                                  re_value=re_value, re_max_attempts=re_max_attempts, separate=aug_splits > 0,
                                  **_normalisation(mean, std))
    return create_loader(dataset_for_epoch(data, epoch - 1), batch_size, drop_remainder=drop_remainder,
                         is_training=True, mixup=mixup, cutmix=cutmix, cutmix_prob=cutmix_prob,
                         num_classes=num_classes, label_smoothing=label_smoothing, transform=transform,
                         num_parallel_workers=num_parallel_workers, seed=epoch_seed, separate=aug_splits > 0)


def build_eval_loader(data, *, dataset, batch_size, image_resize=224, crop_pct=0.875, interpolation="bilinear",
                      mean=None, std=None, num_parallel_workers=8):
    transform = create_transforms(dataset, image_resize, is_training=False, crop_pct=crop_pct,
                                  interpolation=interpolation, **_normalisation(mean, std))
    return create_loader(dataset_for_epoch(data, 0), batch_size, drop_remainder=False, is_training=False,
                         transform=transform, num_parallel_workers=num_parallel_workers)


def _normalisation(mean, std):
    """The given mean/std; None leaves the dataset's own (ImageNet's, CIFAR's, MNIST's)."""
    return {name: value for name, value in (("mean", mean), ("std", std)) if value is not None}


def build_model(*, model, num_classes, pretrained=False, in_channels=3, checkpoint_path="", ema=False, drop_rate=0.0,
                drop_path_rate=0.0, freeze_stages=-1):
    """The model with its weights; ``freeze_stages`` >= 0 keeps the patch embedding and the first
    ``freeze_stages`` stages fixed (the model's ``freeze_stages()``)."""
    network = create_model(model, num_classes=num_classes, pretrained=pretrained, in_channels=in_channels,
                           checkpoint_path=checkpoint_path, ema=ema, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    if freeze_stages >= 0:
        if not hasattr(network, "freeze_stages"):
            raise InvalidValueError(f"freeze_stages: {model} does not declare its stages; use -1.")
        network.freeze_stages(freeze_stages)
    return network


def build_train_step(network, steps_per_epoch, *, epoch_size, loss="CE", label_smoothing=0.0, reduction="mean",
                     aux_factor=0.0, mixup=0.0, cutmix=0.0,
                     opt="adamw", lr=0.001, weight_decay=0.05, momentum=0.9, use_nesterov=False, eps=None,
                     weight_decay_filter="norm_and_bias", filter_bias_and_bn=None, layer_decay=1.0,
                     scheduler="cosine_decay", min_lr=1e-6, warmup_epochs=5, warmup_factor=0.0, decay_epochs=295,
                     decay_rate=0.9, multi_step_decay_milestones=(30, 60, 90), lr_epoch_stair=False, num_cycles=1,
                     cycle_decay=1.0, amp_level="O0", amp_cast_list=None, loss_scale_type="fixed", loss_scale=1.0,
                     drop_overflow_update=False, clip_grad=False, clip_value=5.0, gradient_accumulation_steps=1,
                     ema=False, ema_decay=0.9999):
    """(train step, loss function, per-step learning rates) for ``network`` (a model returning logits)."""
    mixing = mixup > 0 or cutmix > 0
    # The loader folds label smoothing into mixed soft targets; otherwise the loss applies it.
    loss_fn = create_loss(loss, reduction=reduction, label_smoothing=0.0 if mixing else label_smoothing,
                          aux_factor=aux_factor)
    # The optimizer (and so the schedule) advances once per accumulated update, not per micro-batch.
    updates_per_epoch = max(steps_per_epoch // gradient_accumulation_steps, 1)
    lrs = create_scheduler(updates_per_epoch, scheduler, lr=lr, min_lr=min_lr, warmup_epochs=warmup_epochs,
                           warmup_factor=warmup_factor, decay_epochs=decay_epochs, decay_rate=decay_rate,
                           milestones=list(multi_step_decay_milestones), num_epochs=epoch_size,
                           num_cycles=num_cycles, cycle_decay=cycle_decay, lr_epoch_stair=lr_epoch_stair)
    if filter_bias_and_bn is not None:
        weight_decay_filter = "norm_and_bias" if filter_bias_and_bn else "disable"
    optimizer = create_optimizer(network, opt=opt, lr=lrs, weight_decay=weight_decay, momentum=momentum,
                                 nesterov=use_nesterov, weight_decay_filter=weight_decay_filter,
                                 layer_decay=layer_decay, eps=eps)
    with_loss = apply_amp(nn.WithLossCell(network, loss_fn), amp_level, amp_cast_list)
    step = TrainStep(with_loss, optimizer, create_loss_scale(loss_scale_type, loss_scale, amp_level), ema=ema,
                     ema_decay=ema_decay, clip_grad=clip_grad, clip_value=clip_value,
                     gradient_accumulation_steps=gradient_accumulation_steps,
                     drop_overflow_update=drop_overflow_update)
    return step, loss_fn, lrs


def prepare_output_dir(path):
    """Create ``path`` and prove it writable before any training time is spent."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise InvalidValueError(f"ckpt_save_dir {path} is not writable ({err.strerror}); choose another "
                                "--ckpt_save_dir.") from None
