"""MindCV users' model-side calls (its docs, examples/finetune and tests/modules) work on the Twins models."""
import os

import numpy as np
import pytest

import mindspore as ms
from mindspore import nn

import mindcv
from mindcv.foundation.errors import InvalidValueError
from mindcv.models import (DropPath, FeatureExtractWrapper, Identity, create_model, get_pretrained_cfg_value,
                           is_model, is_model_in_modules, load_pretrained)
from mindcv.utils import save_checkpoint_atomic


def _images(size=64, batch=2):
    return ms.Tensor(np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32))


def test_registry_queries_as_mindcv():
    assert mindcv.is_model is is_model and is_model("svt_small") and not is_model("resnet50")
    assert is_model_in_modules("svt_small", ["twins"]) and not is_model_in_modules("svt_small", ["resnet"])
    assert get_pretrained_cfg_value("pcpvt_base", "input_size") == (3, 224, 224)
    assert get_pretrained_cfg_value("pcpvt_base", "no_such_key") is None
    assert get_pretrained_cfg_value("resnet50", "url") is None
    assert mindcv.list_modules() == ["twins"]  # asking about other modules registers nothing


def test_create_model_drops_options_given_as_none():
    # MindCV's train.py passes drop_rate=None and drop_path_rate=None when the config leaves them unset.
    model = create_model("svt_small", num_classes=3, drop_rate=None, drop_path_rate=None, in_channels=3)
    assert model.num_classes == 3 and isinstance(model.head_drop, nn.Identity)


def test_layers_importable_from_models():
    assert issubclass(DropPath, nn.Cell) and Identity is nn.Identity
    x = ms.Tensor(np.ones((4, 2, 3), np.float32))
    assert np.array_equal(Identity()(x).asnumpy(), x.asnumpy())


def test_feature_extract_wrapper_gives_the_backbone_maps():
    model = create_model("svt_small", num_classes=0)
    model.set_train(False)
    wrapped = FeatureExtractWrapper(model, out_indices=[1, 3])
    assert wrapped.out_channels == [128, 512]
    assert [p.name for p in wrapped.get_parameters()] == [p.name for p in model.get_parameters()]
    maps = wrapped(_images())
    assert [m.shape for m in maps] == [(2, 128, 8, 8), (2, 512, 2, 2)]
    backbone = create_model("svt_small", features_only=True, out_indices=(1, 3))
    ms.load_param_into_net(backbone, {p.name: p for p in model.get_parameters()})
    backbone.set_train(False)
    for ours, reference in zip(maps, backbone(_images())):
        np.testing.assert_allclose(ours.asnumpy(), reference.asnumpy(), atol=1e-6)
    with pytest.raises(InvalidValueError, match="out_indices"):
        FeatureExtractWrapper(model, out_indices=[4])


def test_load_pretrained_with_mindcv_signature_and_filter(tmp_path):
    model = create_model("svt_small", num_classes=10)
    cfg = dict(model.default_cfg, url="https://example.invalid/weights/svt_finetune.ckpt")
    published = {p.name: np.full(p.shape, 0.25, np.float32) for p in model.get_parameters()}
    cache = os.environ["MINDCV_CACHE_DIR"]
    save_checkpoint_atomic(published, os.path.join(cache, "svt_finetune.ckpt"))  # already downloaded
    seen = []

    def drop_head(param_dict):
        seen.append(len(param_dict))
        return {k: v for k, v in param_dict.items() if not k.startswith("head.")}

    head_before = model.head.weight.asnumpy().copy()
    load_pretrained(model, cfg, num_classes=10, in_channels=3, filter_fn=drop_head)
    assert seen == [len(published)]
    assert np.all(model.blocks[2][3].mlp.fc1.weight.asnumpy() == 0.25)
    assert np.array_equal(model.head.weight.asnumpy(), head_before)  # filtered out: left as it was
    with pytest.raises(InvalidValueError, match="num_classes=1000, but the model was built with num_classes=10"):
        load_pretrained(model, cfg, num_classes=1000)


def test_freeze_stages_names_what_it_freezes():
    model = create_model("pcpvt_small", num_classes=4)
    assert model.freeze_stages(-1) == [] and all(p.requires_grad for p in model.get_parameters())
    stem = create_model("pcpvt_small", num_classes=4).freeze_stages(0)
    assert stem == ["patch_embeds.0.proj.weight", "patch_embeds.0.proj.bias", "patch_embeds.0.norm.gamma",
                    "patch_embeds.0.norm.beta"]
    frozen = set(model.freeze_stages(2))
    trainable = {p.name for p in model.trainable_params()}
    assert frozen and not frozen & trainable
    assert {"blocks.1.3.mlp.fc2.bias", "pos_block.1.proj.0.weight", "patch_embeds.1.proj.weight"} <= frozen
    assert {"patch_embeds.2.proj.weight", "blocks.2.0.attn.q.weight", "head.weight"} <= trainable
    with pytest.raises(InvalidValueError, match="freeze_stages 5"):
        model.freeze_stages(5)


def test_frozen_parameters_get_no_optimizer_state_and_no_weight_decay():
    model = create_model("svt_small", num_classes=4)
    frozen = set(model.freeze_stages(1))
    optimizer = mindcv.create_optimizer(model, "adamw", lr=0.1, weight_decay=0.05,
                                        weight_decay_filter="norm_and_bias")
    assert not frozen & {p.name for p in optimizer.parameters}
    assert not any(name.split(".", 1)[-1] in frozen for name, _ in optimizer.parameters_and_names()
                   if not name.startswith("learning_rate"))
