"""Run a command-line entry point: a user's mistake becomes one line on stderr and a non-zero exit."""
import sys
import traceback

from .checkpoint import CheckpointError
from .config import ConfigError
from .distributed import LauncherError
from .errors import DownloadError, UnknownNameError

__all__ = ["USER_ERRORS", "run_cli"]

USER_ERRORS = (ConfigError, UnknownNameError, CheckpointError, DownloadError, LauncherError, FileNotFoundError,
               NotADirectoryError, PermissionError, FloatingPointError, ValueError)


def run_cli(main, parse_args):
    """``main(parse_args())``; errors in USER_ERRORS print ``error: ...`` (the traceback only with --debug)."""
    debug = "--debug" in sys.argv and "False" not in sys.argv[sys.argv.index("--debug") + 1:][:1]
    try:
        main(parse_args())
    except USER_ERRORS as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
