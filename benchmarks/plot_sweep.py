"""Draws a ``bench_models.py --sweep`` result: throughput and peak memory against batch size and image size, one
line per model, implementation and precision. Usage (needs matplotlib):

    python benchmarks/plot_sweep.py bench_models.json bench_models_sweep.png
"""
import argparse
import json
import sys

PANELS = (  # (title, task, the setting that varies, the setting held at its --batch-size/--image-size value)
    ("inference against batch size", "inference", "batch_size", "image_size"),
    ("inference against image size", "inference", "image_size", "batch_size"),
    ("training against image size", "training", "image_size", "batch_size"),
)
METRICS = (("img_per_s", "images / s", 1.0), ("peak_rss_mb", "peak RSS (GB)", 1 / 1024))
AXIS_LABELS = {"batch_size": "batch size", "image_size": "image size (px)"}
LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = {"fp32": "o", "bf16": "s"}


def panel_series(rows, task, varying, held, fixed):
    """{(model, impl, dtype): [(x, row), ...]} of the rows on one panel, sorted along its axis."""
    series = {}
    for row in rows:
        if row["task"] == task and row[held] == fixed:
            series.setdefault((row["model"], row["impl"], row["dtype"]), []).append((row[varying], row))
    return {key: sorted(points, key=lambda p: p[0]) for key, points in series.items()}


def plot_sweep(rows, cpu, path, batch_size, image_size):
    """Writes the PNG; ``batch_size`` and ``image_size`` are the sweep's fixed point (the other axis's value)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    if len({(r["batch_size"], r["image_size"]) for r in rows}) < 2:
        raise ValueError(f"{len(rows)} rows at one batch size and image size: a plot needs a --sweep result")
    models = sorted({r["model"] for r in rows})
    impls = sorted({r["impl"] for r in rows})
    colors = dict(zip(models, plt.get_cmap("tab10").colors))
    figure, axes = plt.subplots(len(METRICS), len(PANELS), figsize=(5 * len(PANELS), 4 * len(METRICS)),
                                squeeze=False)
    for column, (title, task, varying, held) in enumerate(PANELS):
        fixed = {"batch_size": batch_size, "image_size": image_size}[held]
        series = panel_series(rows, task, varying, held, fixed)
        for line, ((metric, label, scale), ax) in enumerate(zip(METRICS, axes[:, column])):
            top = 0.0
            for (model, impl, dtype), points in sorted(series.items()):
                values = [r[metric] * scale for _, r in points]
                top = max(top, *values)
                ax.plot([x for x, _ in points], values, color=colors[model],
                        linestyle=LINE_STYLES[impls.index(impl) % len(LINE_STYLES)],
                        marker=MARKERS.get(dtype, "^"), label=f"{model} {impl} {dtype}")
            if varying == "batch_size":
                ax.set_xscale("log", base=2)
            ax.set_xticks(sorted({x for points in series.values() for x, _ in points}))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.set_ylim(0, 1.1 * top)
            ax.set_xlabel(AXIS_LABELS[varying])
            ax.set_ylabel(label)
            ax.set_title(f"{title}\n({AXIS_LABELS[held]} {fixed})" if line == 0 else "", fontsize=10)
            ax.grid(True, alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9)
    figure.suptitle(f"Twins, ours against timm: {cpu}", fontsize=11)
    figure.tight_layout(rect=(0, 0.08, 1, 0.96))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="bench_models.py --sweep's JSON")
    parser.add_argument("png", help="where to write the plot")
    args = parser.parse_args()
    with open(args.results) as results:
        report = json.load(results)
    settings = report["settings"]
    plot_sweep(report["rows"], report["cpu"], args.png, settings["batch_size"], settings["image_size"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
