"""Write the handwritten digits that scikit-learn ships (1,797 real 8x8 scans, UCI) as an ImageFolder.

    python tools/make_digits_imagefolder.py --out data/digits --size 32

Layout: <out>/{train,val}/<digit>/<index>.png, a fixed stratified 80/20 split, images upscaled to
``size`` px (bicubic) and stored as RGB so the ImageNet-style pipeline applies unchanged.
"""
import argparse
import os

import numpy as np
from PIL import Image


def write_digits(out, size=32, val_fraction=0.2, seed=0):
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.RandomState(seed)
    counts = {"train": 0, "val": 0}
    for label in range(10):
        indices = rng.permutation(np.flatnonzero(digits.target == label))
        num_val = int(round(len(indices) * val_fraction))
        for split, chosen in (("val", indices[:num_val]), ("train", indices[num_val:])):
            folder = os.path.join(out, split, str(label))
            os.makedirs(folder, exist_ok=True)
            for index in chosen:
                pixels = (digits.images[index] * (255.0 / 16.0)).astype(np.uint8)
                image = Image.fromarray(pixels, mode="L").resize((size, size), Image.BICUBIC).convert("RGB")
                image.save(os.path.join(folder, f"{index:04d}.png"))
            counts[split] += len(chosen)
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/digits", help="output folder")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels (>= 32 for Twins)")
    args = parser.parse_args()
    if args.size < 32:
        parser.error(f"--size {args.size}: Twins needs images of at least 32 pixels a side")
    counts = write_digits(args.out, args.size)
    print(f"Wrote {counts['train']} training and {counts['val']} validation images to {args.out}")


if __name__ == "__main__":
    main()
