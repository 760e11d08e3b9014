"""The recipe builders take options by name, with the config schema's defaults."""
import inspect

import pytest

from mindcv.cli.config import OPTIONS, call_with_options, parse_args
from mindcv.engine import recipe

BUILDERS = [recipe.build_dataset, recipe.build_train_loader, recipe.build_eval_loader, recipe.build_model,
            recipe.build_train_step]


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_builder_options_are_config_keys_with_the_schema_defaults(builder):
    not_options = ("rank_id", "device_num", "checkpoint_path")
    options = {name: p for name, p in inspect.signature(builder).parameters.items()
               if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in not_options}
    assert options, builder.__name__
    for name, parameter in options.items():
        assert name in OPTIONS, f"{builder.__name__}({name}=...) is not a config key"
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default == OPTIONS[name].default, f"{builder.__name__}({name}=...) default differs"


def test_call_with_options_passes_the_parsed_options_by_name():
    args = parse_args(["--model", "pcpvt_small", "--num_classes", "7", "--drop_path_rate", "0.1"])
    seen = {}

    def builder(*, model, num_classes, drop_path_rate=0.0, pretrained=False):
        seen.update(model=model, num_classes=num_classes, drop_path_rate=drop_path_rate, pretrained=pretrained)

    call_with_options(builder, args, pretrained=True)
    assert seen == {"model": "pcpvt_small", "num_classes": 7, "drop_path_rate": 0.1, "pretrained": True}
