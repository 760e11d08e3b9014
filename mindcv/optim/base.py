"""Plumbing of the optimizers written here (MindSpore lacks them or implements them differently from the
reference recipes): parameter groups, dynamic learning rates and ``loss_scale`` as MindSpore's own optimizers
take them. Gradients are unscaled before any weight decay, so the decay is never multiplied by the loss scale.
"""
from mindspore import Parameter, Tensor, nn, ops
from mindspore import dtype as mstype
from mindspore.ops import functional as F

from ..foundation.errors import InvalidValueError

# MindCV's AdamW and Lion clip gradients to this global norm when built with clip=True.
CLIP_NORM = 5.0


def check_rates(owner, **rates):
    """Betas must lie in [0, 1]."""
    for name, value in rates.items():
        if not 0.0 <= value <= 1.0:
            raise InvalidValueError(f"{owner}: {name} must lie in [0, 1], got {value}.")


class GroupAwareOptimizer(nn.Optimizer):
    """Shared plumbing: loss-scale handling, optional gradient clipping and mapping one update rule over every
    parameter."""

    def __init__(self, learning_rate, params, weight_decay, loss_scale, clip=False):
        super().__init__(learning_rate, params, weight_decay)
        if loss_scale <= 0:
            raise InvalidValueError(f"loss_scale must be positive, got {loss_scale}.")
        self.loss_scale = float(loss_scale)
        self.reciprocal_scale = Tensor(1.0 / self.loss_scale, mstype.float32)
        self.need_scale = self.loss_scale != 1.0
        self.clip = clip

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
        """Unscaled (and clipped) gradients, and this step's learning rate(s) and weight decay(s); advances the
        step count."""
        gradients = self.scale_grad(gradients)
        if self.clip:
            gradients = ops.clip_by_global_norm(gradients, CLIP_NORM)
        lr, weight_decay = self._advance_step()
        return gradients, lr, weight_decay

    def _advance_step(self):
        """This step's learning rate(s) and weight decay(s); advances the step count."""
        lr = self.get_lr()
        weight_decay = self.get_weight_decay()
        self.assignadd(self.global_step, self.global_step_increase_tensor)
        return lr, weight_decay


def decayed(param, lr, weight_decay, decay_flag):
    if decay_flag:
        return param * (1.0 - lr * weight_decay)
    return param


def adam_step(hyper, m, v, grad):
    """New moments and Adam's bias-corrected step ``m_hat / (sqrt(v_hat) + eps)``."""
    beta1, beta2, eps, correction1, correction2 = hyper
    grad = grad.astype(mstype.float32)
    m_new = beta1 * m + (1.0 - beta1) * grad
    v_new = beta2 * v + (1.0 - beta2) * grad * grad
    return m_new, v_new, (m_new / correction1) / (ops.sqrt(v_new / correction2) + eps)


class MomentOptimizer(GroupAwareOptimizer):
    """Adam-style first and second moments with bias corrections; ``rule`` turns them into the update."""

    def __init__(self, params, learning_rate, beta1, beta2, eps, weight_decay, loss_scale, rule, state_prefix,
                 clip=False):
        super().__init__(learning_rate, params, weight_decay, loss_scale, clip)
        check_rates(type(self).__name__, beta1=beta1, beta2=beta2)
        self.rule = rule
        self.beta1 = Tensor(beta1, mstype.float32)
        self.beta2 = Tensor(beta2, mstype.float32)
        self.eps = Tensor(eps, mstype.float32)
        self.beta1_power = Parameter(Tensor(1.0, mstype.float32), name="beta1_power")
        self.beta2_power = Parameter(Tensor(1.0, mstype.float32), name="beta2_power")
        self.moments1 = self._parameters.clone(prefix=f"{state_prefix}_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix=f"{state_prefix}_v", init="zeros")

    def _advance_moment_powers(self):
        """beta1**t and beta2**t of this step, kept for the next."""
        beta1_power = self.beta1_power * self.beta1
        beta2_power = self.beta2_power * self.beta2
        ops.assign(self.beta1_power, beta1_power)
        ops.assign(self.beta2_power, beta2_power)
        return beta1_power, beta2_power

    def construct(self, gradients):
        gradients, lr, weight_decay = self._step_start(gradients)
        beta1_power, beta2_power = self._advance_moment_powers()
        hyper = (self.beta1, self.beta2, self.eps, 1.0 - beta1_power, 1.0 - beta2_power)
        return self._apply(self.rule, hyper, lr, weight_decay, self.moments1, self.moments2, gradients)
