"""Twins parameter names in the three namings met in practice, and the rules between them.

- ours: the reference (PyTorch) names, with MindSpore's ``gamma``/``beta`` for LayerNorm affine parameters;
- the reference's (official release, timm): LayerNorm ``weight``/``bias``;
- the seed port's (its published ``*_new.ckpt`` files): stage parameters renamed by position.
"""
import re

_TORCH_NORM = re.compile(r"(^|\.)(norm\d*)\.(weight|bias)$")


def torch_to_mindcv_name(key):
    """Reference (PyTorch) name -> ours: LayerNorm ``weight``/``bias`` become ``gamma``/``beta``."""
    return _TORCH_NORM.sub(lambda m: f"{m.group(1)}{m.group(2)}.{'gamma' if m.group(3) == 'weight' else 'beta'}", key)


def is_seed_name(key):
    """The seed port's stage parameters start with a bare index (see the seed checkpoint naming note)."""
    return key.split(".", 1)[0].isdigit()


def seed_to_mindcv_name(key):
    """Seed name -> ours. Stage ``s`` lives under ``0.{slot}`` (s = 0) or ``0.{s}.{slot}`` (s >= 1), where
    slot 0 is the first block, slot 1 the PEG and slot j + 1 block j."""
    if not is_seed_name(key):
        return key
    tokens = key.split(".")
    if len(tokens) > 3 and tokens[2].isdigit():
        stage, slot, rest = int(tokens[1]), int(tokens[2]), tokens[3:]
    else:
        stage, slot, rest = 0, int(tokens[1]), tokens[2:]
    if slot == 1:
        return ".".join(["pos_block", str(stage)] + rest)
    return ".".join(["blocks", str(stage), str(0 if slot == 0 else slot - 1)] + rest)


def mindcv_to_seed_name(key):
    tokens = key.split(".")
    if tokens[0] == "pos_block":
        stage, slot, rest = int(tokens[1]), 1, tokens[2:]
    elif tokens[0] == "blocks":
        stage, block, rest = int(tokens[1]), int(tokens[2]), tokens[3:]
        slot = 0 if block == 0 else block + 1
    else:
        return key
    prefix = ["0"] if stage == 0 else ["0", str(stage)]
    return ".".join(prefix + [str(slot)] + rest)


def to_mindcv_names(param_dict):
    """Rename a checkpoint's entries to ours, whichever known naming it uses (ours, the seed's, PyTorch's)."""
    if any(is_seed_name(k) for k in param_dict):
        return {seed_to_mindcv_name(k): v for k, v in param_dict.items()}
    return {torch_to_mindcv_name(k): v for k, v in param_dict.items()}
