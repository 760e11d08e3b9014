"""The pieces of a training or evaluation run, built from the parsed config (see ``config.py``)."""
import os
import tempfile

import numpy as np

from mindspore import nn

from ..data import create_dataset, create_loader, create_transforms, dataset_for_epoch, source_of
from ..loss import create_loss
from ..models import create_model
from ..optim import create_optimizer
from ..scheduler import create_scheduler
from .amp import apply_amp
from .train_step import TrainStep, create_loss_scale

__all__ = ["build_dataset", "build_eval_loader", "build_model", "build_train_loader", "build_train_step",
           "count_train_steps", "prepare_output_dir"]


def build_dataset(args, split, shuffle=False, rank_id=0, device_num=1):
    """``split`` of the configured dataset (this rank's shard when ``device_num`` > 1), checked against
    ``num_classes``."""
    if not args.data_dir:
        raise ValueError("No dataset given: pass --data_dir DIR (an ImageFolder DIR/<split>/<class>/<image>) or set "
                         "data_dir in the YAML config.")
    sharded = device_num > 1
    dataset = create_dataset(args.dataset, args.data_dir, split, shuffle=shuffle, num_samples=args.num_samples,
                             num_shards=device_num if sharded else None, shard_id=rank_id if sharded else None,
                             num_parallel_workers=args.num_parallel_workers, download=args.dataset_download,
                             num_aug_repeats=args.aug_repeats if shuffle else 0, seed=args.seed)
    classes = source_of(dataset).classes
    if classes and len(classes) != args.num_classes:
        raise ValueError(f"{args.data_dir}/{split} has {len(classes)} classes but num_classes is {args.num_classes}; "
                         f"set --num_classes {len(classes)}.")
    return dataset


def count_train_steps(args, dataset):
    """Optimizer steps per epoch; an error when the batch is larger than the data with drop_remainder."""
    steps = build_train_loader(args, dataset, epoch=1).get_dataset_size()
    if steps == 0:
        raise ValueError(f"batch_size {args.batch_size} is larger than the {dataset.get_dataset_size()} training "
                         "images this rank reads, and drop_remainder is True: no step would run. Lower --batch_size "
                         "or set --drop_remainder False.")
    return steps


def build_train_loader(args, dataset, epoch):
    """Epoch ``epoch``'s batches (1-based): order and augmentation depend only on the seed and the epoch, so a
    resumed run reads exactly what an uninterrupted one would."""
    seed = int(np.random.SeedSequence([args.seed, epoch]).generate_state(1)[0])
    transform = create_transforms(args.dataset, args.image_resize, is_training=True, auto_augment=args.auto_augment,
                                  scale=args.scale, ratio=args.ratio, hflip=args.hflip, vflip=args.vflip,
                                  color_jitter=args.color_jitter, interpolation=args.interpolation,
                                  re_prob=args.re_prob, re_scale=args.re_scale, re_ratio=args.re_ratio,
                                  re_value=args.re_value)
    return create_loader(dataset_for_epoch(dataset, epoch - 1), args.batch_size, drop_remainder=args.drop_remainder,
                         is_training=True, mixup=args.mixup, cutmix=args.cutmix, cutmix_prob=args.cutmix_prob,
                         num_classes=args.num_classes, label_smoothing=args.label_smoothing, transform=transform,
                         num_parallel_workers=args.num_parallel_workers, seed=seed)


def build_eval_loader(args, dataset):
    transform = create_transforms(args.dataset, args.image_resize, is_training=False, crop_pct=args.crop_pct,
                                  interpolation=args.interpolation)
    return create_loader(dataset_for_epoch(dataset, 0), args.batch_size, drop_remainder=False, is_training=False,
                         transform=transform, num_parallel_workers=args.num_parallel_workers)


def build_model(args, checkpoint_path="", ema=False):
    return create_model(args.model, num_classes=args.num_classes, pretrained=args.pretrained,
                        in_channels=args.in_channels, checkpoint_path=checkpoint_path, ema=ema,
                        drop_rate=args.drop_rate, drop_path_rate=args.drop_path_rate)


def build_train_step(args, model, steps_per_epoch):
    """(train step, loss function, per-step learning rates)."""
    mixing = args.mixup > 0 or args.cutmix > 0
    # The loader folds label smoothing into mixed soft targets; otherwise the loss applies it.
    loss_fn = create_loss(args.loss, label_smoothing=0.0 if mixing else args.label_smoothing)
    # The optimizer (and so the schedule) advances once per accumulated update, not per micro-batch.
    updates_per_epoch = max(steps_per_epoch // args.gradient_accumulation_steps, 1)
    lr = create_scheduler(updates_per_epoch, args.scheduler, lr=args.lr, min_lr=args.min_lr,
                          warmup_epochs=args.warmup_epochs, warmup_factor=args.warmup_factor,
                          decay_epochs=args.decay_epochs, decay_rate=args.decay_rate,
                          milestones=list(args.multi_step_decay_milestones), num_epochs=args.epoch_size,
                          num_cycles=args.num_cycles, cycle_decay=args.cycle_decay,
                          lr_epoch_stair=args.lr_epoch_stair)
    wd_filter = args.weight_decay_filter
    if args.filter_bias_and_bn is not None:
        wd_filter = "norm_and_bias" if args.filter_bias_and_bn else "disable"
    optimizer = create_optimizer(model, opt=args.opt, lr=lr, weight_decay=args.weight_decay,
                                 momentum=args.momentum, nesterov=args.use_nesterov,
                                 weight_decay_filter=wd_filter, layer_decay=args.layer_decay, eps=args.eps)
    network = apply_amp(nn.WithLossCell(model, loss_fn), args.amp_level, args.amp_cast_list)
    step = TrainStep(network, optimizer, create_loss_scale(args.loss_scale_type, args.loss_scale),
                     drop_overflow_update=args.drop_overflow_update, clip_grad=args.clip_grad,
                     clip_value=args.clip_value, accumulation_steps=args.gradient_accumulation_steps,
                     ema=args.ema, ema_decay=args.ema_decay)
    return step, loss_fn, lr


def prepare_output_dir(path):
    """Create ``path`` and prove it writable before any training time is spent."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(f"ckpt_save_dir {path} is not writable ({err.strerror}); choose another "
                         "--ckpt_save_dir.") from None
