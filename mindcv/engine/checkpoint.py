"""Training-state checkpoints for exact resume, and the folder of them that a run keeps.

A run's folder holds ``<prefix>-<epoch>.ckpt`` files and ``checkpoints.json``, a manifest (written atomically)
of each file's epoch, step and metric. Listing, choosing and pruning read only the manifest; only the file
that is resumed from is read and verified, and a file that fails verification gives way to the next newest.
A file that a kill left out of the manifest (between its rename and the manifest's) is still found by name.
"""
import fnmatch
import json
import logging
import os
import re

import numpy as np

import mindspore as ms

from ..foundation.checkpoint_io import read_checkpoint, write_atomic
from ..foundation.errors import CheckpointError, InvalidValueError, NonFiniteLossError

__all__ = ["CheckpointManager", "MANIFEST", "PartialEpoch", "find_latest_checkpoint", "load_train_state",
           "resume_candidates", "restore_train_state", "save_train_state", "save_weights"]

_logger = logging.getLogger(__name__)
MANIFEST = "checkpoints.json"
# Run metadata stored beside the parameters ("global_step" is taken: the optimizer's own step counter).
_META_KEYS = ("epoch", "steps_done", "config", "metric", "epoch_losses", "epoch_skipped")
_FLOAT_TYPES = (ms.float16, ms.bfloat16, ms.float32, ms.float64)
_EPOCH_IN_NAME = re.compile(r"-(\d+)\.ckpt$")


def save_train_state(path, train_step, epoch, global_step, config, metric=None, partial_epoch=None):
    """Everything needed to continue: model, optimizer, EMA and loss-scale state (the train step's
    parameters), plus the epoch and step completed and the resolved config. Saved inside an epoch,
    ``partial_epoch`` (a PartialEpoch) records the losses of its batches done so far."""
    _refuse_non_finite(train_step, global_step, os.path.dirname(path))
    meta = {"epoch": int(epoch), "steps_done": int(global_step), "config": json.dumps(config, default=list),
            "metric": _as_stored(metric)}
    if partial_epoch is not None and partial_epoch.losses:
        meta["epoch_losses"] = ms.Tensor(np.asarray(partial_epoch.losses, np.float64))
        meta["epoch_skipped"] = int(partial_epoch.skipped)
    write_atomic(lambda tmp: ms.save_checkpoint(train_step, tmp, append_dict=meta, crc_check=True), path,
                 size=_parameter_bytes(train_step))


def _refuse_non_finite(train_step, global_step, folder):
    # A step's loss is computed before its update, so an update that made the weights non-finite shows in no loss
    # yet: a state saved then (a mid-epoch save, or a stop) must not become the checkpoint that resume picks.
    bad = [param.name for param in train_step.get_parameters()
           if param.dtype in _FLOAT_TYPES and not np.isfinite(param.asnumpy()).all()]
    if bad:
        raise NonFiniteLossError(
            f"After step {global_step} {len(bad)} parameters hold NaN or infinity (first: {bad[0]}); stopped without "
            f"saving this state (the last good checkpoint is in {folder}). Lower the lr, enable --clip_grad True, or "
            "use --loss_scale_type dynamic.")


def _parameter_bytes(cell):
    return sum(param.nbytes for param in cell.get_parameters())


class PartialEpoch:
    """The losses of an epoch's batches done so far and the count of its skipped (overflow) steps: what its
    logged mean needs when it is interrupted and resumed."""

    def __init__(self, losses=(), skipped=0):
        self.losses, self.skipped = list(losses), int(skipped)

    @classmethod
    def read(cls, params):
        """The partial epoch recorded in a checkpoint's parameter dict (empty at an epoch boundary)."""
        losses = params["epoch_losses"].asnumpy().tolist() if "epoch_losses" in params else []
        skipped = int(params["epoch_skipped"].asnumpy()) if "epoch_skipped" in params else 0
        return cls(losses, skipped)


def _as_stored(metric):
    # The file holds the metric as float32; the manifest records that same value, so that equal metrics rank
    # alike (then by epoch) whether read from the manifest or from a file it lacks.
    return float(np.float32(-1 if metric is None else metric))


def restore_train_state(params, path, train_step):
    """Load the parameter dict of a ``save_train_state`` file into ``train_step``; returns (epoch, global_step,
    metric)."""
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


def load_train_state(path, train_step):
    """Restore a ``save_train_state`` file into ``train_step``; returns (epoch, global_step, metric)."""
    return restore_train_state(read_checkpoint(path), path, train_step)


def _is_entry(entry):
    # Hand edits and other versions can leave odd entries; one without a file name, an integer epoch and a numeric
    # (or null) metric would break the ordering, so its file is found by name instead.
    return (isinstance(entry, dict) and isinstance(entry.get("file"), str)
            and type(entry.get("epoch")) is int and type(entry.get("metric")) in (int, float, type(None)))


def _read_manifest(folder):
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            return {entry["file"]: entry for entry in json.load(f)["checkpoints"] if _is_entry(entry)}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as err:
        _logger.warning("Ignoring unreadable %s (%s); checkpoints are found by name.", path, err)
        return {}


def _write_manifest(folder, entries):
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"checkpoints": sorted(entries.values(), key=lambda e: (e["epoch"], e["file"]))}, f, indent=1)

    write_atomic(write, os.path.join(folder, MANIFEST))


def _files_in(folder, is_wanted):
    return {name for name in os.listdir(folder) if is_wanted(name)} if os.path.isdir(folder) else set()


def _listed_and_found(folder, is_wanted):
    """Manifest entries whose file exists, plus wanted files that the manifest lacks (epoch from the name, metric
    unknown): {file name: entry}."""
    names = _files_in(folder, is_wanted)
    entries = {name: entry for name, entry in _read_manifest(folder).items() if name in names}
    for name in names - set(entries):
        match = _EPOCH_IN_NAME.search(name)
        entries[name] = {"file": name, "epoch": int(match.group(1)) if match else -1, "metric": None}
    return entries


def resume_candidates(folder, pattern="*.ckpt"):
    """Checkpoint paths in ``folder`` matching ``pattern``, newest first (by epoch, then by step: a state saved
    inside an epoch comes before the previous epoch's end), from the manifest (no file read)."""
    entries = _listed_and_found(folder, lambda name: fnmatch.fnmatch(name, pattern)).values()
    entries = sorted(entries, key=lambda e: (e["epoch"], _steps_done(e), e["file"]), reverse=True)
    return [os.path.join(folder, entry["file"]) for entry in entries]


def _steps_done(entry):
    steps = entry.get("steps_done")
    return steps if type(steps) is int else -1


def find_latest_checkpoint(folder, pattern="*.ckpt"):
    """The newest checkpoint in ``folder`` that verifies and holds a training state; corrupt ones are reported
    and skipped. None when there is none. Reads files only until one verifies."""
    for path in resume_candidates(folder, pattern):
        try:
            if "epoch" in read_checkpoint(path, names=_META_KEYS):
                return path
        except CheckpointError as err:
            _logger.warning("Skipping %s", err)
    return None


_POLICIES = (None, "latest_k", "top_k")
_DEFAULT = object()


class CheckpointManager:
    """Keeps the ``keep_max`` latest (``latest_k``) or best-metric (``top_k``) checkpoints in ``folder``; with
    policy None it keeps them all.

    It owns the files named exactly ``<prefix>-<epoch>.ckpt`` that hold a training state; other files, and
    other prefixes' entries in the manifest, are left as they are.

    MindCV's form, ``CheckpointManager(ckpt_save_policy=...)`` with ``save_ckpoint(network, num_ckpt, metric,
    save_path)``, needs no folder: it saves the weights to paths the caller names and prunes the ones it saved
    in this process (MindCV's default policy, None, keeps all)."""

    def __init__(self, folder=None, prefix=None, policy=_DEFAULT, keep_max=10, ckpt_save_policy=_DEFAULT):
        if ckpt_save_policy is not _DEFAULT:
            policy = ckpt_save_policy
        elif policy is _DEFAULT:
            policy = "latest_k" if folder is not None else None
        if policy not in _POLICIES:
            raise InvalidValueError(f"ckpt_save_policy must be one of None, 'latest_k', 'top_k'; got {policy!r}.")
        self.folder, self.prefix, self.policy, self.keep_max = folder, prefix, policy, keep_max
        self._saved = []  # MindCV's form: paths (latest_k) or (path, metric) best first (top_k)
        self.entries = {}
        if folder is None:
            return
        # A glob "<prefix>-*.ckpt" would also take another run's "<prefix>-tiny-3.ckpt" and prune it.
        self._own_name = re.compile(re.escape(prefix) + r"-\d+\.ckpt").fullmatch
        self._remove_partial_writes()
        for name, entry in _listed_and_found(folder, self._own_name).items():
            adopted = entry if entry.get("metric") is not None else self._read_meta(name)
            if adopted is not None:
                self.entries[name] = adopted

    def _remove_partial_writes(self):
        # MindSpore writes our temp file through its own ".tmp-*.tmp" sibling: a kill can leave either.
        for name in _files_in(self.folder, lambda name: name.startswith(".tmp-")):
            _logger.warning("Removing %s, left by a run killed while saving.", os.path.join(self.folder, name))
            _remove_if_present(os.path.join(self.folder, name))

    def _read_meta(self, name):
        """The manifest entry of a file the manifest lacks (a kill came between its rename and the manifest's);
        None when it does not verify or holds no training state, so that it is neither counted nor deleted."""
        path = os.path.join(self.folder, name)
        try:
            meta = read_checkpoint(path, names=_META_KEYS)
        except CheckpointError as err:
            _logger.warning("Not managing %s", err)
            return None
        if "epoch" not in meta:
            return None
        return {"file": name, "epoch": int(meta["epoch"].asnumpy()),
                "steps_done": int(meta["steps_done"].asnumpy()) if "steps_done" in meta else -1,
                "metric": float(meta["metric"].asnumpy()) if "metric" in meta else -1.0}

    @property
    def kept(self):
        """(epoch, metric, path) of the kept checkpoints, best first under the policy."""
        return self._ranked(self.entries)

    def _ranked(self, entries):
        order = (lambda e: (e["metric"], e["epoch"])) if self.policy == "top_k" else (lambda e: e["epoch"])
        ranked = sorted(entries.values(), key=order, reverse=True)
        return [(e["epoch"], e["metric"], os.path.join(self.folder, e["file"])) for e in ranked]

    def save(self, train_step, epoch, global_step, config, metric=None):
        if self.folder is None:
            raise InvalidValueError("CheckpointManager.save needs the folder and prefix it manages; without them "
                                    "use save_ckpoint(network, num_ckpt, metric, save_path).")
        name = f"{self.prefix}-{epoch}.ckpt"
        path = os.path.join(self.folder, name)
        # Each step only after the one before succeeded (a full disk stops any of them): the new file, then the
        # manifest without the stale files, then their deletion. So the manifest never lists a missing file, and
        # no checkpoint is deleted before its replacement is safely written.
        save_train_state(path, train_step, epoch, global_step, config, metric)
        entries = {**self.entries, name: {"file": name, "epoch": int(epoch), "steps_done": int(global_step),
                                          "metric": _as_stored(metric)}}
        stale = [os.path.basename(p) for _, _, p in self._ranked(entries)[self.keep_max:]] if self.policy else []
        entries = {kept: entry for kept, entry in entries.items() if kept not in stale}
        others = {other: entry for other, entry in _read_manifest(self.folder).items()
                  if not self._own_name(other) and os.path.isfile(os.path.join(self.folder, other))}
        _write_manifest(self.folder, {**others, **entries})
        self.entries = entries
        for stale_name in stale:
            _remove_if_present(os.path.join(self.folder, stale_name))
        return path

    @property
    def partial_name(self):
        return f"{self.prefix}-partial.ckpt"

    def save_partial(self, train_step, epoch, global_step, config, partial_epoch):
        """Save a state inside epoch ``epoch + 1`` (``epoch`` = epochs completed) to ``<prefix>-partial.ckpt``,
        one file replaced each time and listed in the manifest beside the epoch checkpoints."""
        path = os.path.join(self.folder, self.partial_name)
        save_train_state(path, train_step, epoch, global_step, config, partial_epoch=partial_epoch)
        entry = {"file": self.partial_name, "epoch": int(epoch), "steps_done": int(global_step), "metric": None}
        _write_manifest(self.folder, {**_read_manifest(self.folder), self.partial_name: entry})
        return path

    def drop_partial(self):
        """Forget the partial-epoch state once an epoch checkpoint after it is written (manifest first)."""
        listed = _read_manifest(self.folder)
        if listed.pop(self.partial_name, None) is not None:
            _write_manifest(self.folder, listed)
        _remove_if_present(os.path.join(self.folder, self.partial_name))

    # MindCV's form: weights to caller-named paths, pruned among those saved by this manager. MindCV deletes the
    # file to drop before saving the new one; here it goes only once the new one is written, so that a full disk
    # costs no checkpoint.

    @property
    def ckpoint_filelist(self):
        return self._saved

    @property
    def ckpoint_num(self):
        return len(self._saved)

    def update_ckpoint_filelist(self, directory, prefix):
        """Adopt ``<prefix>-<digits and separators>.ckpt`` files in ``directory`` as the files managed."""
        own_name = re.compile(re.escape(prefix) + r"-[^A-Za-z]*\.ckpt").fullmatch
        self._saved = [os.path.join(directory, name) for name in sorted(_files_in(directory, own_name))]

    def remove_ckpoint_file(self, file_name):
        _remove_if_present(file_name)

    def remove_oldest_ckpoint_file(self):
        oldest = min(self._saved, key=lambda path: os.path.getmtime(path) if os.path.exists(path) else 0)
        self._saved.remove(oldest)
        _remove_if_present(oldest)

    def latest_K_checkpoint(self, network, K=10, save_path=""):
        save_weights(network, save_path)
        self._saved = [saved for saved in self._saved if saved != save_path] + [save_path]
        while K and self.ckpoint_num > K:
            self.remove_oldest_ckpoint_file()

    def top_K_checkpoint(self, network, K=10, metric=None, save_path=""):
        """Save when ``metric`` is among the ``K`` best so far, dropping the worst kept file to make room."""
        metric = float(np.asarray(metric.asnumpy() if isinstance(metric, ms.Tensor) else metric))
        if self.ckpoint_num >= K and metric <= self._saved[-1][1]:
            return
        save_weights(network, save_path)
        others = [saved for saved in self._saved if saved[0] != save_path]
        ranked = sorted(others + [(save_path, metric)], key=lambda saved: saved[1], reverse=True)
        self._saved = ranked[:max(K, 1)]
        for path, _ in ranked[max(K, 1):]:
            _remove_if_present(path)

    def save_ckpoint(self, network, num_ckpt=10, metric=None, save_path=""):
        """Save ``network``'s weights to ``save_path`` under the policy; returns the files kept (None for
        policy None, which keeps every file and tracks none)."""
        if self.policy is None:
            save_weights(network, save_path)
            return None
        if self.policy == "top_k":
            if metric is None:
                raise InvalidValueError("ckpt_save_policy 'top_k' ranks checkpoints by metric; pass metric=.")
            self.top_K_checkpoint(network, K=num_ckpt, metric=metric, save_path=save_path)
            _logger.info("Top-k checkpoints:\n%s", "\n".join(f"{path}\t{value}" for path, value in self._saved))
        else:
            self.latest_K_checkpoint(network, K=num_ckpt, save_path=save_path)
        return self._saved


def save_weights(cell, path):
    """``cell``'s parameters as a checkpoint at ``path``, written atomically."""
    write_atomic(lambda tmp: ms.save_checkpoint(cell, tmp, crc_check=True), path, size=_parameter_bytes(cell))


def _remove_if_present(path):
    # Someone may have deleted it by hand while the run went on; that must not stop training.
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
