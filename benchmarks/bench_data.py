"""Training-pipeline throughput: JPEG decode, RandomResizedCrop, RandAugment, random erasing, Mixup/CutMix.

Generates a folder of JPEGs (ImageNet-like 500x375 by default) and times ``create_loader`` batches for
progressively fuller versions of the Twins recipe, then the model's training step (the same measurement as
bench_models.py, in its own process) to show whether the pipeline can feed it. Usage:

    python benchmarks/bench_data.py [--images 512] [--workers 2] [--batch-size 64] [--image-size 224]
                                    [--model svt_small] [--model-batch-size 8]
"""
import argparse
import os
import tempfile
import time
import warnings

import numpy as np
from PIL import Image

from bench_models import MIN_IMAGE_SIZE, TIMM_NAMES, at_least, run_in_turns
from mindcv.data import create_dataset, create_loader, create_transforms

RECIPE = dict(interpolation="bicubic", scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5)
STAGES = [
    ("decode + RandomResizedCrop + flip", {}, {}),
    ("+ RandAugment rand-m9-mstd0.5-inc1", dict(auto_augment="rand-m9-mstd0.5-inc1"), {}),
    ("+ random erasing p=0.25 (pixel)", dict(auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_value="random"), {}),
    ("+ Mixup 0.8 / CutMix 1.0, smoothing 0.1",
     dict(auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_value="random"),
     dict(mixup=0.8, cutmix=1.0, cutmix_prob=1.0, label_smoothing=0.1)),
]


def make_jpeg_folder(root, num_images, num_classes=10, size=(375, 500)):
    rng = np.random.RandomState(0)
    for i in range(num_images):
        folder = os.path.join(root, "train", f"class_{i % num_classes:03d}")
        os.makedirs(folder, exist_ok=True)
        noise = rng.randint(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        Image.fromarray(noise).resize(size[::-1], Image.BICUBIC).save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)


def images_per_second(root, image_size, batch_size, workers, epochs, transform_options, loader_options):
    dataset = create_dataset("", root, "train", num_parallel_workers=workers)
    transform = create_transforms("", image_size, is_training=True, **RECIPE, **transform_options)
    loader = create_loader(dataset, batch_size, drop_remainder=True, is_training=True, num_classes=10,
                           transform=transform, num_parallel_workers=workers, **loader_options)
    iterator = loader.create_tuple_iterator(output_numpy=True, num_epochs=epochs + 1)
    for _ in iterator:  # warm-up epoch: thread start-up, page cache
        pass
    start, count = time.perf_counter(), 0
    for _ in range(epochs):
        for images, _ in iterator:
            count += len(images)
    return count / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=at_least(1), default=512)
    parser.add_argument("--workers", type=at_least(1), default=2)
    parser.add_argument("--batch-size", type=at_least(1), default=64)
    parser.add_argument("--image-size", type=at_least(MIN_IMAGE_SIZE), default=224)
    parser.add_argument("--epochs", type=at_least(1), default=2)
    parser.add_argument("--model", default="svt_small", choices=sorted(TIMM_NAMES),
                        help="model whose training step the pipeline has to feed")
    parser.add_argument("--model-batch-size", type=at_least(1), default=8)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as root:
        make_jpeg_folder(root, args.images)
        print(f"{args.images} JPEGs 500x375 -> {args.image_size}px, batch {args.batch_size}, "
              f"{args.workers} workers, {os.cpu_count()} CPUs")
        print(f"| {'pipeline':<42} | {'images/s':>8} |")
        print(f"|{'-' * 44}|{'-' * 10}|")
        for name, transform_options, loader_options in STAGES:
            rate = images_per_second(root, args.image_size, args.batch_size, args.workers, args.epochs,
                                     transform_options, loader_options)
            print(f"| {name:<42} | {rate:8.1f} |")
    step = run_in_turns([dict(impl="ours-graph", task="training", model=args.model, batch_size=args.model_batch_size,
                              image_size=args.image_size, threads=os.cpu_count(), dtype="fp32",
                              drop_path_rate=None, warmup=2, repeats=5)])[0]
    if "error" in step:
        raise RuntimeError(f"{args.model}'s training step failed: {step['error']}")
    model_rate = args.model_batch_size / np.median(step["times_s"])
    verdict = "not the bottleneck" if rate > model_rate else "THE BOTTLENECK"
    print(f"\n{args.model} training step (GRAPH, fp32, batch {args.model_batch_size}): {model_rate:.1f} img/s; "
          f"the full pipeline delivers {rate / model_rate:.0f}x that: {verdict}.")


if __name__ == "__main__":
    main()
