"""Stopping a run cleanly when a scheduler asks: SIGTERM (Slurm, Kubernetes, ModelArts send it before they kill)
or SIGINT (Ctrl-C). The signal is only noted; the training loop finishes the step in progress, and in a
data-parallel job every rank stops after the same step. A second signal ends the process at once.

The signals are blocked and taken by a thread that waits for them, never by a handler: MindSpore's data
pipeline installs its own SIGTERM handler whenever an iterator starts, and that one ends the process with exit
code 0 and nothing saved. Blocking covers only the threads started after it, so a script calls
``block_stop_signals()`` before it imports MindSpore (train.py does).
"""
import os
import signal
import sys
import threading

from ..foundation.errors import UserError
from .distributed import all_reduce_sum

__all__ = ["STOP_SIGNALS", "StopRequest", "TrainingStopped", "block_stop_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def block_stop_signals():
    """Block SIGTERM and SIGINT in this thread and in every thread started from now on."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


class TrainingStopped(UserError):
    """Training stopped on a signal after saving its state; the exit code is the shell's for that signal."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.exit_code = 128 + signum


class StopRequest:
    """While active (a context manager) and ``armed`` (there is a state to save), SIGTERM and SIGINT from another
    process are noted in ``signum`` instead of ending this one; before it is armed, or sent by this process
    itself, one ends the process at once."""

    def __init__(self):
        self.signum = 0
        self.armed = False

    def __enter__(self):
        if os.environ.get("MS_ROLE") == "MS_SCHED":
            # MindSpore's cluster scheduler runs this script too, with no-op operators and no state of its own: it
            # ends at once, and the ranks save before they notice it is gone.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        else:
            block_stop_signals()
            threading.Thread(target=self._wait, name="stop-signals", daemon=True).start()
        return self

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _wait(self):
        signal_info = signal.sigwaitinfo(STOP_SIGNALS)
        # MindSpore ends its own process with SIGTERM when the cluster is lost; no step can finish then.
        if self.armed and signal_info.si_pid != os.getpid():
            self.signum = signal_info.si_signo
            signal_info = signal.sigwaitinfo(STOP_SIGNALS)  # a second one stops at once, as it would without this
        name = signal.Signals(signal_info.si_signo).name
        print(f"Stopped by {name} with nothing more saved.", file=sys.stderr, flush=True)
        os._exit(128 + signal_info.si_signo)

    def agreed(self, device_num):
        """The signal every rank stops for, or 0 to go on (a collective in a data-parallel job: call it at the
        same point on every rank)."""
        ranks_signalled = all_reduce_sum([self.signum == signum for signum in STOP_SIGNALS], device_num)
        return next((signum for signum, ranks in zip(STOP_SIGNALS, ranks_signalled) if ranks), 0)
