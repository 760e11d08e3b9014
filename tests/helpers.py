"""Helpers for the command-line tests: a small generated ImageFolder and running the real scripts."""
import contextlib
import os
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("circle", "square", "stripes")


def _draw(kind, rng, size=36):
    """A learnable picture per class (shape) with random colour, position and noise."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.randint(12, size - 12, 2)
    if kind == "circle":
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < 64
    elif kind == "square":
        mask = (abs(yy - cy) < 7) & (abs(xx - cx) < 7)
    else:
        mask = (xx + rng.randint(4)) % 8 < 4
    image = rng.randint(0, 60, (size, size, 3))
    image[mask] = rng.randint(150, 256, 3)
    return Image.fromarray(image.astype(np.uint8))


def write_image_folder(root, train_per_class=12, val_per_class=4, seed=0):
    rng = np.random.RandomState(seed)
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for name in CLASSES:
            os.makedirs(os.path.join(root, split, name), exist_ok=True)
            for i in range(count):
                _draw(name, rng).save(os.path.join(root, split, name, f"{i:03d}.png"))
    return str(root)


@contextlib.contextmanager
def shared_folder(tmp_path_factory, name):
    """A module- or session-scoped fixture's folder, deleted when that scope ends. pytest keeps such folders to
    the end of the run, and the suite's svt_small checkpoints (270 MB each) would otherwise add up to 27 GB."""
    folder = tmp_path_factory.mktemp(name)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# Small and fast: svt_small at 32 px (the smallest size whose stage grids are >= 1), 2 epochs.
TINY_RUN = ["--model", "svt_small", "--num_classes", "3", "--image_resize", "32", "--crop_pct", "1.0",
            "--batch_size", "6", "--epoch_size", "2", "--warmup_epochs", "1", "--decay_epochs", "1",
            "--lr", "0.0005", "--num_parallel_workers", "2", "--val_while_train", "True", "--device_target", "CPU",
            "--color_jitter", "none", "--seed", "7"]


def compile_cache_env(folder):
    """The environment that puts MindSpore's compiled-graph cache in ``folder``: the first run compiles into it,
    later ones load from it (about 20 s of a tiny run's 45 here). MindSpore checks only that the source files are
    unchanged, so a folder is for runs whose options build the same graphs."""
    return {"MS_COMPILER_CACHE_ENABLE": "1", "MS_COMPILER_CACHE_PATH": str(folder)}


def run_script(script, *args, timeout=600, check=True, env=None):
    """Run ``python <script> args`` from the repository root, with ``env`` added to the environment; returns the
    completed process."""
    env = dict(os.environ, GLOG_v="3", **(env or {}))
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{script} exited {result.returncode}:\n{result.stderr[-4000:]}")
    return result


def read_log(folder):
    import csv

    with open(os.path.join(folder, "train_log.csv"), newline="") as f:
        return list(csv.DictReader(f))
