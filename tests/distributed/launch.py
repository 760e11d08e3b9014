"""Launching dp_worker.py as a data-parallel job (msrun, mpirun) and reading back what its ranks leave behind."""
import os
import resource
import shutil
import socket
import subprocess
import sys
import time

import pytest

from mindcv.foundation.checkpoint_io import read_checkpoint

from ..helpers import ROOT, TINY_RUN, compile_cache_env

WORKER = os.path.join(ROOT, "tests", "distributed", "dp_worker.py")
# Deterministic input (full-image crops, no flips/mixing, no dropout), so the 2-rank job and one process with the
# doubled batch see the same global batches and must reach the same weights. Every step is logged, so a test can
# wait for the first one.
DETERMINISTIC = TINY_RUN + ["--scale", "1.0", "1.0", "--ratio", "1.0", "1.0", "--hflip", "0", "--epoch_size", "2",
                            "--batch_size", "3", "--val_while_train", "True", "--clip_grad", "True",
                            "--log_interval", "1"]
JOB_TIMEOUT = 900
MODEL_PREFIXES = ("patch_embeds.", "pos_block.", "blocks.", "norm.", "head.")
# Open MPI 4's mpirun, when told to end a job, sends its processes SIGCONT, then SIGTERM, then SIGKILL, this many
# seconds apart (default 1, too short to save); what scripts/launch_distributed.sh passes.
KILL_GRACE_S = 10
# What a rank needs from the test's environment; mpirun passes these with -x, as it must to other hosts.
_RANK_ENV = ("PATH", "DP_TEST_OUT", "GLOG_v", "PYTHONWARNINGS")
CACHE_ENV = tuple(compile_cache_env(""))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(out="", compile_cache=None):
    """A job's environment; ``compile_cache``: a folder for MindSpore's compiled-graph cache, which jobs with the
    same options share (the first compiles, the others load its graphs: about 30 s of a 55 s job here)."""
    env = dict(os.environ, GLOG_v="3", PYTHONWARNINGS="ignore", DP_TEST_OUT=str(out))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]  # launchers start "python"
    if compile_cache is not None:
        env.update(compile_cache_env(compile_cache))
    return env


def _which(launcher):
    path = shutil.which(launcher, path=_env()["PATH"])
    if path is None:
        pytest.fail(f"{launcher} is not installed (.ci/run installs openmpi-bin; msrun comes with MindSpore).")
    return path


def _msrun(out, args, port, node_rank=None, master_addr="127.0.0.1"):
    """All ranks on this host, or with ``node_rank`` this node's one rank of a 2-node job."""
    if node_rank is None:
        local = ["--local_worker_num=2", f"--log_dir={out}/msrun_log"]
    else:
        local = ["--local_worker_num=1", f"--node_rank={node_rank}", f"--master_addr={master_addr}",
                 f"--log_dir={out}/node{node_rank}_log"]
    return [_which("msrun"), "--worker_num=2", *local, f"--master_port={port}", "--join=True",
            "--cluster_time_out=120", WORKER, *args]


def _mpirun(out, args, port, hostfile=None, export=()):
    """One MindSpore scheduler plus 2 workers (MindSpore's CPU collectives need its own cluster). With ``hostfile``
    mpirun places them on its hosts, the scheduler first, and the workers reach it at the first host's address.
    ``export`` names more variables to pass on."""
    sched_host = "127.0.0.1"
    placement = []
    if hostfile is not None:
        with open(hostfile) as f:
            sched_host = socket.gethostbyname(f.read().split()[0])
        placement = ["--hostfile", str(hostfile)]
    common = [*(a for name in (*_RANK_ENV, *export) for a in ("-x", name)), "-x", f"MS_SCHED_HOST={sched_host}",
              "-x", f"MS_SCHED_PORT={port}", "-x", "MS_WORKER_NUM=2"]
    return [_which("mpirun"), "--allow-run-as-root", "--oversubscribe", "--mca", "odls_base_sigkill_timeout",
            str(KILL_GRACE_S), *placement, "-n", "1", *common,
            "-x", "MS_ROLE=MS_SCHED", sys.executable, WORKER, *args, ":", "-n", "2", *common,
            "-x", "MS_ROLE=MS_WORKER", sys.executable, WORKER, *args]


def _job_args(out, extra=()):
    return [*map(str, DETERMINISTIC), "--data_dir", str(out.parent / "data"), "--ckpt_save_dir", str(out / "ckpt"),
            "--distribute", "True", *extra]


def _launch(launcher, out, compile_cache):
    """The 2-rank job on this host, writing into ``out``, with MindSpore's compile cache in ``compile_cache``. Its
    processes run in ``out`` and may dump core there (see _fault_stacks)."""
    args, port = _job_args(out), _free_port()
    command = _msrun(out, args, port) if launcher == "msrun" else _mpirun(out, args, port, export=CACHE_ENV)
    return subprocess.Popen(command, cwd=out, env=_env(out, compile_cache), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=_allow_core_dumps)


def _allow_core_dumps():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _fault_stacks(out):
    """The native stack of each rank that dumped core in ``out``, by gdb, the core then deleted: a rank has twice
    died of SIGSEGV in its exit after writing everything (mpirun, CI of stops 22 and 46), where Python's
    faulthandler showed no frame. Where the system sends cores elsewhere, says where."""
    cores = sorted(out.glob("core*"))
    if not cores:
        with open("/proc/sys/kernel/core_pattern") as f:
            return f"no core file in {out} (kernel.core_pattern: {f.read().strip()})"
    gdb = shutil.which("gdb")
    stacks = []
    for core in cores:
        if gdb is None:
            stacks.append(f"{core}: gdb is not installed")
        else:
            trace = subprocess.run([gdb, "-batch", "-nx", "-ex", "echo STACK\\n", "-ex", "bt 40", sys.executable,
                                    str(core)], capture_output=True, text=True, timeout=300)
            stacks.append(f"{core}:\n{trace.stdout.partition('STACK')[2].strip()}")
        core.unlink()
    return "\n".join(stacks)


def _first_step_logged(out, launchers):
    """Whether rank 0 logs a training step (after which every rank can save) before a launcher ends or
    JOB_TIMEOUT passes."""
    deadline = time.time() + JOB_TIMEOUT
    while " step 1/" not in _read(out / "ckpt" / "train.log"):
        if time.time() > deadline or any(p.poll() is not None for p in launchers):
            return False
        time.sleep(0.5)
    return True


def _read(path):
    return path.read_text() if path.exists() else ""


def _params(path):
    return {k: v.asnumpy() for k, v in read_checkpoint(str(path)).items() if hasattr(v, "asnumpy")}


def _processes_mentioning(marker):
    """(pid, arguments) of every process whose command line contains ``marker``."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if marker.encode() in b" ".join(args):
            yield int(pid), args


def _worker_pids(marker):
    """The job's processes that run dp_worker.py: its ranks, and MindSpore's scheduler where there is one."""
    return [pid for pid, args in _processes_mentioning(marker)
            if WORKER.encode() in args and not any(arg.endswith(b"msrun") for arg in args[:2])]
