"""How much of timm's time is matrix products, and so the highest ratio to timm that products at timm's rate allow.

Each framework's steps are timed under its profiler (fp32; ours in GRAPH mode), and
the same steps split into the products (matmuls and convolutions; in ours the fused kernels that contain them, with
the bias, GELU and residual they fuse, so ours' rest is the smaller for it) and the rest. Where the products of both
run at the same rate (the same BLAS rate, ``bench_sgemm.py``), a ratio to timm of ``timm step / timm products`` is
reached only when everything else takes no time: the table gives that ceiling, and how long ours' rest may take for
the target ratio. The profilers' own cost per operator counts in the rest, which only raises the ceiling. Each
framework runs in processes of its own, the two alternating (``--rounds``) and each one's fastest process counting,
since this VM's slow spells last longer than a process's steps. Usage (needs
``pip install -r benchmarks/requirements.txt``):

    python benchmarks/bench_gemm_share.py [--models svt_small pcpvt_small] [--tasks inference training]
                                          [--batch-size 8] [--image-size 224] [--steps 6] [--rounds 3]
                                          [--json gemm_share.json]
"""
import argparse
import csv
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import bench_models

# The targets: ours against timm, fp32 GRAPH mode.
TARGETS = {"inference": 1.5, "training": 1.3}
TIMM_PRODUCTS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::mkldnn_convolution", "aten::convolution_backward")
# The cells whose kernels are ours' products: dense layers, MLPs, patch and sub-sampling convolutions, the PEG conv.
OUR_PRODUCT_CELLS = ("RowLinear", "RowMatMul", "mlp-Mlp", "PatchConv", "PosConv")


def profiled_steps(call, steps, make_profiler):
    """Milliseconds per call of ``steps`` calls, and the profiler (a context made by ``make_profiler``) that saw them,
    after two untimed calls before it exists: MindSpore's profiler records from its construction, the graph's
    compilation included."""
    for _ in range(2):
        call()
    profiler = make_profiler()
    with profiler:
        start = time.perf_counter()
        for _ in range(steps):
            call()
        elapsed = time.perf_counter() - start
    return elapsed * 1e3 / steps, profiler


def split_timm(spec, steps):
    """Milliseconds of timm's step and of its products, per step, both from the same profiled steps."""
    from torch.profiler import ProfilerActivity, profile

    call, _ = bench_models.prepare_timm(spec)
    step, profiler = profiled_steps(call, steps, lambda: profile(activities=[ProfilerActivity.CPU]))
    products = sum(e.self_cpu_time_total for e in profiler.key_averages() if e.key in TIMM_PRODUCTS)
    return {"step_ms": step, "products_ms": products / 1e3 / steps}


def split_ours(spec, steps):
    """Milliseconds of our step and of its products, per step, both from the same profiled steps."""
    from mindspore.profiler import ProfilerActivity, profile, tensorboard_trace_handler

    call, _ = bench_models.prepare_ours(spec)
    with tempfile.TemporaryDirectory() as folder:
        step, _ = profiled_steps(call, steps, lambda: profile(activities=[ProfilerActivity.CPU],
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
    env = dict(os.environ, PYTHONPATH=bench_models.ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), GLOG_v="3")
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec),
                             "--steps", str(steps)], capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith(bench_models.REPLY)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{spec['impl']} {spec['model']} {spec['task']} failed: "
                           f"{bench_models._first_error_line(result.stderr)}")
    return json.loads(lines[-1][len(bench_models.REPLY):])


def fastest_rounds(spec, steps, rounds):
    """timm's and ours' splits of ``spec``, each from its fastest of ``rounds`` processes, the two alternating so that
    a slow spell of the VM falls on both."""
    runs = {"timm": [], "ours-graph": []}
    for _ in range(rounds):
        for impl, splits in runs.items():
            splits.append(measure({**spec, "impl": impl}, steps))
    return [min(splits, key=lambda split: split["step_ms"]) for splits in runs.values()]


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
    parser.add_argument("--steps", type=bench_models.at_least(1), default=6, help="profiled steps per process")
    parser.add_argument("--rounds", type=bench_models.at_least(1), default=3,
                        help="processes of each framework, alternating; the fastest one counts")
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
