"""Unusual image files in an image folder: those that train, read as Pillow's ``convert("RGB")`` reads them
(EXIF orientation not applied, as in timm; 16-bit grey by its high byte), those skipped with a warning, and
folder trees that are refused."""
import os
import warnings

import numpy as np
import pytest
from PIL import Image
from mindspore.dataset import vision

from mindcv.data import SkippedImagesWarning, create_dataset, create_loader
from mindcv.foundation.errors import InvalidValueError, UnreadablePathError

SIZE = 8
EXIF_ORIENTATION = 0x0112
ROTATE_CLOCKWISE = 6  # EXIF: the stored picture is shown turned a quarter clockwise


def _pattern(channels):
    """Distinct values in every pixel, so a wrong channel, order or orientation shows."""
    return (np.arange(SIZE * SIZE * channels) * 7 % 256).astype(np.uint8).reshape(SIZE, SIZE, channels)


def _grey(path):
    grey = _pattern(1)[..., 0]
    Image.fromarray(grey, "L").save(path)
    return np.stack([grey] * 3, axis=-1)


def _rgba(path):
    rgba = _pattern(4)
    Image.fromarray(rgba, "RGBA").save(path)
    return rgba[..., :3]


def _grey_alpha(path):
    grey_alpha = _pattern(2)
    Image.fromarray(grey_alpha, "LA").save(path)
    return np.stack([grey_alpha[..., 0]] * 3, axis=-1)


def _palette_with_transparency(path):
    palette = np.array([[0, 0, 0], [250, 20, 30], [40, 200, 60], [70, 80, 190]], np.uint8)
    indices = (np.arange(SIZE * SIZE) % 4).reshape(SIZE, SIZE).astype(np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.ravel().tolist())
    image.save(path, transparency=0)
    return palette[indices]


def _cmyk(path):
    # (255 - C) * (255 - K) / 255 is whole for these, so no decoder rounds differently
    Image.new("CMYK", (SIZE, SIZE), (0, 135, 255, 170)).save(path, quality=100)
    return np.full((SIZE, SIZE, 3), (85, 40, 0), np.uint8)


def _sixteen_bit_grey(path):
    levels = np.array([0x0000, 0x00FF, 0x0100, 0xABCD, 0xFFFF, 0x7F80, 0x8000, 0x1234], np.uint16)
    grey = np.resize(levels, (SIZE, SIZE))
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode in ("I;16", "I")
    return np.stack([(grey >> 8).astype(np.uint8)] * 3, axis=-1)


def _exif_rotated(path):
    image = Image.fromarray(_pattern(3))
    exif = image.getexif()
    exif[EXIF_ORIENTATION] = ROTATE_CLOCKWISE
    image.save(path, quality=95, exif=exif.tobytes())
    return np.asarray(Image.open(path).convert("RGB"))  # as stored: timm's loader ignores the orientation too


# (case id, file name, writer(path) -> the RGB pixels training must see)
CONVERTED = [
    ("grey", "grey.png", _grey),
    ("rgba", "rgba.png", _rgba),
    ("grey_alpha", "grey_alpha.png", _grey_alpha),
    ("palette_with_transparency", "palette.png", _palette_with_transparency),
    ("cmyk_jpeg", "cmyk.jpg", _cmyk),
    ("sixteen_bit_grey", "deep.png", _sixteen_bit_grey),
    ("exif_rotated_jpeg", "rotated.jpg", _exif_rotated),
]

# training decodes in MindSpore, evaluation in Pillow: both must see the same pixels
DECODERS = {"train": [vision.Decode()], "eval": [vision.Decode(to_pil=True), vision.ToNumpy()]}


@pytest.mark.parametrize("name, writer", [c[1:] for c in CONVERTED], ids=[c[0] for c in CONVERTED])
def test_image_is_read_as_8bit_rgb_as_pillow_converts_it(name, writer, tmp_path):
    os.makedirs(tmp_path / "train" / "only")
    expected = writer(tmp_path / "train" / "only" / name)
    for decoder, transform in DECODERS.items():
        loader = create_loader(create_dataset("", str(tmp_path), "train"), 1, transform=transform,
                               num_parallel_workers=1)
        (image, _), = loader.create_tuple_iterator(output_numpy=True, num_epochs=1)
        np.testing.assert_array_equal(image[0], expected, err_msg=f"{decoder} decoder")


def make_unreadable(folder):
    """``chmod 000`` on ``folder``, or skip the test where that does not stop this process reading it."""
    os.chmod(folder, 0)
    try:
        os.listdir(folder)
    except PermissionError:
        return
    pytest.skip("this process reads mode-000 folders (root, or CAP_DAC_READ_SEARCH), so no folder can be made "
                "unreadable; run as another user to test it")


def _empty_images(train):
    for name in os.listdir(train / "b"):
        (train / "b" / name).write_bytes(b"")


# (case id, change(train split folder), error type, message pattern)
REFUSED = [
    ("zero_byte_images", _empty_images, InvalidValueError,
     r"^1 zero-byte image file\(s\), as an interrupted copy leaves: .*train/b/0\.png\. Copy them again"),
    ("one_zero_byte_image", lambda train: (train / "a" / "empty.png").write_bytes(b""), InvalidValueError,
     r"^1 zero-byte image file\(s\), as an interrupted copy leaves: .*train/a/empty\.png\."),
    ("symlink_loop", lambda train: os.symlink(train / "loop", train / "loop"), UnreadablePathError,
     r"^Cannot follow the link .*train/loop \(Too many levels of symbolic links\): every entry of .*train must"),
    ("dangling_class_link", lambda train: os.symlink(train / "gone", train / "c"), UnreadablePathError,
     r"^Cannot follow the link .*train/c \(No such file or directory\)"),
    ("class_linking_to_its_split", lambda train: os.symlink(train, train / "cycle"), InvalidValueError,
     r"^Class folder has no images \(.jpg, .jpeg, .png, .bmp\): .*train/cycle$"),
    ("unreadable_class_folder", lambda train: make_unreadable(train / "b"), UnreadablePathError,
     r"^Cannot read folder .*train/b \(Permission denied\): the split folder and every class folder must be"),
    ("unreadable_split_folder", lambda train: make_unreadable(train), UnreadablePathError,
     r"^Cannot read folder .*train \(Permission denied\)"),
]


def _two_classes(root):
    for label, name in enumerate("ab"):
        os.makedirs(root / "train" / name)
        Image.fromarray(_pattern(3) + label).save(root / "train" / name / "0.png")
    return root / "train"


@pytest.mark.parametrize("change, error, message", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_tree_that_would_lose_data_is_refused_in_one_line(change, error, message, tmp_path):
    change(_two_classes(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        with pytest.raises(error, match=message) as info:
            create_dataset("", str(tmp_path), "train")
    assert "\n" not in str(info.value)


# (case id, change(train split folder), name of the file the warning names, its reason)
SKIPPED = [
    ("truncated_png", lambda train: (train / "a" / "cut.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40)), "cut.png",
     "truncated PNG \\(no IEND chunk\\)"),
    ("looping_image_link", lambda train: os.symlink(train / "a" / "self.jpg", train / "a" / "self.jpg"), "self.jpg",
     "unreadable: Too many levels of symbolic links"),
]


@pytest.mark.parametrize("change, name, reason", [c[1:] for c in SKIPPED], ids=[c[0] for c in SKIPPED])
def test_bad_file_beside_good_ones_is_skipped_and_named(change, name, reason, tmp_path):
    train = _two_classes(tmp_path)
    change(train)
    with pytest.warns(SkippedImagesWarning, match=f"Skipping 1 .*{name} \\({reason}\\)"):
        dataset = create_dataset("", str(tmp_path), "train")
    assert dataset.get_dataset_size() == 2
