"""Time the start-up of ``train.py --auto_resume`` over a folder of real svt_small training-state checkpoints.

    python tools/resume_startup.py [--count 10] [--dir PARENT] [--legacy]

Writes ``--count`` checkpoints (about 290 MB each) with CheckpointManager into a temporary folder under
``--dir``, then times what a resumed run does before its first step: choosing and loading the newest train
state (as ``mindcv.engine.resume_point``) and building the CheckpointManager. Each is timed with a cold page cache
(dropped if this process may) and then warm, reporting the bytes read from storage and through read calls.
``--legacy`` adds the same measurements for the pre-manifest algorithm, reproduced here. The folder is deleted
at the end. A measurement tool, not a test: it needs ~3 GB of disk per 10 checkpoints.
"""
import argparse
import glob
import os
import platform
import shutil
import sys
import tempfile
import time

from mindcv.cli import call_with_options, parse_args
from mindcv.engine import CheckpointManager, build_model, build_train_step, checkpoint
from mindcv.foundation import CheckpointError

PREFIX = "svt_small"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = ["-c", os.path.join(ROOT, "configs", "twins", "svt_s_gpu.yaml"), "--distribute", "False",
          "--amp_level", "O0", "--loss_scale_type", "fixed", "--loss_scale", "1"]
STEPS_PER_EPOCH = 1251  # ImageNet-1k at the recipe's global batch of 1024
BYTES_PER_CHECKPOINT = 300 * 2 ** 20


def build_svt_small_train_step():
    """The train step of the svt_small recipe, built as train.py builds it: model, AdamW state and loss scale."""
    options = parse_args(CONFIG)
    model = call_with_options(build_model, options, checkpoint_path="")
    train_step, _, _ = call_with_options(build_train_step, options, model, STEPS_PER_EPOCH)
    return train_step, options


def write_checkpoints(folder, train_step, options, count):
    """``count`` epochs' files, the metric rising so that the newest is also the best under top_k."""
    manager = CheckpointManager(folder, PREFIX, options.ckpt_save_policy, keep_max=count)
    for epoch in range(1, count + 1):
        manager.save(train_step, epoch, epoch * STEPS_PER_EPOCH, vars(options), metric=60.0 + epoch / 10)


def current_startup(folder, train_step, options, count):
    """train.py's resume_point, then its CheckpointManager: only the file resumed from is read."""
    for path in checkpoint.resume_candidates(folder, f"{PREFIX}-*.ckpt"):
        try:
            params = checkpoint.read_checkpoint(path)
        except CheckpointError:
            continue
        epoch, _, _ = checkpoint.restore_train_state(params, path, train_step)
        break
    CheckpointManager(folder, PREFIX, options.ckpt_save_policy, keep_max=count)
    return epoch


def legacy_startup(folder, train_step, options, count):
    """The pre-manifest algorithm: find_latest_checkpoint read every file whole for its epoch, load_train_state
    read the newest again, then CheckpointManager read every file whole once more for epoch and metric."""
    files = glob.glob(os.path.join(folder, f"{PREFIX}-*.ckpt"))
    by_epoch = {}
    for path in files:
        params = checkpoint.read_checkpoint(path)
        by_epoch[int(params["epoch"].asnumpy())] = path
    newest = by_epoch[max(by_epoch)]
    epoch, _, _ = checkpoint.restore_train_state(checkpoint.read_checkpoint(newest), newest, train_step)
    kept = []
    for path in files:
        params = checkpoint.read_checkpoint(path)
        kept.append((int(params["epoch"].asnumpy()), float(params["metric"].asnumpy()), path))
    return epoch


def drop_page_cache(folder):
    """Evict the folder's files from the page cache: the whole cache as root, else each file by fadvise.
    Returns how, or None when neither worked."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
        return "drop_caches"
    except OSError:
        pass
    try:
        for name in os.listdir(folder):
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
        return "posix_fadvise(DONTNEED)"
    except (OSError, AttributeError):
        return None


def process_io():
    with open("/proc/self/io") as counters:
        return {key: int(value) for key, value in (line.split(":") for line in counters)}


class CountingReads:
    """Counts the checkpoint files read (whole or in part) while installed."""

    def __init__(self):
        self.count, self._real = 0, checkpoint.read_checkpoint

    def __enter__(self):
        def counting(path, names=None):
            self.count += 1
            return self._real(path, names=names)

        checkpoint.read_checkpoint = counting
        return self

    def __exit__(self, *exc):
        checkpoint.read_checkpoint = self._real


def measure(startup, folder, train_step, options, count):
    before = process_io()
    start = time.perf_counter()
    with CountingReads() as reads:
        epoch = startup(folder, train_step, options, count)
    seconds = time.perf_counter() - start
    after = process_io()
    return {"files read": reads.count, "from storage": after["read_bytes"] - before["read_bytes"],
            "through read calls": after["rchar"] - before["rchar"], "seconds": seconds, "resumed epoch": epoch}


def measure_cold_and_warm(label, startup, folder, train_step, options, count):
    dropped = drop_page_cache(folder)
    cold = measure(startup, folder, train_step, options, count)
    warm = measure(startup, folder, train_step, options, count)
    return [(label, f"cold ({dropped})" if dropped else "cold (cache NOT dropped)", cold), (label, "warm", warm)]


def cpu_model():
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def print_table(rows, count, file_bytes):
    print(f"\n{count} svt_small train-state checkpoints, {file_bytes / 2 ** 20:.0f} MiB each; "
          f"CPU: {cpu_model()} ({os.cpu_count()} cores)\n")
    columns = ["files read", "from storage", "through read calls", "seconds", "resumed epoch"]
    print("| algorithm | page cache | " + " | ".join(columns) + " |")
    print("|---|---|" + "---:|" * len(columns))
    for label, cache, result in rows:
        cells = [str(result["files read"]), _mib(result["from storage"]), _mib(result["through read calls"]),
                 f"{result['seconds']:.2f}", str(result["resumed epoch"])]
        print(f"| {label} | {cache} | " + " | ".join(cells) + " |")


def _mib(count):
    return f"{count / 2 ** 20:,.0f} MiB"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="checkpoints to write (default 10)")
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="parent of the temporary checkpoint folder")
    parser.add_argument("--legacy", action="store_true", help="also measure the pre-manifest algorithm")
    cli = parser.parse_args(argv)
    if cli.count < 1:
        parser.error(f"--count {cli.count}: at least 1 checkpoint is needed to time a resume")
    free = shutil.disk_usage(cli.dir).free
    if free < cli.count * BYTES_PER_CHECKPOINT * 1.2:
        sys.exit(f"{cli.dir} has {free / 2 ** 30:.1f} GiB free; {cli.count} checkpoints need about "
                 f"{cli.count * BYTES_PER_CHECKPOINT * 1.2 / 2 ** 30:.1f} GiB. Choose another --dir.")
    train_step, options = build_svt_small_train_step()
    folder = tempfile.mkdtemp(prefix="resume-startup-", dir=cli.dir)
    try:
        print(f"Writing {cli.count} checkpoints to {folder} ...", flush=True)
        write_checkpoints(folder, train_step, options, cli.count)
        file_bytes = os.path.getsize(os.path.join(folder, f"{PREFIX}-1.ckpt"))
        rows = measure_cold_and_warm("current (manifest)", current_startup, folder, train_step, options, cli.count)
        if cli.legacy:
            rows += measure_cold_and_warm("legacy (pre-manifest, reproduced)", legacy_startup, folder, train_step,
                                          options, cli.count)
        print_table(rows, cli.count, file_bytes)
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
