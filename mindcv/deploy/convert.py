"""Convert Twins weights between the reference (PyTorch: official release / timm), the seed's MindSpore
port and this library, by parameter name.

    python -m mindcv.deploy.convert twins_svt_small.pth svt_small.ckpt      (or python -m mindcv.models.convert)
    python -m mindcv.deploy.convert svt_s_new.ckpt svt_small.ckpt            # seed naming -> ours
    python -m mindcv.deploy.convert svt_small.ckpt svt_s_seed.ckpt --to seed

Every source key that could not be placed and every model parameter left unfilled is printed; either makes
the command fail unless ``--allow-partial`` is given.
"""
import argparse
import os
import sys

import numpy as np

from ..foundation.checkpoint_io import read_checkpoint, save_checkpoint_atomic
from ..foundation.errors import CheckpointError
from ..models import create_model
from ..models.naming import mindcv_to_seed_name, to_mindcv_names
from ..models.twins import TWINS_VARIANTS

_WRAPPER_KEYS = ("state_dict", "model", "model_ema", "module")


def read_state_dict(path):
    """Parameters of a ``.pth``/``.pt``/``.bin``, ``.safetensors`` or MindSpore ``.ckpt`` file as numpy arrays."""
    if not os.path.isfile(path):
        raise CheckpointError(f"Checkpoint file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".ckpt":
            return {k: v.asnumpy() for k, v in read_checkpoint(path).items()}
        if ext == ".safetensors":
            from safetensors.numpy import load_file
            return load_file(path)
        if ext in (".pth", ".pt", ".bin", ".tar"):
            return _read_torch(path)
    except ImportError as err:
        raise CheckpointError(f"Reading {path} needs the '{err.name}' package: pip install {err.name}") from err
    except CheckpointError:
        raise
    except Exception as err:
        raise CheckpointError(f"Cannot read {path} as a {ext} checkpoint: {err}") from err
    raise CheckpointError(f"Unsupported checkpoint extension '{ext}' ({path}); accepted: .pth, .pt, .bin, "
                          ".tar, .safetensors, .ckpt")


def _read_torch(path):
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(state, dict):
        wrapper = next((k for k in _WRAPPER_KEYS if isinstance(state.get(k), dict)), None)
        if wrapper is None:
            break
        state = state[wrapper]
    return {k.removeprefix("module."): v.detach().float().numpy() for k, v in state.items()
            if hasattr(v, "detach")}


def infer_twins_variant(state):
    """The Twins variant whose stage widths, depths and attention kind match a state dict (our names)."""
    dims, depths = [], []
    for s in range(4):
        weight = state.get(f"patch_embeds.{s}.proj.weight")
        dims.append(None if weight is None else int(weight.shape[0]))
        blocks = {int(k.split(".")[2]) for k in state if k.startswith(f"blocks.{s}.")}
        depths.append(max(blocks) + 1 if blocks else 0)
    windowed = any(".attn.qkv." in k for k in state)
    for name, spec in TWINS_VARIANTS.items():
        same_shape = list(spec["embed_dims"]) == dims and list(spec["depths"]) == depths
        if same_shape and (spec["window_size"] > 0) == windowed:
            return name
    raise CheckpointError(f"The checkpoint matches no Twins variant (embed dims {dims}, depths {depths}, "
                          f"{'LSA' if windowed else 'no LSA'}); pass --model explicitly.")


def convert_checkpoint(src, dst, model_name=None, allow_partial=False, to="mindcv", log=print):
    """Convert ``src`` into a MindSpore checkpoint ``dst`` for ``model_name`` (inferred when None).

    Returns (model name, unplaced source keys, unfilled model parameters).
    """
    state = to_mindcv_names(read_state_dict(src))
    model_name = model_name or infer_twins_variant(state)
    num_classes = int(state["head.weight"].shape[0]) if "head.weight" in state else 0
    model = create_model(model_name, num_classes=num_classes, in_channels=_in_channels(state))
    expected = {p.name: tuple(p.shape) for p in model.get_parameters()}

    unplaced = sorted(k for k in state if k not in expected)
    unfilled = sorted(k for k in expected if k not in state)
    mismatched = sorted(f"{k}: checkpoint {tuple(state[k].shape)} vs model {expected[k]}"
                        for k in expected if k in state and tuple(state[k].shape) != expected[k])
    for title, items in (("source keys not placed", unplaced), ("model parameters left unfilled", unfilled),
                         ("shape mismatches", mismatched)):
        if items:
            log(f"{len(items)} {title}:\n  " + "\n  ".join(items))
    if (unplaced or unfilled or mismatched) and not allow_partial:
        raise CheckpointError(f"{src} does not fit {model_name}: {len(unplaced)} keys not placed, "
                              f"{len(unfilled)} parameters unfilled, {len(mismatched)} shape mismatches "
                              "(see above; --allow-partial writes what fits).")
    placed = {k: v for k, v in state.items() if k in expected and tuple(v.shape) == expected[k]}
    rename = mindcv_to_seed_name if to == "seed" else (lambda k: k)
    save_checkpoint_atomic({rename(k): np.asarray(v, np.float32) for k, v in placed.items()}, dst)
    log(f"Wrote {dst}: {model_name}, {len(placed)} of {len(expected)} parameters, {to} naming.")
    return model_name, unplaced, unfilled


def _in_channels(state):
    weight = state.get("patch_embeds.0.proj.weight")
    return 3 if weight is None else int(weight.shape[1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mindcv.deploy.convert",
                                     description="Convert Twins weights to a MindSpore checkpoint by name.")
    parser.add_argument("src", help="official/timm .pth/.bin/.safetensors, or a seed/ours .ckpt")
    parser.add_argument("dst", help="output .ckpt path")
    parser.add_argument("--model", default=None, help="variant name (inferred from the weights by default)")
    parser.add_argument("--to", choices=("mindcv", "seed"), default="mindcv",
                        help="parameter naming of the output: this library's or the seed port's")
    parser.add_argument("--allow-partial", action="store_true", help="write what fits even if keys are left over")
    args = parser.parse_args(argv)
    try:
        convert_checkpoint(args.src, args.dst, args.model, args.allow_partial, args.to)
    except (CheckpointError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
