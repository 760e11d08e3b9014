"""MindCV's ``mindcv.utils``: a facade over the foundation and the engine, so MindCV's import paths keep working.
It holds no code of its own."""
from ..engine import (AllReduceSum, CheckpointManager, GradientAccumulation, StateMonitor, TrainStep, ValCallback,
                      all_reduce_mean, apply_amp, auto_mixed_precision, create_loss_scale, create_trainer, evaluate,
                      find_latest_checkpoint, get_metrics, init_context, load_train_state,
                      require_customized_train_step, save_train_state, set_seed, swap_ema_weights)
from ..foundation import (CheckpointError, ConfigError, DownLoad, DownloadError, InvalidValueError, LauncherError,
                          MissingPathError, UnknownNameError, UserError, download_url, get_cache_dir, read_checkpoint,
                          save_checkpoint_atomic, set_logger, setup_logging)

__all__ = ["AllReduceSum", "CheckpointError", "CheckpointManager", "ConfigError", "DownLoad", "DownloadError",
           "GradientAccumulation", "InvalidValueError", "LauncherError", "MissingPathError", "StateMonitor",
           "TrainStep", "UnknownNameError", "UserError", "ValCallback", "all_reduce_mean", "apply_amp",
           "auto_mixed_precision", "create_loss_scale", "create_trainer", "download_url", "evaluate",
           "find_latest_checkpoint", "get_cache_dir", "get_metrics", "init_context", "load_train_state",
           "read_checkpoint", "require_customized_train_step", "save_checkpoint_atomic", "save_train_state",
           "set_logger", "set_seed", "setup_logging", "swap_ema_weights"]
