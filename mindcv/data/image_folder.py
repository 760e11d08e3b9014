"""Image folders laid out as ``<split dir>/<class>/<image>``: scanning, corrupt-file screening, reading."""
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..foundation.errors import InvalidValueError, UnreadablePathError
from .image_check import EMPTY_FILE, image_problem

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")  # what MindSpore's Decode reads
_MAX_NAMED = 20
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_GREY = 0  # IHDR colour type


class SkippedImagesWarning(UserWarning):
    """Image files left out of a dataset because they cannot be decoded."""


def _entries(folder):
    """The entries of ``folder``; one that cannot be listed is refused, since leaving it out would lose data."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as err:
        raise UnreadablePathError(f"Cannot read folder {folder} ({err.strerror}): the split folder and every class "
                                  f"folder must be listable (read and execute permission).") from err


def _broken_link(entry):
    """Why the symbolic link ``entry`` cannot be followed (a loop, or a target that does not exist), or ``None``."""
    try:
        os.stat(entry.path)
    except OSError as err:
        return err.strerror
    return None


def _class_folders(split_dir):
    """Sorted class folder names; a class link that cannot be followed is refused, as leaving its class out would
    shift every label id after it."""
    names = []
    for entry in _entries(split_dir):
        if entry.name.startswith("."):
            continue
        broken = entry.is_symlink() and _broken_link(entry)
        if broken:
            raise UnreadablePathError(f"Cannot follow the link {entry.path} ({broken}): every entry of {split_dir} "
                                      f"must be a class folder or a file; fix or remove the link.")
        if entry.is_dir():
            names.append(entry.name)
    return sorted(names)


def _is_image_file(entry):
    if os.path.splitext(entry.name)[1].lower() not in IMAGE_EXTENSIONS:
        return False
    try:
        return not entry.is_dir()
    except OSError:  # a looping link: screening names it as unreadable
        return True


def _image_names(class_dir):
    return sorted(e.name for e in _entries(class_dir) if _is_image_file(e))


def scan_image_folder(split_dir, check_workers=16):
    """``(classes, relative paths, labels)`` of the decodable images under ``split_dir``.

    Classes are the sorted sub-folder names, and label ``i`` is ``classes[i]``, so ids are stable across runs
    and machines. Files that fail ``image_problem`` are left out with one ``SkippedImagesWarning`` naming them.
    What would lose data silently is refused: a folder that cannot be listed, a class link that cannot be followed,
    a class with no decodable image.
    """
    classes = _class_folders(split_dir)
    if not classes:
        raise InvalidValueError(f"No class folders in {split_dir}: expected {split_dir}/<class>/<image>.")
    paths, labels = [], []
    for label, name in enumerate(classes):
        images = _image_names(os.path.join(split_dir, name))
        if not images:
            raise InvalidValueError(f"Class folder has no images ({', '.join(IMAGE_EXTENSIONS)}): "
                                    f"{os.path.join(split_dir, name)}")
        paths += [os.path.join(name, image) for image in images]
        labels += [label] * len(images)

    paths, labels = _screened(split_dir, paths, labels, check_workers)
    emptied = sorted(set(range(len(classes))) - set(labels))
    if emptied:
        raise InvalidValueError(f"Class folder has no decodable images (all skipped, see the warning): "
                                f"{os.path.join(split_dir, classes[emptied[0]])}")
    return classes, paths, labels


def _screened(split_dir, paths, labels, check_workers):
    """``paths`` and ``labels`` without the files that fail ``image_problem``, which are named in a warning.
    Zero-byte files are refused instead: they are what an interrupted copy or download leaves, so the folder is
    likely missing more than them."""
    with ThreadPoolExecutor(check_workers) as pool:
        problems = list(pool.map(image_problem, (os.path.join(split_dir, p) for p in paths), chunksize=256))
    empty = [os.path.join(split_dir, path) for path, problem in zip(paths, problems) if problem == EMPTY_FILE]
    if empty:
        more = f" and {len(empty) - _MAX_NAMED} more" if len(empty) > _MAX_NAMED else ""
        raise InvalidValueError(f"{len(empty)} zero-byte image file(s), as an interrupted copy leaves: "
                                f"{', '.join(empty[:_MAX_NAMED])}{more}. Copy them again, or delete them.")
    bad = [(path, problem) for path, problem in zip(paths, problems) if problem]
    if not bad:
        return paths, labels
    _warn_skipped(split_dir, bad)
    kept = [i for i, problem in enumerate(problems) if not problem]
    return [paths[i] for i in kept], [labels[i] for i in kept]


def _warn_skipped(split_dir, bad):
    named = "; ".join(f"{os.path.join(split_dir, path)} ({problem})" for path, problem in bad[:_MAX_NAMED])
    more = f"; and {len(bad) - _MAX_NAMED} more" if len(bad) > _MAX_NAMED else ""
    warnings.warn(f"Skipping {len(bad)} unreadable or corrupt image file(s): {named}{more}", SkippedImagesWarning,
                  stacklevel=6)


def eight_bit(data):
    """``data``, an encoded image, in a form that both forms of MindSpore's ``Decode`` read as Pillow's
    ``convert("RGB")`` would, the way timm and torchvision read images (EXIF orientation is not applied, as
    there, so that evaluation reproduces theirs).

    The Pillow form of ``Decode`` (evaluation) clips 16-bit grey PNGs at 255; those are re-encoded as 8-bit RGB
    PNG, grey scaled by its high byte. The check reads the PNG header bytes only: every other image is returned
    unchanged without being parsed.
    """
    if not (data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and data[24] == 16 and data[25] == _PNG_GREY):
        return data
    with Image.open(io.BytesIO(data)) as img:
        grey = (np.asarray(img) >> 8).astype(np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(grey).convert("RGB").save(encoded, "PNG", compress_level=1)
    return encoded.getvalue()


class EncodedImageSource:
    """Random-access source for ``GeneratorDataset``: (encoded image bytes, label) by index.

    Decoding is left to the pipeline's ``Decode`` so it runs in MindSpore's worker threads; the few images it
    would read wrongly are re-encoded first (``eight_bit``).
    """

    def __init__(self, split_dir, paths, labels):
        self.split_dir = split_dir
        self.paths = np.array([os.fsencode(p) for p in paths])  # fixed-width bytes: compact for millions of files
        self.labels = np.asarray(labels, np.int32)

    def __getitem__(self, index):
        with open(os.path.join(os.fsencode(self.split_dir), self.paths[index]), "rb") as f:
            return np.frombuffer(eight_bit(f.read()), np.uint8), self.labels[index]

    def __len__(self):
        return len(self.labels)
