"""Lion, which MindSpore does not have."""
from mindspore import Tensor, ops
from mindspore import dtype as mstype
from mindspore.ops import composite as C

from .base import GroupAwareOptimizer, check_rates, decayed

_lion_rule = C.MultitypeFuncGraph("lion_rule")


@_lion_rule.register("Tuple", "Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor")
def _lion_update(hyper, lr, weight_decay, decay_flag, param, m, grad):
    beta1, beta2 = hyper
    grad = grad.astype(mstype.float32)
    step = ops.sign(beta1 * m + (1.0 - beta1) * grad)
    param_new = decayed(param, lr, weight_decay, decay_flag) - lr * step
    ops.assign(m, beta2 * m + (1.0 - beta2) * grad)
    return ops.assign(param, param_new.astype(param.dtype))


class Lion(GroupAwareOptimizer):
    """Lion (Chen et al., 2023): the sign of an interpolated momentum, with decoupled weight decay.

    ``clip``: clip the gradients to global norm 5 first (MindCV's option).
    """

    def __init__(self, params, learning_rate=2e-4, beta1=0.9, beta2=0.99, weight_decay=0.0, loss_scale=1.0,
                 clip=False):
        super().__init__(learning_rate, params, weight_decay, loss_scale, clip)
        check_rates("Lion", beta1=beta1, beta2=beta2)
        self.beta1 = Tensor(beta1, mstype.float32)
        self.beta2 = Tensor(beta2, mstype.float32)
        self.moments = self._parameters.clone(prefix="lion_m", init="zeros")

    def construct(self, gradients):
        gradients, lr, weight_decay = self._step_start(gradients)
        return self._apply(_lion_rule, (self.beta1, self.beta2), lr, weight_decay, self.moments, gradients)
