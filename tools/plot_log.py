"""Plot a training run's per-epoch CSV: python tools/plot_log.py CKPT_DIR/train_log.csv [-o curves.png]

Draws train/val loss and val top-1/top-5 accuracy against the epoch (needs matplotlib: pip install matplotlib).
"""
import argparse
import csv
import os
import sys


def _column(rows, name):
    points = [(int(r["epoch"]), float(r[name])) for r in rows if r.get(name) not in (None, "")]
    return [p[0] for p in points], [p[1] for p in points]


def plot_log(csv_path, png_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise ValueError(f"{csv_path} has no epochs yet.")
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4))
    for name, label in (("train_loss", "train loss"), ("val_loss", "val loss")):
        loss_ax.plot(*_column(rows, name), marker="o", label=label)
    for name, label in (("val_top1", "val top-1"), ("val_top5", "val top-5")):
        acc_ax.plot(*_column(rows, name), marker="o", label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(os.path.dirname(os.path.abspath(csv_path)))
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", help="train_log.csv written by train.py")
    parser.add_argument("-o", "--output", default=None, help="PNG path (default: next to the CSV)")
    args = parser.parse_args()
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.csv)), "train_curves.png")
    try:
        print(f"Wrote {plot_log(args.csv, output)}")
    except (OSError, ValueError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
