"""Building the fused CPU kernel library: compiled with the system C++ compiler on first use into
``$MINDCV_KERNEL_CACHE`` (default ``~/.cache/mindcv/kernels``), keyed by the source, the flags and the CPU.
Set ``MINDCV_FUSED_KERNELS=0`` to use MindSpore's own operators instead; without a compiler that happens
automatically, with a warning.
"""
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile

_logger = logging.getLogger(__name__)
_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cpu_kernels.cc")
_COMPILE_FLAGS = ["-std=c++20", "-O3", "-march=native", "-ffast-math", "-fno-finite-math-only", "-fopenmp-simd",
                  "-fPIC", "-pthread"]
# Linked in a separate step: g++ < 13 given -ffast-math at link time adds crtfastmath.o, which turns on
# flush-to-zero for the whole process when the library loads.
_LINK_FLAGS = ["-shared", "-pthread"]
SWITCH_ENV = "MINDCV_FUSED_KERNELS"
CACHE_ENV = "MINDCV_KERNEL_CACHE"


def _cpu_fingerprint():
    """-march=native code must not run on another CPU, e.g. from a home directory shared between machines."""
    try:
        with open("/proc/cpuinfo") as info:
            return next((line for line in info if line.startswith("flags")), "")
    except OSError:
        return platform.processor()


def _run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")


def _compile(compiler, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(target)) as scratch:
        objects, library = os.path.join(scratch, "kernels.o"), os.path.join(scratch, "kernels.so")
        _run([compiler, *_COMPILE_FLAGS, "-c", _SOURCE, "-o", objects])
        _run([compiler, *_LINK_FLAGS, objects, "-o", library])
        os.replace(library, target)  # atomic: concurrent ranks never load a half-written library


@functools.lru_cache(maxsize=None)
def library_path():
    """Path of the compiled kernel library, building it if needed; None when the kernels are off or unbuildable."""
    if os.environ.get(SWITCH_ENV, "1") == "0":
        return None
    with open(_SOURCE, "rb") as source:
        flags = " ".join(_COMPILE_FLAGS + _LINK_FLAGS).encode()
        key = hashlib.sha256(source.read() + flags + _cpu_fingerprint().encode()).hexdigest()
    cache = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "mindcv", "kernels")
    target = os.path.join(cache, f"twins_cpu_{key[:16]}.so")
    if os.path.exists(target):
        return target
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    try:
        if compiler is None:
            raise RuntimeError("no C++ compiler found (install g++ or set CXX)")
        _compile(compiler, target)
    except (OSError, RuntimeError) as error:
        _logger.warning("Fused CPU kernels unavailable, using MindSpore's operators (slower): %s", error)
        return None
    return target
