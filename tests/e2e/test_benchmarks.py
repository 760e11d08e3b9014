"""benchmarks/bench_models.py runs end to end and reports what the README's Performance table shows."""
import json
import os
import subprocess
import sys

from ..helpers import ROOT


def test_bench_models_reports_ours_against_timm(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "bench_models.py"), "--models", "svt_small", "--impls",
         "timm", "ours-graph", "--dtypes", "bf16", "--batch-size", "2", "--image-size", "64", "--warmup", "1",
         "--repeats", "5", "--max-other-load", "64", "--rounds", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    table = [line for line in result.stdout.splitlines() if line.startswith("| svt_small")]
    # bf16 only, to keep CI short: fp32 runs the same code with autocast off and precision="fp32".
    assert [line.split("|")[2:4] for line in table] == [
        [" inference ", " timm bf16 "], [" inference ", " ours-graph bf16 "], [" training ", " timm bf16 "],
        [" training ", " ours-graph bf16 "]]
    report = json.loads(out.read_text())
    assert report["valid"] and report["machine"]["peak_gflops"]["float32"] > 0
    for row in report["rows"]:
        assert len(row["times_s"]) == 5 and row["img_per_s"] > 0 and row["peak_rss_mb"] > 100
        assert 0 < row["pct_matmul_peak"] < 100
    ours = [row for row in report["rows"] if row["impl"] == "ours-graph"]
    assert all(row["compile_s"] > 0 for row in ours)
