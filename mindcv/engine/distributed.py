"""Device and data-parallel set-up on MindSpore's own collective communication (HCCL, NCCL, MCCL)."""
import os

import numpy as np

import mindspore as ms
from mindspore import ops
from mindspore.communication import get_group_size, get_rank, init

from ..foundation.errors import LauncherError

__all__ = ["all_reduce_mean", "all_reduce_sum", "init_context", "launched_by"]

# Environment variables each supported launcher sets in the processes it starts.
_LAUNCHER_ENV = {
    "msrun / MindSpore dynamic cluster": "MS_ROLE",
    "mpirun (OpenMPI)": "OMPI_COMM_WORLD_SIZE",
    "Ascend rank table": "RANK_TABLE_FILE",
}


def launched_by():
    """The launcher that started this process, or None."""
    return next((name for name, var in _LAUNCHER_ENV.items() if os.environ.get(var)), None)


def init_context(mode=0, device_target="auto", distribute=False, seed=None):
    """Set the execution mode and device, and for ``distribute`` join the job's communication group with a
    data-parallel context (gradient mean). Returns (rank_id, device_num)."""
    ms.set_context(mode=mode)
    if device_target != "auto":
        ms.set_device(device_target)
    if seed is not None:
        ms.set_seed(seed)
    if not distribute:
        return 0, 1
    if launched_by() is None:
        raise LauncherError(
            "--distribute True needs a launcher that starts one process per device, e.g.\n"
            "  msrun --worker_num=8 --local_worker_num=8 --master_port=8118 --log_dir=msrun_log --join=True "
            "train.py -c CONFIG --distribute True\n"
            "  mpirun --allow-run-as-root -n 8 python train.py -c CONFIG --distribute True   (GPU/Ascend)\n"
            "See README 'Distributed training'. For one process, use --distribute False.")
    init()
    rank_id, device_num = get_rank(), get_group_size()
    ms.reset_auto_parallel_context()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=device_num)
    return rank_id, device_num


def all_reduce_mean(values, device_num):
    """Mean over all ranks of a float array (the array itself in a single process)."""
    values = np.asarray(values, np.float32)
    if device_num == 1:
        return values
    return ops.AllReduce()(ms.Tensor(values)).asnumpy() / device_num


def all_reduce_sum(values, device_num):
    """Sum over all ranks of a float array (the array itself in a single process); every rank waits for all."""
    values = np.asarray(values, np.float32)
    if device_num == 1:
        return values
    return ops.AllReduce()(ms.Tensor(values)).asnumpy()  # MindSpore's CPU AllReduce only sums, in floats
