"""The kernel library is built for the CPU's instruction-set level, not for the exact CPU: one build serves every
machine of its level and none below it, and ``python -m mindcv.kernels`` builds it ahead of time."""
import os
import platform
import subprocess
import sys

import pytest

from mindcv import kernels
from mindcv.foundation.errors import UnknownNameError
from mindcv.kernels import build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
V2 = {"fpu", "sse", "sse2", "cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}
V3 = V2 | {"abm", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"}
V4 = V3 | {"avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"}
on_x86 = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 levels")


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """``cpu(flags)`` makes this an x86-64 machine whose /proc/cpuinfo lists ``flags``; the kernel cache is empty."""
    monkeypatch.setenv(kernels.CACHE_ENV, str(tmp_path / "kernels"))
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")

    def pretend(flags):
        monkeypatch.setattr(build, "_cpu_flags", lambda: flags)
        kernels.library_path.cache_clear()

    yield pretend
    kernels.library_path.cache_clear()


@pytest.mark.parametrize("flags, level", [
    (V4, "x86-64-v4"),
    (V4 | {"avx512_bf16", "sha_ni"}, "x86-64-v4"),
    (V4 - {"avx512vl"}, "x86-64-v3"),
    (V3, "x86-64-v3"),
    (V4 - {"movbe"}, "x86-64-v2"),
    (V3 - {"fma"}, "x86-64-v2"),
    (V2, "x86-64-v2"),
    (V4 - {"popcnt"}, "x86-64"),
    (set(), "x86-64"),
])
def test_the_level_is_the_highest_whose_every_flag_the_cpu_has(cpu, flags, level):
    cpu(flags)
    assert build.cpu_level() == level


def test_other_machines_build_for_their_generic_target(monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert build.cpu_level() == "aarch64" and build.isa_levels() == ["aarch64"]
    assert not any(flag.startswith(("-march", "-mcpu")) for flag in build._compile_flags("aarch64"))


@on_x86
def test_one_build_serves_every_cpu_of_its_level_and_none_below(cpu, monkeypatch, tmp_path):
    cpu(V3)
    library = kernels.library_path()
    assert "x86-64-v3" in os.path.basename(library)
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))  # from here on nothing can be built
    cpu(V3 | {"avx512f", "sha_ni", "rdseed"})  # another v3 machine: another vendor, other extensions
    assert kernels.library_path() == library
    for lower in (V2, V3 - {"bmi2"}):
        cpu(lower)
        assert kernels.library_path() is None, "the v3 library was picked for a CPU without all of v3"


def test_building_for_an_unknown_level_names_the_accepted_ones():
    with pytest.raises(UnknownNameError, match=build.isa_levels()[-1]):
        build.build_library("pentium")


def prebuild(tmp_path, *args, **environment):
    env = dict(os.environ, **{kernels.CACHE_ENV: str(tmp_path / "kernels")}, **environment)
    return subprocess.run([sys.executable, "-m", "mindcv.kernels", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300)


def test_prebuilding_puts_this_cpus_library_where_the_first_step_finds_it(tmp_path, monkeypatch):
    result = prebuild(tmp_path)
    assert result.returncode == 0, result.stderr
    level, path = result.stdout.split()
    assert level == build.cpu_level() and os.path.dirname(path) == str(tmp_path / "kernels")
    monkeypatch.setenv(kernels.CACHE_ENV, str(tmp_path / "kernels"))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    kernels.library_path.cache_clear()
    try:
        assert kernels.library_path() == path
    finally:
        kernels.library_path.cache_clear()


@on_x86
def test_prebuilding_for_another_level(tmp_path):
    result = prebuild(tmp_path, "--level", "x86-64-v3")
    assert result.returncode == 0, result.stderr
    level, path = result.stdout.split()
    assert level == "x86-64-v3" and "x86-64-v3" in os.path.basename(path) and os.path.exists(path)


@pytest.mark.parametrize("compiler", ["no-such-compiler", "false"])
def test_prebuilding_without_a_working_compiler_fails_with_one_line(tmp_path, compiler):
    result = prebuild(tmp_path, CXX=compiler if compiler == "false" else str(tmp_path / compiler))
    assert result.returncode == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "cannot build" in result.stderr and compiler in result.stderr


def test_prebuilding_for_an_unknown_level_names_the_accepted_ones(tmp_path):
    result = prebuild(tmp_path, "--level", "pentium")
    assert result.returncode == 2 and "pentium" in result.stderr and build.isa_levels()[-1] in result.stderr
