"""How much of timm's time is matrix products, and so the highest ratio to timm that products at timm's rate allow.

Each framework's step is timed, then as many steps run under its profiler (fp32; ours in GRAPH mode), whose
operators give the products' time (matmuls and convolutions; in ours the fused kernels that contain them, with the
bias, GELU and residual they fuse, so ours' rest is the smaller for it); the rest is the step less the products.
Where the products of both run at the same rate (the same BLAS rate, ``bench_sgemm.py``), a ratio to timm of timm's
step over its products' time is reached only when everything else takes no time: the table gives that ceiling, and
how long ours' rest may take for the target ratio. Each framework runs in processes of its own, the two alternating
(``--rounds``); the fastest step and the fastest products of each count, since this VM's slow spells last longer
than a process's steps. Usage (needs ``pip install -r benchmarks/requirements.txt``):

    python benchmarks/bench_gemm_share.py [--models svt_small pcpvt_small] [--tasks inference training]
                                          [--batch-size 8] [--image-size 224] [--steps 6] [--rounds 3]
                                          [--json gemm_share.json]
"""
import argparse
import csv
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

import bench_models

# The targets: ours against timm, fp32 GRAPH mode.
TARGETS = {"inference": 1.5, "training": 1.3}
TIMM_PRODUCTS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::mkldnn_convolution", "aten::convolution_backward")
# The cells whose kernels are ours' products: dense layers, MLPs, patch and sub-sampling convolutions, the PEG conv.
OUR_PRODUCT_CELLS = ("RowLinear", "RowMatMul", "mlp-Mlp", "PatchConv", "PosConv")


def timed_then_profiled(call, steps, make_profiler):
    """Median milliseconds of ``steps`` calls, then the profiler (a context made by ``make_profiler``) that saw
    ``steps`` more, after two untimed calls: MindSpore's profiler records from its construction, so it is made after
    the graph's compilation; the timed calls run without it, whose cost per operator would count in the step."""
    call()
    step = statistics.median(bench_models.call_seconds(call, steps)) * 1e3
    profiler = make_profiler()
    with profiler:
        for _ in range(steps):
            call()
    return step, profiler


def split_timm(spec, steps):
    """Milliseconds of timm's step and of its products, per step."""
    from torch.profiler import ProfilerActivity, profile

    call, _ = bench_models.prepare_timm(spec)
    step, profiler = timed_then_profiled(call, steps, lambda: profile(activities=[ProfilerActivity.CPU]))
    products = sum(e.self_cpu_time_total for e in profiler.key_averages() if e.key in TIMM_PRODUCTS)
    return {"step_ms": step, "products_ms": products / 1e3 / steps}


def split_ours(spec, steps):
    """Milliseconds of our step and of its products, per step."""
    from mindspore.profiler import ProfilerActivity, profile, tensorboard_trace_handler

    call, _ = bench_models.prepare_ours(spec)
    with tempfile.TemporaryDirectory() as folder:
        step, _ = timed_then_profiled(call, steps, lambda: profile(activities=[ProfilerActivity.CPU],
                                                                    on_trace_ready=tensorboard_trace_handler(folder)))
        rows = []
        for path in glob.glob(os.path.join(folder, "*", "FRAMEWORK", "cpu_op_detail_info_*.csv")):
            with open(path, newline="") as table:
                rows += list(csv.DictReader(table))
    if not rows:
        raise RuntimeError("MindSpore's profiler recorded no operator")
    products = sum(float(row["op_total_time(ms)"]) for row in rows
                   if any(cell in row["full_op_name"] for cell in OUR_PRODUCT_CELLS))
    return {"step_ms": step, "products_ms": products / steps}


def measure(spec, steps):
    """``spec`` measured in a process of its own, as a dict."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec),
                             "--steps", str(steps)], capture_output=True, text=True,
                            env=bench_models.worker_environment())
    lines = [line for line in result.stdout.splitlines() if line.startswith(bench_models.REPLY)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{spec['impl']} {spec['model']} {spec['task']} failed: "
                           f"{bench_models._first_error_line(result.stderr)}")
    return json.loads(lines[-1][len(bench_models.REPLY):])


def fastest_rounds(spec, steps, rounds):
    """timm's and ours' splits of ``spec`` from ``rounds`` processes each, the two alternating: the fastest step and
    the fastest products of each, since a slow spell of the VM can fall on the timed or on the profiled steps."""
    runs = {"timm": [], "ours-graph": []}
    for _ in range(rounds):
        for impl, splits in runs.items():
            splits.append(measure({**spec, "impl": impl}, steps))
    return [{key: min(split[key] for split in splits) for key in ("step_ms", "products_ms")}
            for splits in runs.values()]


def summarise(model, task, timm, ours):
    """The ceiling and the rest allowed for the target, from both frameworks' splits."""
    target = TARGETS[task]
    return {"model": model, "task": task, "timm": timm, "ours": ours, "target": target,
            "ceiling": timm["step_ms"] / timm["products_ms"],
            "rest_allowed_ms": timm["step_ms"] / target - timm["products_ms"]}


def split_cells(split):
    return f"{split['step_ms']:.0f} / {split['products_ms']:.0f} / {split['step_ms'] - split['products_ms']:.0f}"


def markdown(rows):
    lines = ["| model | task | timm ms: step / products / rest | ceiling | target | rest allowed | "
             "ours ms: step / products / rest |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        timm, ours = r["timm"], r["ours"]
        lines.append(f"| {r['model']} | {r['task']} | {split_cells(timm)} | {r['ceiling']:.2f}× | {r['target']}× | "
                     f"{r['rest_allowed_ms']:.0f} ms | {split_cells(ours)} |")
    return "\n".join(lines)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["svt_small", "pcpvt_small"],
                        choices=sorted(bench_models.TIMM_NAMES))
    parser.add_argument("--tasks", nargs="+", default=["inference", "training"], choices=sorted(TARGETS))
    parser.add_argument("--batch-size", type=bench_models.at_least(1), default=8)
    parser.add_argument("--image-size", type=bench_models.at_least(bench_models.MIN_IMAGE_SIZE), default=224)
    parser.add_argument("--threads", type=bench_models.at_least(1), default=os.cpu_count())
    parser.add_argument("--steps", type=bench_models.at_least(1), default=6,
                        help="timed steps, then as many profiled, per process")
    parser.add_argument("--rounds", type=bench_models.at_least(1), default=3,
                        help="processes of each framework, alternating; the fastest step and products count")
    parser.add_argument("--json", default="gemm_share.json", help="where to write the results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args()


def main():
    args = parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        split = split_timm if spec["impl"] == "timm" else split_ours
        print(bench_models.REPLY + json.dumps(split(spec, args.steps)), flush=True)
        return
    rows = []
    for model in args.models:
        for task in args.tasks:
            spec = {"model": model, "task": task, "dtype": "fp32", "threads": args.threads,
                    "batch_size": args.batch_size, "image_size": args.image_size, "drop_path_rate": None}
            timm, ours = fastest_rounds(spec, args.steps, args.rounds)
            rows.append(summarise(model, task, timm, ours))
            print(f"  {model} {task}: ours {ours['step_ms']:.0f} ms, timm {timm['step_ms']:.0f} ms",
                  file=sys.stderr, flush=True)
    report = {"cpu": bench_models.cpu_model(), "batch_size": args.batch_size, "image_size": args.image_size,
              "threads": args.threads, "steps": args.steps, "rounds": args.rounds, "rows": rows}
    with open(args.json, "w") as out:
        json.dump(report, out, indent=2)
    print(f"{report['cpu']}, batch {args.batch_size}, {args.image_size} px, {args.threads} threads, fp32, ours in "
          "GRAPH mode; ceiling: timm's time over its products' time; rest allowed: for ours to reach the target with "
          "its products at timm's time")
    print(markdown(rows))


if __name__ == "__main__":
    main()
