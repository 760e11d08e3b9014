"""The command-line helpers live in tests/helpers.py."""
from ..helpers import ROOT, TINY_RUN, read_log, run_script  # noqa: F401
