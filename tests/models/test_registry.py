import pytest

import mindcv
from mindcv import models
from mindcv.models import (create_model, get_pretrained_cfg, is_model, is_model_pretrained, list_models, list_modules,
                           model_entrypoint)
from mindcv.utils import UnknownNameError

OURS = ["pcpvt_base", "pcpvt_large", "pcpvt_small", "svt_base", "svt_large", "svt_small"]


def test_list_models_shows_each_model_once_under_our_name():
    assert list_models() == OURS
    assert list_models("svt*") == ["svt_base", "svt_large", "svt_small"]
    assert list_models(["*small"], exclude_filters="pcpvt*") == ["svt_small"]
    assert list_models(module="twins") == OURS
    assert list_models(pretrained=True) == OURS
    assert list_modules() == ["twins"]


@pytest.mark.parametrize("alias, name", [("twins_svt_small", "svt_small"), ("alt_gvt_large", "svt_large"),
                                         ("pcpvt_base_v0", "pcpvt_base"), ("twins_pcpvt_small", "pcpvt_small")])
def test_other_libraries_names_are_aliases(alias, name):
    assert is_model(alias)
    assert model_entrypoint(alias) is model_entrypoint(name)
    assert create_model(alias, num_classes=3).default_cfg["architecture"] == name


def test_unknown_model_lists_close_names():
    with pytest.raises(RuntimeError, match=r"Unknown model 'svt_smal'.*Did you mean: svt_small") as info:
        create_model("svt_smal")
    assert isinstance(info.value, UnknownNameError)
    assert not is_model("svt_smal")


def test_default_cfg_describes_the_released_weights():
    cfg = get_pretrained_cfg("svt_small")
    assert cfg["url"].endswith("/Twins/converted/svt_s_new.ckpt")
    assert (cfg["input_size"], cfg["crop_pct"], cfg["interpolation"]) == ((3, 224, 224), 0.9, "bicubic")
    assert (cfg["first_conv"], cfg["classifier"]) == ("patch_embeds.0.proj", "head")
    assert is_model_pretrained("alt_gvt_small")


def test_models_are_importable_and_builders_reexported():
    assert models.svt_small is model_entrypoint("svt_small")
    assert mindcv.create_model is create_model


def test_pretrained_and_checkpoint_path_together_is_rejected():
    with pytest.raises(ValueError, match="either pretrained"):
        create_model("svt_small", pretrained=True, checkpoint_path="x.ckpt")
