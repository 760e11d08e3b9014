"""AdamW with bias correction: MindSpore's ``nn.AdamWeightDecay`` skips Adam's bias correction, which the PyTorch
AdamW used by timm and the Twins release applies; early steps differ by up to ``1 / (1 - beta2**t)``."""
from mindspore import ops
from mindspore import dtype as mstype
from mindspore.ops import composite as C

from .base import MomentOptimizer, adam_step, decayed

_adamw_rule = C.MultitypeFuncGraph("adamw_rule")

_fused_adam_weight_decay = ops.AdamWeightDecay()


@_adamw_rule.register("Tuple", "Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor", "Tensor")
def _adamw_update(hyper, lr, weight_decay, decay_flag, param, m, v, grad):
    if param.dtype == mstype.float32 and grad.dtype == mstype.float32:
        # MindSpore's fused in-place kernel has no bias correction; folding the corrections into its lr, eps and
        # decay gives exactly PyTorch's AdamW step, in one kernel instead of about twenty per parameter.
        beta1, beta2, eps, correction1, correction2 = hyper
        root2 = ops.sqrt(correction2)
        decay = weight_decay * correction1 / root2 if decay_flag else ops.zeros_like(weight_decay)
        return _fused_adam_weight_decay(param, m, v, lr * root2 / correction1, beta1, beta2, eps * root2, decay,
                                        grad)
    m_new, v_new, step = adam_step(hyper, m, v, grad)
    param_new = decayed(param, lr, weight_decay, decay_flag) - lr * step
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    return ops.assign(param, param_new.astype(param.dtype))


class AdamW(MomentOptimizer):
    """Adam with decoupled weight decay and bias correction (Loshchilov & Hutter; PyTorch's ``AdamW``).

    ``clip``: clip the gradients to global norm 5 first (MindCV's option).
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 loss_scale=1.0, clip=False):
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay, loss_scale, _adamw_rule, "adam",
                         clip)
