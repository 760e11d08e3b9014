"""The foundation every other layer imports: user-error types, downloads, logging, checkpoint file I/O, and the
compiled-graph cache workaround. It imports nothing of this package above it."""
from .checkpoint_io import read_checkpoint, save_checkpoint_atomic, write_atomic
from .download import DownLoad, download_url, file_sha256, get_cache_dir
from .errors import (CheckpointError, CheckpointWriteError, ConfigError, DownloadError, InvalidValueError,
                     LauncherError, MissingPathError, NonFiniteLossError, UnknownNameError, UnreadablePathError,
                     UserError)
from .graph_cache import fresh_graph_cache, renew_graph_cache
from .logger import set_logger, setup_logging

__all__ = ["CheckpointError", "CheckpointWriteError", "ConfigError", "DownLoad", "DownloadError", "InvalidValueError",
           "LauncherError", "MissingPathError", "NonFiniteLossError", "UnknownNameError", "UnreadablePathError",
           "UserError", "download_url",
           "file_sha256", "fresh_graph_cache", "get_cache_dir", "read_checkpoint", "renew_graph_cache",
           "save_checkpoint_atomic", "set_logger", "setup_logging", "write_atomic"]
