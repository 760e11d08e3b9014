"""``create_model``: a model from the registry, with pretrained or local weights."""
from ..foundation.errors import InvalidValueError
from .helpers import load_model_checkpoint
from .layers import set_matmul_precision
from .registry import model_entrypoint

__all__ = ["create_model"]


def create_model(model_name, num_classes=1000, pretrained=False, in_channels=3, checkpoint_path="", ema=False,
                 auto_mapping=False, precision="fp32", **kwargs):
    """Build ``model_name`` (ours, timm's or the official release's name).

    Args:
        num_classes: classifier size; 0 gives pooled features.
        pretrained: download and load the published weights (``default_cfgs[name]['url']``).
        in_channels: input channels; pretrained RGB weights are adapted.
        checkpoint_path: load a local MindSpore checkpoint instead (strict, by name).
        ema: load the ``ema.``-prefixed weights of ``checkpoint_path``.
        auto_mapping: also match checkpoint names that differ from ours by a wrapper prefix.
        precision: ``fp32``, or ``bf16`` for CPU inference: the matmuls take bf16 operands with fp32 accumulation
            (AVX-512-BF16 or AMX; elsewhere a warning and fp32), everything else stays fp32.
        **kwargs: model options (``drop_rate``, ``drop_path_rate``, ``features_only``, ``out_indices``, ...);
            options given as None take the model's default, as MindCV's train.py passes unset options.
    """
    kwargs = {name: value for name, value in kwargs.items() if value is not None}
    if pretrained and checkpoint_path:
        raise InvalidValueError("Pass either pretrained=True or checkpoint_path, not both.")
    model = model_entrypoint(model_name)(pretrained=pretrained, num_classes=num_classes, in_channels=in_channels,
                                         **kwargs)
    if checkpoint_path:
        load_model_checkpoint(model, checkpoint_path, ema=ema, auto_mapping=auto_mapping)
    set_matmul_precision(model, precision)
    return model
