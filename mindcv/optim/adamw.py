"""AdamW with bias correction: MindSpore's ``nn.AdamWeightDecay`` skips Adam's bias correction, which the PyTorch
AdamW used by timm and the Twins release applies; early steps differ by up to ``1 / (1 - beta2**t)``."""
from mindspore import Tensor, nn, ops
from mindspore import dtype as mstype
from mindspore.ops import composite as C
from mindspore.ops import functional as F

from ..kernels import adamw_update_op, fused_kernels_available
from .base import CLIP_NORM, MomentOptimizer, adam_step, decayed

_adamw_rule = C.MultitypeFuncGraph("adamw_rule")

_fused_adam_weight_decay = ops.AdamWeightDecay()
_times = C.MultitypeFuncGraph("times")


@_times.register("Tensor", "Tensor")
def _scaled_gradient(factor, grad):
    return grad * factor.astype(grad.dtype)


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

    ``clip``: clip the gradients to global norm 5 first (MindCV's option). On CPU, with fp32 parameters, the whole
    step is one fused kernel.
    """

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 loss_scale=1.0, clip=False):
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay, loss_scale, _adamw_rule, "adam",
                         clip)
        self.fused_update = None
        if fused_kernels_available() and all(p.dtype == mstype.float32 for p in self._parameters):
            set_of_parameter, self.set_leaders = self._sets_sharing_hyper_parameters()
            self.set_of_parameter = Tensor(set_of_parameter, mstype.int32)
            self.fused_update = adamw_update_op(len(self._parameters))
        self.one = Tensor(1.0, mstype.float32)

    def _sets_sharing_hyper_parameters(self):
        """Each parameter's set of parameters sharing lr and weight decay, and the first parameter of each set."""
        count = len(self._parameters)
        lrs = self.learning_rate if self.is_group_lr else [self.learning_rate] * count
        decays = self.weight_decay if self.is_group else [self.weight_decay] * count
        leaders, set_of_parameter = {}, []
        for lr, decay, flag in zip(lrs, decays, self.decay_flags):
            decay_key = (id(decay) if isinstance(decay, nn.Cell) else float(decay.asnumpy())) if flag else None
            set_of_parameter.append(leaders.setdefault((id(lr), decay_key), len(leaders)))
        first_of_set = {}
        for index, number in enumerate(set_of_parameter):
            first_of_set.setdefault(number, index)
        return set_of_parameter, tuple(first_of_set[number] for number in range(len(leaders)))

    def construct(self, gradients):
        if self.fused_update is None:
            return super().construct(gradients)
        return self._fused_step(gradients, self.one)

    def update_scaled(self, gradients, factor):
        """The step on ``gradients * factor`` (an fp32 scalar: a clipping factor, say); the fused kernel applies
        the factor as it reads the gradients, without a pass of its own."""
        if self.fused_update is None:
            return super().construct(self.hyper_map(F.partial(_times, factor), gradients))
        return self._fused_step(gradients, factor)

    def _fused_step(self, gradients, factor):
        grad_scale = factor * self.reciprocal_scale if self.need_scale else factor
        if self.clip:
            gradients = ops.clip_by_global_norm(self.hyper_map(F.partial(_times, grad_scale), gradients),
                                                CLIP_NORM)
            grad_scale = self.one
        lr, weight_decay = self._advance_step()
        beta1_power, beta2_power = self._advance_moment_powers()
        per_set = ()
        for first in self.set_leaders:
            set_lr = (lr[first] if self.is_group_lr else lr).reshape(())
            set_decay = (weight_decay[first] if self.is_group else weight_decay).reshape(())
            if not self.decay_flags[first]:
                set_decay = ops.zeros_like(set_decay)
            per_set += (ops.stack([1.0 - set_lr * set_decay, set_lr / (1.0 - beta1_power).reshape(())]),)
        shared = ops.stack([self.beta1, self.beta2, ops.sqrt(1.0 - beta2_power).reshape(()), self.eps, grad_scale])
        return self.fused_update(*self._parameters, *self.moments1, *self.moments2, *gradients,
                                 self.set_of_parameter, ops.stack(per_set), shared)
