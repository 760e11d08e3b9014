"""Checkpoint files: written atomically with a CRC, read back verified, with one uniform error."""
import contextlib
import os
import tempfile

import mindspore as ms
from mindspore.train import serialization as _ms_serialization

from .errors import CheckpointError

__all__ = ["read_checkpoint", "save_checkpoint_atomic", "write_atomic"]


def write_atomic(write, path):
    """``write(tmp_path)`` then fsync and rename over ``path``: a reader never sees a partial file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint_atomic(arrays, path):
    """Write ``{name: array}`` as a MindSpore checkpoint, atomically."""
    write_atomic(lambda tmp: ms.save_checkpoint(
        [{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()], tmp, crc_check=True), path)


def _linux_mem_available():
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


@contextlib.contextmanager
def _page_cache_counted_as_available():
    """MindSpore 2.10 refuses a checkpoint larger than the *free* memory (SC_AVPHYS_PAGES), which leaves out the
    reclaimable page cache: after large file reads a 400 MB checkpoint fails with gigabytes available. Inside
    this block its check reads Linux's MemAvailable instead; other code's loads are left as MindSpore made them."""
    original = getattr(_ms_serialization, "_get_available_memory", None)
    if original is None:
        yield
        return
    _ms_serialization._get_available_memory = lambda: _linux_mem_available() or original()
    try:
        yield
    finally:
        _ms_serialization._get_available_memory = original


def read_checkpoint(path, names=None):
    """The parameter dict of a checkpoint, verified against its CRC; CheckpointError if unreadable.

    ``names``: read only these entries (the file is still verified whole)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint file not found: {path}")
    choice = None if names is None else (lambda name: name in names)
    try:
        with _page_cache_counted_as_available():
            return ms.load_checkpoint(path, crc_check=True, choice_func=choice)
    except (RuntimeError, ValueError, OSError, TypeError) as err:
        raise CheckpointError(f"{path} is not a readable MindSpore checkpoint ({str(err).splitlines()[0]}).") from err
