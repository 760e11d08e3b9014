"""train.py on a disk that fills up: it stops at the first checkpoint with one line naming the folder and its
free space, and leaves nothing half-written behind."""
import os
import shutil

from ..helpers import TINY_RUN, run_script
from ..small_disk import mounted_small_disk  # noqa: F401

ONE_EPOCH = TINY_RUN + ["--epoch_size", "1", "--val_while_train", "False"]


def test_train_stops_on_a_full_disk_with_one_line_naming_the_folder_and_free_space(shapes_dataset, small_disk):
    # The run's config and logs fit in 2 MiB; its first checkpoint (hundreds of MiB) does not.
    result = run_script("train.py", *ONE_EPOCH, "--data_dir", shapes_dataset, "--ckpt_save_dir", small_disk,
                        check=False)
    assert result.returncode == 2, result.stderr[-4000:]
    assert "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: Could not write {small_disk / 'svt_small-1.ckpt'}: No space left on device (")
    assert f"MiB free in {small_disk}, about " in error and "MiB needed)" in error
    assert not [name for name in os.listdir(small_disk) if name.endswith(".ckpt") or name.startswith(".tmp-")]
    assert shutil.disk_usage(small_disk).free > 1024 * 1024  # the partial write gave its space back
