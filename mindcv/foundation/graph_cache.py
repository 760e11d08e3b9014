"""GRAPH mode keeps a Cell's compiled graphs under the Cell's creation time: a Cell whose sub-cells or
compute switches change must get a new time, or its next call runs the old graph."""
import contextlib
import time

__all__ = ["fresh_graph_cache", "renew_graph_cache"]

_ATTRIBUTE = "_create_time"  # MindSpore 2.x's private key of a Cell's compiled-graph cache


def renew_graph_cache(cell):
    """Give ``cell`` a new graph-cache key, so that its next call compiles its current structure."""
    if not hasattr(cell, _ATTRIBUTE):
        raise AttributeError(f"This MindSpore's Cell has no '{_ATTRIBUTE}': the graph-cache workaround needs an "
                             "update.")
    object.__setattr__(cell, _ATTRIBUTE, time.time_ns())


@contextlib.contextmanager
def fresh_graph_cache(cell):
    """Inside the block ``cell`` compiles afresh; on exit it finds its own earlier graphs again."""
    saved = getattr(cell, _ATTRIBUTE)
    renew_graph_cache(cell)
    try:
        yield cell
    finally:
        object.__setattr__(cell, _ATTRIBUTE, saved)
