"""MindCV's ``FeatureExtractWrapper``: a classifier turned into a backbone returning its stage maps."""
from mindspore import nn

from ..foundation.errors import InvalidValueError

__all__ = ["FeatureExtractWrapper"]


class FeatureExtractWrapper(nn.Cell):
    """``net`` returning the NCHW maps of stages ``out_indices`` (default: all), strides 4, 8, 16, 32 for Twins.

    The wrapped model keeps its parameter names, so weights load before or after wrapping. ``out_channels``
    gives each map's channels, for building a neck or head on top. ``net`` provides ``stage_channels`` and
    ``forward_intermediates(x, indices)``, as the Twins models do.
    """

    def __init__(self, net, out_indices=None):
        super().__init__(auto_prefix=False)
        if not hasattr(net, "forward_intermediates"):
            raise InvalidValueError(f"{type(net).__name__} has no forward_intermediates(); it cannot be wrapped.")
        stages = len(net.stage_channels)
        self.out_indices = tuple(range(stages) if out_indices is None else out_indices)
        if any(i not in range(stages) for i in self.out_indices):
            raise InvalidValueError(f"out_indices {self.out_indices} must be stage indices in 0..{stages - 1}.")
        self.net = net

    @property
    def out_channels(self):
        return [self.net.stage_channels[i] for i in self.out_indices]

    def construct(self, x):
        return self.net.forward_intermediates(x, self.out_indices)
