"""Checkpoint files: written atomically with a CRC, read back verified, with one uniform error."""
import contextlib
import errno
import os
import shutil
import tempfile

import mindspore as ms
from mindspore.train import serialization as _ms_serialization

from .errors import CheckpointError, CheckpointWriteError

__all__ = ["read_checkpoint", "save_checkpoint_atomic", "write_atomic"]


# The write failed for lack of room or a failing disk: the user's to fix, not ours.
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO)


def write_atomic(write, path, size=None):
    """``write(tmp_path)`` then fsync and rename over ``path``: a reader never sees a partial file.

    A full or failing disk raises CheckpointWriteError naming the folder, its free space and ``size`` (the bytes
    the file needs, when the caller knows); the temp files are removed and ``path`` is left as it was."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        _write_then_rename(write, path, folder)
    except Exception as err:
        failure = _storage_failure(err)
        if failure is None:
            raise
        error = CheckpointWriteError(_storage_failure_message(path, folder, failure, size))
        error.errno = failure.errno
        raise error from err


def _write_then_rename(write, path, folder):
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
        # MindSpore writes our temp file through its own "<temp name>.tmp" and leaves that behind when it fails:
        # on a full disk it holds the very space the user needs back.
        for leftover in (tmp, os.path.splitext(tmp)[0] + ".tmp"):
            if os.path.exists(leftover):
                os.remove(leftover)


def _storage_failure(err):
    """The OSError for a full or failing disk in ``err``'s chain (a library may wrap it), or None."""
    while err is not None:
        if isinstance(err, OSError) and err.errno in _STORAGE_ERRNOS:
            return err
        err = err.__cause__ or err.__context__
    return None


def _storage_failure_message(path, folder, failure, size):
    needed = f", about {_mib(size)} needed" if size is not None else ""
    return (f"Could not write {path}: {failure.strerror or failure} ({_free_space(folder)} in {folder}{needed}). "
            "The files already there are unchanged; free some space there or save to another folder.")


def _free_space(folder):
    try:
        return f"{_mib(shutil.disk_usage(folder).free)} free"
    except OSError:
        return "free space unknown"


def _mib(size):
    return f"{size / 2 ** 20:.2f} MiB"


def save_checkpoint_atomic(arrays, path):
    """Write ``{name: array}`` as a MindSpore checkpoint, atomically."""
    entries = [{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()]
    write_atomic(lambda tmp: ms.save_checkpoint(entries, tmp, crc_check=True), path,
                 size=sum(entry["data"].nbytes for entry in entries))


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
