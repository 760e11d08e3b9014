"""Exception types for user mistakes: each names the bad value and what is accepted.

Every "your input is wrong" error derives from ``UserError``; the command lines print those as one line and
exit 2. Anything else is a bug of ours and keeps its traceback. Each type also derives from the built-in
exception that callers of a MindCV-style builder would catch (``ValueError`` for a bad argument value,
``FileNotFoundError`` for a missing path, ``RuntimeError`` where MindCV raises it).
"""
import difflib

__all__ = ["CheckpointError", "CheckpointWriteError", "ConfigError", "DownloadError", "InvalidValueError",
           "LauncherError", "MissingPathError", "NonFiniteLossError", "UnknownNameError", "UnreadablePathError",
           "UserError"]


class UserError(Exception):
    """A mistake in what the user passed: a value, a name, a file, a launch."""


class InvalidValueError(UserError, ValueError):
    """An argument value that is not accepted."""


class UnknownNameError(InvalidValueError, RuntimeError):
    """A name (model, optimizer, dataset, ...) that is not registered.

    Also a RuntimeError, which MindCV raises for unknown models.
    """

    def __init__(self, kind, name, accepted):
        accepted = sorted(accepted)
        close = difflib.get_close_matches(str(name), accepted, n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"Unknown {kind} '{name}'.{hint} Accepted: {', '.join(accepted)}.")
        self.name = name
        self.suggestions = close


class ConfigError(InvalidValueError):
    """A configuration key or value that is not accepted."""


class CheckpointError(InvalidValueError):
    """A checkpoint that cannot be read or does not fit the model."""


class CheckpointWriteError(UserError, OSError):
    """A checkpoint the disk could not take (full, over quota, or failing): the files already there are kept.

    Also an OSError, which a failed write raised before this type existed."""


class MissingPathError(UserError, FileNotFoundError):
    """A file or folder the user named that does not exist or holds nothing usable."""


class DownloadError(UserError, RuntimeError):
    """A download that failed or whose content does not match its checksum."""


class LauncherError(UserError, RuntimeError):
    """Distributed training requested in a process that no launcher started."""


class NonFiniteLossError(UserError, FloatingPointError):
    """Training diverged: the loss is NaN or infinite (a recipe to change, not a bug)."""


class UnreadablePathError(UserError, OSError):
    """A file or folder the user named that exists but cannot be read: no permission, or a symbolic link that
    loops or leads nowhere.

    Also an OSError, which reading it raised before this type existed."""
