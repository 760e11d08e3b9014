import math

import numpy as np
import pytest
from PIL import Image, ImageOps

from mindcv.data import POLICY_FAMILIES, RandomErasing, create_dataset, create_loader, create_transforms
from mindcv.data.auto_augment import AugmentOp, AugmentParams
from mindcv.foundation.errors import UnknownNameError

from .conftest import write_image

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def _apply(transforms, image_path):
    data = np.fromfile(image_path, np.uint8)
    for transform in transforms:
        data = transform(data)
    return data


def _pil_resize_and_crop(path, size, crop_pct, pil_filter):
    """timm's evaluation geometry, computed directly with Pillow."""
    img = Image.open(path).convert("RGB")
    height, width = size
    if height == width:
        short = math.floor(height / crop_pct)
        w, h = img.size
        new_h, new_w = (short, int(short * w / h)) if w >= h else (int(short * h / w), short)
        img = img.resize((new_w, new_h), pil_filter)
    else:
        img = img.resize((math.floor(width / crop_pct), math.floor(height / crop_pct)), pil_filter)
    w, h = img.size
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return np.asarray(img.crop((left, top, left + width, top + height)), np.float64) / 255.0


# "cubic", "pilcubic" and "linear" are MindSpore's other names for these filters, which MindCV recipes use.
@pytest.mark.parametrize("interpolation,pil_filter", [("bicubic", Image.BICUBIC), ("bilinear", Image.BILINEAR),
                                                      ("cubic", Image.BICUBIC), ("pilcubic", Image.BICUBIC),
                                                      ("linear", Image.BILINEAR)])
@pytest.mark.parametrize("size,source", [((224, 224), (375, 500)), ((160, 160), (300, 211)), ((96, 128), (200, 260))])
def test_eval_transforms_match_pillow_resize_and_centre_crop(tmp_path, interpolation, pil_filter, size, source):
    path = tmp_path / "image.jpg"
    write_image(path, seed=3, size=source)
    ours = _apply(create_transforms("", size if size[0] != size[1] else size[0], crop_pct=0.9,
                                    interpolation=interpolation), path)
    assert ours.shape == (3,) + size and ours.dtype == np.float32
    pixels = ours.transpose(1, 2, 0) * STD + MEAN
    np.testing.assert_allclose(pixels, _pil_resize_and_crop(path, size, 0.9, pil_filter), atol=1 / 255 + 1e-6)


@pytest.mark.parametrize("auto_augment", ["rand-m9-mstd0.5-inc1", "randaug-m7-mstd0.5", "autoaug", "autoaugr-mstd0.5",
                                          "original", "3a", "augmix-m5-w4-d2", "trivialaugwide", None])
def test_training_transforms_give_normalised_chw_images_of_any_size(image_folder, auto_augment):
    root = image_folder({"a": 2, "b": 2}, size=(60, 80))
    transform = create_transforms("", (48, 64), is_training=True, auto_augment=auto_augment, interpolation="bicubic",
                                  re_prob=1.0, re_value="random", mean=(123.675, 116.28, 103.53), std=STD * 255)
    loader = create_loader(create_dataset("", root), 4, is_training=True, num_classes=2, transform=transform)
    images, labels = next(loader.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert images.shape == (4, 3, 48, 64) and images.dtype == np.float32
    assert np.isfinite(images).all() and labels.dtype == np.int32


def test_separate_returns_the_three_groups():
    primary, secondary, final = create_transforms("", 224, is_training=True, auto_augment="rand-m9", separate=True,
                                                  re_prob=0.25)
    assert [type(t).__name__ for t in primary] == ["Decode", "RandomResizedCrop", "RandomHorizontalFlip"]
    assert [type(t).__name__ for t in secondary] == ["RandAugment"]
    assert [type(t).__name__ for t in final] == ["Normalize", "HWC2CHW", "RandomErasing"]
    assert [type(t).__name__ for t in create_transforms("", 224, is_training=True, color_jitter=0.4)][3] == \
        "RandomColorAdjust"


def test_unknown_policy_option_and_interpolation_are_rejected():
    with pytest.raises(UnknownNameError, match="Accepted: .*augmix.*rand.*trivialaugwide") as info:
        create_transforms("", is_training=True, auto_augment="randaugment-m9")
    assert set(POLICY_FAMILIES) <= set(str(info.value).split("Accepted: ")[1].rstrip(".").split(", "))
    with pytest.raises(ValueError, match="Unknown option 'x3' .*m<magnitude>"):
        create_transforms("", is_training=True, auto_augment="rand-m9-x3")
    with pytest.raises(UnknownNameError, match="Accepted: bicubic, bilinear, cubic, linear, nearest, pilcubic"):
        create_transforms("", is_training=False, interpolation="lanczos2")
    with pytest.raises(UnknownNameError, match="dataset"):
        create_transforms("coco")


def test_policy_ops_follow_timm_magnitude_scales():
    rng = np.random.default_rng(0)
    img = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16).repeat(3).reshape(16, 16, 3))
    params = AugmentParams()
    solarized = AugmentOp("Solarize", 1.0, 5, params)(img, rng)  # threshold 256 * 5 / 10
    assert np.array_equal(np.asarray(solarized), np.asarray(ImageOps.solarize(img, 128)))
    assert np.asarray(AugmentOp("PosterizeIncreasing", 1.0, 10, params)(img, rng)).max() == 0  # 0 bits kept
    assert np.array_equal(np.asarray(AugmentOp("Posterize", 1.0, 10, params)(img, rng)),
                          np.asarray(ImageOps.posterize(img, 4)))
    assert AugmentOp("Equalize", 0.0, 10, params)(img, rng) is img  # probability 0: untouched


def test_random_erasing_fills_one_rectangle_within_scale_and_ratio():
    erase = RandomErasing(prob=1.0, scale=(0.1, 0.2), ratio=(0.5, 2.0), value=(1.0, 2.0, 3.0))
    erase.set_seed(0)
    for _ in range(20):
        out = erase(np.zeros((3, 40, 50), np.float32))
        rows, cols = np.nonzero(out[0])
        height, width = rows.ptp() + 1, cols.ptp() + 1
        assert len(rows) == height * width  # one filled rectangle
        assert 0.1 * 2000 * 0.8 <= height * width <= 0.2 * 2000 * 1.2  # rounding of the sides
        assert 0.5 / 1.3 <= height / width <= 2.0 * 1.3
        assert (out[1][out[0] > 0] == 2.0).all() and (out[2][out[0] > 0] == 3.0).all()
    noise = RandomErasing(prob=1.0, scale=(0.5, 0.5), value="random")
    noise.set_seed(1)
    filled = noise(np.zeros((3, 100, 100), np.float32))
    assert abs(filled[filled != 0].std() - 1.0) < 0.05


def test_cifar_and_mnist_transforms_resize_decoded_arrays():
    cifar = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for is_training in (True, False):
        out = cifar
        for op in create_transforms("cifar10", 64, is_training=is_training):
            out = op(out)
        assert out.shape == (3, 64, 64) and out.dtype == np.float32
    out = np.zeros((28, 28, 1), np.uint8)
    for op in create_transforms("mnist", 32, is_training=True, scale=(0.5, 1.0)):
        out = op(out)
    assert out.shape == (1, 32, 32)
    np.testing.assert_allclose(out, -0.1307 / 0.3081, rtol=1e-5)
