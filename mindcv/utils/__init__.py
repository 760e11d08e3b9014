from .checkpoint import save_checkpoint_atomic
from .download import download_url, get_cache_dir
from .errors import CheckpointError, DownloadError, UnknownNameError

__all__ = [
    "CheckpointError",
    "DownloadError",
    "UnknownNameError",
    "download_url",
    "get_cache_dir",
    "save_checkpoint_atomic",
]
