"""Log lines to stderr and a log file."""
import logging
import os
import sys

__all__ = ["set_logger", "setup_logging"]

_FORMAT = "%(asctime)s %(name)s %(levelname)s - %(message)s"
_DATE_FORMAT = "[%Y-%m-%d %H:%M:%S]"
# ANSI colour codes by level: the foundation takes no third-party library (MindCV uses rich or termcolor).
_LEVEL_COLOURS = {logging.DEBUG: "35", logging.INFO: "32", logging.WARNING: "33", logging.ERROR: "31",
                  logging.CRITICAL: "31;4"}
_named_loggers = {}


def setup_logging(log_file=None, level=logging.INFO):
    """Log lines go to stderr and, when given, to ``log_file`` (appended, so a resumed run continues it)."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)  # e.g. the data pipeline's report of skipped corrupt images reaches the log file


class _ColouredLevels(logging.Formatter):
    def format(self, record):
        plain = super().format(record)
        name = logging.getLevelName(record.levelno)
        return plain.replace(name, f"\033[{_LEVEL_COLOURS.get(record.levelno, '0')}m{name}\033[0m", 1)


def set_logger(name=None, output_dir=None, rank=0, log_level=logging.INFO, color=True):
    """MindCV's logger set-up: the logger ``name`` (root when None) prints to stdout on rank 0 and, with
    ``output_dir``, writes ``<output_dir>/rank<rank>.log`` on every rank. It stops propagating to its parents.
    A second call for the same name returns the logger as first set up."""
    if name in _named_loggers:
        return _named_loggers[name]
    rank = rank or 0
    logger = logging.getLogger(name)
    logger.setLevel(log_level)
    logger.propagate = False
    handlers = []
    if rank == 0:
        handlers.append(logging.StreamHandler(sys.stdout))
        handlers[-1].setFormatter((_ColouredLevels if color else logging.Formatter)(_FORMAT, _DATE_FORMAT))
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(output_dir, f"rank{rank}.log")))
        handlers[-1].setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
    for handler in handlers:
        handler.setLevel(log_level)
        logger.addHandler(handler)
    _named_loggers[name] = logger
    return logger
