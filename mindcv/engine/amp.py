"""Automatic mixed precision (MindSpore's amp levels) on a network."""
import mindspore as ms

from ..foundation.errors import InvalidValueError

__all__ = ["apply_amp", "check_precision_and_amp"]


def apply_amp(network, amp_level="O0", amp_cast_list=None):
    """Cast ``network`` for ``amp_level``: O0 fp32; O2 fp16 except LayerNorm/BatchNorm (kept fp32);
    O3 everything fp16. ``amp_cast_list``: comma-separated ``mindspore.nn`` cell names kept in fp32
    instead of O2's default list."""
    if amp_level == "O0":
        return network
    if amp_level == "O1":
        raise InvalidValueError("amp_level O1 is not supported: MindSpore implements it by rewriting the network's "
                                "source code, which fails on this package's relative imports. Use O2 (norms in fp32) "
                                "or O3.")
    if amp_cast_list and amp_level == "O2":
        names = [name.strip() for name in amp_cast_list.split(",") if name.strip()]
        unknown = [name for name in names if not isinstance(getattr(ms.nn, name, None), type)]
        if unknown:
            raise InvalidValueError(f"amp_cast_list: {', '.join(unknown)} are not mindspore.nn cells "
                                    "(e.g. LayerNorm,Softmax).")
        return ms.amp.custom_mixed_precision(network, black_list=[getattr(ms.nn, n) for n in names],
                                             dtype=ms.float16)
    return ms.amp.auto_mixed_precision(network, amp_level)


def check_precision_and_amp(precision, amp_level, precision_option="precision", amp_option="amp_level"):
    """InvalidValueError where bf16 matmuls, which take the fp32 network's operands, meet an amp level that casts
    the network to fp16; the options are named as the command line spells them."""
    if precision != "fp32" and amp_level != "O0":
        raise InvalidValueError(f"--{precision_option} {precision} computes the fp32 network's matmuls in bf16; "
                                f"with --{amp_option} {amp_level} use --{precision_option} fp32.")
