"""Training survives SIGTERM and SIGKILL at random moments (the soak test: mid-step, mid-checkpoint-write) and
torn checkpoint files, and stops cleanly on a non-finite loss."""
import json
import os
import shutil

import numpy as np
import pytest

import mindspore as ms

from mindcv.foundation.checkpoint_io import read_checkpoint

from ..helpers import TINY_RUN, compile_cache_env, read_log, run_script, shared_folder

# Stochastic depth and dropout on, as in every shipped recipe: resume must replay their masks too. The state is
# also saved every 2 of an epoch's 6 steps, so a kill inside an epoch resumes inside it.
RUN = TINY_RUN + ["--epoch_size", "3", "--decay_epochs", "2", "--drop_path_rate", "0.2", "--drop_rate", "0.1",
                  "--ckpt_save_steps", "2", "--log_interval", "1"]
LOG_FIELDS = ("epoch", "step", "lr", "train_loss", "val_top1", "val_top5", "val_loss", "skipped_steps")


@pytest.fixture(scope="module")
def run_graphs(tmp_path_factory):
    """The environment for the runs of RUN as it is (resumed or not), which build the same graphs: the
    uninterrupted run compiles them into MindSpore's compile cache, the others load them (and must still end
    bit-identical to it)."""
    with shared_folder(tmp_path_factory, "run_graphs") as folder:
        yield compile_cache_env(folder)


@pytest.fixture(scope="module")
def uninterrupted(shapes_dataset, tmp_path_factory, run_graphs):
    with shared_folder(tmp_path_factory, "uninterrupted") as out:
        run_script("train.py", *RUN, "--data_dir", shapes_dataset, "--ckpt_save_dir", out, timeout=900,
                   env=run_graphs)
        yield out


def _assert_same_run(out, reference):
    assert [[r[f] for f in LOG_FIELDS] for r in read_log(out)] == \
        [[r[f] for f in LOG_FIELDS] for r in read_log(reference)]
    ours = read_checkpoint(str(out / "svt_small-3.ckpt"))
    expected = read_checkpoint(str(reference / "svt_small-3.ckpt"))
    model_state = [k for k in expected if k.startswith(("patch_embeds.", "pos_block.", "blocks.", "norm.", "head"))]
    counters = [k for k in model_state if k.endswith(".random_step")]  # one per dropout and drop-path layer
    assert len(model_state) == 290 + 35 and len(counters) == 35
    assert max(np.abs(ours[k].asnumpy() - expected[k].asnumpy()).max() for k in model_state) == 0.0  # bit-identical


def test_torn_checkpoints_are_skipped_and_reported(uninterrupted, shapes_dataset, tmp_path, run_graphs):
    reference = uninterrupted
    shutil.copy(reference / "svt_small-1.ckpt", tmp_path)
    shutil.copy(reference / "train_log.csv", tmp_path)
    whole = (reference / "svt_small-2.ckpt").read_bytes()
    (tmp_path / "svt_small-2.ckpt").write_bytes(whole[: len(whole) // 3])  # what a non-atomic writer could leave
    (tmp_path / ".tmp-x1y2.ckpt").write_bytes(whole[:1000])  # a write interrupted before its rename
    result = run_script("train.py", *RUN, "--data_dir", shapes_dataset, "--ckpt_save_dir", tmp_path,
                        "--auto_resume", "True", env=run_graphs)
    assert "Skipping" in result.stderr and "svt_small-2.ckpt" in result.stderr
    assert "Resumed from" in result.stderr and "svt_small-1.ckpt: epoch 1 done" in result.stderr
    _assert_same_run(tmp_path, reference)


def test_non_finite_loss_stops_without_a_poisoned_checkpoint(shapes_dataset, tmp_path):
    # No saves inside the epoch: the loss that shows the state non-finite comes a step after the update.
    result = run_script("train.py", *RUN, "--data_dir", shapes_dataset, "--ckpt_save_dir", tmp_path, "--lr", "1e6",
                        "--clip_grad", "False", "--warmup_epochs", "0", "--decay_epochs", "3", "--ckpt_save_steps", "0",
                        check=False)
    assert result.returncode == 2
    assert "error: Loss is nan at epoch 1, step" in result.stderr or "error: Loss is inf at epoch 1" in result.stderr
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".ckpt")]


def test_dynamic_loss_scale_skips_and_counts_overflowing_steps(shapes_dataset, tmp_path):
    run_script("train.py", *RUN, "--data_dir", shapes_dataset, "--ckpt_save_dir", tmp_path, "--epoch_size", "1",
               "--warmup_epochs", "0", "--decay_epochs", "1", "--loss_scale_type", "dynamic", "--loss_scale", "3e38")
    row = read_log(tmp_path)[0]
    assert 0 < int(row["skipped_steps"]) < int(row["step"])
    assert np.isfinite(float(row["train_loss"]))


def _write_mindcv_files(state_file, weights_file, optimizer_file):
    """Split one of our training states into the two files MindCV's train.py writes at an epoch end: its whole
    train network (weights, optimizer and EMA state) and its optimizer alone."""
    state = {k: v for k, v in read_checkpoint(str(state_file)).items()
             if k not in ("epoch", "steps_done", "config", "metric")}
    optimizer_keys = [k for k in state if k in ("global_step", "learning_rate") or k.startswith(("adam_m.", "adam_v."))]
    ms.save_checkpoint([{"name": k, "data": v} for k, v in state.items()], str(weights_file))
    ms.save_checkpoint([{"name": k, "data": state[k]} for k in optimizer_keys], str(optimizer_file))


def test_resumes_from_mindcv_weights_and_optimizer_files(uninterrupted, shapes_dataset, tmp_path, run_graphs):
    weights = tmp_path / "svt_small-2_6.ckpt"  # 36 images at batch 6: 6 steps an epoch
    _write_mindcv_files(uninterrupted / "svt_small-2.ckpt", weights, tmp_path / "optim_svt_small.ckpt")
    out = tmp_path / "resumed"
    result = run_script("train.py", *RUN, "--data_dir", shapes_dataset, "--ckpt_save_dir", out, "--ckpt_path",
                        weights, "--resume_opt", "True", env=run_graphs)
    assert "optim_svt_small.ckpt: epoch 2 done, global step 12" in result.stderr
    assert [[r[f] for f in LOG_FIELDS] for r in read_log(out)] == \
        [[r[f] for f in LOG_FIELDS] for r in read_log(uninterrupted)][2:]
    ours, expected = read_checkpoint(str(out / "svt_small-3.ckpt")), read_checkpoint(
        str(uninterrupted / "svt_small-3.ckpt"))
    assert max(np.abs(ours[k].asnumpy() - expected[k].asnumpy()).max() for k in expected
               if k.startswith(("blocks.", "head.", "adam_m."))) <= 1e-6


def test_mindcv_weights_without_optimizer_file_are_refused(uninterrupted, shapes_dataset, tmp_path):
    weights = tmp_path / "svt_small-2_6.ckpt"
    _write_mindcv_files(uninterrupted / "svt_small-2.ckpt", weights, tmp_path / "elsewhere.ckpt")
    result = run_script("train.py", *RUN, "--data_dir", shapes_dataset, "--ckpt_save_dir", tmp_path / "out",
                        "--ckpt_path", weights, "--resume_opt", "True", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and \
        "optim_svt_small.ckpt is in none of" in result.stderr


def _soak(uninterrupted, shapes_dataset, out, kills, modes=(), env=None):
    result = run_script("tools/fault_soak.py", "--kills", str(kills), *(["--modes", *modes] if modes else []),
                        "--reference", uninterrupted, "--out", out, "--", *RUN, "--data_dir", shapes_dataset,
                        timeout=1200, check=False, env=env)
    print(result.stdout, result.stderr[-3000:])
    soak = json.loads((out / "soak.json").read_text())
    assert result.returncode == 0 and soak["identical"], soak["problems"]
    return soak


def test_fault_soak_kills_three_ways_and_the_run_still_ends_identical(uninterrupted, shapes_dataset, tmp_path,
                                                                      run_graphs):
    """tools/fault_soak.py, short: SIGTERM (save and exit 143), SIGKILL mid-step and SIGKILL mid-checkpoint-write,
    each resumed with --auto_resume; weights, per-epoch rows and every step's loss equal the uninterrupted run.
    Through MindSpore's compile cache, which these kills (none during validation) leave usable."""
    soak = _soak(uninterrupted, shapes_dataset, tmp_path, 3, env=run_graphs)
    assert [r["mode"] for r in soak["records"]] == ["sigterm", "sigkill-step", "sigkill-checkpoint"]
    assert soak["kills"] == 3 and soak["records"][0]["graceful"]
    batch, batches, _ = soak["records"][0]["stopped_after"]
    assert batch < batches  # inside the epoch's steps; the validation modes cover its end


def test_sigterm_in_validation_saves_at_once_and_the_run_still_ends_identical(uninterrupted, shapes_dataset,
                                                                              tmp_path):
    """A scheduler's grace period may be shorter than a validation pass: SIGTERM there saves with every batch of
    the epoch done and exits 143; the resumed run validates that epoch first and ends as the uninterrupted one.
    Without the shared compile cache: MindSpore numbers cached graphs in compile order, and this resumed run
    compiles the evaluation graph first."""
    soak = _soak(uninterrupted, shapes_dataset, tmp_path, 1, modes=["sigterm-validation"])
    (record,) = soak["records"]
    assert record["graceful"]
    batch, batches, _ = record["stopped_after"]
    assert batch == batches  # stopped with every batch of the epoch done, before its end: during validation
