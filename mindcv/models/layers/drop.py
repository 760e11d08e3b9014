"""Regularisation layers: dropout that disappears at rate 0, and stochastic depth."""
from mindspore import nn, ops

__all__ = ["DropPath", "dropout"]


def dropout(rate):
    """``nn.Dropout(p=rate)``, or an identity at rate 0 (no kernel in the graph)."""
    return nn.Dropout(p=rate) if rate > 0 else nn.Identity()


class DropPath(nn.Cell):
    """Stochastic depth: drops the whole residual branch per sample while training."""

    def __init__(self, drop_prob):
        super().__init__()
        self.drop_prob = drop_prob
        self.dropout = nn.Dropout(p=drop_prob)

    def construct(self, x):
        if not self.training:
            return x
        mask = self.dropout(ops.ones((x.shape[0],) + (1,) * (x.ndim - 1), x.dtype))
        return x * mask
