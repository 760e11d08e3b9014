"""The multi-node launch forms on one machine: msrun as two nodes, and mpirun with a hostfile. Each must train
exactly as the 2-rank job of test_data_parallel (whose checks run here again on these jobs), and SIGTERM must stop
every rank.

msrun decides that it runs on the master node, and so starts the scheduler, when --master_addr is one of this
host's addresses (MindSpore 2.10, parallel/cluster/process_entity/_api.py: ``is_master = _is_local_ip(...)``). With
127.0.0.1 on both nodes, node 1 also starts a scheduler; it fails on the port that node 0's holds, and node 1's
msrun exits 1 although its rank trained. A second host would not start one. So node 1 names the master by 0.0.0.0:
not an address of this host for msrun, but a TCP connection to it reaches node 0's scheduler on 127.0.0.1.

mpirun reads the hostfile and places the scheduler and both ranks on its one host; the workers reach the scheduler
at the first host's address, and mpirun runs with only the variables it passes on with -x, as ranks on other hosts
get only those. mpirun starts its local processes itself: a remote host's ssh launch is not exercised.
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from ..helpers import ROOT
from .launch import (_RANK_ENV, CACHE_ENV, JOB_TIMEOUT, _env, _first_step_logged, _free_port, _job_args, _mpirun,
                     _msrun, _processes_mentioning, _worker_pids)
# The 2-rank job's checks, collected here again and run on this module's two_ranks (the multi-node jobs).
from .test_data_parallel import (test_both_ranks_end_with_identical_parameters,  # noqa: F401
                                 test_only_rank_zero_writes_checkpoints_and_logs,
                                 test_shards_are_disjoint_and_complete_every_epoch,
                                 test_two_ranks_match_one_process_with_the_global_batch)

FORMS = ("msrun_two_nodes", "mpirun_hostfile")
NODE_MASTER_ADDR = ("127.0.0.1", "0.0.0.0")  # see the module docstring for node 1's
# For jobs that must still be training well after they are signalled. Being longer, they compile graphs of their
# own (the schedule's length is a parameter's shape), so they share a compile cache of their own. They validate
# only at the end: the signal, which mpirun passes on 10 s late, must find the ranks training on any CPU, not
# compiling the evaluation graph, which no stop request can cut short (a stop during validation is tested in
# tests/e2e/test_faults.py).
LONG_RUN = ["--epoch_size", "50", "--decay_epochs", "49", "--val_interval", "50"]


def _start(form, out, compile_cache, extra=()):
    """The job's launcher processes (one mpirun, or one msrun per node), each in its own session as on its own
    host, writing to out/launcher<i>.log; ``compile_cache``: MindSpore's compiled-graph cache folder."""
    args, port, env = _job_args(out, extra), _free_port(), _env(out, compile_cache)
    if form == "mpirun_hostfile":
        (out / "hostfile").write_text("localhost slots=2\n")
        commands = [(_mpirun(out, args, port, hostfile=out / "hostfile", export=CACHE_ENV),
                     {name: env[name] for name in (*_RANK_ENV, *CACHE_ENV)})]
    else:
        commands = [(_msrun(out, args, port, node_rank=rank, master_addr=addr), env)
                    for rank, addr in enumerate(NODE_MASTER_ADDR)]
    launchers = []
    for i, (command, command_env) in enumerate(commands):
        with open(out / f"launcher{i}.log", "w") as log:
            launchers.append(subprocess.Popen(command, cwd=ROOT, env=command_env, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
    return launchers


def _logs(out):
    return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(out.glob("launcher*.log")))


def _kill_all(launchers, marker):
    for launcher in launchers:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    for pid, _ in _processes_mentioning(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _train(workspace, form, compile_cache):
    out = workspace / form
    out.mkdir()
    start = time.time()
    launchers = _start(form, out, compile_cache)
    try:
        codes = [launcher.wait(timeout=JOB_TIMEOUT) for launcher in launchers]
    finally:
        _kill_all(launchers, os.path.join(out, ""))
    assert codes == [0] * len(launchers), _logs(out)
    print(f"{form}: {time.time() - start:.1f} s")
    return out


@pytest.fixture(scope="module")
def msrun_two_nodes(workspace, compile_cache):
    out = _train(workspace, "msrun_two_nodes", compile_cache)
    yield out
    shutil.rmtree(out)


@pytest.fixture(scope="module")
def mpirun_hostfile(workspace, compile_cache):
    out = _train(workspace, "mpirun_hostfile", compile_cache)
    yield out
    shutil.rmtree(out)


@pytest.fixture(scope="module")
def long_run_cache(workspace):
    return workspace / "graphs_long_run"


@pytest.fixture(scope="module", params=FORMS)
def two_ranks(request):
    return request.getfixturevalue(request.param)


def test_msrun_starts_the_scheduler_on_node_0_only_and_one_rank_per_node(msrun_two_nodes):
    assert sorted(os.listdir(msrun_two_nodes / "node0_log")) == ["scheduler.log", "worker_0.log"]
    assert os.listdir(msrun_two_nodes / "node1_log") == ["worker_1.log"]


def _sigterm(job_root, form, send, compile_cache, to_ranks=False, extra=()):
    """SIGTERM the running job (its launchers, or with ``to_ranks`` the processes they started) once every rank
    trains; returns the job's folder once every rank is gone, at most 60 s after the signal."""
    out = job_root / f"{form}_sigterm{'_to_ranks' if to_ranks else ''}"
    out.mkdir()
    marker = os.path.join(out, "")
    launchers = _start(form, out, compile_cache, extra)
    try:
        assert _first_step_logged(out, launchers), _logs(out)
        for pid in _worker_pids(marker) if to_ranks else [launcher.pid for launcher in launchers]:
            send(pid, signal.SIGTERM)
        sent = time.time()
        codes = [launcher.wait(timeout=max(sent + 60 - time.time(), 0)) for launcher in launchers]
        while (left := list(_processes_mentioning(marker))) and time.time() < sent + 60:
            time.sleep(0.5)
        print(f"{form}: launchers exited {codes}, every rank gone {time.time() - sent:.1f} s after SIGTERM")
        assert not left, f"still running 60 s after SIGTERM: {[args[:3] for _, args in left]}"
        assert all(code != 0 for code in codes)
        return out
    except subprocess.TimeoutExpired:
        pytest.fail(f"{form}: a launcher still running 60 s after SIGTERM\n{_logs(out)}")
    finally:
        _kill_all(launchers, marker)


def _assert_saved_once_at_one_step(out):
    # msrun's ranks write to node*_log/worker_*.log (msrun copies them to its own), mpirun's to mpirun's.
    rank_logs = sorted(out.glob("node*_log/worker_*.log")) or sorted(out.glob("launcher*.log"))
    stops = re.findall(r"TrainingStopped: (Stopped by SIGTERM after batch \d+ of \d+ in epoch \d+, step \d+)",
                       "\n".join(path.read_text() for path in rank_logs))
    assert len(stops) == 2 and len(set(stops)) == 1, f"the ranks stopped at {stops or 'no step'}\n{_logs(out)}"
    batch = int(re.search(r"after batch (\d+)", stops[0]).group(1))
    # Stopped between epochs, the epoch's checkpoint is the state.
    expected = ["svt_small-partial.ckpt"] if batch else []
    assert sorted(p.name for p in (out / "ckpt").glob("*partial*")) == expected


def test_sigterm_to_mpirun_saves_once_and_stops_every_rank_within_60_s(job_root, long_run_cache):
    # mpirun passes SIGTERM on KILL_GRACE_S later, and SIGKILL as much later again. MindSpore's scheduler ends at
    # once; the ranks save before they notice it is gone, training on meanwhile.
    _assert_saved_once_at_one_step(_sigterm(job_root, "mpirun_hostfile", os.kill, long_run_cache, extra=LONG_RUN))


def test_sigterm_to_the_processes_under_msrun_saves_once_and_stops_every_rank_within_60_s(job_root, compile_cache):
    # As Slurm does at a time limit or preemption: the signal goes to every process of the job but msrun: the ranks
    # and MindSpore's scheduler, which ends at once (the ranks save before they notice it is gone). msrun (MindSpore
    # 2.10) forwards no signal: it handles only SIGINT (with SIGKILL to its workers) and dies of SIGTERM.
    _assert_saved_once_at_one_step(_sigterm(job_root, "msrun_two_nodes", os.kill, compile_cache, to_ranks=True))


def test_sigterm_to_each_msrun_process_group_stops_every_rank_within_60_s(job_root, long_run_cache):
    # Signalled as a group, as a shell's job control or a service manager does, the scheduler dies with msrun, and
    # each rank (in a session of its own, so not signalled) ends itself when it loses the scheduler: nothing saved.
    _sigterm(job_root, "msrun_two_nodes", os.killpg, long_run_cache, extra=LONG_RUN)
