"""Model options beyond the reference forward pass: heads, dropout, stochastic depth, input channels."""
import numpy as np
import pytest

import mindspore as ms

from mindcv.models import create_model
from mindcv.models.layers import DropPath, Dropout

from .reference import random_images


def _images(batch=2, size=64, channels=3, seed=0):
    return ms.Tensor(np.random.RandomState(seed).randn(batch, channels, size, size).astype(np.float32))


def test_drop_path_rates_rise_linearly_over_all_blocks():
    model = create_model("svt_small", drop_path_rate=0.3)
    rates = {name: cell.drop_prob for name, cell in model.cells_and_names() if isinstance(cell, DropPath)}
    blocks = [f"blocks.{s}.{i}" for s, depth in enumerate((2, 2, 10, 4)) for i in range(depth)]
    expected = np.linspace(0, 0.3, len(blocks))
    assert f"{blocks[0]}.drop_path1" not in rates
    for block, rate in zip(blocks[1:], expected[1:]):
        assert rates[f"{block}.drop_path1"] == rates[f"{block}.drop_path2"] == pytest.approx(rate)


def test_drop_path_is_active_in_training_and_inert_in_eval():
    drop = DropPath(0.5)
    x = ms.Tensor(np.ones((64, 3, 4), np.float32))
    drop.set_train(True)
    out = drop(x).asnumpy()
    per_sample = out.reshape(64, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()
    assert 5 < (per_sample[:, 0] == 0).sum() < 59
    drop.set_train(False)
    assert (drop(x).asnumpy() == 1).all()


def test_model_with_drop_path_is_random_in_training_deterministic_in_eval():
    model = create_model("svt_small", num_classes=10, drop_path_rate=0.5)
    x = _images()
    model.set_train(True)
    assert not np.allclose(model(x).asnumpy(), model(x).asnumpy())
    model.set_train(False)
    assert np.array_equal(model(x).asnumpy(), model(x).asnumpy())


def test_num_classes_zero_gives_pooled_features_equal_to_pre_logits():
    features = create_model("pcpvt_small", num_classes=0)
    features.set_train(False)
    x = _images()
    pooled = features(x).asnumpy()
    assert pooled.shape == (2, 512)
    tokens = features.forward_features(x)
    assert np.allclose(features.forward_head(tokens, pre_logits=True).asnumpy(), pooled, atol=1e-5)
    assert np.allclose(tokens.asnumpy().mean(axis=1), pooled, atol=1e-5)


def test_reset_classifier_replaces_head():
    model = create_model("svt_small")
    model.reset_classifier(7)
    assert model.get_classifier().weight.shape == (7, 512)
    assert model.get_classifier().weight.name == "head.weight"
    model.set_train(False)
    assert model(_images()).shape == (2, 7)
    model.reset_classifier(0)
    assert model(_images()).shape == (2, 512)


def test_single_channel_model_from_rgb_weights_equals_rgb_model_on_gray_images(tmp_path):
    rgb = create_model("pcpvt_small", num_classes=5)
    ms.save_checkpoint(rgb, str(tmp_path / "rgb.ckpt"))
    gray = create_model("pcpvt_small", num_classes=5, in_channels=1, checkpoint_path=str(tmp_path / "rgb.ckpt"))
    rgb.set_train(False)
    gray.set_train(False)
    x = random_images(2, 64, 64)[:, :1]
    expected = rgb(ms.Tensor(np.repeat(x, 3, axis=1))).asnumpy()
    assert np.abs(gray(ms.Tensor(x)).asnumpy() - expected).max() < 1e-4


def test_more_input_channels_repeat_rgb_weights_rescaled(tmp_path):
    rgb = create_model("svt_small", num_classes=5)
    ms.save_checkpoint(rgb, str(tmp_path / "rgb.ckpt"))
    five = create_model("svt_small", num_classes=5, in_channels=5, checkpoint_path=str(tmp_path / "rgb.ckpt"))
    w_rgb = rgb.patch_embeds[0].proj.weight.asnumpy()
    w_five = five.patch_embeds[0].proj.weight.asnumpy()
    assert w_five.shape == (64, 5, 4, 4)
    assert np.allclose(w_five, np.concatenate([w_rgb, w_rgb[:, :2]], axis=1) * 3 / 5)
    five.set_train(False)
    assert five(_images(channels=5)).shape == (2, 5)


@pytest.mark.parametrize("name", ["svt_small", "pcpvt_small"])
def test_smallest_input_whose_stage_grids_are_one(name):
    model = create_model(name, num_classes=3)
    model.set_train(False)
    assert model(_images(size=32)).shape == (2, 3)


def test_dropout_rates_are_wired_to_the_reference_places():
    model = create_model("svt_small", drop_rate=0.1, proj_drop_rate=0.2, attn_drop_rate=0.3, pos_drop_rate=0.4)
    probs = {name: cell.p for name, cell in model.cells_and_names() if isinstance(cell, Dropout)}
    assert probs["head_drop"] == pytest.approx(0.1)
    assert probs["blocks.0.0.mlp.drop"] == pytest.approx(0.2)
    assert probs["blocks.0.0.attn.proj_drop"] == pytest.approx(0.2)
    assert probs["blocks.0.0.attn.attn_drop"] == pytest.approx(0.3)
    assert probs["pos_drops.0"] == pytest.approx(0.4)
