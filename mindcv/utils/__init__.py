"""MindCV's ``mindcv.utils``: a facade over the foundation and the engine, so MindCV's import paths keep working.
It holds no code of its own."""
from ..engine import (CheckpointManager, TrainStep, all_reduce_mean, apply_amp, create_loss_scale, evaluate,
                      find_latest_checkpoint, init_context, load_train_state, save_train_state, swap_ema_weights)
from ..foundation import (CheckpointError, ConfigError, DownloadError, InvalidValueError, LauncherError,
                          MissingPathError, UnknownNameError, UserError, download_url, get_cache_dir, read_checkpoint,
                          save_checkpoint_atomic, setup_logging)

__all__ = ["CheckpointError", "CheckpointManager", "ConfigError", "DownloadError", "InvalidValueError",
           "LauncherError", "MissingPathError", "TrainStep", "UnknownNameError", "UserError", "all_reduce_mean",
           "apply_amp", "create_loss_scale", "download_url", "evaluate", "find_latest_checkpoint", "get_cache_dir",
           "init_context", "load_train_state", "read_checkpoint", "save_checkpoint_atomic", "save_train_state",
           "setup_logging", "swap_ema_weights"]
