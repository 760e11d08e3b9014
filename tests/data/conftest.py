import os

import numpy as np
import pytest
from PIL import Image

import mindspore.dataset as ds


EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp"}


def write_image(path, seed, size=(40, 52), fmt="JPEG", **options):
    """A smooth random picture (upsampled noise), so resampling differences show."""
    rng = np.random.RandomState(seed)
    small = Image.fromarray(rng.randint(0, 256, (size[0] // 4 + 1, size[1] // 4 + 1, 3), dtype=np.uint8))
    options = {"quality": 95, **options} if fmt == "JPEG" else options
    small.resize((size[1], size[0]), Image.BICUBIC).save(path, fmt, **options)


@pytest.fixture
def image_folder(tmp_path):
    """Factory: ``root`` holding ``root/train/<class>/<i>.jpg`` for ``{class: count}``."""

    def make(counts, split="train", size=(40, 52), fmt="JPEG"):
        seed = 0
        for name, count in counts.items():
            folder = tmp_path / split / name
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                write_image(folder / f"{i:03d}.{EXTENSIONS[fmt]}", seed, size, fmt)
                seed += 1
        return str(tmp_path)

    return make


@pytest.fixture(autouse=True)
def _restore_dataset_seed():
    """``create_loader`` sets the dataset engine's global seed; keep tests independent of each other."""
    seed = ds.config.get_seed()
    yield
    ds.config.set_seed(seed)
