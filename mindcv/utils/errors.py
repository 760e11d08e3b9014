"""Exception types for user mistakes: each names the bad value and what is accepted."""
import difflib


class UnknownNameError(RuntimeError, ValueError):
    """A name (model, optimizer, dataset, ...) that is not registered.

    Subclasses RuntimeError, which MindCV raises for unknown models, and ValueError, which callers of
    builders expect for a bad argument value.
    """

    def __init__(self, kind, name, accepted):
        accepted = sorted(accepted)
        close = difflib.get_close_matches(str(name), accepted, n=5, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        super().__init__(f"Unknown {kind} '{name}'.{hint} Accepted: {', '.join(accepted)}.")
        self.name = name
        self.suggestions = close


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


class DownloadError(RuntimeError):
    """A download that failed or whose content does not match its checksum."""
