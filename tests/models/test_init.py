"""The fast truncated-normal initializer: its distribution, its bounds, and reproducibility under set_seed."""
import numpy as np
import pytest

import mindspore as ms
from mindspore.common.initializer import initializer

from mindcv.models.layers import TruncatedNormal


def _draw(init, shape=(400, 500)):
    return initializer(init, shape, ms.float32).init_data().asnumpy()


def test_values_follow_the_normal_inside_the_bounds():
    ms.set_seed(0)
    values = _draw(TruncatedNormal(sigma=0.02))
    assert values.mean() == pytest.approx(0.0, abs=2e-4)
    assert values.std() == pytest.approx(0.02, rel=0.01)
    tight = _draw(TruncatedNormal(sigma=1.0, mean=0.1, a=-0.5, b=0.5))
    assert tight.min() >= -0.5 and tight.max() <= 0.5
    assert tight.min() < -0.49 and tight.max() > 0.49  # drawn again inside, not clipped onto the bounds
    assert np.mean(np.isin(tight, (-0.5, 0.5))) < 1e-4


def test_set_seed_makes_the_weights_reproducible_and_each_draw_differs():
    ms.set_seed(5)
    first, second = _draw(TruncatedNormal(sigma=0.02)), _draw(TruncatedNormal(sigma=0.02))
    ms.set_seed(5)
    np.testing.assert_array_equal(_draw(TruncatedNormal(sigma=0.02)), first)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("sigma, mean, a, b", [(0.0, 0.0, -2, 2), (0.02, 3.0, -2, 2)])
def test_bad_parameters_are_refused(sigma, mean, a, b):
    with pytest.raises(ValueError, match=f"sigma={sigma}, mean={mean}"):
        TruncatedNormal(sigma=sigma, mean=mean, a=a, b=b)
