"""The converter CLI: reference weights in any packaging -> our checkpoint, reporting what does not fit."""
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch

from mindcv.models import create_model
from mindcv.deploy.convert import convert_checkpoint, infer_twins_variant, read_state_dict
from mindcv.utils import CheckpointError

from ..models.reference import reference_model


@pytest.fixture(scope="module")
def reference_state():
    return reference_model("svt_small", num_classes=10).state_dict()


def _convert_cli(*args):
    return subprocess.run([sys.executable, "-m", "mindcv.models.convert", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def _assert_loaded_equal(ckpt, reference_state, name="svt_small"):
    model = create_model(name, num_classes=10, checkpoint_path=str(ckpt))
    loaded = {p.name: p.asnumpy() for p in model.get_parameters()}
    assert np.array_equal(loaded["blocks.2.4.attn.qkv.weight"], reference_state["blocks.2.4.attn.qkv.weight"].numpy())
    assert np.array_equal(loaded["blocks.2.5.attn.norm.beta"], reference_state["blocks.2.5.attn.norm.bias"].numpy())
    assert np.array_equal(loaded["pos_block.3.proj.0.weight"], reference_state["pos_block.3.proj.0.weight"].numpy())


def test_cli_converts_official_checkpoint_wrapped_under_model(reference_state, tmp_path):
    torch.save({"model": reference_state, "epoch": 299}, tmp_path / "official.pth")
    result = _convert_cli(tmp_path / "official.pth", tmp_path / "out.ckpt")
    assert result.returncode == 0, result.stderr
    assert "svt_small, 290 of 290 parameters" in result.stdout
    _assert_loaded_equal(tmp_path / "out.ckpt", reference_state)


def test_cli_reports_unplaced_and_unfilled_keys_and_fails(reference_state, tmp_path):
    state = dict(reference_state, cls_token=torch.zeros(1, 1, 64))
    del state["blocks.1.1.mlp.fc2.bias"]
    torch.save(state, tmp_path / "odd.pth")
    result = _convert_cli(tmp_path / "odd.pth", tmp_path / "out.ckpt", "--model", "twins_svt_small")
    assert result.returncode == 1
    assert "1 source keys not placed:\n  cls_token" in result.stdout
    assert "1 model parameters left unfilled:\n  blocks.1.1.mlp.fc2.bias" in result.stdout
    assert not (tmp_path / "out.ckpt").exists()
    partial = _convert_cli(tmp_path / "odd.pth", tmp_path / "out.ckpt", "--allow-partial")
    assert partial.returncode == 0
    assert "289 of 290 parameters" in partial.stdout


def test_safetensors_and_seed_output_roundtrip(reference_state, tmp_path):
    safetensors.torch.save_file(reference_state, str(tmp_path / "model.safetensors"))
    convert_checkpoint(str(tmp_path / "model.safetensors"), str(tmp_path / "seed.ckpt"), to="seed", log=lambda *_: None)
    seed_names = set(read_state_dict(str(tmp_path / "seed.ckpt")))
    assert "0.2.9.attn.qkv.weight" in seed_names and not any(k.startswith("blocks.") for k in seed_names)
    _assert_loaded_equal(tmp_path / "seed.ckpt", reference_state)
    convert_checkpoint(str(tmp_path / "seed.ckpt"), str(tmp_path / "ours.ckpt"), log=lambda *_: None)
    assert "blocks.2.8.attn.qkv.weight" in read_state_dict(str(tmp_path / "ours.ckpt"))


def test_variant_is_inferred_from_shapes():
    for name in ("svt_small", "pcpvt_small", "svt_base"):
        state = {p.name: p for p in create_model(name).get_parameters()}
        assert infer_twins_variant(state) == name


def test_unknown_architecture_and_extension_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="matches no Twins variant"):
        infer_twins_variant({"patch_embeds.0.proj.weight": np.zeros((48, 3, 4, 4))})
    (tmp_path / "weights.h5").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"Unsupported checkpoint extension '\.h5'"):
        read_state_dict(str(tmp_path / "weights.h5"))
