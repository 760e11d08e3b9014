"""The distributed tests' shared workspace and their single-process reference run, made once per session."""
import shutil
import subprocess
import sys

import pytest

from ..helpers import ROOT, shared_folder
from .launch import DETERMINISTIC, JOB_TIMEOUT, WORKER, _env


@pytest.fixture(scope="session")
def workspace(shapes_dataset, tmp_path_factory):
    with shared_folder(tmp_path_factory, "dp") as root:
        shutil.copytree(shapes_dataset, root / "data")
        yield root


@pytest.fixture(scope="session")
def compile_cache(workspace):
    """MindSpore's compile cache for the jobs that run DETERMINISTIC as it is: the first compiles, the others load."""
    return workspace / "graphs"


@pytest.fixture
def job_root(workspace, tmp_path):
    """A test's own folder for its jobs (each job reads out.parent / "data"); pytest deletes it once the test
    passes, where the workspace lives to the end of the run."""
    (tmp_path / "data").symlink_to(workspace / "data")
    return tmp_path


@pytest.fixture(scope="session")
def single_process(workspace):
    out = workspace / "single"
    out.mkdir()
    env = _env(out)
    subprocess.run([sys.executable, WORKER, *DETERMINISTIC, "--batch_size", "6", "--data_dir", workspace / "data",
                    "--ckpt_save_dir", out / "ckpt"], cwd=ROOT, env=env, check=True, capture_output=True,
                   timeout=JOB_TIMEOUT)
    return out
