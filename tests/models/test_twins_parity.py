"""Logits, stage outputs and parameter counts equal the reference (timm's Twins, same weights)."""
import numpy as np
import pytest
import torch

import mindspore as ms

from mindcv.models import create_model
from mindcv.utils import save_checkpoint_atomic

from ..helpers import shared_folder
from .reference import (VARIANTS, convert_reference, random_images, reference_logits, reference_model,
                        seed_port_name)

TOLERANCE = 1e-4
# 224 is the released size; 256 and 200x264 are not multiples of 32*7, so LSA pads and GSA sub-sampling floors.
SIZES = ((224, 224), (256, 256), (200, 264))
PARAM_COUNTS = {
    "pcpvt_small": 24_106_216, "pcpvt_base": 43_828_456, "pcpvt_large": 60_989_672,
    "svt_small": 24_060_776, "svt_base": 56_070_952, "svt_large": 99_271_400,
}


@pytest.fixture(scope="module", params=VARIANTS)
def converted(request, tmp_path_factory):
    """(name, reference model, our model loaded from the converter's output)."""
    name = request.param
    reference = reference_model(name)
    with shared_folder(tmp_path_factory, name) as folder:
        model = create_model(name, checkpoint_path=convert_reference(reference, folder))
        model.set_train(False)
        yield name, reference, model


def _max_diff(model, reference, images):
    return float(np.abs(model(ms.Tensor(images)).asnumpy() - reference_logits(reference, images)).max())


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_logits_match_reference(converted, size):
    name, reference, model = converted
    diff = _max_diff(model, reference, random_images(2, *size))
    print(f"max|dlogits| {name} {size[0]}x{size[1]}: {diff:.3g}")
    assert diff <= TOLERANCE


def test_parameter_count_equals_reference(converted):
    name, reference, model = converted
    ours = sum(p.size for p in model.get_parameters())
    assert ours == sum(p.numel() for p in reference.parameters()) == PARAM_COUNTS[name]


@pytest.mark.parametrize("name", ["svt_small", "pcpvt_small"])
def test_pynative_mode_matches_reference(name, tmp_path, pynative_mode):
    reference = reference_model(name, seed=1)
    model = create_model(name, checkpoint_path=convert_reference(reference, tmp_path))
    model.set_train(False)
    assert _max_diff(model, reference, random_images(1, 200, 264, seed=3)) <= TOLERANCE


@pytest.mark.parametrize("name", ["svt_small", "pcpvt_small"])
def test_seed_port_checkpoint_loads_to_same_logits(name, tmp_path):
    reference = reference_model(name, seed=2)
    seed_named = {seed_port_name(k): v.numpy() for k, v in reference.state_dict().items()}
    assert any(k.startswith("0.3.") for k in seed_named)
    save_checkpoint_atomic(seed_named, str(tmp_path / f"{name}_new.ckpt"))
    model = create_model(name, checkpoint_path=str(tmp_path / f"{name}_new.ckpt"))
    model.set_train(False)
    assert _max_diff(model, reference, random_images(2, 224, 224)) <= TOLERANCE


@pytest.mark.parametrize("name", ["svt_small", "pcpvt_small"])
def test_features_only_returns_reference_stage_maps(name, tmp_path):
    reference = reference_model(name, seed=4)
    backbone = create_model(name, checkpoint_path=convert_reference(reference, tmp_path), features_only=True)
    backbone.set_train(False)
    images = random_images(1, 96, 128)
    maps = backbone(ms.Tensor(images))
    with torch.no_grad():
        expected = reference.forward_intermediates(torch.from_numpy(images), intermediates_only=True)
    assert [m.shape for m in maps] == [tuple(e.shape) for e in expected]
    assert [m.shape[2:] for m in maps] == [(96 // s, 128 // s) for s in (4, 8, 16, 32)]
    assert [info["reduction"] for info in backbone.feature_info] == [4, 8, 16, 32]
    for ours, ref in zip(maps, expected):
        assert np.abs(ours.asnumpy() - ref.numpy()).max() <= TOLERANCE


def test_out_indices_selects_stages():
    backbone = create_model("svt_small", features_only=True, out_indices=(1, 3))
    backbone.set_train(False)
    maps = backbone(ms.Tensor(random_images(1, 64, 64)))
    assert [m.shape for m in maps] == [(1, 128, 8, 8), (1, 512, 2, 2)]
