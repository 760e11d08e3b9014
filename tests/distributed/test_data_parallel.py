"""Data-parallel training with 2 CPU ranks, launched by msrun and by mpirun, against a single process."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import mindspore as ms

from ..helpers import ROOT, TINY_RUN, read_log, run_script

WORKER = os.path.join(ROOT, "tests", "distributed", "dp_worker.py")
# Deterministic input (full-image crops, no flips/mixing, no dropout), so the 2-rank job and one process with the
# doubled batch see the same global batches and must reach the same weights.
DETERMINISTIC = TINY_RUN + ["--scale", "1.0", "1.0", "--ratio", "1.0", "1.0", "--hflip", "0", "--epoch_size", "2",
                            "--batch_size", "3", "--val_while_train", "True", "--clip_grad", "True"]
JOB_TIMEOUT = 900
MODEL_PREFIXES = ("patch_embeds.", "pos_block.", "blocks.", "norm.", "head.")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(out=""):
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore", DP_TEST_OUT=str(out))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]  # launchers start "python"
    return env


def _which(launcher):
    path = shutil.which(launcher, path=_env()["PATH"])
    if path is None:
        pytest.fail(f"{launcher} is not installed (.ci/run installs openmpi-bin; msrun comes with MindSpore).")
    return path


def _msrun(out, args, port):
    return [_which("msrun"), "--worker_num=2", "--local_worker_num=2", f"--master_port={port}", f"--log_dir={out}/msrun_log",
            "--join=True", "--cluster_time_out=120", WORKER, *args]


def _mpirun(out, args, port):
    common = ["-x", "PATH", "-x", "DP_TEST_OUT", "-x", "MS_SCHED_HOST=127.0.0.1", "-x", f"MS_SCHED_PORT={port}",
              "-x", "MS_WORKER_NUM=2", "-x", "GLOG_v"]
    return [_which("mpirun"), "--allow-run-as-root", "--oversubscribe", "-n", "1", *common, "-x", "MS_ROLE=MS_SCHED",
            sys.executable, WORKER, *args, ":", "-n", "2", *common, "-x", "MS_ROLE=MS_WORKER", sys.executable, WORKER,
            *args]


def _launch(launcher, out, extra=()):
    args = [*map(str, DETERMINISTIC), "--data_dir", str(out.parent / "data"), "--ckpt_save_dir", str(out / "ckpt"),
            "--distribute", "True", *extra]
    command = {"msrun": _msrun, "mpirun": _mpirun}[launcher](out, args, _free_port())
    return subprocess.Popen(command, cwd=ROOT, env=_env(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.fixture(scope="module")
def workspace(shapes_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("dp")
    shutil.copytree(shapes_dataset, root / "data")
    return root


@pytest.fixture(scope="module")
def single_process(workspace):
    out = workspace / "single"
    out.mkdir()
    env = _env(out)
    subprocess.run([sys.executable, WORKER, *DETERMINISTIC, "--batch_size", "6", "--data_dir", workspace / "data",
                    "--ckpt_save_dir", out / "ckpt"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=JOB_TIMEOUT)
    return out


@pytest.fixture(scope="module", params=["msrun", "mpirun"])
def two_ranks(request, workspace):
    out = workspace / request.param
    out.mkdir()
    start = time.time()
    job = _launch(request.param, out)
    output, _ = job.communicate(timeout=JOB_TIMEOUT)
    assert job.returncode == 0, output[-5000:]
    print(f"{request.param} 2-rank job: {time.time() - start:.1f} s")
    return out


def _params(path):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if hasattr(v, "asnumpy")}


def test_both_ranks_end_with_identical_parameters(two_ranks):
    rank0, rank1 = _params(two_ranks / "rank0.ckpt"), _params(two_ranks / "rank1.ckpt")
    model_keys = [k for k in rank0 if k.startswith(MODEL_PREFIXES)]
    assert len(model_keys) == 290
    assert all(np.array_equal(rank0[k], rank1[k]) for k in model_keys)
    assert all(np.array_equal(rank0[k], rank1[k]) for k in rank0 if k.startswith("adam_"))


def test_shards_are_disjoint_and_complete_every_epoch(two_ranks):
    samples = [json.load(open(two_ranks / f"rank{r}_samples.json")) for r in (0, 1)]
    for epoch0, epoch1 in zip(*samples):
        assert not set(epoch0) & set(epoch1)
        assert sorted(epoch0 + epoch1) == list(range(36))


def test_only_rank_zero_writes_checkpoints_and_logs(two_ranks):
    assert sorted(os.listdir(two_ranks / "ckpt")) == ["checkpoints.json", "class_names.txt", "svt_small-1.ckpt",
                                                      "svt_small-2.ckpt", "svt_small.yaml", "svt_small_best.ckpt",
                                                      "train.log", "train_log.csv"]
    assert len(read_log(two_ranks / "ckpt")) == 2


def test_two_ranks_match_one_process_with_the_global_batch(two_ranks, single_process):
    # Same global batches, gradient mean over ranks: only the order of fp32 reductions differs, and AdamW's
    # normalised steps carry such 1e-7 differences through 12 updates; 1e-4 on weights of scale ~0.02 to 1
    # still catches any missing or doubled all-reduce (those change weights by ~lr = 5e-4 per step).
    ours, reference = _params(two_ranks / "rank0.ckpt"), _params(single_process / "rank0.ckpt")
    worst = max(np.abs(ours[k] - reference[k]).max() for k in reference if k.startswith(MODEL_PREFIXES))
    assert worst <= 1e-4
    dp_log, single_log = read_log(two_ranks / "ckpt"), read_log(single_process / "ckpt")
    for dp_row, single_row in zip(dp_log, single_log):
        assert float(dp_row["train_loss"]) == pytest.approx(float(single_row["train_loss"]), abs=1e-4)
        assert dp_row["val_top1"] == single_row["val_top1"]


def _worker_pids(marker):
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if WORKER.encode() in args and marker.encode() in b" ".join(args) and b"msrun" not in args[0]:
            pids.append(int(pid))
    return pids


@pytest.mark.parametrize("launcher", ["msrun", "mpirun"])
def test_a_killed_rank_ends_the_job_with_an_error_within_60_s(launcher, workspace):
    out = workspace / f"{launcher}_killed"
    out.mkdir()
    job = _launch(launcher, out, extra=["--epoch_size", "50", "--decay_epochs", "49"])
    deadline = time.time() + JOB_TIMEOUT
    while not (out / "ckpt" / "svt_small-1.ckpt").exists() and time.time() < deadline and job.poll() is None:
        time.sleep(0.5)
    victims = _worker_pids(str(out))
    assert victims, "no worker process found"
    os.kill(victims[-1], signal.SIGKILL)
    killed_at = time.time()
    try:
        job.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(f"{launcher} job still running 60 s after a rank was killed")
    assert job.returncode != 0
    print(f"{launcher}: job ended {time.time() - killed_at:.1f} s after the kill, exit {job.returncode}")
    for pid in _worker_pids(str(out)):
        os.kill(pid, signal.SIGKILL)


def test_distribute_without_launcher_fails_at_once_with_the_command(workspace):
    result = run_script("train.py", *TINY_RUN, "--data_dir", workspace / "data", "--distribute", "True", check=False,
                        timeout=120)
    assert result.returncode == 2
    assert "error: --distribute True needs a launcher" in result.stderr and "msrun --worker_num=8" in result.stderr
