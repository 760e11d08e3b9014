"""One rank of a launched data-parallel test job: runs train.py's ``main``, then records this rank's final
parameters and the training samples each epoch dealt it, for the test to compare across ranks."""
import faulthandler
import json
import os
import signal
import sys

# As train.py does when run as a script (this imports it as a module): before MindSpore starts threads.
signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM, signal.SIGINT))

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import mindspore as ms  # noqa: E402

import train  # noqa: E402
from mindcv.cli import call_with_options, parse_args  # noqa: E402
from mindcv.data import source_of  # noqa: E402
from mindcv.engine import build_dataset  # noqa: E402


def main():
    out = os.environ["DP_TEST_OUT"]
    args = parse_args(sys.argv[1:])
    train_step = train.main(args)
    rank, device_num = (ms.communication.get_rank(), ms.communication.get_group_size()) if args.distribute else (0, 1)
    ms.save_checkpoint(train_step, os.path.join(out, f"rank{rank}.ckpt"))
    train_set = call_with_options(build_dataset, args, args.train_split, rank_id=rank, device_num=device_num)
    sampler = source_of(train_set).sampler
    epochs = []
    for epoch in range(args.epoch_size):
        sampler.epoch = epoch
        epochs.append([int(i) for i in sampler])
    with open(os.path.join(out, f"rank{rank}_samples.json"), "w") as f:
        json.dump(epochs, f)
    # A rank has once died of SIGSEGV in its exit, after writing everything; MindSpore's handler, installed during
    # the run, names no place. This one, installed last, prints every thread's Python stack first, then calls it.
    faulthandler.enable(all_threads=True)


if __name__ == "__main__":
    main()
