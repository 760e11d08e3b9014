"""Building the fused CPU kernel library: compiled with the system C++ compiler (g++ >= 11 or clang >= 12) on first
use into ``$MINDCV_KERNEL_CACHE`` (default ``~/.cache/mindcv/kernels``), for the instruction-set level of this CPU
(x86-64-v2, -v3 or -v4 on x86-64) and keyed by that level, the source and the flags, so that one build serves every
machine of the level. ``python -m mindcv.kernels`` builds it ahead of time. Set ``MINDCV_FUSED_KERNELS=0`` to use
MindSpore's own operators instead; without a compiler that happens automatically, with a warning.
"""
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile

from ..foundation.errors import UnknownNameError

_logger = logging.getLogger(__name__)
_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_kernels.cc")
_COMPILE_FLAGS = ["-std=c++20", "-O3", "-ffast-math", "-fno-finite-math-only", "-fopenmp-simd", "-fPIC", "-pthread"]
# Linked in a separate step: g++ < 13 given -ffast-math at link time adds crtfastmath.o, which turns on
# flush-to-zero for the whole process when the library loads.
_LINK_FLAGS = ["-shared", "-pthread", "-ldl"]
SWITCH_ENV = "MINDCV_FUSED_KERNELS"
CACHE_ENV = "MINDCV_KERNEL_CACHE"
# The x86-64 psABI levels, lowest first, each with the /proc/cpuinfo flags it adds to the one before (cpuinfo
# names: pni is SSE3, abm LZCNT).
_X86_LEVELS = {
    "x86-64": set(),
    "x86-64-v2": {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"},
    "x86-64-v3": {"abm", "avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"},
    "x86-64-v4": {"avx512bw", "avx512cd", "avx512dq", "avx512f", "avx512vl"},
}


def _is_x86():
    return platform.machine().lower() in ("x86_64", "amd64")


def isa_levels():
    """The levels the compiler here can build for: the x86-64 ones, elsewhere only the machine's generic target
    (named after the machine, e.g. ``aarch64``)."""
    return list(_X86_LEVELS) if _is_x86() else [platform.machine()]


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as info:
            line = next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.partition(":")[2].split())


def cpu_level():
    """The highest of ``isa_levels()`` that this CPU runs: the library built for it may use every instruction
    of the level, so it is never loaded on a CPU below it."""
    if not _is_x86():
        return platform.machine()
    flags, level, needed = _cpu_flags(), "x86-64", set()
    for name, added in _X86_LEVELS.items():
        needed |= added
        if not needed <= flags:
            break
        level = name
    return level


def has_bf16_instructions():
    """True when this CPU multiplies bf16 in hardware (AVX-512-BF16 or AMX-BF16), which oneDNN's bf16 GEMM
    uses; elsewhere it would emulate bf16 more slowly than fp32 runs."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def _compile_flags(level):
    return _COMPILE_FLAGS + ([f"-march={level}"] if _is_x86() else [])


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if "error" in line]
        summary = errors[0] if errors else f"exit status {result.returncode}"
        raise RuntimeError(f"{command[0]} failed: {summary}\n{' '.join(command)}\n{result.stderr[-2000:]}")


def _compile(compiler, level, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as scratch:
        objects, library = os.path.join(scratch, "kernels.o"), os.path.join(scratch, "kernels.so")
        _run([compiler, *_compile_flags(level), "-c", _SOURCE, "-o", objects])
        _run([compiler, *_LINK_FLAGS, objects, "-o", library])
        os.replace(library, target)  # atomic: concurrent ranks never load a half-written library


def _library_file(level):
    with open(_SOURCE, "rb") as source:
        flags = " ".join(_compile_flags(level) + _LINK_FLAGS + [level]).encode()
        key = hashlib.sha256(source.read() + flags).hexdigest()
    cache = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mindcv", "kernels")
    return os.path.join(cache, f"twins_cpu_{level}_{key[:16]}.so")


def cxx_compiler():
    """The C++ compiler to build with: $CXX, else g++, else c++; None where there is none."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")


def build_library(level=None):
    """Path of the kernel library for ``level`` (default: this CPU's), compiled into the cache unless it is there.
    Raises RuntimeError or OSError when it cannot be built."""
    level = level or cpu_level()
    if level not in isa_levels():
        raise UnknownNameError("instruction-set level", level, isa_levels())
    target = _library_file(level)
    if not os.path.exists(target):
        compiler = cxx_compiler()
        if compiler is None:
            raise RuntimeError("no C++ compiler found (install g++ or set CXX)")
        _compile(compiler, level, target)
    return target


@functools.lru_cache(maxsize=None)
def library_path():
    """Path of the kernel library for this CPU, building it if needed; None when the kernels are off or
    unbuildable."""
    if os.environ.get(SWITCH_ENV, "1") == "0":
        return None
    try:
        return build_library()
    except (OSError, RuntimeError) as error:
        _logger.warning("Fused CPU kernels unavailable, using MindSpore's operators (slower): %s", error)
        return None
