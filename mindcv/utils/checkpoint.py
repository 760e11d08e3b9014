"""Checkpoint files: written atomically with a CRC, holding the whole training state for exact resume."""
import glob
import json
import logging
import os
import tempfile

import mindspore as ms
from mindspore.train import serialization as _ms_serialization

from .errors import CheckpointError

__all__ = ["CheckpointManager", "find_latest_checkpoint", "load_train_state", "read_checkpoint",
           "save_checkpoint_atomic", "save_train_state"]

_logger = logging.getLogger(__name__)
# Run metadata stored beside the parameters ("global_step" is taken: the optimizer's own step counter).
_META_KEYS = ("epoch", "steps_done", "config", "metric")


def _write_atomic(write, path):
    """``write(tmp_path)`` then fsync and rename over ``path``: a reader never sees a partial file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".ckpt", dir=folder)
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
    _write_atomic(lambda tmp: ms.save_checkpoint(
        [{"name": k, "data": ms.Tensor(v)} for k, v in arrays.items()], tmp, crc_check=True), path)


def save_train_state(path, train_step, epoch, global_step, config, metric=None):
    """Everything needed to continue: model, optimizer, EMA and loss-scale state (the train step's
    parameters), plus the epoch and step completed and the resolved config."""
    meta = {"epoch": int(epoch), "steps_done": int(global_step), "config": json.dumps(config, default=list),
            "metric": float(-1 if metric is None else metric)}
    _write_atomic(lambda tmp: ms.save_checkpoint(train_step, tmp, append_dict=meta, crc_check=True), path)


def _linux_mem_available():
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _count_page_cache_as_available(free_memory):
    """MindSpore 2.10 refuses a checkpoint larger than the *free* memory (SC_AVPHYS_PAGES), which leaves out the
    reclaimable page cache: after large file reads a 400 MB checkpoint fails with gigabytes available. Its check
    reads Linux's MemAvailable instead, for every checkpoint this process loads."""
    return lambda: _linux_mem_available() or free_memory()


if hasattr(_ms_serialization, "_get_available_memory"):
    _ms_serialization._get_available_memory = _count_page_cache_as_available(_ms_serialization._get_available_memory)


def read_checkpoint(path):
    """The parameter dict of a checkpoint, verified against its CRC; CheckpointError if unreadable."""
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint file not found: {path}")
    try:
        return ms.load_checkpoint(path, crc_check=True)
    except (RuntimeError, ValueError, OSError, TypeError) as err:
        raise CheckpointError(f"{path} is not a readable MindSpore checkpoint ({str(err).splitlines()[0]}).") from err


def load_train_state(path, train_step):
    """Restore a ``save_train_state`` file into ``train_step``; returns (epoch, global_step, metric)."""
    params = read_checkpoint(path)
    missing = [k for k in ("epoch", "steps_done") if k not in params]
    if missing:
        raise CheckpointError(f"{path} holds weights only (no {', '.join(missing)}); it cannot resume training. "
                              "Use it with --ckpt_path and --resume_opt False to start from its weights.")
    meta = {k: params.pop(k) for k in _META_KEYS if k in params}
    not_loaded, _ = ms.load_param_into_net(train_step, params, strict_load=True)
    if not_loaded:
        raise CheckpointError(f"{path} does not hold the full training state for this run; missing: "
                              f"{', '.join(not_loaded[:10])}{' ...' if len(not_loaded) > 10 else ''}.")
    metric = float(meta["metric"].asnumpy()) if "metric" in meta else -1.0
    return int(meta["epoch"].asnumpy()), int(meta["steps_done"].asnumpy()), metric


def find_latest_checkpoint(folder, pattern="*.ckpt"):
    """The newest checkpoint in ``folder`` that verifies, by the epoch stored inside; corrupt ones are
    reported and skipped. None when there is none."""
    best = None
    for path in glob.glob(os.path.join(folder, pattern)):
        try:
            params = read_checkpoint(path)
        except CheckpointError as err:
            _logger.warning("Skipping %s", err)
            continue
        if "epoch" not in params:
            continue
        epoch = int(params["epoch"].asnumpy())
        if best is None or epoch > best[0]:
            best = (epoch, path)
    return None if best is None else best[1]


class CheckpointManager:
    """Keeps the ``keep_max`` latest (``latest_k``) or best-metric (``top_k``) checkpoints in ``folder``."""

    def __init__(self, folder, prefix, policy="latest_k", keep_max=10):
        self.folder, self.prefix, self.policy, self.keep_max = folder, prefix, policy, keep_max
        self._remove_partial_writes()
        self.kept = self._existing()

    def _remove_partial_writes(self):
        # MindSpore writes our temp file through its own ".tmp-*.tmp" sibling: a kill can leave either.
        for path in glob.glob(os.path.join(self.folder, ".tmp-*")):
            _logger.warning("Removing %s, left by a run killed while saving a checkpoint.", path)
            os.remove(path)

    def _existing(self):
        kept = []
        for path in glob.glob(os.path.join(self.folder, f"{self.prefix}-*.ckpt")):
            try:
                params = read_checkpoint(path)
            except CheckpointError:
                continue
            if "epoch" in params:
                kept.append((int(params["epoch"].asnumpy()), float(params["metric"].asnumpy()), path))
        return kept

    def save(self, train_step, epoch, global_step, config, metric=None):
        path = os.path.join(self.folder, f"{self.prefix}-{epoch}.ckpt")
        save_train_state(path, train_step, epoch, global_step, config, metric)
        self.kept = [k for k in self.kept if k[2] != path] + [(epoch, -1.0 if metric is None else metric, path)]
        order = (lambda k: k[0]) if self.policy == "latest_k" else (lambda k: (k[1], k[0]))
        self.kept.sort(key=order, reverse=True)
        for _, _, stale in self.kept[self.keep_max:]:
            os.remove(stale)
        self.kept = self.kept[:self.keep_max]
        return path
