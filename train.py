"""Train a model from a YAML recipe: python train.py -c configs/twins/svt_s_gpu.yaml --data_dir DATA"""
import logging
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from mindcv.cli import call_with_options, options_for, parse_args, run_cli, save_config
from mindcv.data import source_of
from mindcv.deploy.inference import write_class_names
from mindcv.engine import (CheckpointManager, EpochLog, all_reduce_mean, build_dataset, build_eval_loader, build_model,
                           build_train_loader, build_train_step, count_train_steps, evaluate, init_context,
                           prepare_output_dir, resolve_num_classes, resume_point, save_train_state, step_outputs,
                           swap_ema_weights, uses_data_sink)
from mindcv.foundation import NonFiniteLossError, setup_logging

_logger = logging.getLogger("train")


def lr_at(args, lr, step):
    """The learning rate in force after ``step`` micro-batches (the schedule advances per optimizer update)."""
    return float(lr[min(max(step // args.gradient_accumulation_steps, 1), len(lr)) - 1])


def train_one_epoch(args, train_step, loader, lr, epoch, global_step, show_progress, sink):
    """One pass over ``loader`` (through the data sink when ``sink``); returns (mean loss, steps, skipped
    overflow steps, seconds)."""
    train_step.set_train(True)
    losses, skipped, start = [], 0, time.time()
    batches = loader.get_dataset_size()
    bar = tqdm(step_outputs(train_step, loader, sink), total=batches, desc=f"epoch {epoch}/{args.epoch_size}",
               disable=not show_progress, dynamic_ncols=True)
    for step, (loss, overflow, _) in enumerate(bar, start=global_step + 1):
        loss = float(loss.asnumpy())
        if train_step.skip_overflow and bool(overflow.asnumpy()):
            skipped += 1  # the update was not applied; the loss scale adapts
            continue
        if not np.isfinite(loss):
            raise NonFiniteLossError(
                f"Loss is {loss} at epoch {epoch}, step {step}; stopped without saving this state (the last good "
                f"checkpoint is in {args.ckpt_save_dir}). Lower the lr, enable --clip_grad True, or use "
                "--loss_scale_type dynamic.")
        losses.append(loss)
        images_per_s = (step - global_step) * args.batch_size / (time.time() - start)
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", lr=f"{lr_at(args, lr, step):.2e}", img_s=f"{images_per_s:.1f}")
        if (step - global_step) % args.log_interval == 0:
            _logger.info("epoch %d step %d/%d: loss %.4f, lr %.3g, %.1f img/s", epoch, step - global_step, batches,
                         np.mean(losses[-args.log_interval:]), lr_at(args, lr, step), images_per_s)
    steps = len(losses) + skipped
    return float(np.mean(losses)) if losses else float("nan"), steps, skipped, time.time() - start


def validate(args, model, train_step, val_set, loss_fn, show_progress):
    loader = call_with_options(build_eval_loader, args, val_set)
    if not args.ema:
        return evaluate(model, loader, loss_fn, progress=show_progress)
    with swap_ema_weights(train_step):
        return evaluate(model, loader, loss_fn, progress=show_progress)


def main(args):
    """Train as configured; returns the train step (model, optimizer and EMA state) at the end."""
    rank_id, device_num = init_context(args.mode, args.device_target, args.distribute, args.seed)
    is_main = rank_id == 0
    if is_main:
        prepare_output_dir(args.ckpt_save_dir)
    setup_logging(os.path.join(args.ckpt_save_dir, "train.log") if is_main else None,
                  logging.INFO if is_main else logging.WARNING)

    train_set = call_with_options(build_dataset, args, args.train_split, rank_id=rank_id, device_num=device_num)
    args.num_classes = resolve_num_classes(train_set, args.num_classes)
    val_set = call_with_options(build_dataset, args, args.val_split, shuffle=False) if args.val_while_train else None
    if is_main and source_of(train_set).classes:
        write_class_names(args.ckpt_save_dir, source_of(train_set).classes)  # infer.py labels predictions with it
    model = call_with_options(build_model, args, checkpoint_path="" if args.resume_opt else args.ckpt_path)
    loader_options = options_for(build_train_loader, args)
    steps_per_epoch = count_train_steps(train_set, **loader_options)
    train_step, loss_fn, lr = call_with_options(build_train_step, args, model, steps_per_epoch)
    start_epoch, global_step = call_with_options(resume_point, args, train_step, model,
                                                 model_name=args.model, steps_per_epoch=steps_per_epoch)

    if is_main:
        save_config(args, os.path.join(args.ckpt_save_dir, f"{args.model}.yaml"))
        manager = CheckpointManager(args.ckpt_save_dir, args.model, args.ckpt_save_policy, args.keep_checkpoint_max)
        epoch_log = EpochLog(os.path.join(args.ckpt_save_dir, "train_log.csv"), start_epoch)
        best_top1 = epoch_log.best("val_top1")
    sink = uses_data_sink(args.dataset_sink_mode)
    _logger.info("Training %s on %d device(s), %d steps per epoch, epochs %d to %d%s.", args.model, device_num,
                 steps_per_epoch, start_epoch + 1, args.epoch_size, ", through the data sink" if sink else "")
    for epoch in range(start_epoch + 1, args.epoch_size + 1):
        loader = build_train_loader(train_set, epoch, **loader_options)
        loss, steps, skipped, seconds = train_one_epoch(args, train_step, loader, lr, epoch, global_step, is_main, sink)
        loss = float(all_reduce_mean([loss], device_num)[0])
        global_step += steps
        metrics = {}
        if val_set is not None and (epoch % args.val_interval == 0 or epoch == args.epoch_size):
            metrics = validate(args, model, train_step, val_set, loss_fn, is_main)
        if not is_main:
            continue
        images_per_s = steps * args.batch_size * device_num / seconds
        _logger.info("epoch %d: loss %.4f, lr %.3g, %.1f img/s%s", epoch, loss, lr_at(args, lr, global_step),
                     images_per_s, f", val top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f}" if metrics else "")
        epoch_log.append(epoch=epoch, step=global_step, lr=lr_at(args, lr, global_step), train_loss=loss,
                         val_top1=metrics.get("top1", ""), val_top5=metrics.get("top5", ""),
                         val_loss=metrics.get("loss", ""), epoch_time_s=seconds, images_per_s=images_per_s,
                         skipped_steps=skipped)
        if epoch % args.ckpt_save_interval == 0 or epoch == args.epoch_size:
            _logger.info("Saved %s", manager.save(train_step, epoch, global_step, vars(args), metrics.get("top1")))
        if metrics and metrics["top1"] > best_top1:
            best_top1 = metrics["top1"]
            best_path = os.path.join(args.ckpt_save_dir, f"{args.model}_best.ckpt")
            save_train_state(best_path, train_step, epoch, global_step, vars(args), best_top1)
            _logger.info("Saved %s (best val top-1 so far)", best_path)
    return train_step


if __name__ == "__main__":
    sys.exit(run_cli(main, lambda: parse_args(description="Train a MindCV-Twins model.")))
