"""Feeding the training step: train.py's Python loop against ``mindspore.Model.train(dataset_sink_mode=True)``.

MindSpore has a data sink on Ascend and GPU only. On CPU, ``Model.train`` with ``dataset_sink_mode=True``
runs MindSpore's own Python loop instead, and ``mindspore.data_sink`` refuses. This measures both feeds on
this machine with the same compiled train step (svt_small, the shipped recipe) over the same in-memory
batches, in alternating rounds, after a warm-up epoch each, and the step fed one batch held in memory (what
bench_models.py times) as the bound that no feed can beat. Where the device has a sink (``--device GPU``
or ``Ascend``), the sink is measured instead of Model's fallback. Usage:

    python benchmarks/bench_sink.py [--model svt_small] [--batch-size 8] [--image-size 224] [--steps 6]
                                    [--rounds 3] [--json bench_sink.json]
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import mindspore as ms
import mindspore.dataset as ds

from bench_models import (MIN_IMAGE_SIZE, TIMM_NAMES, at_least, cpu_model, machine_busy_seconds, own_cpu_seconds,
                          recipe_args)
from mindcv.cli import call_with_options
from mindcv.engine import build_train_step, step_outputs
from mindcv.models import create_model


def in_memory_loader(steps, batch_size, image_size):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((steps * batch_size, 3, image_size, image_size), dtype=np.float32)
    labels = rng.integers(0, 1000, steps * batch_size).astype(np.int32)
    return ds.NumpySlicesDataset({"image": images, "label": labels}, shuffle=False).batch(batch_size)


def python_loop_epoch(train_step, loader):
    for loss, _, _ in step_outputs(train_step, loader, sink=False):
        float(loss.asnumpy())  # train.py reads every step's loss


def fixed_batch_epoch(train_step, images, labels, steps):
    for _ in range(steps):
        float(train_step(images, labels)[0].asnumpy())


def model_sink_epoch(model, loader):
    model.train(1, loader, dataset_sink_mode=True)


def timed(epoch):
    """Seconds of one epoch and the cores other processes used meanwhile."""
    machine, own, start = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
    epoch()
    seconds = time.perf_counter() - start
    others = (machine_busy_seconds() - machine) - (own_cpu_seconds() - own)
    return seconds, max(others, 0.0) / seconds


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="svt_small", choices=sorted(TIMM_NAMES))
    parser.add_argument("--device", default="CPU", choices=("CPU", "GPU", "Ascend"))
    parser.add_argument("--batch-size", type=at_least(1), default=8)
    parser.add_argument("--image-size", type=at_least(MIN_IMAGE_SIZE), default=224)
    parser.add_argument("--steps", type=at_least(1), default=6, help="steps per measured epoch")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--max-other-load", type=float, default=0.3)
    parser.add_argument("--json", default="bench_sink.json")
    return parser.parse_args()


def main():
    args = parse_args()
    ms.set_device(args.device)
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(0)
    recipe = recipe_args(args.model, "fp32")
    network = create_model(args.model, num_classes=1000, drop_path_rate=recipe.drop_path_rate)
    train_step, _, _ = call_with_options(build_train_step, recipe, network, args.steps)
    train_step.set_train(True)
    loader = in_memory_loader(args.steps, args.batch_size, args.image_size)
    model = ms.Model(train_step)
    images, labels = next(loader.create_tuple_iterator(num_epochs=1))
    feeds = {"train.py Python loop": lambda: python_loop_epoch(train_step, loader),
             "Model.train(dataset_sink_mode=True)": lambda: model_sink_epoch(model, loader),
             "one batch held in memory (no feed)": lambda: fixed_batch_epoch(train_step, images, labels, args.steps)}
    if args.device != "CPU":
        feeds["train.py data sink"] = lambda: [float(out[0].asnumpy())
                                               for out in step_outputs(train_step, loader, sink=True)]
    for feed in feeds.values():
        feed()  # compile and warm up
    seconds = {name: [] for name in feeds}
    load = 0.0
    for _ in range(args.rounds):
        for name, feed in feeds.items():
            elapsed, others = timed(feed)
            seconds[name].append(elapsed)
            load = max(load, others)
    images = args.steps * args.batch_size
    loop = images / statistics.median(seconds["train.py Python loop"])
    rows = [{"feed": name, "images_per_s": images / statistics.median(times), "seconds": times,
             "ratio_to_loop": images / statistics.median(times) / loop} for name, times in seconds.items()]
    cpu = cpu_model()
    print(f"{cpu}, {os.cpu_count()} CPUs; {args.model} training, batch {args.batch_size}, {args.image_size}px, "
          f"device {args.device}, median of {args.rounds} epochs of {args.steps} steps")
    print("| feed | img/s | vs loop |\n|---|---:|---:|")
    for row in rows:
        print(f"| {row['feed']} | {row['images_per_s']:.2f} | {row['ratio_to_loop']:.2f}x |")
    valid = load <= args.max_other_load
    with open(args.json, "w") as out:
        json.dump({"valid": valid, "cpu": cpu, "settings": vars(args), "other_load_cores": load, "rows": rows},
                  out, indent=1)
    if not valid:
        print(f"NOT VALID: other processes used {load:.2f} cores; rerun on a quiet machine.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
