"""PYNATIVE mode (MindSpore's default) made as fast as GRAPH mode: a cell's ``construct`` compiled as one graph."""
import os

import mindspore as ms

from .errors import InvalidValueError

__all__ = ["JIT_SWITCH", "compile_construct"]

JIT_SWITCH = "MINDCV_JIT"  # 0: what compile_construct wraps runs op by op in PYNATIVE mode (for a debugger)


def compile_construct(cell):
    """Run ``cell``'s ``construct`` as one compiled graph in PYNATIVE mode, and with it the backward of any
    gradient taken through it, as GRAPH mode runs them: op by op a Twins forward, or an AdamW update over its
    parameters, is several times slower. Unless the environment sets MINDCV_JIT=0. In GRAPH mode this changes
    nothing. Returns ``cell``."""
    switch = os.environ.get(JIT_SWITCH, "1")
    if switch not in ("0", "1"):
        raise InvalidValueError(f"{JIT_SWITCH}={switch!r}: use 1 (compiled, the default) or 0 (op by op).")
    if switch == "1":
        cell.construct = ms.jit(cell.construct)
    return cell
