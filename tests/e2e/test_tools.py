"""The demo-data, plotting, recipe-checking and precision tools."""
import json
import os

import pytest

import mindspore as ms

from mindcv.kernels import has_bf16_instructions
from mindcv.models import create_model

from ..helpers import ROOT, TINY_RUN, run_script


def test_digits_imagefolder_has_the_fixed_stratified_split(tmp_path):
    result = run_script("tools/make_digits_imagefolder.py", "--out", tmp_path, "--size", "32")
    assert "Wrote 1438 training and 359 validation images" in result.stdout
    for split, expected in (("train", 1438), ("val", 359)):
        classes = sorted(os.listdir(tmp_path / split))
        assert classes == [str(d) for d in range(10)]
        assert sum(len(os.listdir(tmp_path / split / c)) for c in classes) == expected


def test_plot_log_writes_a_png(tmp_path):
    (tmp_path / "train_log.csv").write_text(
        "epoch,step,lr,train_loss,val_top1,val_top5,val_loss,epoch_time_s,images_per_s,skipped_steps\n"
        "1,10,0.001,2.0,40,90,1.8,3,100,0\n2,20,0.0005,1.5,60,95,1.4,3,100,0\n")
    run_script(os.path.join(ROOT, "tools", "plot_log.py"), tmp_path / "train_log.csv")
    with open(tmp_path / "train_curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_check_mindcv_recipes_counts_what_loads_and_names_what_does_not(tmp_path):
    (tmp_path / "vit").mkdir()
    (tmp_path / "vit" / "good.yaml").write_text("model: vit_b32_224\ndataset_sink_mode: True\ncolor_jitter: [0.4, 0.4, "
                                                "0.4]\ncrop_pct: 1.15\n")
    (tmp_path / "bad.yaml").write_text("model: resnet50\nwarmup_epoch: 3\n")
    result = run_script("tools/check_mindcv_recipes.py", tmp_path, check=False)
    assert result.returncode == 1
    assert result.stdout.splitlines()[0] == "1/2 MindCV recipes load"
    assert "1 x " in result.stdout and "warmup_epoch" in result.stdout


@pytest.mark.skipif(not has_bf16_instructions(), reason="this CPU has no bf16 instructions")
def test_compare_precision_reports_the_agreement_of_bf16_with_fp32(shapes_dataset, tmp_path):
    ms.set_seed(0)
    ms.save_checkpoint(create_model("svt_small", num_classes=3), str(tmp_path / "model.ckpt"))
    result = run_script("tools/compare_precision.py", *TINY_RUN, "--data_dir", shapes_dataset, "--ckpt_path",
                        tmp_path / "model.ckpt", "--json", tmp_path / "precision.json")
    report = json.loads((tmp_path / "precision.json").read_text())
    assert report["images"] == 12 and f"top-1 agrees on {report['top1_agreement']:.2f} %" in result.stdout
    assert 0 < report["max_abs_logit_difference"] < 0.02 * report["max_abs_logit"]


@pytest.mark.parametrize("script, argv, named", [
    ("tools/make_digits_imagefolder.py", ["--size", "8", "--out"], "--size 8"),
    ("tools/resume_startup.py", ["--count", "0", "--dir"], "--count 0"),
    ("tools/fault_soak.py", ["--kills", "0", "--out"], "--kills 0"),
])
def test_tools_refuse_bad_counts_in_one_line(tmp_path, script, argv, named):
    train_args = ["--", "-c", "configs/twins/svt_s_demo_cpu.yaml"] if "soak" in script else []
    result = run_script(script, *argv, tmp_path, *train_args, check=False)
    assert result.returncode == 2 and named in result.stderr.strip().splitlines()[-1]
    assert os.listdir(tmp_path) == []  # refused before writing anything
