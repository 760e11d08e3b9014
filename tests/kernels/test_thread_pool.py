"""The kernels' thread pool: started once, asleep between calls (after polling for the next one for 100 us), safe
when several threads call kernels at once, and giving every row the same result wherever it falls in the work
split."""
import ctypes
import os
import signal
import threading
import time

import numpy as np
import pytest

from mindcv import kernels

from .aot import call_kernel, layer_norm_backward

CPUS = len(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def library():
    return ctypes.CDLL(kernels.library_path())


def inputs(seed):
    """x and dy large enough (64 channels) for every CPU to get a chunk of LayerNorm work."""
    rng = np.random.default_rng(seed)
    shape = (CPUS * 8192, 64)
    return rng.standard_normal(shape, dtype=np.float32) * 3 + 1, rng.standard_normal(shape, dtype=np.float32)


def pool_threads():
    """{thread id: CPU seconds so far} of this process's kernel pool workers, which name themselves."""
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as comm, open(f"/proc/self/task/{tid}/stat") as stat:
                name, fields = comm.read().strip(), stat.read().rpartition(")")[2].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        if name == "mindcv-kernels":
            found[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return found


def test_calls_reuse_one_pool_of_workers_that_sleep_between_calls(library):
    x, dy = inputs(0)
    layer_norm_backward(library, x, dy)
    started, threads = pool_threads(), len(os.listdir("/proc/self/task"))
    assert len(started) == CPUS - 1, "one worker per CPU of the affinity mask, besides the calling thread"
    for _ in range(100):
        layer_norm_backward(library, x, dy)
    worked = pool_threads()
    assert worked.keys() == started.keys() and len(os.listdir("/proc/self/task")) <= threads, "threads per call"
    if started:
        assert sum(worked.values()) > sum(started.values()), "the workers took no share of the work"
    time.sleep(0.5)
    assert sum(pool_threads().values()) - sum(worked.values()) < 0.05, "idle workers spin instead of sleeping"


def sum_of_squares(library, x, dy):
    total = np.empty(1, np.float32)
    assert call_kernel(library, "SumOfSquares", [x, dy, total]) == 0
    return [total]


@pytest.mark.parametrize("other_kernel", [layer_norm_backward, sum_of_squares])
def test_two_threads_calling_kernels_at_once_get_the_single_threaded_results(library, other_kernel):
    jobs = [(layer_norm_backward, *inputs(1)), (other_kernel, *inputs(2))]
    expected = [kernel(library, x, dy) for kernel, x, dy in jobs]
    mismatches = []

    def call_repeatedly(kernel, x, dy, want):
        for _ in range(100):
            if not all(np.array_equal(got, w) for got, w in zip(kernel(library, x, dy), want)):
                mismatches.append(kernel.__name__)

    threads = [threading.Thread(target=call_repeatedly, args=(*job, want), daemon=True)
               for job, want in zip(jobs, expected)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "deadlock"
    assert not mismatches


def test_a_row_gets_the_same_bits_wherever_it_falls_in_the_work_split(library):
    """With -ffast-math, a body compiled twice (inlined for the caller's chunk, out of line for the others) rounds
    differently: a row's LayerNorm gradient then depended on the batch it was in."""
    x, dy = inputs(3)
    whole = layer_norm_backward(library, x, dy)[0]
    for start in range(0, len(x), len(x) // (2 * CPUS)):
        rows = slice(start, start + 8)
        alone = layer_norm_backward(library, x[rows].copy(), dy[rows].copy())[0]
        assert np.array_equal(whole[rows], alone), f"rows {start}.."


def test_a_forked_child_runs_the_kernels_without_the_parents_workers(library):
    x, dy = inputs(4)
    expected = layer_norm_backward(library, x, dy)
    child = os.fork()
    if child == 0:
        status = 1
        try:
            status = 0 if all(np.array_equal(got, want)
                              for got, want in zip(layer_norm_backward(library, x, dy), expected)) else 1
        finally:
            os._exit(status)
    deadline = time.monotonic() + 60
    while (ended := os.waitpid(child, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            pytest.fail("the forked child hung waiting for workers it does not have")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(ended[1]) == 0, "the forked child computed different results"
