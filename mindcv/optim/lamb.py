"""LAMB written here: ``nn.Lamb`` runs a fused kernel that MindSpore's CPU backend does not have."""
from mindspore import ops
from mindspore import dtype as mstype
from mindspore.ops import composite as C

from .base import MomentOptimizer, adam_step

_lamb_rule = C.MultitypeFuncGraph("lamb_rule")


@_lamb_rule.register("Tuple", "Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor", "Tensor")
def _lamb_update(hyper, lr, weight_decay, decay_flag, param, m, v, grad):
    m_new, v_new, step = adam_step(hyper, m, v, grad)
    if decay_flag:
        step = step + weight_decay * param
    param_norm = ops.norm(param.astype(mstype.float32))
    step_norm = ops.norm(step)
    trust = ops.select((param_norm > 0) & (step_norm > 0), param_norm / step_norm, ops.ones_like(param_norm))
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    return ops.assign(param, (param - lr * trust * step).astype(param.dtype))


class Lamb(MomentOptimizer):
    """LAMB (You et al., 2020): Adam's step, with decoupled weight decay, rescaled per tensor by the trust ratio
    ``||param|| / ||step||``. Defaults are ``nn.Lamb``'s."""

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0,
                 loss_scale=1.0):
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay, loss_scale, _lamb_rule, "lamb")
