"""Optimizers MindSpore lacks or implements differently from the reference recipes.

``AdamW``: MindSpore's ``nn.AdamWeightDecay`` skips Adam's bias correction, which the PyTorch AdamW used by
timm and the Twins release applies; early steps differ by up to ``1 / (1 - beta2**t)``. ``Lamb``:
``nn.Lamb`` runs a fused kernel that MindSpore's CPU backend does not have. ``Lion`` and ``NAdam`` have no
``nn`` counterpart.

All of them take parameter groups, dynamic learning rates and ``loss_scale`` like MindSpore's own optimizers.
Gradients are unscaled before any weight decay, so the decay is never multiplied by the loss scale.
"""
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype
from mindspore.ops import composite as C
from mindspore.ops import functional as F

from ..foundation.errors import InvalidValueError


class _GroupAwareOptimizer(nn.Optimizer):
    """Shared plumbing: loss-scale handling and mapping one update rule over every parameter."""

    def __init__(self, learning_rate, params, weight_decay, loss_scale):
        super().__init__(learning_rate, params, weight_decay)
        if loss_scale <= 0:
            raise InvalidValueError(f"loss_scale must be positive, got {loss_scale}.")
        self.loss_scale = float(loss_scale)
        self.reciprocal_scale = Tensor(1.0 / self.loss_scale, mstype.float32)
        self.need_scale = self.loss_scale != 1.0

    def _apply(self, rule, hyper, lr, weight_decay, *per_parameter):
        """``rule(hyper, lr, weight_decay, decay_flag, param, *state, grad)`` for every parameter.

        ``hyper`` is the tuple of step-wide values (betas, bias corrections) every parameter shares.
        """
        if self.is_group:
            if self.is_group_lr:
                return self.hyper_map(F.partial(rule, hyper), lr, weight_decay, self.decay_flags, self._parameters,
                                      *per_parameter)
            return self.hyper_map(F.partial(rule, hyper, lr), weight_decay, self.decay_flags, self._parameters,
                                  *per_parameter)
        return self.hyper_map(F.partial(rule, hyper, lr, weight_decay), self.decay_flags, self._parameters,
                              *per_parameter)

    def _step_start(self, gradients):
        """Unscaled gradients, and this step's learning rate(s) and weight decay(s); advances the step count."""
        gradients = self.scale_grad(gradients)
        lr = self.get_lr()
        weight_decay = self.get_weight_decay()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        return gradients, lr, weight_decay


def _decayed(param, lr, weight_decay, decay_flag):
    if decay_flag:
        return param * (1.0 - lr * weight_decay)
    return param


def _adam_step(hyper, m, v, grad):
    """New moments and Adam's bias-corrected step ``m_hat / (sqrt(v_hat) + eps)``."""
    beta1, beta2, eps, correction1, correction2 = hyper
    grad = grad.astype(mstype.float32)
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    return m_new, v_new, (m_new / correction1) / (ops.sqrt(v_new / correction2) + eps)


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
    m_new, v_new, step = _adam_step(hyper, m, v, grad)
    param_new = _decayed(param, lr, weight_decay, decay_flag) - lr * step
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    return ops.assign(param, param_new.astype(param.dtype))


class _MomentOptimizer(_GroupAwareOptimizer):
    """Adam-style first and second moments with bias corrections; ``rule`` turns them into the update."""

    def __init__(self, params, learning_rate, beta1, beta2, eps, weight_decay, loss_scale, rule, state_prefix):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.rule = rule
        self.beta1 = Tensor(beta1, mstype.float32)
        self.beta2 = Tensor(beta2, mstype.float32)
        self.eps = Tensor(eps, mstype.float32)
        self.beta1_power = Parameter(Tensor(1.0, mstype.float32), name="beta1_power")
        self.beta2_power = Parameter(Tensor(1.0, mstype.float32), name="beta2_power")
        self.moments1 = self._parameters.clone(prefix=f"{state_prefix}_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix=f"{state_prefix}_v", init="zeros")

    def construct(self, gradients):
        gradients, lr, weight_decay = self._step_start(gradients)
        beta1_power = self.beta1_power * self.beta1
        beta2_power = self.beta2_power * self.beta2
        ops.assign(self.beta1_power, beta1_power)
        ops.assign(self.beta2_power, beta2_power)
        hyper = (self.beta1, self.beta2, self.eps, 1.0 - beta1_power, 1.0 - beta2_power)
        return self._apply(self.rule, hyper, lr, weight_decay, self.moments1, self.moments2, gradients)


class AdamW(_MomentOptimizer):
    """Adam with decoupled weight decay and bias correction (Loshchilov & Hutter; PyTorch's ``AdamW``)."""

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 loss_scale=1.0):
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay, loss_scale, _adamw_rule, "adam")


_lamb_rule = C.MultitypeFuncGraph("lamb_rule")


@_lamb_rule.register("Tuple", "Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor", "Tensor")
def _lamb_update(hyper, lr, weight_decay, decay_flag, param, m, v, grad):
    m_new, v_new, step = _adam_step(hyper, m, v, grad)
    if decay_flag:
        step = step + weight_decay * param
    param_norm = ops.norm(param.astype(mstype.float32))
    step_norm = ops.norm(step)
    trust = ops.select((param_norm > 0) & (step_norm > 0), param_norm / step_norm, ops.ones_like(param_norm))
    ops.assign(m, m_new)
    ops.assign(v, v_new)
    return ops.assign(param, (param - lr * trust * step).astype(param.dtype))


class Lamb(_MomentOptimizer):
    """LAMB (You et al., 2020): Adam's step, with decoupled weight decay, rescaled per tensor by the trust ratio
    ``||param|| / ||step||``."""

    def __init__(self, params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0,
                 loss_scale=1.0):
        super().__init__(params, learning_rate, beta1, beta2, eps, weight_decay, loss_scale, _lamb_rule, "lamb")


_lion_rule = C.MultitypeFuncGraph("lion_rule")


@_lion_rule.register("Tuple", "Tensor", "Tensor", "Bool", "Tensor", "Tensor", "Tensor")
def _lion_update(hyper, lr, weight_decay, decay_flag, param, m, grad):
    beta1, beta2 = hyper
    grad = grad.astype(mstype.float32)
    step = ops.sign(beta1 * m + (1.0 - beta1) * grad)
    param_new = _decayed(param, lr, weight_decay, decay_flag) - lr * step
    ops.assign(m, beta2 * m + (1.0 - beta2) * grad)
    return ops.assign(param, param_new.astype(param.dtype))


class Lion(_GroupAwareOptimizer):
    """Lion (Chen et al., 2023): the sign of an interpolated momentum, with decoupled weight decay."""

    def __init__(self, params, learning_rate=1e-4, beta1=0.9, beta2=0.99, weight_decay=0.0, loss_scale=1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        self.beta1 = Tensor(beta1, mstype.float32)
        self.beta2 = Tensor(beta2, mstype.float32)
        self.moments = self._parameters.clone(prefix="lion_m", init="zeros")

    def construct(self, gradients):
        gradients, lr, weight_decay = self._step_start(gradients)
        return self._apply(_lion_rule, (self.beta1, self.beta2), lr, weight_decay, self.moments, gradients)


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


class NAdam(_GroupAwareOptimizer):
    """Adam with Nesterov momentum (Dozat, 2016) and its momentum warm-up schedule (``schedule_decay``).

    Weight decay here is L2 (added to the gradient), as in Dozat's and PyTorch's NAdam.
    """

    def __init__(self, params, learning_rate=2e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 schedule_decay=4e-3, loss_scale=1.0):
        super().__init__(learning_rate, params, weight_decay, loss_scale)
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
