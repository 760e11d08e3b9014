"""The command-line runner: a user's mistake is one line and exit 2; a bug of ours keeps its traceback."""
import pytest

from mindcv.cli import run_cli
from mindcv.foundation.errors import (CheckpointError, ConfigError, InvalidValueError, MissingPathError,
                                      UnknownNameError, UserError)


def _raising(error):
    def main(_args):
        raise error
    return main


USER_ERRORS = [InvalidValueError("lr -1 is out of range"), ConfigError("unknown key 'lerning_rate'"),
               CheckpointError("x.ckpt is not readable"), MissingPathError("no such folder /d"),
               UnknownNameError("model", "svt_smal", ["svt_small"])]


@pytest.mark.parametrize("error", USER_ERRORS)
def test_user_errors_print_one_line_and_exit_2(error, capsys):
    assert run_cli(_raising(error), lambda: None) == 2
    err = capsys.readouterr().err
    assert err == f"error: {error}\n" and "Traceback" not in err


@pytest.mark.parametrize("error", [ValueError("a bug of ours"), KeyError("missing"), FileNotFoundError("/x")])
def test_other_errors_are_not_hidden(error):
    with pytest.raises(type(error)):
        run_cli(_raising(error), lambda: None)


def test_user_errors_are_also_the_builtin_types_builder_callers_catch():
    assert issubclass(InvalidValueError, ValueError) and issubclass(MissingPathError, FileNotFoundError)
    assert issubclass(UnknownNameError, RuntimeError) and issubclass(UnknownNameError, ValueError)
    assert all(issubclass(kind, UserError) for kind in (CheckpointError, ConfigError, UnknownNameError))
