"""The foundation every other layer imports: user-error types, downloads, logging, checkpoint file I/O, the
compiled-graph cache workaround and the PYNATIVE compilation switch. It imports nothing of this package above it."""
from .checkpoint_io import read_checkpoint, save_checkpoint_atomic, write_atomic
from .download import DownLoad, download_url, file_sha256, get_cache_dir
from .errors import (CheckpointError, CheckpointWriteError, ConfigError, DownloadError, InvalidValueError,
                     LauncherError, MissingPathError, NonFiniteLossError, UnknownNameError, UnreadablePathError,
                     UserError)
from .graph_cache import fresh_graph_cache, renew_graph_cache
from .jit import JIT_SWITCH, compile_construct
from .logger import set_logger, setup_logging

__all__ = ["CheckpointError", "CheckpointWriteError", "ConfigError", "DownLoad", "DownloadError", "InvalidValueError",
           "JIT_SWITCH", "LauncherError", "MissingPathError", "NonFiniteLossError", "UnknownNameError",
           "UnreadablePathError", "UserError", "compile_construct", "download_url", "file_sha256", "fresh_graph_cache",
           "get_cache_dir", "read_checkpoint", "renew_graph_cache", "save_checkpoint_atomic", "set_logger",
           "setup_logging", "write_atomic"]
