"""Zero-padding and cropping of channels-last grids (B, H, W, C) on their height and width."""
from mindspore import ops

__all__ = ["crop_grid", "pad_grid"]


def pad_grid(x, bottom, right):
    """``x`` with ``bottom`` rows and ``right`` columns of zeros added. By concatenation: the backward of ops.pad
    returns run-to-run varying garbage on CPU in MindSpore 2.10 GRAPH mode."""
    b, h, w, c = x.shape
    if bottom:
        x = ops.concat((x, ops.zeros((b, bottom, w, c), x.dtype)), axis=1)
    if right:
        x = ops.concat((x, ops.zeros((b, h + bottom, right, c), x.dtype)), axis=2)
    return x


def crop_grid(x, height, width):
    """The first ``height`` rows and ``width`` columns of ``x``. With ops.slice: indexing compiles to StridedSlice,
    whose CPU kernel copies element by element (114 against 5 ms for an (8, 98, 98, 64) grid)."""
    b, h, w, c = x.shape
    if (height, width) == (h, w):
        return x
    return ops.slice(x, (0, 0, 0, 0), (b, height, width, c))
