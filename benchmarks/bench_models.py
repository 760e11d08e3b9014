"""Twins throughput and memory, ours (MindSpore GRAPH and PYNATIVE) against timm (PyTorch), on this machine.

Every measurement runs in its own process, so that peak resident memory is per process. The processes of one
point (model, task, batch size, image size: every implementation and precision) are started and warmed up one
after another, then take turns, one untimed and one timed step each, so that a slow spell of the VM (they last
seconds) falls on all of them alike, while only one runs at a time. The CPU time that other processes take during
each step is measured from /proc/stat; a measurement where they took more than ``--max-other-load`` cores is
reported as contended and the whole benchmark exits 1. Usage (needs ``pip install -r benchmarks/requirements.txt``):

    python benchmarks/bench_models.py [--models svt_small pcpvt_small] [--batch-size 8] [--image-size 224]
                                      [--threads N] [--dtypes fp32 bf16] [--repeats 7] [--json bench_models.json]
                                      [--sweep [--plot bench_models_sweep.png]]

``--sweep`` measures how the cost grows instead of one point: inference at each of ``--sweep-batches`` (at
``--image-size``) and at each of ``--sweep-sizes`` (at ``--batch-size``), training at each of
``--sweep-train-sizes``; ``--plot`` draws throughput and peak memory along both axes (needs matplotlib).

In bf16, timm runs under ``torch.autocast("cpu", torch.bfloat16)`` and ours with ``create_model(...,
precision="bf16")``: bf16 matmul operands with fp32 sums, everything else fp32 (in training the matmul gradients
are bf16 GEMMs too; weights and AdamW stay fp32).
"""
import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMM_NAMES = {name: f"twins_{name}" for name in
              ("pcpvt_small", "pcpvt_base", "pcpvt_large", "svt_small", "svt_base", "svt_large")}
RECIPES = {name: os.path.join(ROOT, "configs", "twins", f"{name.split('_')[0]}_{name.split('_')[1][0]}_gpu.yaml")
           for name in TIMM_NAMES}
DTYPES = ("fp32", "bf16")
MATMUL_SIZE = 4096
# The models' total stride: a smaller image leaves no token. mindcv.deploy has the same constant, not imported
# here: timm's worker processes load this module and must not load MindSpore.
MIN_IMAGE_SIZE = 32
MEASUREMENT_KEYS = ("model", "task", "impl", "dtype", "batch_size", "image_size")
# Marks the worker's lines of the turn-taking protocol among whatever else the libraries print.
REPLY = "BENCH "


def at_least(minimum):
    """An argparse type: a whole number of at least ``minimum``, refused in one line naming the value."""
    def whole_number(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least {minimum}")
        return value
    return whole_number


def recipe_args(variant):
    """train.py's arguments for ``variant``: the official recipe (AdamW, weight decay filter, clipping,
    drop path), single device, fp32 without loss scaling (bf16 is applied to the model itself)."""
    from mindcv.cli.config import parse_args

    return parse_args(["-c", RECIPES[variant], "--distribute", "False", "--amp_level", "O0", "--loss_scale_type",
                       "fixed", "--loss_scale", "1"])


def drop_path_rate(spec, recipe):
    return recipe.drop_path_rate if spec["drop_path_rate"] is None else spec["drop_path_rate"]


def call_seconds(call, repeats):
    """Seconds of each of ``repeats`` calls, after one untimed call."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def fastest_call(call, repeats):
    """Seconds of the fastest of ``repeats`` calls, after one untimed call."""
    return min(call_seconds(call, repeats))


def timed_step(call):
    """Seconds of one call and the CPU seconds that other processes used meanwhile."""
    machine_before, own_before, start = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
    call()
    elapsed = time.perf_counter() - start
    others = (machine_busy_seconds() - machine_before) - (own_cpu_seconds() - own_before)
    return {"time_s": elapsed, "other_cpu_s": max(others, 0.0)}


def cpu_model():
    """The CPU's model name, family and model numbers (VMs often show only "AMD EPYC", whatever the
    generation) and the ISA extensions that matter to the kernels, from /proc/cpuinfo."""
    with open("/proc/cpuinfo") as cpuinfo:
        text = cpuinfo.read()

    def field(key):
        found = re.search(rf"^{key}\s*:\s*(.+)$", text, re.M)
        return found.group(1).strip() if found else None

    flags = set(field("flags").split())
    notable = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16") if f in flags]
    generation = f"family {field('cpu family')}, model {field('model')}; " if field("cpu family") else ""
    return f"{field('model name') or platform.machine()} ({generation}{' '.join(notable)})"


def machine_busy_seconds():
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def prepare_ours(spec):
    """One step of ours as ``spec`` asks, and the precision that this CPU runs it in."""
    import numpy as np

    import mindspore as ms
    from mindspore.device_context.cpu.op_tuning import threads_num

    from mindcv.models import create_model, set_matmul_precision
    from mindcv.cli import call_with_options
    from mindcv.engine import build_train_step

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE if spec["impl"] == "ours-graph" else ms.PYNATIVE_MODE)
    threads_num(spec["threads"])
    ms.set_seed(0)
    args = recipe_args(spec["model"])
    model = create_model(spec["model"], num_classes=1000, drop_path_rate=drop_path_rate(spec, args))
    # What create_model(precision=...) applies, kept to learn the precision this CPU runs.
    ran = set_matmul_precision(model, spec["dtype"])
    rng = np.random.default_rng(0)
    batch, size = spec["batch_size"], spec["image_size"]
    images = ms.Tensor(rng.standard_normal((batch, 3, size, size), dtype=np.float32))
    labels = ms.Tensor(rng.integers(0, 1000, batch).astype(np.int32))
    if spec["task"] == "inference":
        model.set_train(False)

        def call():
            model(images).asnumpy()
    elif spec["impl"] == "ours-pynative-loop":
        call = plain_training_loop(model, args, images, labels)
    else:
        step, _, _ = call_with_options(build_train_step, args, model, 1000)
        step.set_train(True)

        def call():
            step(images, labels)[0].asnumpy()
    return call, ran


def plain_training_loop(model, args, images, labels):
    """One step of the loop a MindSpore 2.x user writes (value_and_grad, then the optimizer, nothing compiled by
    hand), with the recipe's AdamW (at its peak lr) and label smoothing; clipping left out, as such loops do."""
    import mindspore as ms

    from mindcv.loss import create_loss
    from mindcv.optim import create_optimizer

    optimizer = create_optimizer(model, args.opt, lr=args.lr, weight_decay=args.weight_decay,
                                 weight_decay_filter=args.weight_decay_filter, eps=args.eps)
    loss_fn = create_loss(args.loss, label_smoothing=args.label_smoothing)
    gradients = ms.value_and_grad(lambda x, y: loss_fn(model(x), y), None, optimizer.parameters)
    model.set_train(True)

    def call():
        loss, grads = gradients(images, labels)
        optimizer(grads)
        loss.asnumpy()

    return call


def prepare_timm(spec):
    """One step of timm as ``spec`` asks, and its precision."""
    import timm
    import torch

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    args = recipe_args(spec["model"])
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec["dtype"] == "bf16")
    model = timm.create_model(TIMM_NAMES[spec["model"]], num_classes=1000, drop_path_rate=drop_path_rate(spec, args))
    batch, size = spec["batch_size"], spec["image_size"]
    images = torch.randn(batch, 3, size, size)
    labels = torch.randint(0, 1000, (batch,))
    if spec["task"] == "inference":
        model.eval()

        def call():
            with torch.inference_mode(), autocast:
                model(images)
    else:
        model.train()
        decay = [p for n, p in model.named_parameters() if p.ndim > 1 and not n.startswith("pos_block")]
        no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or n.startswith("pos_block")]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, eps=args.eps)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

        def call():
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss = loss_fn(model(images), labels)
            loss.backward()
            if args.clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip_value)
            optimizer.step()
            loss.item()
    return call, spec["dtype"]


def measure_mindspore_matmul(spec):
    """GFLOP/s of MindSpore's fp32 matmul and of our bf16 one (where the CPU has bf16) on a large square, in
    GRAPH mode (its own process: MindSpore and PyTorch loaded together fight over threads)."""
    import numpy as np

    import mindspore as ms
    from mindspore import nn, ops
    from mindspore.device_context.cpu.op_tuning import threads_num

    from mindcv.kernels import has_bf16_instructions, matmul_op

    class MatMul(nn.Cell):
        def __init__(self, op):
            super().__init__()
            self.op = op

        def construct(self, a, b):
            return self.op(a, b)

    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    threads_num(spec["threads"])
    n = MATMUL_SIZE
    a = ms.Tensor(np.random.default_rng(0).standard_normal((n, n), dtype=np.float32))
    ops_by_dtype = {"float32": ops.MatMul(transpose_b=True)}
    if has_bf16_instructions():
        ops_by_dtype["bfloat16"] = matmul_op("bf16")
    measured = {}
    for dtype, op in ops_by_dtype.items():
        net = MatMul(op)
        measured[dtype] = 2 * n ** 3 / fastest_call(lambda net=net: net(a, a).asnumpy(), 5) / 1e9
    return measured


def measure_machine(spec):
    """PyTorch's large-matmul GFLOP/s (fp32, bf16) and the forward FLOPs per image of each model (counted by
    PyTorch on timm's model)."""
    import timm
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(spec["threads"])
    n = MATMUL_SIZE
    measured = {}
    for dtype in (torch.float32, torch.bfloat16) if "bf16" in spec["dtypes"] else (torch.float32,):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        seconds = fastest_call(lambda a=a, b=b: torch.mm(a, b), 5)
        measured[f"torch_{str(dtype).replace('torch.', '')}"] = 2 * n ** 3 / seconds / 1e9
    peaks = {"measured": measured}
    flops = {}
    for variant in spec["models"]:
        model = timm.create_model(TIMM_NAMES[variant]).eval()
        flops[variant] = {}
        for size in spec["image_sizes"]:
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                model(torch.randn(1, 3, size, size))
            flops[variant][str(size)] = counter.get_total_flops()
    return {"peak_gflops": peaks, "forward_flops_per_image": flops}


def reply(message):
    print(REPLY + json.dumps(message), flush=True)


def serve(spec):
    """A measurement's process: builds the step, runs its first call (compile included, timed) and the warm-up,
    says it is ready, then runs an untimed and a timed step per "step" line read, and on "stop" reports its peak
    memory."""
    call, precision = (prepare_timm if spec["impl"] == "timm" else prepare_ours)(spec)
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    for _ in range(spec["warmup"]):
        call()
    reply({"ready": True})
    for line in sys.stdin:
        if line.strip() != "step":
            break
        call()  # untimed: it wakes this process's threads while the previous process's wind down
        reply(timed_step(call))
    reply({"first_call_s": first, "precision": precision,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def worker(spec):
    if spec["impl"] == "machine":
        reply(measure_machine(spec))
    elif spec["impl"] == "mindspore-matmul":
        reply(measure_mindspore_matmul(spec))
    else:
        serve(spec)


def worker_environment():
    """A worker process's environment: the checkout's package first on its path, MindSpore's log quiet."""
    return dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), GLOG_v="3")


class WorkerFailed(Exception):
    pass


class Worker:
    """A measurement's own process, driven line by line: its replies are the REPLY lines of its output."""

    def __init__(self, spec):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                        env=worker_environment(), text=True)

    def reply(self):
        """The next reply; WorkerFailed with the worker's error where it ended instead."""
        for line in self.process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        self.process.wait()
        self.stderr.seek(0)
        raise WorkerFailed(_first_error_line(self.stderr.read()))

    def ask(self, command):
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it ended: reply() says why
        return self.reply()

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.stderr.close()


def run_isolated(spec):
    """A one-shot measurement (the machine's matmul rates and FLOP counts) in a fresh process."""
    worker_process = Worker(spec)
    try:
        return worker_process.reply()
    except WorkerFailed as failure:
        raise RuntimeError(f"{spec['impl']} failed: {failure}") from None
    finally:
        worker_process.close()


def run_in_turns(specs):
    """Measurements that take turns: each spec's process is built and warmed up in turn (the others wait idle),
    then every process runs one untimed and one timed step per turn, the first of each turn rotating, for
    ``repeats`` turns. Returns per spec the first call's seconds, the timed steps, the cores that other processes
    used during them, the peak memory and the precision run, or {"error": ...} for one that failed."""
    results, running = {}, {}

    def ask(index, command):
        """The process's reply, or None where it ended instead: its error recorded and the process closed."""
        try:
            return running[index].reply() if command is None else running[index].ask(command)
        except WorkerFailed as failure:
            results[index] = {"error": str(failure)}
            running.pop(index).close()
            return None

    for index, spec in enumerate(specs):
        running[index] = Worker(spec)
        results[index] = {"times_s": [], "other_cpu_s": 0.0}
        ask(index, None)
    for turn in range(specs[0]["repeats"] if specs else 0):
        order = list(running)
        shift = turn % len(order) if order else 0
        for index in order[shift:] + order[:shift]:
            step = ask(index, "step")
            if step is not None:
                results[index]["times_s"].append(step["time_s"])
                results[index]["other_cpu_s"] += step["other_cpu_s"]
    for index in list(running):
        final = ask(index, "stop")
        if final is None:
            continue
        running.pop(index).close()
        result = results[index]
        other_cpu = result.pop("other_cpu_s")
        results[index] = dict(result, **final, other_load_cores=other_cpu / sum(result["times_s"]))
    return [results[index] for index in range(len(specs))]


def _first_error_line(stderr):
    """What made a worker fail, in one line: MindSpore's kernel-selection message, else the last message line."""
    select = re.search(r"Select CPU operator\[(\w+)\] fail! Unsupported data type!.*?but get (input\[[^\]]*\])",
                       stderr, re.S)
    if select:
        return f"MindSpore's CPU {select.group(1)} kernel does not take {select.group(2)}"
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and not line.startswith("[") and set(line.strip()) != {"-"}]
    return lines[-1] if lines else "worker failed without output"


def merge_rounds(earlier, result):
    """One run's measurements added to those of earlier rounds: all timed steps, the first round's compile
    time, the highest memory and load."""
    if earlier is None:
        return result
    return {"first_call_s": earlier["first_call_s"], "times_s": earlier["times_s"] + result["times_s"],
            "peak_rss_mb": max(earlier["peak_rss_mb"], result["peak_rss_mb"]),
            "other_load_cores": max(earlier["other_load_cores"], result["other_load_cores"])}


def summarise(spec, result, peaks, flops):
    times = result["times_s"]
    median = statistics.median(times)
    images = spec["batch_size"]
    forward = flops[spec["model"]][str(spec["image_size"])]
    flops_per_image = forward * (3 if spec["task"] == "training" else 1)
    ran = result.get("precision", spec["dtype"])  # ours runs fp32 where the CPU has no bf16
    peak = peaks["bfloat16" if ran == "bf16" else "float32"]
    return {
        **{k: spec[k] for k in MEASUREMENT_KEYS},
        "ran_as": ran,
        "img_per_s": images / median,
        "img_per_s_min": images / max(times),
        "img_per_s_max": images / min(times),
        "spread_pct": 100 * (max(times) - min(times)) / median,
        "pct_matmul_peak": 100 * flops_per_image * images / median / 1e9 / peak if peak else None,
        "peak_rss_mb": result["peak_rss_mb"],
        "compile_s": result["first_call_s"] - median if spec["impl"] != "timm" else None,
        "other_load_cores": result["other_load_cores"],
        "times_s": times,
    }


def markdown(rows, max_other_load):
    head = ("| model | task | implementation | batch | px | img/s (median) | min–max | ratio vs timm fp32 "
            "| ratio vs timm bf16 | % of matmul peak | peak RSS MB | memory vs timm fp32 | compile s | other load |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    reference = {point(r, r["dtype"]): r for r in rows if r["impl"] == "timm"}

    def ratio(r, dtype, key="img_per_s"):
        ref = reference.get(point(r, dtype))
        return f"{r[key] / ref[key]:.2f}×" if ref else "–"

    for r in rows:
        compile_s = f"{r['compile_s']:.1f}" if r["compile_s"] is not None else "–"
        load = f"{r['other_load_cores']:.2f}" + (" CONTENDED" if r["other_load_cores"] > max_other_load else "")
        fallback = f" (ran {r['ran_as']})" if r["ran_as"] != r["dtype"] else ""
        lines.append(f"| {r['model']} | {r['task']} | {r['impl']} {r['dtype']}{fallback} | {r['batch_size']} | "
                     f"{r['image_size']} | {r['img_per_s']:.2f} | "
                     f"{r['img_per_s_min']:.2f}–{r['img_per_s_max']:.2f} | {ratio(r, 'fp32')} | {ratio(r, 'bf16')} | "
                     f"{r['pct_matmul_peak']:.0f} % | {r['peak_rss_mb']:.0f} | {ratio(r, 'fp32', 'peak_rss_mb')} | "
                     f"{compile_s} | {load} |")
    return "\n".join(lines)


def point(row, dtype):
    """What makes two rows comparable across implementations."""
    return row["model"], row["task"], dtype, row["batch_size"], row["image_size"]


def sweep_points(args):
    """(task, batch size, image size) of every measurement: one point, or the sweep's two axes."""
    if not args.sweep:
        return [(task, args.batch_size, args.image_size) for task in args.tasks]
    points = {("inference", batch, args.image_size) for batch in args.sweep_batches}
    points |= {("inference", args.batch_size, size) for size in args.sweep_sizes}
    points |= {("training", args.batch_size, size) for size in args.sweep_train_sizes}
    return sorted(p for p in points if p[0] in args.tasks)


def bf16_instructions():
    """Whether this CPU multiplies bf16 in hardware, as the kernels decide it."""
    sys.path.insert(0, ROOT)  # the checkout's package, as the workers get it
    from mindcv.kernels import has_bf16_instructions

    return has_bf16_instructions()


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["svt_small", "pcpvt_small"], choices=sorted(TIMM_NAMES))
    parser.add_argument("--tasks", nargs="+", default=["inference", "training"], choices=["inference", "training"])
    parser.add_argument("--impls", nargs="+", default=["timm", "ours-graph", "ours-pynative"],
                        choices=["timm", "ours-graph", "ours-pynative", "ours-pynative-loop"],
                        help="ours-pynative trains with train.py --mode 1's step, ours-pynative-loop with a plain "
                             "value_and_grad loop (its inference is ours-pynative's)")
    parser.add_argument("--batch-size", type=at_least(1), default=8)
    parser.add_argument("--image-size", type=at_least(MIN_IMAGE_SIZE), default=224)
    parser.add_argument("--threads", type=at_least(1), default=os.cpu_count(), help="CPU threads for both frameworks")
    parser.add_argument("--dtypes", nargs="+", default=["fp32"], choices=DTYPES,
                        help="precisions, each for both frameworks (bf16: timm autocast, ours precision='bf16')")
    parser.add_argument("--drop-path-rate", type=float, default=None,
                        help="stochastic depth of both frameworks' models (default: the recipe's)")
    parser.add_argument("--warmup", type=at_least(0), default=2)
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per run")
    parser.add_argument("--rounds", type=at_least(1), default=2, help="runs of every measurement, interleaved")
    parser.add_argument("--max-other-load", type=float, default=0.15,
                        help="cores that other processes may use during a run before it counts as contended")
    parser.add_argument("--json", default="bench_models.json", help="where to write the results")
    parser.add_argument("--sweep", action="store_true",
                        help="measure along batch size and image size instead of at one point")
    parser.add_argument("--sweep-batches", nargs="+", type=at_least(1), default=[1, 8, 32],
                        help="inference batch sizes of --sweep (at --image-size)")
    parser.add_argument("--sweep-sizes", nargs="+", type=at_least(MIN_IMAGE_SIZE), default=[224, 384, 512],
                        help="inference image sizes of --sweep (at --batch-size)")
    parser.add_argument("--sweep-train-sizes", nargs="+", type=at_least(MIN_IMAGE_SIZE), default=[224, 384],
                        help="training image sizes of --sweep (at --batch-size)")
    parser.add_argument("--plot", help="PNG of the sweep's throughput and memory (default with --sweep: "
                                       "bench_models_sweep.png)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.repeats < 5:
        parser.error(f"--repeats {args.repeats}: at least 5 timed repeats are needed for a median and spread")
    if "bf16" in args.dtypes and not bf16_instructions():
        parser.error("--dtypes bf16: this CPU has no bf16 instructions (avx512_bf16, amx_bf16); PyTorch emulates "
                     "bf16 matmuls there (about 1 GFLOP/s) and ours runs fp32. Measure fp32 only.")
    if args.plot and not args.sweep:
        parser.error(f"--plot {args.plot}: plots are drawn from a sweep; add --sweep")
    if args.sweep and not args.plot:
        args.plot = "bench_models_sweep.png"
    return args


def turn_groups(specs):
    """Indices of the specs of each point (model, task, batch size, image size): the measurements that take
    turns."""
    groups = {}
    for index, spec in enumerate(specs):
        groups.setdefault((spec["model"], spec["task"], spec["batch_size"], spec["image_size"]), []).append(index)
    return list(groups.values())


def record(spec, index, result, results, failures):
    """A measurement's result added to its earlier rounds' (or to the failures), and its rate printed."""
    name = (f"{spec['model']} {spec['task']} {spec['impl']} {spec['dtype']} batch {spec['batch_size']} "
            f"{spec['image_size']}px")
    if "error" in result:
        failures.append({"index": index, **{k: spec[k] for k in MEASUREMENT_KEYS}, **result})
        print(f"  {name}: FAILED {result['error']}", file=sys.stderr)
        return
    results[index] = merge_rounds(results.get(index), result)
    print(f"  {name}: {spec['batch_size'] / statistics.median(result['times_s']):.2f} img/s",
          file=sys.stderr, flush=True)


def main():
    args = parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    common = dict(batch_size=args.batch_size, image_size=args.image_size, threads=args.threads,
                  drop_path_rate=args.drop_path_rate, warmup=args.warmup, repeats=args.repeats)
    points = sweep_points(args)
    machine = run_isolated(dict(common, impl="machine", models=args.models, dtypes=args.dtypes,
                                image_sizes=sorted({size for _, _, size in points})))
    peaks, flops = machine["peak_gflops"], machine["forward_flops_per_image"]
    ours = run_isolated(dict(common, impl="mindspore-matmul"))
    peaks["measured"].update({f"mindspore_{dtype}": gflops for dtype, gflops in ours.items()})
    measured = peaks["measured"]
    # The machine's peak is what the faster framework's matmul reaches.
    for dtype in ("float32", "bfloat16"):
        peaks[dtype] = max(measured.get(f"torch_{dtype}", 0), measured.get(f"mindspore_{dtype}", 0))
    bf16 = (f"; bf16 ours {measured.get('mindspore_bfloat16', 0):.0f}, torch {measured['torch_bfloat16']:.0f}"
            if "bf16" in args.dtypes else "")
    print(f"{cpu_model()}, {os.cpu_count()} CPUs, {args.threads} threads; "
          f"{MATMUL_SIZE}x{MATMUL_SIZE} matmul GFLOP/s: fp32 MindSpore {measured['mindspore_float32']:.0f}, torch "
          f"{measured['torch_float32']:.0f}{bf16}; {' and '.join(args.dtypes)}", flush=True)
    specs = [dict(common, model=model, task=task, batch_size=batch, image_size=size, impl=impl, dtype=dtype)
             for model in args.models for task, batch, size in points for dtype in args.dtypes for impl in args.impls]
    results, failures = {}, []
    # Rounds start every process afresh: a process's own state (its memory's layout, the cores its threads land
    # on) varies too.
    for _ in range(args.rounds):
        for group in turn_groups(specs):
            indices = [index for index in group if not any(f["index"] == index for f in failures)]
            for index, result in zip(indices, run_in_turns([specs[index] for index in indices])):
                record(specs[index], index, result, results, failures)
    rows = [summarise(specs[index], result, peaks, flops) for index, result in sorted(results.items())]
    table = markdown(rows, args.max_other_load)
    print(table)
    for failure in failures:
        print(f"\n{failure['model']} {failure['task']} {failure['impl']} {failure['dtype']} batch "
              f"{failure['batch_size']} {failure['image_size']}px does not run: {failure['error']}")
    contended = [r for r in rows if r["other_load_cores"] > args.max_other_load]
    with open(args.json, "w") as out:
        json.dump({"valid": not contended, "cpu": cpu_model(), "settings": vars(args) | {"worker": None},
                   "machine": machine, "rows": rows, "failures": failures}, out, indent=1)
    if args.plot:
        from plot_sweep import plot_sweep

        plot_sweep(rows, cpu_model(), args.plot, args.batch_size, args.image_size)
        print(f"\nplot: {args.plot}")
    if failures:
        return 1
    if contended:
        print(f"\nNOT VALID: other processes used more than {args.max_other_load} cores during "
              f"{len(contended)} run(s); rerun on a quiet machine.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
