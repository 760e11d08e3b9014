"""The training engine: the train step (loss scaling, clipping, accumulation, EMA), mixed precision, the
distributed set-up, evaluation, checkpoints and their folder, the per-epoch log, and the recipe that turns a
config's options into these objects. It imports the builders, never the deploy or command-line layers."""
from .amp import apply_amp, check_precision_and_amp
from .callbacks import AllReduceSum, StateMonitor, ValCallback
from .checkpoint import (CheckpointManager, PartialEpoch, find_latest_checkpoint, load_train_state, restore_train_state,
                         resume_candidates, save_train_state, save_weights)
from .data_sink import step_outputs, uses_data_sink
from .distributed import all_reduce_mean, all_reduce_sum, init_context, launched_by
from .evaluation import evaluate
from .preemption import StopRequest, TrainingStopped
from .recipe import (build_dataset, build_eval_loader, build_model, build_train_loader, build_train_step,
                     count_train_steps, prepare_output_dir, resolve_num_classes)
from .resume import ResumePoint, resume_point
from .train_log import TRAIN_LOG_FIELDS, EpochLog
from .train_step import GradientAccumulation, TrainStep, create_loss_scale, swap_ema_weights
from .trainer import auto_mixed_precision, create_trainer, get_metrics, require_customized_train_step, set_seed

__all__ = ["AllReduceSum", "CheckpointManager", "EpochLog", "GradientAccumulation", "PartialEpoch", "ResumePoint",
           "StateMonitor", "StopRequest", "TRAIN_LOG_FIELDS", "TrainStep", "TrainingStopped", "ValCallback",
           "all_reduce_mean", "all_reduce_sum", "apply_amp", "auto_mixed_precision", "build_dataset",
           "build_eval_loader", "build_model", "build_train_loader", "build_train_step", "check_precision_and_amp",
           "count_train_steps", "create_loss_scale", "create_trainer", "evaluate", "find_latest_checkpoint",
           "get_metrics", "init_context", "launched_by", "load_train_state", "prepare_output_dir",
           "require_customized_train_step", "resolve_num_classes", "restore_train_state", "resume_candidates",
           "resume_point", "save_train_state", "save_weights", "set_seed", "step_outputs", "swap_ema_weights",
           "uses_data_sink"]
