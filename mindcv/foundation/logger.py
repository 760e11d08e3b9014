"""Log lines to stderr and a log file."""
import logging
import os
import sys

__all__ = ["setup_logging"]


def setup_logging(log_file=None, level=logging.INFO):
    """Log lines go to stderr and, when given, to ``log_file`` (appended, so a resumed run continues it)."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True)
    logging.captureWarnings(True)  # e.g. the data pipeline's report of skipped corrupt images reaches the log file
