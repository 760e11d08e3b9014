"""Run a command-line entry point: a user's mistake becomes one line on stderr and exit code 2; anything else
is a bug of ours and keeps its traceback."""
import sys
import traceback

from ..foundation.errors import UserError

__all__ = ["run_cli"]


def run_cli(main, parse_args):
    """``main(parse_args())``; a UserError prints ``error: ...`` (the traceback only with --debug) and exits with
    its ``exit_code`` (2 unless it says otherwise)."""
    debug = "--debug" in sys.argv and "False" not in sys.argv[sys.argv.index("--debug") + 1:][:1]
    try:
        main(parse_args())
    except UserError as err:
        if debug:
            traceback.print_exc()
        print(f"error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    return 0
