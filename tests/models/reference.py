"""The reference Twins (timm) with random weights, and checkpoints written from it for our loaders."""
import numpy as np
import torch

import timm

from mindcv.deploy.convert import convert_checkpoint

VARIANTS = ("pcpvt_small", "pcpvt_base", "pcpvt_large", "svt_small", "svt_base", "svt_large")


def reference_model(name, seed=0, num_classes=1000):
    """timm's twins_<name> in eval mode; 1-D parameters (LayerNorm affine, biases) are perturbed too, so a
    swapped gamma/beta or a bias left at its init value changes the logits."""
    torch.manual_seed(seed)
    model = timm.create_model(f"twins_{name}", num_classes=num_classes).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.ndim == 1:
                param.add_(torch.randn_like(param) * 0.1)
    return model


def reference_logits(model, images):
    with torch.no_grad():
        return model(torch.from_numpy(images)).numpy()


def random_images(batch, height, width, seed=0):
    return np.random.RandomState(seed).randn(batch, 3, height, width).astype(np.float32)


def seed_port_name(timm_key):
    """The seed port's name for a timm key, written out from the naming note (independent of the library)."""
    key = timm_key.replace("norm.weight", "norm.gamma").replace("norm.bias", "norm.beta")
    for i in (1, 2):
        key = key.replace(f"norm{i}.weight", f"norm{i}.gamma").replace(f"norm{i}.bias", f"norm{i}.beta")
    tokens = key.split(".")
    if tokens[0] not in ("blocks", "pos_block"):
        return key
    stage = int(tokens[1])
    if tokens[0] == "pos_block":
        slot, rest = 1, tokens[2:]
    else:
        block = int(tokens[2])
        slot, rest = (0 if block == 0 else block + 1), tokens[3:]
    prefix = ["0"] if stage == 0 else ["0", str(stage)]
    return ".".join(prefix + [str(slot)] + rest)


def convert_reference(reference, folder):
    """Save the reference's state_dict as a .pth and convert it with the library's converter."""
    torch.save(reference.state_dict(), folder / "reference.pth")
    convert_checkpoint(str(folder / "reference.pth"), str(folder / "ours.ckpt"), log=lambda *_: None)
    return str(folder / "ours.ckpt")
