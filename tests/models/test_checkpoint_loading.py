"""create_model(checkpoint_path=...) loads strictly by name and explains every mismatch."""
import logging
import os

import numpy as np
import pytest

import mindspore as ms

from mindcv.models import create_model
from mindcv.models.naming import mindcv_to_seed_name, seed_to_mindcv_name, torch_to_mindcv_name
from mindcv.utils import CheckpointError, save_checkpoint_atomic
from mindcv.foundation.checkpoint_io import read_checkpoint


@pytest.fixture(scope="module")
def svt_state():
    model = create_model("svt_small", num_classes=10)
    return {p.name: p.asnumpy() for p in model.get_parameters()}


def _save(state, path):
    save_checkpoint_atomic(state, str(path))
    return str(path)


def _loaded(model):
    return {p.name: p.asnumpy() for p in model.get_parameters()}


def test_roundtrip_loads_every_parameter(svt_state, tmp_path):
    model = create_model("svt_small", num_classes=10, checkpoint_path=_save(svt_state, tmp_path / "a.ckpt"))
    loaded = _loaded(model)
    assert all(np.array_equal(loaded[k], v) for k, v in svt_state.items())


def test_drop_path_call_counts_are_loaded_where_the_model_has_them_and_optional(svt_state, tmp_path):
    trained = create_model("svt_small", num_classes=10, drop_path_rate=0.2)
    trained.blocks[3][0].drop_path1.random_step.set_data(ms.Tensor(41, ms.int64))
    path = _save({p.name: p.asnumpy() for p in trained.get_parameters()}, tmp_path / "trained.ckpt")
    resumed = create_model("svt_small", num_classes=10, drop_path_rate=0.2, checkpoint_path=path)
    assert int(resumed.blocks[3][0].drop_path1.random_step.asnumpy()) == 41
    create_model("svt_small", num_classes=10, checkpoint_path=path)  # for inference: no counters to load
    converted = _save(svt_state, tmp_path / "converted.ckpt")  # weights without counters
    assert int(create_model("svt_small", num_classes=10, drop_path_rate=0.2, checkpoint_path=converted)
               .blocks[3][0].drop_path1.random_step.asnumpy()) == 0


def test_missing_parameters_are_named(svt_state, tmp_path):
    state = {k: v for k, v in svt_state.items() if not k.startswith("blocks.2.3.")}
    with pytest.raises(CheckpointError, match=r"does not fit svt_small: missing \(\d+\): blocks\.2\.3\.attn"):
        create_model("svt_small", num_classes=10, checkpoint_path=_save(state, tmp_path / "a.ckpt"))


def test_unexpected_parameters_are_named(svt_state, tmp_path):
    state = dict(svt_state, **{"blocks.9.0.mlp.fc1.weight": np.zeros((2, 2), np.float32)})
    with pytest.raises(CheckpointError, match=r"unexpected \(1\): blocks\.9\.0\.mlp\.fc1\.weight"):
        create_model("svt_small", num_classes=10, checkpoint_path=_save(state, tmp_path / "a.ckpt"))


def test_other_architecture_is_rejected_with_shape_mismatches(svt_state, tmp_path):
    with pytest.raises(CheckpointError, match=r"does not fit svt_base: .*shape mismatch"):
        create_model("svt_base", num_classes=10, checkpoint_path=_save(svt_state, tmp_path / "a.ckpt"))


def test_other_num_classes_keeps_initialised_head_and_warns(svt_state, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        model = create_model("svt_small", num_classes=3, checkpoint_path=_save(svt_state, tmp_path / "a.ckpt"))
    assert "has 10 classes, the model 3" in caplog.text
    loaded = _loaded(model)
    assert loaded["head.weight"].shape == (3, 512)
    assert np.array_equal(loaded["blocks.3.3.mlp.fc2.weight"], svt_state["blocks.3.3.mlp.fc2.weight"])


def test_training_state_entries_are_ignored_and_ema_copy_selectable(svt_state, tmp_path):
    ema = {f"ema.{k}": v + 1 for k, v in svt_state.items()}
    optimizer = {f"adam_m.{k}": np.zeros_like(v) for k, v in svt_state.items()}
    path = _save({**svt_state, **ema, **optimizer, "global_step": np.array([7], np.int32)}, tmp_path / "a.ckpt")
    plain = _loaded(create_model("svt_small", num_classes=10, checkpoint_path=path))
    averaged = _loaded(create_model("svt_small", num_classes=10, checkpoint_path=path, ema=True))
    assert np.array_equal(plain["norm.gamma"], svt_state["norm.gamma"])
    assert np.array_equal(averaged["norm.gamma"], svt_state["norm.gamma"] + 1)


def test_ema_requested_but_absent(svt_state, tmp_path):
    with pytest.raises(CheckpointError, match="no 'ema.' parameters"):
        create_model("svt_small", num_classes=10, checkpoint_path=_save(svt_state, tmp_path / "a.ckpt"), ema=True)


def test_auto_mapping_strips_wrapper_prefix(svt_state, tmp_path):
    path = _save({f"network.backbone.{k}": v for k, v in svt_state.items()}, tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match="missing"):
        create_model("svt_small", num_classes=10, checkpoint_path=path)
    loaded = _loaded(create_model("svt_small", num_classes=10, checkpoint_path=path, auto_mapping=True))
    assert np.array_equal(loaded["blocks.0.1.attn.kv.weight"], svt_state["blocks.0.1.attn.kv.weight"])


def test_auto_mapping_strips_a_one_level_prefix(svt_state, tmp_path):
    # "backbone.head.weight" ends in a model name, as an optimizer moment "adam_m.head.weight" does; it is
    # a wrapped weight because the checkpoint does not also hold "head.weight".
    path = _save({f"backbone.{k}": v for k, v in svt_state.items()}, tmp_path / "a.ckpt")
    with pytest.raises(CheckpointError, match=r"unexpected \(\d+\): backbone\."):
        create_model("svt_small", num_classes=10, checkpoint_path=path)
    loaded = _loaded(create_model("svt_small", num_classes=10, checkpoint_path=path, auto_mapping=True))
    assert all(np.array_equal(loaded[k], v) for k, v in svt_state.items())


def test_training_state_beside_the_weights_is_ignored(svt_state, tmp_path):
    moments = {f"adam_m.{k}": np.full_like(v, 7.0) for k, v in svt_state.items()}
    path = _save({**svt_state, **moments, "global_step": np.array(3, np.int32)}, tmp_path / "a.ckpt")
    for auto_mapping in (False, True):
        loaded = _loaded(create_model("svt_small", num_classes=10, checkpoint_path=path, auto_mapping=auto_mapping))
        assert all(np.array_equal(loaded[k], v) for k, v in svt_state.items())


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 10])
def test_unreadable_file_is_reported(content, tmp_path):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable MindSpore checkpoint"):
        create_model("svt_small", checkpoint_path=str(path))


def test_truncated_checkpoint_is_reported(svt_state, tmp_path):
    data = open(_save(svt_state, tmp_path / "a.ckpt"), "rb").read()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.ckpt"):
        create_model("svt_small", num_classes=10, checkpoint_path=str(tmp_path / "cut.ckpt"))


def test_missing_file_is_reported():
    with pytest.raises(CheckpointError, match="not found: /nonexistent/w.ckpt"):
        create_model("svt_small", checkpoint_path="/nonexistent/w.ckpt")


@pytest.mark.parametrize("ours, seed", [
    ("blocks.2.9.attn.qkv.weight", "0.2.10.attn.qkv.weight"),
    ("blocks.0.1.attn.sr.weight", "0.2.attn.sr.weight"),
    ("blocks.3.0.norm1.gamma", "0.3.0.norm1.gamma"),
    ("pos_block.2.proj.0.bias", "0.2.1.proj.0.bias"),
    ("pos_block.0.proj.0.weight", "0.1.proj.0.weight"),
    ("patch_embeds.1.norm.beta", "patch_embeds.1.norm.beta"),
])
def test_seed_naming_rule_examples(ours, seed):
    assert mindcv_to_seed_name(ours) == seed
    assert seed_to_mindcv_name(seed) == ours


def test_seed_naming_is_a_bijection_on_every_parameter(svt_state):
    seed_names = [mindcv_to_seed_name(k) for k in svt_state]
    assert len(set(seed_names)) == len(svt_state)
    assert [seed_to_mindcv_name(k) for k in seed_names] == list(svt_state)


def test_torch_layer_norm_names_become_gamma_beta():
    assert torch_to_mindcv_name("blocks.1.0.attn.norm.weight") == "blocks.1.0.attn.norm.gamma"
    assert torch_to_mindcv_name("norm.bias") == "norm.beta"
    assert torch_to_mindcv_name("blocks.1.0.norm2.bias") == "blocks.1.0.norm2.beta"
    assert torch_to_mindcv_name("blocks.1.0.mlp.fc1.bias") == "blocks.1.0.mlp.fc1.bias"


def test_checkpoint_loads_when_free_memory_is_low_but_page_cache_is_reclaimable(svt_state, tmp_path, monkeypatch):
    path = _save(svt_state, tmp_path / "svt.ckpt")
    real_sysconf = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: 1 if name == "SC_AVPHYS_PAGES" else real_sysconf(name))
    assert set(read_checkpoint(path)) == set(svt_state)
    assert set(create_model("svt_small", num_classes=10, checkpoint_path=str(path)).parameters_dict()) == set(svt_state)
    # The workaround is scoped to this package's reads: importing mindcv leaves MindSpore's own check as it is.
    with pytest.raises(Exception, match="exceeds current available memory"):
        ms.load_checkpoint(path)
