"""Train a model from a YAML recipe: python train.py -c configs/twins/svt_s_gpu.yaml --data_dir DATA"""
import logging
import os
import sys
import time

import numpy as np
from tqdm import tqdm

import mindspore as ms
from mindspore import nn

from mindcv.data import create_dataset, create_loader, create_transforms, dataset_for_epoch, source_of
from mindcv.loss import create_loss
from mindcv.models import create_model
from mindcv.optim import create_optimizer
from mindcv.scheduler import create_scheduler
from mindcv.utils.amp import apply_amp
from mindcv.utils.checkpoint import CheckpointManager, find_latest_checkpoint, load_train_state
from mindcv.utils.cli import run_cli
from mindcv.utils.config import parse_args
from mindcv.utils.distributed import init_context
from mindcv.utils.evaluation import evaluate
from mindcv.utils.logger import EpochLog, setup_logging
from mindcv.utils.train_step import TrainStep, create_loss_scale, swap_ema_weights

_logger = logging.getLogger("train")


def build_data(args, rank_id, device_num):
    """Training dataset (this rank's shard) and, with val_while_train, the validation dataset."""
    train_set = create_dataset(args.dataset, args.data_dir, args.train_split, shuffle=args.shuffle,
                               num_samples=args.num_samples, num_shards=device_num if device_num > 1 else None,
                               shard_id=rank_id if device_num > 1 else None,
                               num_parallel_workers=args.num_parallel_workers, download=args.dataset_download,
                               num_aug_repeats=args.aug_repeats)
    val_set = None
    if args.val_while_train:
        val_set = create_dataset(args.dataset, args.data_dir, args.val_split, shuffle=False,
                                 num_parallel_workers=args.num_parallel_workers)
    return train_set, val_set


def train_loader(args, dataset, num_classes, epoch):
    """Epoch ``epoch``'s batches (1-based): order and augmentation depend only on the seed and the epoch."""
    dataset = dataset_for_epoch(dataset, epoch - 1)
    seed = int(np.random.SeedSequence([args.seed, epoch]).generate_state(1)[0])
    transform = create_transforms(args.dataset, args.image_resize, is_training=True, auto_augment=args.auto_augment,
                                  scale=args.scale, ratio=args.ratio, hflip=args.hflip, vflip=args.vflip,
                                  color_jitter=args.color_jitter, interpolation=args.interpolation,
                                  re_prob=args.re_prob, re_scale=args.re_scale, re_ratio=args.re_ratio,
                                  re_value=args.re_value)
    return create_loader(dataset, args.batch_size, drop_remainder=args.drop_remainder, is_training=True,
                         mixup=args.mixup, cutmix=args.cutmix, cutmix_prob=args.cutmix_prob,
                         num_classes=num_classes, label_smoothing=args.label_smoothing, transform=transform,
                         num_parallel_workers=args.num_parallel_workers, seed=seed)


def eval_loader(args, dataset):
    transform = create_transforms(args.dataset, args.image_resize, is_training=False, crop_pct=args.crop_pct,
                                  interpolation=args.interpolation)
    return create_loader(dataset, args.batch_size, drop_remainder=False, is_training=False, transform=transform,
                         num_parallel_workers=args.num_parallel_workers)


def build_train_step(args, model, steps_per_epoch):
    mixing = args.mixup > 0 or args.cutmix > 0
    # The loader folds label smoothing into mixed soft targets; otherwise the loss applies it.
    loss_fn = create_loss(args.loss, label_smoothing=0.0 if mixing else args.label_smoothing)
    lr = create_scheduler(steps_per_epoch, args.scheduler, lr=args.lr, min_lr=args.min_lr,
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


def resume_point(args, train_step):
    """(epoch, global step, best metric) to continue from: the newest valid checkpoint with auto_resume,
    or ckpt_path with resume_opt; (0, 0, -1) for a fresh start."""
    path = find_latest_checkpoint(args.ckpt_save_dir, f"{args.model}-*.ckpt") if args.auto_resume else None
    if path is None and args.ckpt_path and args.resume_opt:
        path = args.ckpt_path
    if path is None:
        return 0, 0, -1.0
    epoch, global_step, metric = load_train_state(path, train_step)
    _logger.info("Resumed from %s: epoch %d done, global step %d.", path, epoch, global_step)
    return epoch, global_step, metric


def train_one_epoch(args, train_step, loader, lr, epoch, global_step, is_main):
    """Runs one epoch; returns (mean loss, steps, skipped overflow steps, images, seconds)."""
    train_step.set_train(True)
    steps = loader.get_dataset_size()
    losses, skipped, start = [], 0, time.time()
    bar = tqdm(loader.create_tuple_iterator(num_epochs=1), total=steps, disable=not is_main,
               desc=f"epoch {epoch}/{args.epoch_size}", dynamic_ncols=True)
    for images, labels in bar:
        loss, overflow, _ = train_step(images, labels)
        loss = float(loss.asnumpy())
        if not np.isfinite(loss):
            raise FloatingPointError(f"Loss is {loss} at epoch {epoch}, step {global_step + len(losses) + 1}; "
                                     "training stopped without saving this state. Lower the lr, enable "
                                     "--clip_grad, or use --loss_scale_type dynamic with AMP.")
        skipped += bool(overflow.asnumpy())
        losses.append(loss)
        index = min(global_step + len(losses) - 1, len(lr) - 1)
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", lr=f"{lr[index]:.2e}",
                        img_s=f"{len(losses) * args.batch_size / (time.time() - start):.1f}")
    return float(np.mean(losses)), len(losses), skipped, len(losses) * args.batch_size, time.time() - start


def main(args):
    rank_id, device_num = init_context(args.mode, args.device_target, args.distribute, args.seed)
    is_main = rank_id == 0
    if is_main:
        os.makedirs(args.ckpt_save_dir, exist_ok=True)
    setup_logging(os.path.join(args.ckpt_save_dir, "train.log") if is_main else None,
                  logging.INFO if is_main else logging.WARNING)

    train_set, val_set = build_data(args, rank_id, device_num)
    num_classes = args.num_classes
    model = create_model(args.model, num_classes=num_classes, pretrained=args.pretrained,
                         in_channels=args.in_channels, checkpoint_path="" if args.resume_opt else args.ckpt_path,
                         drop_rate=args.drop_rate, drop_path_rate=args.drop_path_rate)
    steps_per_epoch = train_loader(args, train_set, num_classes, epoch=1).get_dataset_size()
    train_step, loss_fn, lr = build_train_step(args, model, steps_per_epoch)
    start_epoch, global_step, best = resume_point(args, train_step)

    manager = CheckpointManager(args.ckpt_save_dir, args.model, args.ckpt_save_policy, args.keep_checkpoint_max)
    epoch_log = EpochLog(os.path.join(args.ckpt_save_dir, "train_log.csv"), start_epoch) if is_main else None
    _logger.info("Training %s on %d device(s): %d steps per epoch, epochs %d-%d.", args.model, device_num,
                 steps_per_epoch, start_epoch + 1, args.epoch_size)
    for epoch in range(start_epoch + 1, args.epoch_size + 1):
        loader = train_loader(args, train_set, num_classes, epoch)
        loss, steps, skipped, images, seconds = train_one_epoch(args, train_step, loader, lr, epoch, global_step,
                                                                is_main)
        global_step += steps
        metrics = {}
        if val_set is not None and (epoch % args.val_interval == 0 or epoch == args.epoch_size):
            if args.ema:
                with swap_ema_weights(train_step):
                    metrics = evaluate(model, eval_loader(args, val_set), loss_fn, progress=is_main)
            else:
                metrics = evaluate(model, eval_loader(args, val_set), loss_fn, progress=is_main)
        if not is_main:
            continue
        _logger.info("epoch %d: loss %.4f, lr %.3g, %.1f img/s%s", epoch, loss, lr[global_step - 1],
                     images * device_num / seconds,
                     f", val top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f}" if metrics else "")
        epoch_log.append(epoch=epoch, step=global_step, lr=float(lr[global_step - 1]), train_loss=loss,
                         val_top1=metrics.get("top1", ""), val_top5=metrics.get("top5", ""),
                         val_loss=metrics.get("loss", ""), epoch_time_s=seconds,
                         images_per_s=images * device_num / seconds, skipped_steps=skipped)
        if epoch % args.ckpt_save_interval == 0 or epoch == args.epoch_size:
            path = manager.save(train_step, epoch, global_step, vars(args), metrics.get("top1"))
            _logger.info("Saved %s", path)


if __name__ == "__main__":
    sys.exit(run_cli(main, lambda: parse_args(description="Train a MindCV-Twins model.")))
