"""Train a model from a YAML recipe: python train.py -c configs/twins/svt_s_gpu.yaml --data_dir DATA"""
import contextlib
import logging
import os
import signal
import sys
import time

if __name__ == "__main__":
    # Before MindSpore starts threads: they inherit the mask, so SIGTERM/SIGINT reach only StopRequest's waiter
    # (see mindcv.engine.preemption).
    signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM, signal.SIGINT))

import numpy as np
from tqdm import tqdm

from mindcv.cli import call_with_options, options_for, parse_args, run_cli, save_config
from mindcv.data import source_of
from mindcv.deploy.inference import write_class_names
from mindcv.engine import (CheckpointManager, EpochLog, PartialEpoch, StopRequest, TrainingStopped, all_reduce_sum,
                           all_reduce_mean, build_dataset, build_eval_loader, build_model, build_train_loader,
                           build_train_step, check_precision_and_amp, count_train_steps, evaluate, init_context,
                           prepare_output_dir, resolve_num_classes, resume_point, save_train_state, step_outputs,
                           swap_ema_weights, uses_data_sink)
from mindcv.foundation import NonFiniteLossError, setup_logging
from mindcv.models import set_matmul_precision

_logger = logging.getLogger("train")


def lr_at(args, lr, step):
    """The learning rate in force after ``step`` micro-batches (the schedule advances per optimizer update)."""
    return float(lr[min(max(step // args.gradient_accumulation_steps, 1), len(lr)) - 1])


class Run:
    """What every step of a run needs besides its batch."""

    def __init__(self, args, train_step, lr, steps_per_epoch, device_num, manager, stop):
        self.args, self.train_step, self.lr, self.steps_per_epoch = args, train_step, lr, steps_per_epoch
        self.device_num, self.manager, self.stop = device_num, manager, stop
        self.sink = uses_data_sink(args.dataset_sink_mode)
        self.show_bar = manager is not None and sys.stderr.isatty()  # in a log file the bar is one garbled line

    def save_partial(self, epoch, global_step, partial):
        """Rank 0 saves the state inside epoch ``epoch``; every rank waits until it is written."""
        if self.manager is not None:
            _logger.info("Saved %s", self.manager.save_partial(self.train_step, epoch - 1, global_step,
                                                               vars(self.args), partial))
        all_reduce_sum([0], self.device_num)

    def stop_if_asked(self, epoch, global_step, partial):
        """After a stop signal, save the state (unless ``partial`` is None: it is saved) and stop every rank."""
        signum = self.stop.agreed(self.device_num)
        if not signum:
            return
        if partial is not None:
            self.save_partial(epoch, global_step, partial)
        batch = global_step - (epoch - 1) * self.steps_per_epoch
        raise TrainingStopped(
            f"Stopped by {signal.Signals(signum).name} after batch {batch} of {self.steps_per_epoch} in epoch "
            f"{epoch}, step {global_step}; the state is saved in {self.args.ckpt_save_dir}. Run the same command "
            "with --auto_resume True to continue from there.", signum)


def record_step(run, partial, loss, overflow, epoch, step):
    """Add one step's loss to the epoch's; an overflowing step (not applied) only counts as skipped."""
    loss = float(loss.asnumpy())
    if run.train_step.skip_overflow and bool(overflow.asnumpy()):
        partial.skipped += 1  # the update was not applied; the loss scale adapts
        return
    if not np.isfinite(loss):
        raise NonFiniteLossError(
            f"Loss is {loss} at epoch {epoch}, step {step}; stopped without saving this state (the last good "
            f"checkpoint is in {run.args.ckpt_save_dir}). Lower the lr, enable --clip_grad True, or use "
            "--loss_scale_type dynamic.")
    partial.losses.append(loss)


def train_one_epoch(run, loader, epoch, global_step, partial):
    """The rest of epoch ``epoch`` (through the data sink where there is one) after its batches in ``partial``;
    returns ``partial`` holding the whole epoch, and the seconds taken."""
    args, batches = run.args, run.steps_per_epoch
    run.train_step.set_train(True)
    done_before, start = len(partial.losses) + partial.skipped, time.time()
    steps = step_outputs(run.train_step, loader, run.sink)
    bar = tqdm(steps, initial=done_before, total=batches,
               desc=f"epoch {epoch}/{args.epoch_size}", disable=not run.show_bar, dynamic_ncols=True)
    for step, (loss, overflow, _) in enumerate(bar, start=global_step + 1):
        record_step(run, partial, loss, overflow, epoch, step)
        batch, seconds = step - (epoch - 1) * batches, time.time() - start
        images_per_s = (batch - done_before) * args.batch_size / seconds
        losses = partial.losses or [float("nan")]
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", lr=f"{lr_at(args, run.lr, step):.2e}",
                        img_s=f"{images_per_s:.1f}")
        if batch % args.log_interval == 0:
            eta = (batches - batch) * seconds / (batch - done_before)
            _logger.info("epoch %d step %d/%d: loss %.4f, lr %.3g, %.1f img/s, epoch ETA %d:%02d", epoch, batch,
                         batches, np.mean(losses[-args.log_interval:]), lr_at(args, run.lr, step), images_per_s,
                         eta // 60, eta % 60)
        if batch < batches:  # after the last batch, the epoch's own end (validation, checkpoint) comes first
            run.stop_if_asked(epoch, step, partial)
            if args.ckpt_save_steps and batch % args.ckpt_save_steps == 0:
                run.save_partial(epoch, step, partial)
    return partial, time.time() - start


class RankZeroRecords:
    """Rank 0's outputs of a run: the resolved config, train_log.csv, and the epoch and best checkpoints."""

    def __init__(self, args, train_step, lr, epochs_done):
        self.args, self.train_step, self.lr = args, train_step, lr
        save_config(args, os.path.join(args.ckpt_save_dir, f"{args.model}.yaml"))
        self.manager = CheckpointManager(args.ckpt_save_dir, args.model, args.ckpt_save_policy,
                                         args.keep_checkpoint_max)
        self.epoch_log = EpochLog(os.path.join(args.ckpt_save_dir, "train_log.csv"), epochs_done)
        self.best_top1 = self.epoch_log.best("val_top1")

    def end_epoch(self, epoch, global_step, loss, metrics, seconds, images, skipped, save):
        args, lr = self.args, lr_at(self.args, self.lr, global_step)
        _logger.info("epoch %d: loss %.4f, lr %.3g, %.1f img/s%s", epoch, loss, lr, images / seconds,
                     f", val top-1 {metrics['top1']:.2f} top-5 {metrics['top5']:.2f}" if metrics else "")
        self.epoch_log.append(epoch=epoch, step=global_step, lr=lr, train_loss=loss, val_top1=metrics.get("top1", ""),
                              val_top5=metrics.get("top5", ""), val_loss=metrics.get("loss", ""),
                              epoch_time_s=seconds, images_per_s=images / seconds, skipped_steps=skipped)
        if save:
            _logger.info("Saved %s", self.manager.save(self.train_step, epoch, global_step, vars(args),
                                                       metrics.get("top1")))
            self.manager.drop_partial()
        if metrics and metrics["top1"] > self.best_top1:
            self.best_top1 = metrics["top1"]
            best_path = os.path.join(args.ckpt_save_dir, f"{args.model}_best.ckpt")
            save_train_state(best_path, self.train_step, epoch, global_step, vars(args), self.best_top1)
            _logger.info("Saved %s (best val top-1 so far)", best_path)


def validate(run, model, val_set, loss_fn):
    """Top-1/top-5 and loss on ``val_set`` (of the EMA weights with ``ema``), or None when a stop signal comes
    first: a scheduler's grace period may be shorter than a validation pass."""
    loader = call_with_options(build_eval_loader, run.args, val_set)
    with swap_ema_weights(run.train_step) if run.args.ema else contextlib.nullcontext():
        return evaluate(model, loader, loss_fn, progress=run.show_bar,
                        interrupted=lambda: run.stop.agreed(run.device_num))


def main(args):
    """Train as configured; returns the train step (model, optimizer and EMA state) at the end. SIGTERM or
    SIGINT during training saves the state and stops (TrainingStopped); before it, they end the process."""
    with StopRequest() as stop:
        return train(args, stop)


def train(args, stop):
    """main(), with ``stop`` noting stop signals once training begins."""
    rank_id, device_num = init_context(args.mode, args.device_target, args.distribute, args.seed)
    check_precision_and_amp(args.precision, args.amp_level)
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
    precision = set_matmul_precision(model, args.precision)
    loader_options = options_for(build_train_loader, args)
    steps_per_epoch = count_train_steps(train_set, **loader_options)
    train_step, loss_fn, lr = call_with_options(build_train_step, args, model, steps_per_epoch)
    point = call_with_options(resume_point, args, train_step, model, model_name=args.model,
                              steps_per_epoch=steps_per_epoch)

    records = RankZeroRecords(args, train_step, lr, point.epoch) if is_main else None
    run = Run(args, train_step, lr, steps_per_epoch, device_num, records and records.manager, stop)
    stop.armed = True
    _logger.info("Training %s on %d device(s), %d steps per epoch, epochs %d to %d, matmuls in %s%s.", args.model,
                 device_num, steps_per_epoch, point.epoch + 1, args.epoch_size, precision,
                 ", through the data sink" if run.sink else "")
    global_step, partial = point.global_step, point.partial_epoch
    for epoch in range(point.epoch + 1, args.epoch_size + 1):
        loader = build_train_loader(train_set, epoch, **loader_options)
        batches_done = len(partial.losses) + partial.skipped
        if batches_done:
            # The skipped batches still pass through the pipeline, so its random augmentations stay in step.
            loader = loader.skip(batches_done)
        partial, seconds = train_one_epoch(run, loader, epoch, global_step, partial)
        loss = float(all_reduce_mean([np.mean(partial.losses) if partial.losses else np.nan], device_num)[0])
        global_step = epoch * steps_per_epoch
        metrics = {}
        if val_set is not None and (epoch % args.val_interval == 0 or epoch == args.epoch_size):
            metrics = validate(run, model, val_set, loss_fn)
            if metrics is None:  # saved with every batch done, the epoch resumes at its validation
                run.stop_if_asked(epoch, global_step, partial)
        saved = epoch % args.ckpt_save_interval == 0 or epoch == args.epoch_size
        if records:
            images = (steps_per_epoch - batches_done) * args.batch_size * device_num
            records.end_epoch(epoch, global_step, loss, metrics, seconds, images, partial.skipped, saved)
        partial = PartialEpoch()
        if epoch < args.epoch_size:
            run.stop_if_asked(epoch + 1, global_step, None if saved else partial)
    return train_step


if __name__ == "__main__":
    sys.exit(run_cli(main, lambda: parse_args(description="Train a MindCV-Twins model.", check_names=True)))
