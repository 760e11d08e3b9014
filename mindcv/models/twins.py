"""Twins: PCPVT and SVT vision transformers.

"Twins: Revisiting the Design of Spatial Attention in Vision Transformers", Chu et al., NeurIPS 2021.

Parameter names and shapes are the reference's (timm ``twins_*``, the official release), so converted
weights load by name and the logits match. Tokens stay on a channels-last grid (B, H, W, C) between
stages. Choices made for speed on MindSpore CPU without changing the numbers: convolutions whose kernel
equals their stride (patch embeddings, GSA sub-sampling) run as one matmul over patches; in fp32 on CPU, dense
layers with their bias, patch convolutions (gathering the patches as they multiply), the MLP's GELU with its second
layer, LayerNorm, the PEG depthwise conv and the attention itself (on the projected tokens, heads never split into an
axis of their own) run as fused kernels (``mindcv.kernels``), and in inference each MLP and each residual add are
part of the kernel before them; elsewhere q/k/v are computed from slices of their fused weight instead of slicing the
fused activation.
"""
import numpy as np

from mindspore import Tensor, nn, ops
from mindspore.common import dtype as mstype

from ..foundation.errors import InvalidValueError
from ..foundation.graph_cache import renew_graph_cache
from ..kernels import attention_op, fused_kernels_available, packed_attention_op, peg_op, window_ops
from .helpers import build_model_with_cfg
from .layers import (LayerNorm, Linear, Mlp, PatchConv, PatchEmbed, RowLinear, conv_init, crop_grid,
                     drop_path_layer, dropout, export_form, number_random_streams, pad_grid)
from .registry import register_model, register_model_alias

__all__ = ["Twins"]

TWINS_VARIANTS = {
    # name: embed dims, heads, mlp ratios, depths, LSA window size (0: GSA in every block)
    "pcpvt_small": dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                        depths=(3, 4, 6, 3), window_size=0),
    "pcpvt_base": dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                       depths=(3, 4, 18, 3), window_size=0),
    "pcpvt_large": dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
                        depths=(3, 8, 27, 3), window_size=0),
    "svt_small": dict(embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), mlp_ratios=(4, 4, 4, 4),
                      depths=(2, 2, 10, 4), window_size=7),
    "svt_base": dict(embed_dims=(96, 192, 384, 768), num_heads=(3, 6, 12, 24), mlp_ratios=(4, 4, 4, 4),
                     depths=(2, 2, 18, 2), window_size=7),
    "svt_large": dict(embed_dims=(128, 256, 512, 1024), num_heads=(4, 8, 16, 32), mlp_ratios=(4, 4, 4, 4),
                      depths=(2, 2, 18, 2), window_size=7),
}

# Other libraries' names for the same models: timm's, and the official release's.
TWINS_ALIASES = {
    "twins_pcpvt_small": "pcpvt_small", "twins_pcpvt_base": "pcpvt_base", "twins_pcpvt_large": "pcpvt_large",
    "twins_svt_small": "svt_small", "twins_svt_base": "svt_base", "twins_svt_large": "svt_large",
    "pcpvt_small_v0": "pcpvt_small", "pcpvt_base_v0": "pcpvt_base", "pcpvt_large_v0": "pcpvt_large",
    "alt_gvt_small": "svt_small", "alt_gvt_base": "svt_base", "alt_gvt_large": "svt_large",
}

_SEED_URL = "https://storage.googleapis.com/huawei-mindspore-hk/Twins/converted/{}_new.ckpt"


def _cfg(url="", **kwargs):
    return {
        "url": url,
        "sha256": None,
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "first_conv": "patch_embeds.0.proj",
        "classifier": "head",
        **kwargs,
    }


default_cfgs = {
    "pcpvt_small": _cfg(_SEED_URL.format("pcpvt_s")),
    "pcpvt_base": _cfg(_SEED_URL.format("pcpvt_b")),
    "pcpvt_large": _cfg(_SEED_URL.format("pcpvt_l")),
    "svt_small": _cfg(_SEED_URL.format("svt_s")),
    "svt_base": _cfg(_SEED_URL.format("svt_b")),
    "svt_large": _cfg(_SEED_URL.format("svt_l")),
}


class PosConv(nn.Cell):
    """PEG: depthwise 3x3 conv on the token grid, added back as a residual."""

    def __init__(self, dim):
        super().__init__()
        conv = nn.Conv2d(dim, dim, 3, stride=1, pad_mode="pad", padding=1, group=dim, has_bias=True,
                         weight_init=conv_init((dim, 1, 3, 3), groups=dim), bias_init="zeros")
        self.proj = nn.SequentialCell([conv])
        self.fused = peg_op() if fused_kernels_available() else None

    def construct(self, x):
        if self.fused is not None and x.dtype == mstype.float32:
            return self.fused(x, self.proj[0].weight, self.proj[0].bias)
        return self.proj(x.transpose(0, 3, 1, 2)).transpose(0, 2, 3, 1) + x


class Attention(nn.Cell):
    """Multi-head attention core shared by GSA and LSA. In fp32 on CPU one fused kernel (``fused``) attends on the
    projected tokens directly; otherwise q/k/v are projected from weight slices and split into heads. Subclasses'
    ``construct(x, residual=None)`` add ``residual`` to the output where given (inference)."""

    def __init__(self, dim, num_heads, attn_drop, proj_drop, fused_op):
        super().__init__()
        if dim % num_heads:
            raise InvalidValueError(f"dim {dim} is not divisible by num_heads {num_heads}.")
        self.dim = dim
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.proj = Linear(dim, dim)
        self.attn_drop = dropout(attn_drop)
        self.proj_drop = dropout(proj_drop)
        self.dense = RowLinear()
        self.scores = ops.BatchMatMul(transpose_b=True)
        self.weighted_sum = ops.BatchMatMul()
        # The kernel has no dropout of the attention weights.
        self.fused = fused_op() if fused_kernels_available() and attn_drop == 0 else None
        self.head_count = Tensor([num_heads], mstype.float32)

    def runs_fused(self, x):
        return self.fused is not None and x.dtype == mstype.float32

    def heads(self, x, weight, bias):
        """Project (N, L, C) tokens with ``weight``/``bias`` and split into (N, heads, L, head_dim)."""
        n, length, c = x.shape
        y = self.dense(x.reshape(n * length, c), weight, bias)
        return y.reshape(n, length, self.num_heads, -1).transpose(0, 2, 1, 3)

    def attend(self, q, k, v):
        """Scaled softmax attention; q is already scaled. Returns (N, L, C)."""
        attn = self.attn_drop(ops.softmax(self.scores(q, k), axis=-1))
        out = self.weighted_sum(attn, v)
        n, _, length, _ = out.shape
        return out.transpose(0, 2, 1, 3).reshape(n, length, self.dim)

    def output(self, x, residual=None):
        """The projection of the attended tokens ``x``: with its dropout, or plus ``residual`` where given (inference,
        where dropout is off), the add then in the projection's kernel."""
        if residual is None:
            return self.proj_drop(self.proj(x))
        return self.proj(x, residual)


class GlobalSubsampledAttention(Attention):
    """GSA: every token attends to a grid sub-sampled by a ``sr_ratio`` strided conv."""

    def __init__(self, dim, num_heads, sr_ratio, attn_drop=0.0, proj_drop=0.0):
        super().__init__(dim, num_heads, attn_drop, proj_drop, attention_op)
        self.q = Linear(dim, dim)
        self.kv = Linear(dim, 2 * dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = PatchConv(dim, dim, sr_ratio)
            self.norm = LayerNorm(dim, eps=1e-5)

    def construct(self, x, residual=None):
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        if self.sr_ratio > 1:
            x = self.norm(self.sr(x))
        _, kh, kw, _ = x.shape
        x = x.reshape(b, kh * kw, c)
        if self.runs_fused(x):
            out = self.fused(self.q(tokens), self.kv(x), self.head_count)
        else:
            q = self.heads(tokens, self.q.weight * self.scale, self.q.bias * self.scale)
            k = self.heads(x, self.kv.weight[:c], self.kv.bias[:c])
            v = self.heads(x, self.kv.weight[c:], self.kv.bias[c:])
            out = self.attend(q, k, v)
        return self.output(out.reshape(b, h, w, c), residual)


class LocallyGroupedAttention(Attention):
    """LSA: attention inside non-overlapping windows; the grid is zero-padded to whole windows, unmasked,
    exactly as the reference does."""

    def __init__(self, dim, num_heads, window_size, attn_drop=0.0, proj_drop=0.0):
        super().__init__(dim, num_heads, attn_drop, proj_drop, packed_attention_op)
        self.qkv = Linear(dim, 3 * dim)
        self.window_size = window_size
        # MindSpore's CPU Transpose moves the 6-D window partition element by element.
        self.fused_partition, self.fused_merge = window_ops(window_size) if fused_kernels_available() else (None, None)

    def attend_windows(self, windows):
        """(windows, ws * ws, C) tokens attending within each window, same shape out."""
        if self.runs_fused(windows):
            return self.fused(self.qkv(windows), self.head_count)
        c, weight, bias = self.dim, self.qkv.weight, self.qkv.bias
        q = self.heads(windows, weight[:c] * self.scale, bias[:c] * self.scale)
        k = self.heads(windows, weight[c:2 * c], bias[c:2 * c])
        v = self.heads(windows, weight[2 * c:], bias[2 * c:])
        return self.attend(q, k, v)

    def construct(self, x, residual=None):
        b, h, w, c = x.shape
        ws = self.window_size
        pad_b, pad_r = (-h) % ws, (-w) % ws
        x = pad_grid(x, pad_b, pad_r)
        if self.fused_partition is not None and x.dtype == mstype.float32:
            out = self.fused_merge(self.attend_windows(self.fused_partition(x)), x)
        else:
            nh, nw = (h + pad_b) // ws, (w + pad_r) // ws
            windows = x.reshape(b, nh, ws, nw, ws, c).transpose(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, ws * ws, c)
            out = self.attend_windows(windows).reshape(b, nh, nw, ws, ws, c).transpose(0, 1, 3, 2, 4, 5)
            out = out.reshape(b, nh * ws, nw * ws, c)
        return self.output(crop_grid(out, h, w), residual)


class Block(nn.Cell):
    """Pre-norm transformer block with GSA (window_size 0) or LSA attention."""

    def __init__(self, dim, num_heads, mlp_ratio, sr_ratio, window_size, proj_drop=0.0, attn_drop=0.0,
                 drop_path=0.0):
        super().__init__()
        self.norm1 = LayerNorm(dim, eps=1e-6)
        if window_size > 1:
            self.attn = LocallyGroupedAttention(dim, num_heads, window_size, attn_drop, proj_drop)
        else:
            self.attn = GlobalSubsampledAttention(dim, num_heads, sr_ratio, attn_drop, proj_drop)
        self.drop_path1 = drop_path_layer(drop_path)
        self.norm2 = LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), proj_drop)
        self.drop_path2 = drop_path_layer(drop_path)

    def construct(self, x):
        if not self.training:  # no drop path nor dropout: the residual adds run inside the projection and MLP kernels
            x = self.attn(self.norm1(x), x)
            return self.mlp(self.norm2(x), x)
        x = self.drop_path1(self.attn(self.norm1(x)), x)
        return self.drop_path2(self.mlp(self.norm2(x)), x)


class Twins(nn.Cell):
    """Twins classifier (or, with ``features_only``, a backbone returning NCHW maps at strides 4-32).

    ``window_size`` 0 builds PCPVT (GSA in every block); > 1 builds SVT (LSA in even blocks, GSA in odd).
    Accepts any input whose stride-32 grid is at least 1x1, square or not.
    """

    def __init__(self, embed_dims, num_heads, mlp_ratios, depths, window_size=0, sr_ratios=(8, 4, 2, 1),
                 in_channels=3, num_classes=1000, drop_rate=0.0, pos_drop_rate=0.0, proj_drop_rate=0.0,
                 attn_drop_rate=0.0, drop_path_rate=0.0, features_only=False, out_indices=(0, 1, 2, 3)):
        super().__init__()
        num_stages = len(depths)
        if any(i not in range(num_stages) for i in out_indices):
            raise InvalidValueError(f"out_indices {tuple(out_indices)} must be stage indices in 0..{num_stages - 1}.")
        self.num_classes = num_classes
        self.num_features = embed_dims[-1]
        self.stage_channels = tuple(embed_dims)
        self.features_only = features_only
        self.out_indices = tuple(out_indices)
        self.feature_info = [dict(num_chs=embed_dims[i], reduction=4 * 2 ** i, module=f"blocks.{i}")
                             for i in self.out_indices]

        in_dims = (in_channels,) + tuple(embed_dims[:-1])
        patch_sizes = (4,) + (2,) * (num_stages - 1)
        self.patch_embeds = nn.CellList([PatchEmbed(*args) for args in zip(in_dims, embed_dims, patch_sizes)])
        self.pos_drops = nn.CellList([dropout(pos_drop_rate) for _ in depths])
        drop_path_rates = iter(np.linspace(0, drop_path_rate, sum(depths)).tolist())
        self.blocks = nn.CellList([
            nn.CellList([
                Block(embed_dims[s], num_heads[s], mlp_ratios[s], sr_ratios[s],
                      window_size if i % 2 == 0 else 0, proj_drop_rate, attn_drop_rate, next(drop_path_rates))
                for i in range(depths[s])
            ])
            for s in range(num_stages)
        ])
        self.pos_block = nn.CellList([PosConv(dim) for dim in embed_dims])
        self.norm = LayerNorm(self.num_features, eps=1e-6)
        self.head_drop = dropout(drop_rate)
        self.head = Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        number_random_streams(self)

    def get_classifier(self):
        return self.head

    def reset_classifier(self, num_classes):
        self.num_classes = num_classes
        self.head = Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        renew_graph_cache(self)  # the next call compiles the new head

    def no_weight_decay(self):
        """Parameter names the reference exempts from weight decay besides norms and biases: the PEG convs."""
        return {name for name, _ in self.pos_block.parameters_and_names("pos_block")}

    def group_matcher(self, coarse=False):
        """Layer groups for layer-wise lr decay, as timm's models declare them. Coarse: timm's dict of regexes,
        one group per stage. Fine: a function from parameter name to its block's ``(stage, index)``, where a
        stage's patch embedding and PEG train with the block that runs before them and the final norm and head
        (``inf``) come last."""
        if coarse:
            return dict(stem=r"^patch_embeds\.0\.", blocks=[(r"^(?:blocks|patch_embeds|pos_block)\.(\d+)\.", None)])
        depths = [len(stage) for stage in self.blocks]

        def block_of(name):
            kind, _, rest = name.partition(".")
            index = rest.split(".", 2)
            if kind == "blocks":
                return int(index[0]), int(index[1])
            if kind in ("patch_embeds", "pos_block"):
                stage = int(index[0])
                return (stage - 1, depths[stage - 1] - 1) if stage > 0 else (-1,)
            return (float("inf"),)

        return block_of

    def export_form(self, file_format):
        """Context manager: the model as ``file_format`` (MINDIR, ONNX, AIR) can hold it (see layers.export_form)."""
        return export_form(self, file_format)

    def forward_stages(self, x):
        """Per-stage outputs as channels-last grids (B, H, W, C), from an NCHW image batch."""
        x = x.transpose(0, 2, 3, 1)
        outputs = ()
        for s in range(len(self.blocks)):
            x = self.pos_drops[s](self.patch_embeds[s](x))
            for i, block in enumerate(self.blocks[s]):
                x = block(x)
                if i == 0:
                    x = self.pos_block[s](x)
            outputs += (x,)
        return outputs

    def forward_intermediates(self, x, indices):
        """The outputs of stages ``indices`` as NCHW maps (strides 4, 8, 16, 32), from an NCHW image batch."""
        stages = self.forward_stages(x)
        maps = ()
        for i in indices:
            maps += (stages[i].transpose(0, 3, 1, 2),)
        return maps

    def freeze_stages(self, num_stages):
        """Finetuning a backbone: the patch embedding (``num_stages`` 0) or it and the first ``num_stages`` stages
        (each with its patch embedding and PEG) get no gradient, hence no optimizer state and no weight decay;
        -1 freezes nothing. Returns the frozen parameters' names."""
        if not -1 <= num_stages <= len(self.blocks):
            raise InvalidValueError(f"freeze_stages {num_stages} must lie in -1..{len(self.blocks)} (-1: none, "
                                    "0: the patch embedding, K: it and the first K stages).")
        prefixes = ["patch_embeds.0."] if num_stages >= 0 else []
        prefixes += [f"{part}.{s}." for s in range(num_stages) for part in ("patch_embeds", "pos_block", "blocks")]
        frozen = [p for p in self.get_parameters() if p.name.startswith(tuple(prefixes))]
        for param in frozen:
            param.requires_grad = False
        return [p.name for p in frozen]

    def forward_features(self, x):
        """Normalised tokens of the last stage, (B, N, C)."""
        x = self.forward_stages(x)[-1]
        b, h, w, c = x.shape
        return self.norm(x.reshape(b, h * w, c))

    def forward_head(self, x, pre_logits=False):
        x = self.head_drop(x.mean(axis=1))
        return x if pre_logits else self.head(x)

    def construct(self, x):
        if self.features_only:
            return self.forward_intermediates(x, self.out_indices)
        return self.forward_head(self.forward_features(x))


def _create_twins(variant, pretrained=False, **kwargs):
    return build_model_with_cfg(Twins, variant, pretrained, default_cfgs[variant], **TWINS_VARIANTS[variant],
                                **kwargs)


@register_model
def pcpvt_small(pretrained=False, **kwargs):
    return _create_twins("pcpvt_small", pretrained, **kwargs)


@register_model
def pcpvt_base(pretrained=False, **kwargs):
    return _create_twins("pcpvt_base", pretrained, **kwargs)


@register_model
def pcpvt_large(pretrained=False, **kwargs):
    return _create_twins("pcpvt_large", pretrained, **kwargs)


@register_model
def svt_small(pretrained=False, **kwargs):
    return _create_twins("svt_small", pretrained, **kwargs)


@register_model
def svt_base(pretrained=False, **kwargs):
    return _create_twins("svt_base", pretrained, **kwargs)


@register_model
def svt_large(pretrained=False, **kwargs):
    return _create_twins("svt_large", pretrained, **kwargs)


for _alias, _name in TWINS_ALIASES.items():
    register_model_alias(_alias, _name)
