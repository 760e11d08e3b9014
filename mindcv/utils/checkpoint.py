"""Checkpoint files written atomically."""
import os
import tempfile

import mindspore as ms


def save_checkpoint_atomic(arrays, path):
    """Write ``{name: array}`` as a MindSpore checkpoint: temp file in the same folder, then rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ckpt", dir=folder)
    os.close(fd)
    try:
        ms.save_checkpoint([{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()], tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
