"""Adan, which MindSpore does not have, with MindCV's update rule and defaults."""
from mindspore import Tensor, ops
from mindspore import dtype as mstype
from mindspore.ops import composite as C

from ..foundation.errors import InvalidValueError
from .base import GroupAwareOptimizer, check_rates

_adan_rule = C.MultitypeFuncGraph("adan_rule")


@_adan_rule.register("Tuple", "Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor", "Tensor")
def _adan_update(hyper, lr, weight_decay, decay_flag, param, m, v, n, prev_grad, grad):
    beta1, beta2, beta3, eps, has_previous = hyper
    grad = grad.astype(mstype.float32)
    change = (grad - prev_grad) * has_previous
    m_new = (1.0 - beta1) * m + beta1 * grad
    v_new = (1.0 - beta2) * v + beta2 * change
    n_new = (1.0 - beta3) * n + beta3 * ops.square(grad + (1.0 - beta2) * change)
    step_size = lr / (eps + ops.sqrt(n_new))
    param_new = param - step_size * (m_new + (1.0 - beta2) * v_new)
    if decay_flag:
        param_new = param_new / (1.0 + weight_decay * step_size)
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    ops.assign(n, n_new)
    ops.assign(prev_grad, grad)
    return ops.assign(param, param_new.astype(param.dtype))


class Adan(GroupAwareOptimizer):
    """Adan (Xie et al., "Adaptive Nesterov Momentum Algorithm", 2022) as MindCV computes it.

    With ``g`` the gradient and ``d = g - g_prev`` (0 on the first step)::

        m = (1 - beta1) * m + beta1 * g
        v = (1 - beta2) * v + beta2 * d
        n = (1 - beta3) * n + beta3 * (g + (1 - beta2) * d) ** 2
        step = lr / (eps + sqrt(n))                       # per element
        param = (param - step * (m + (1 - beta2) * v)) / (1 + weight_decay * step)

    without bias correction. The betas weigh the new value (the paper's convention), so MindCV's defaults
    (0.98, 0.92, 0.99; the PyTorch release's values, which weigh the history there) keep little history; they
    are kept so that a MindCV recipe trains the same here. The state names match MindCV's (``moment1``,
    ``moment2``, ``moment3``, ``prev_gradient``).
    """

    # Keyword-only from weight_decay on: MindCV's Adan has an unused use_locking before it, so a positional call
    # written for MindCV fails here instead of shifting its values.
    def __init__(self, params, learning_rate=1e-3, beta1=0.98, beta2=0.92, beta3=0.99, eps=1e-8, *, weight_decay=0.0,
                 loss_scale=1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        check_rates("Adan", beta1=beta1, beta2=beta2, beta3=beta3)
        if eps <= 0:
            raise InvalidValueError(f"Adan: eps must be positive, got {eps}.")
        self.beta1 = Tensor(beta1, mstype.float32)
        self.beta2 = Tensor(beta2, mstype.float32)
        self.beta3 = Tensor(beta3, mstype.float32)
        self.eps = Tensor(eps, mstype.float32)
        self.moment1 = self._parameters.clone(prefix="moment1", init="zeros")
        self.moment2 = self._parameters.clone(prefix="moment2", init="zeros")
        self.moment3 = self._parameters.clone(prefix="moment3", init="zeros")
        self.prev_gradient = self._parameters.clone(prefix="prev_gradient", init="zeros")

    def construct(self, gradients):
        gradients, lr, weight_decay = self._step_start(gradients)
        has_previous = (self.global_step.reshape(()) > 1).astype(mstype.float32)
        hyper = (self.beta1, self.beta2, self.beta3, self.eps, has_previous)
        return self._apply(_adan_rule, hyper, lr, weight_decay, self.moment1, self.moment2, self.moment3,
                           self.prev_gradient, gradients)
