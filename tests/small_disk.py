"""A 2 MiB tmpfs to fill up: the real "No space left on device" that a checkpoint write can meet."""
import os
import shutil
import subprocess

import pytest


@pytest.fixture(name="small_disk")
def mounted_small_disk(tmp_path):
    """The path of a freshly mounted 2 MiB tmpfs (skips where mounting is not permitted: not root, no
    CAP_SYS_ADMIN)."""
    folder = tmp_path / "small_disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)],
                                 capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("no mount command to make a small tmpfs")
    if mounted.returncode != 0:
        first_line = mounted.stderr.strip().partition("\n")[0]
        pytest.skip(f"cannot mount a tmpfs here: {first_line}")
    try:
        yield folder
    finally:
        # Lazy: a file a failing test left open must not turn its failure into a teardown error.
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def fill_disk(folder, leave=0):
    """Take all free space in ``folder``'s file system but ``leave`` bytes (tmpfs counts whole 4 KiB pages)."""
    with open(os.path.join(folder, "filler"), "wb") as f:
        f.write(b"\0" * (shutil.disk_usage(folder).free - leave))
    assert shutil.disk_usage(folder).free == leave


def contents(folder):
    """{file name: bytes} of everything in ``folder`` but the filler."""
    return {name: (folder / name).read_bytes() for name in os.listdir(folder) if name != "filler"}
