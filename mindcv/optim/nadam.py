"""NAdam, which MindSpore does not have."""
from mindspore import Parameter, Tensor, ops
from mindspore import dtype as mstype
from mindspore.ops import composite as C

from .base import GroupAwareOptimizer, check_rates

_nadam_rule = C.MultitypeFuncGraph("nadam_rule")


@_nadam_rule.register("Tuple", "Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor", "Tensor")
def _nadam_update(hyper, lr, weight_decay, decay_flag, param, m, v, grad):
    beta1, beta2, eps, mu, mu_next, product, product_next, correction2 = hyper
    grad = grad.astype(mstype.float32)
    if decay_flag:
        grad = grad + weight_decay * param
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    denom = ops.sqrt(v_new / correction2) + eps
    step = ((1.0 - mu) / (1.0 - product) * grad + mu_next / (1.0 - product_next) * m_new) / denom
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    return ops.assign(param, (param - lr * step).astype(param.dtype))


class NAdam(GroupAwareOptimizer):
    """Adam with Nesterov momentum (Dozat, 2016) and its momentum warm-up schedule (``schedule_decay``).

    Weight decay here is L2 (added to the gradient), as in Dozat's and PyTorch's NAdam.
    """

    def __init__(self, params, learning_rate=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 loss_scale=1.0, schedule_decay=4e-3):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        check_rates("NAdam", beta1=beta1, beta2=beta2)
        self.beta1 = Tensor(beta1, mstype.float32)
        self.beta2 = Tensor(beta2, mstype.float32)
        self.eps = Tensor(eps, mstype.float32)
        self.schedule_decay = Tensor(schedule_decay, mstype.float32)
        self.mu_product = Parameter(Tensor(1.0, mstype.float32), name="mu_product")
        self.beta2_power = Parameter(Tensor(1.0, mstype.float32), name="beta2_power")
        self.moments1 = self._parameters.clone(prefix="nadam_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix="nadam_v", init="zeros")

    def _momentum_at(self, step):
        return self.beta1 * (1.0 - 0.5 * ops.pow(0.96, step * self.schedule_decay))

    def construct(self, gradients):
        gradients, lr, weight_decay = self._step_start(gradients)
        step = self.global_step.astype(mstype.float32).reshape(())
        mu, mu_next = self._momentum_at(step), self._momentum_at(step + 1.0)
        product = self.mu_product * mu
        beta2_power = self.beta2_power * self.beta2
        ops.assign(self.mu_product, product)
        ops.assign(self.beta2_power, beta2_power)
        hyper = (self.beta1, self.beta2, self.eps, mu, mu_next, product, product * mu_next, 1.0 - beta2_power)
        return self._apply(_nadam_rule, hyper, lr, weight_decay, self.moments1, self.moments2, gradients)
