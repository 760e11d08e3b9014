"""benchmarks/bench_models.py runs end to end and reports what the README's Performance table and plot show."""
import ctypes
import importlib.util
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from mindcv.kernels import has_bf16_instructions

from ..helpers import ROOT


def _benchmark_module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sweep_measures_both_axes_around_the_fixed_point():
    bench = _benchmark_module("bench_models")
    args = SimpleNamespace(sweep=True, tasks=["inference", "training"], batch_size=8, image_size=224,
                           sweep_batches=[1, 8, 32], sweep_sizes=[224, 384, 512], sweep_train_sizes=[224, 384])
    assert bench.sweep_points(args) == [("inference", 1, 224), ("inference", 8, 224), ("inference", 8, 384),
                                        ("inference", 8, 512), ("inference", 32, 224), ("training", 8, 224),
                                        ("training", 8, 384)]
    args.sweep, args.tasks = False, ["training"]
    assert bench.sweep_points(args) == [("training", 8, 224)]


def test_plot_needs_a_sweep(tmp_path):
    plot = _benchmark_module("plot_sweep")
    rows = [{"model": "svt_small", "task": "inference", "impl": impl, "dtype": "fp32", "batch_size": 8,
             "image_size": 224, "img_per_s": 20.0, "peak_rss_mb": 1000.0} for impl in ("timm", "ours-graph")]
    with pytest.raises(ValueError, match="2 rows at one batch size and image size"):
        plot.plot_sweep(rows, "cpu", str(tmp_path / "p.png"), 8, 224)


def test_bf16_is_refused_on_a_cpu_without_it(monkeypatch, capsys):
    bench = _benchmark_module("bench_models")
    monkeypatch.setattr(bench, "bf16_instructions", lambda: False)
    monkeypatch.setattr(sys, "argv", ["bench_models.py", "--dtypes", "fp32", "bf16"])
    with pytest.raises(SystemExit):
        bench.parse_args()
    assert "--dtypes bf16: this CPU has no bf16 instructions" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["bench_models.py", "--dtypes", "fp32"])
    assert bench.parse_args().dtypes == ["fp32"]


def test_bench_models_sweep_reports_ours_against_timm_and_plots_it(tmp_path):
    out, png = tmp_path / "bench.json", tmp_path / "sweep.png"
    # bf16 where the CPU has it, to keep CI short (fp32 runs the same code with autocast off and precision="fp32");
    # elsewhere PyTorch emulates bf16 matmuls far slower than fp32, and the benchmark refuses it.
    dtype = "bf16" if has_bf16_instructions() else "fp32"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_models.py"), "--models", "svt_small", "--impls",
         "timm", "ours-graph", "--dtypes", dtype, "--batch-size", "2", "--image-size", "64", "--sweep",
         "--sweep-batches", "1", "2", "--sweep-sizes", "64", "--sweep-train-sizes", "64", "--warmup", "1",
         "--repeats", "5", "--max-other-load", "64", "--rounds", "1", "--json", str(out), "--plot", str(png)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| svt_small")]
    assert [[cell.strip() for cell in line.split("|")[2:6]] for line in table] == [
        [task, f"{impl} {dtype}", batch, "64"] for task, batch in (("inference", "1"), ("inference", "2"),
                                                                   ("training", "2"))
        for impl in ("timm", "ours-graph")]
    ratio_column = {"fp32": 8, "bf16": 9}[dtype]  # ratio vs timm in the same precision
    assert all(line.split("|")[ratio_column].strip().endswith("×") for line in table)  # each row has its timm point
    report = json.loads(out.read_text())
    assert report["valid"] and report["machine"]["peak_gflops"]["float32"] > 0
    for row in report["rows"]:
        assert len(row["times_s"]) == 5 and row["img_per_s"] > 0 and row["peak_rss_mb"] > 100
        assert 0 < row["pct_matmul_peak"] < 100
    ours = [row for row in report["rows"] if row["impl"] == "ours-graph"]
    assert {row["ran_as"] for row in ours} == {dtype}
    assert all(row["compile_s"] > 0 for row in ours)
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > image.height > 300


class FakeWorker:
    """A measurement process that answers at once: spec "fails" says where it ends ("ready", "step" or "stop")."""
    steps = []

    def __init__(self, spec):
        self.spec = spec

    def reply(self):
        if self.spec.get("fails") == "ready":
            raise FakeWorker.failed("no such model")
        return {"ready": True}

    def ask(self, command):
        if self.spec.get("fails") == command:
            raise FakeWorker.failed(f"killed at {command}")
        if command == "stop":
            return {"first_call_s": 3.0, "precision": "fp32", "peak_rss_mb": 100.0}
        FakeWorker.steps.append(self.spec["name"])
        return {"time_s": 0.5, "other_cpu_s": 0.05}

    def close(self):
        pass


def test_measurements_take_turns_step_by_step_the_first_rotating(monkeypatch):
    bench = _benchmark_module("bench_models")
    FakeWorker.failed, FakeWorker.steps = bench.WorkerFailed, []
    monkeypatch.setattr(bench, "Worker", FakeWorker)
    specs = [{"name": name, "repeats": 3, **extra} for name, extra in
             (("timm", {}), ("broken", {"fails": "ready"}), ("ours", {}), ("dies", {"fails": "step"}),
              ("ends", {"fails": "stop"}))]
    results = bench.run_in_turns(specs)
    assert FakeWorker.steps == ["timm", "ours", "ends", "ours", "ends", "timm", "ends", "timm", "ours"]
    assert results[1] == {"error": "no such model"} and results[3] == {"error": "killed at step"}
    assert results[4] == {"error": "killed at stop"}
    for result in (results[0], results[2]):
        assert result["times_s"] == [0.5] * 3 and result["first_call_s"] == 3.0 and result["peak_rss_mb"] == 100.0
        assert result["other_load_cores"] == pytest.approx(0.1)


@pytest.mark.parametrize("transa,transb", [(False, True), (False, False), (True, False)])
def test_bench_sgemm_calls_each_blas_with_the_layout_it_times(monkeypatch, transa, transb):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    bench = _benchmark_module("bench_sgemm")
    shape = ("small", transa, transb, 96, 40, 72)
    for gemm in (bench.onednn_gemm(), bench.openblas_gemm()):
        assert bench.gflops(gemm, shape, repeats=1) > 0  # gflops() raises unless the product is numpy's

    def b_flipped(transa, transb, *args):
        return bench.onednn_gemm()(transa, not transb, *args)
    with pytest.raises(AssertionError, match="differs from numpy's"):
        bench.gflops(b_flipped, ("square", transa, transb, 64, 64, 64), repeats=1)


def test_fma_peak_loop_runs_every_multiply_add(monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    seconds, lanes = _benchmark_module("bench_sgemm").fma_loop()
    assert lanes in (4, 8, 16)
    for iterations in (1000, 1001):
        last = ctypes.c_float()
        assert seconds(iterations, ctypes.byref(last)) > 0
        expected = np.float32(1.0)
        for _ in range(iterations):  # one rounding per step, as a fused multiply-add rounds
            expected = np.float32(float(expected) * float(np.float32(0.999999)) + float(np.float32(1e-7)))
        assert abs(last.value - expected) < 1e-7  # a step is ~9e-7: every iteration ran


@pytest.mark.parametrize("script, argv, named", [
    ("bench_sgemm", ["--mkl", "/nonexistent/libmkl_rt.so.3"], ["--mkl", "/nonexistent/libmkl_rt.so.3"]),
    ("bench_sgemm", ["--repeats", "0"], ["--repeats", "'0'", "at least 1"]),
    ("bench_models", ["--rounds", "0"], ["--rounds", "'0'", "at least 1"]),
    ("bench_models", ["--sweep", "--sweep-sizes", "224", "16"], ["--sweep-sizes", "'16'", "at least 32"]),
    ("bench_models", ["--batch-size", "eight"], ["--batch-size", "'eight'", "whole number"]),
    ("bench_data", ["--workers", "0"], ["--workers", "'0'", "at least 1"]),
    ("bench_sink", ["--steps", "-2"], ["--steps", "'-2'", "at least 1"]),
    ("bench_sink", ["--model", "svt_tiny"], ["--model", "'svt_tiny'", "svt_small"]),
    ("bench_preemption", ["--at-batch", "0"], ["--at-batch", "'0'", "at least 1"]),
])
def test_benchmarks_refuse_bad_options_in_one_line(monkeypatch, capsys, script, argv, named):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    bench = _benchmark_module(script)
    monkeypatch.setattr(sys, "argv", [f"{script}.py", *argv])
    with pytest.raises(SystemExit) as exited:
        bench.main()  # argparse and the checks after it exit before anything is measured
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert exited.value.code == 2 and all(piece in error for piece in named)


def test_bench_sgemm_names_a_compiler_that_does_not_build_the_peak_loop(monkeypatch, capsys):
    monkeypatch.syspath_prepend(os.path.join(ROOT, "benchmarks"))
    bench = _benchmark_module("bench_sgemm")
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setattr(sys, "argv", ["bench_sgemm.py"])
    with pytest.raises(SystemExit) as exited:
        bench.main()
    assert exited.value.code == 2 and "/nonexistent/c++" in capsys.readouterr().err.strip().splitlines()[-1]


def test_bench_gemm_share_splits_both_frameworks_into_products_and_the_rest(tmp_path):
    out = tmp_path / "share.json"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_gemm_share.py"), "--models", "svt_small", "--tasks",
         "inference", "--batch-size", "1", "--image-size", "64", "--steps", "2", "--rounds", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(out.read_text())["rows"]
    for split in (row["timm"], row["ours"]):
        # Both profilers saw products (the cell names and aten operators matched) and something else.
        assert 0 < split["products_ms"] < split["step_ms"]
    assert row["ceiling"] == pytest.approx(row["timm"]["step_ms"] / row["timm"]["products_ms"])
    assert row["rest_allowed_ms"] == pytest.approx(row["timm"]["step_ms"] / 1.5 - row["timm"]["products_ms"])
    assert [line.split("|")[1:3] for line in result.stdout.splitlines() if line.startswith("| svt_small")] == [
        [" svt_small ", " inference "]]
