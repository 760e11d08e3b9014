"""MindCV users' command lines: bare boolean flags, num_classes from the data, freezing, log lines, auto loss
scale, validate.py's eval options and infer.py --image_path, through the real scripts."""
import json
import re

import numpy as np
import pytest

from mindcv.cli import parse_args
from mindcv.engine import create_loss_scale
from mindcv.foundation.checkpoint_io import read_checkpoint

from ..helpers import TINY_RUN, read_log, run_script, shared_folder


def _without(options, name):
    i = options.index(name)
    return options[:i] + options[i + 2:]


# MindCV's docs write its boolean options bare; num_classes is left to the dataset (3 classes).
MINDCV_STYLE_RUN = [a for a in _without(_without(TINY_RUN, "--num_classes"), "--val_while_train")] + [
    "--val_while_train", "--log_interval", "2", "--freeze_stages", "1", "--loss_scale_type", "auto",
    "--dataset_sink_mode"]


@pytest.fixture(scope="module")
def mindcv_style_run(shapes_dataset, tmp_path_factory):
    with shared_folder(tmp_path_factory, "mindcv_style") as out:
        result = run_script("train.py", *MINDCV_STYLE_RUN, "--data_dir", shapes_dataset, "--ckpt_save_dir", out)
        (out / "stderr.txt").write_text(result.stderr)
        yield out


def test_bare_flags_mean_true_and_values_still_work():
    args = parse_args(["--distribute", "--pretrained", "--ema", "False", "--val_while_train", "--clip_grad", "True"])
    assert (args.distribute, args.pretrained, args.ema, args.val_while_train, args.clip_grad) == (
        True, True, False, True, True)


def test_training_reads_num_classes_from_the_data_and_logs_every_interval(mindcv_style_run):
    params = read_checkpoint(str(mindcv_style_run / "svt_small-2.ckpt"))
    assert params["head.weight"].shape == (3, 512)
    assert [r["val_top1"] != "" for r in read_log(mindcv_style_run)] == [True, True]  # bare --val_while_train
    steps = re.findall(r"epoch (\d) step (\d)/6: loss [\d.]+, lr [\d.e-]+, [\d.]+ img/s",
                       (mindcv_style_run / "train.log").read_text())
    assert steps == [(e, s) for e in "12" for s in "246"]
    # stderr was a pipe, as under a batch system: log lines with an ETA instead of a progress bar
    stderr = (mindcv_style_run / "stderr.txt").read_text()
    assert "\r" not in stderr and "it/s" not in stderr
    assert len(re.findall(r"epoch \d step \d/6: .* img/s, epoch ETA \d+:\d\d", stderr)) == 6
    assert "MindSpore has no data sink on CPU; the epoch runs as a Python loop" in (
        mindcv_style_run / "train.log").read_text()


def test_frozen_stages_do_not_change_and_the_rest_trains(mindcv_style_run):
    first = read_checkpoint(str(mindcv_style_run / "svt_small-1.ckpt"))
    last = read_checkpoint(str(mindcv_style_run / "svt_small-2.ckpt"))
    frozen = [k for k in last if k.startswith(("patch_embeds.0.", "pos_block.0.", "blocks.0."))]
    # At 32 px the last stage is one token: its attention queries get no gradient, its MLPs do.
    trained = [k for k in last if k.startswith(("blocks.3.0.mlp.", "head."))]
    assert frozen and trained
    assert all(np.array_equal(first[k].asnumpy(), last[k].asnumpy()) for k in frozen)
    assert all(not np.array_equal(first[k].asnumpy(), last[k].asnumpy()) for k in trained)
    assert not any(k.startswith("adam_m.") and k[len("adam_m."):] in frozen for k in last)


def test_best_checkpoint_and_resolved_config_are_written_as_mindcv(mindcv_style_run, shapes_dataset):
    best = read_checkpoint(str(mindcv_style_run / "svt_small_best.ckpt"))
    top1 = [float(r["val_top1"]) for r in read_log(mindcv_style_run)]
    best_epoch = top1.index(max(top1)) + 1  # the first epoch reaching the best accuracy
    assert int(best["epoch"].asnumpy()) == best_epoch
    assert float(best["metric"].asnumpy()) == pytest.approx(max(top1), abs=1e-4)
    saved = parse_args(["-c", str(mindcv_style_run / "svt_small.yaml")])
    given = parse_args([*map(str, MINDCV_STYLE_RUN), "--data_dir", str(shapes_dataset),
                        "--ckpt_save_dir", str(mindcv_style_run)])
    assert {k: v for k, v in vars(saved).items() if k != "config"} == {
        k: (3 if k == "num_classes" else v) for k, v in vars(given).items() if k != "config"}


def test_auto_loss_scale_is_what_mindspore_picks_for_the_amp_level():
    assert float(create_loss_scale("auto", 1024.0, "O0").asnumpy()) == 1.0
    dynamic = create_loss_scale("auto", 1024.0, "O2")
    assert dynamic.get_loss_scale() == 2 ** 24 and dynamic.scale_window == 2000 and dynamic.scale_factor == 2


def test_validate_with_mindcv_options(mindcv_style_run, shapes_dataset):
    common = [*_without(TINY_RUN, "--num_classes"), "--data_dir", shapes_dataset,
              "--ckpt_path", mindcv_style_run / "svt_small-2.ckpt"]
    plain = run_script("validate.py", *common)
    shuffled = run_script("validate.py", *common, "--eval_shuffle", "--val_amp_level", "O0")
    accuracy = [re.search(r"Top_1_Accuracy: ([\d.]+)", r.stdout).group(1) for r in (plain, shuffled)]
    assert accuracy[0] == accuracy[1]
    o1 = run_script("validate.py", *common, "--val_amp_level", "O1", check=False)
    assert o1.returncode == 2 and "amp_level O1 is not supported" in o1.stderr


def test_infer_accepts_mindcv_image_path(mindcv_style_run, shapes_dataset):
    image = f"{shapes_dataset}/val/circle/000.png"
    result = run_script("infer.py", "--model", "svt_small", "--ckpt_path", mindcv_style_run / "svt_small-2.ckpt",
                        "--image_size", "32", "32", "--crop_pct", "1.0", "--topk", "2", "--json", "--image_path", image)
    predictions = json.loads(result.stdout)
    assert [p["image"] for p in predictions] == [image]
    assert {p["label"] for p in predictions[0]["top_k"]} <= {"circle", "square", "stripes"}
