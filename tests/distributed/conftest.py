"""The distributed tests' shared workspace and their single-process reference run, made once per session."""
import shutil
import subprocess
import sys

import pytest

from ..helpers import ROOT
from .launch import DETERMINISTIC, JOB_TIMEOUT, WORKER, _env


@pytest.fixture(scope="session")
def workspace(shapes_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("dp")
    shutil.copytree(shapes_dataset, root / "data")
    return root


@pytest.fixture(scope="session")
def single_process(workspace):
    out = workspace / "single"
    out.mkdir()
    env = _env(out)
    subprocess.run([sys.executable, WORKER, *DETERMINISTIC, "--batch_size", "6", "--data_dir", workspace / "data",
                    "--ckpt_save_dir", out / "ckpt"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=JOB_TIMEOUT)
    return out
