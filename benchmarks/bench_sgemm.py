"""One core's fp32 GEMM rate at Twins' batch-8 dense-layer shapes, for the BLAS libraries a dense kernel could
call: oneDNN's ``dnnl_sgemm`` (the libdnnl.so.3 MindSpore ships, which the fused kernels use), numpy's bundled
OpenBLAS and, given ``--mkl``, MKL's ``cblas_sgemm`` (the BLAS PyTorch uses). The fused kernels run one GEMM per
core, so one core's rate is what decides between them. Each rate is also given against the core's peak: a loop of
independent vector multiply-adds in registers, compiled for this CPU by the compiler that builds the fused
kernels, which no GEMM can beat.

    python benchmarks/bench_sgemm.py [--mkl /path/to/libmkl_rt.so.3] [--json out.json]

MKL is not a dependency: unpack its wheel (``pip download --no-deps mkl``) and point ``--mkl`` at libmkl_rt.
"""
import argparse
import ctypes
import glob
import json
import os
import subprocess
import tempfile
import time

import numpy as np

from bench_models import at_least, cpu_model
from mindcv.kernels.build import cxx_compiler

ROW_MAJOR, PLAIN, TRANSPOSED = 101, 111, 112
_INT64, _FLOAT, _POINTER = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
# Tokens of a batch of 8 at 224 px, embedding width and MLP width of each stage (pcpvt_small's third stage is 320
# wide, svt_small's 256).
STAGES = [(25088, 64, 256), (6272, 128, 512), (1568, 256, 1024), (1568, 320, 1280), (392, 512, 2048)]


# Twelve independent chains of vector multiply-adds, enough to keep every FMA pipe busy through its latency, at
# the CPU's widest vector (12 registers: AVX2 has 16, NEON and AVX-512 32). The empty asm statement keeps each
# chain in a register, where the compiler would otherwise keep them in memory.
_FMA_LOOP = r"""
#include <chrono>
#if defined(__AVX512F__)
constexpr int kBytes = 64;
#elif defined(__x86_64__)
constexpr int kBytes = 32;
#else
constexpr int kBytes = 16;
#endif
#if defined(__x86_64__)
#define IN_REGISTER "+v"
#else
#define IN_REGISTER "+w"
#endif
typedef float Vec __attribute__((vector_size(kBytes)));
extern "C" int lanes() { return kBytes / 4; }
extern "C" double fma_seconds(long iterations, float *last) {
  const Vec b = Vec{} + 0.999999f, c = Vec{} + 1e-7f;
  Vec a0 = Vec{} + 1.0f, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0,
      a11 = a0;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < iterations; ++i) {
    a0 = a0 * b + c, a1 = a1 * b + c, a2 = a2 * b + c, a3 = a3 * b + c, a4 = a4 * b + c, a5 = a5 * b + c;
    a6 = a6 * b + c, a7 = a7 * b + c, a8 = a8 * b + c, a9 = a9 * b + c, a10 = a10 * b + c, a11 = a11 * b + c;
    asm volatile("" : IN_REGISTER(a0), IN_REGISTER(a1), IN_REGISTER(a2), IN_REGISTER(a3), IN_REGISTER(a4),
                 IN_REGISTER(a5), IN_REGISTER(a6), IN_REGISTER(a7), IN_REGISTER(a8), IN_REGISTER(a9),
                 IN_REGISTER(a10), IN_REGISTER(a11));
  }
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  *last = a11[0];
  return took.count();
}
"""
FMA_CHAINS = 12


def fma_loop():
    """The compiled loop: ``(seconds(iterations, last), lanes)``, ``last`` receiving one chain's final value."""
    with tempfile.TemporaryDirectory() as build:
        source, library = os.path.join(build, "fma.cc"), os.path.join(build, "fma.so")
        with open(source, "w") as out:
            out.write(_FMA_LOOP)
        subprocess.run([cxx_compiler(), "-O3", "-march=native", "-ffp-contract=fast", "-shared", "-fPIC", source, "-o",
                        library], check=True)
        loop = ctypes.CDLL(library)
    loop.fma_seconds.restype = ctypes.c_double
    loop.fma_seconds.argtypes = [ctypes.c_long, ctypes.POINTER(ctypes.c_float)]
    return loop.fma_seconds, loop.lanes()


def fma_peak_gflops(iterations=50_000_000, repeats=3):
    """One core's multiply-add peak in fp32 GFLOP/s, the best of ``repeats`` runs of the loop."""
    seconds, lanes = fma_loop()
    last = ctypes.c_float()
    best = min(seconds(iterations, ctypes.byref(last)) for _ in range(repeats))
    return 2 * FMA_CHAINS * lanes * iterations / best / 1e9


def layer_shapes():
    """(label, transa, transb, m, n, k) of the forward, input-gradient and weight-gradient GEMMs of each stage, after
    a large square: the rate a BLAS reaches on this core when the shape does not limit it."""
    shapes = [("square, for reference", False, False, 2048, 2048, 2048)]
    for tokens, width, hidden in STAGES:
        stage = f"{tokens} tokens, {width} wide"
        shapes += [(f"qkv forward, {stage}", False, True, tokens, 3 * width, width),
                   (f"fc1 forward, {stage}", False, True, tokens, hidden, width),
                   (f"fc2 forward, {stage}", False, True, tokens, width, hidden),
                   (f"fc1 input gradient, {stage}", False, False, tokens, width, hidden),
                   (f"fc1 weight gradient, {stage}", True, False, hidden, width, tokens)]
    return shapes


def onednn_gemm():
    import mindspore

    library = ctypes.CDLL(os.path.join(os.path.dirname(mindspore.__file__), "lib", "libdnnl.so.3"))
    sgemm = library.dnnl_sgemm
    sgemm.argtypes = [ctypes.c_char, ctypes.c_char, _INT64, _INT64, _INT64, _FLOAT, _POINTER, _INT64, _POINTER,
                      _INT64, _FLOAT, _POINTER, _INT64]

    def gemm(transa, transb, m, n, k, a, lda, b, ldb, c, ldc):
        sgemm(b"T" if transa else b"N", b"T" if transb else b"N", m, n, k, 1.0, a, lda, b, ldb, 0.0, c, ldc)
    return gemm


def cblas_gemm(sgemm, integer):
    sgemm.argtypes = ([ctypes.c_int] * 3 + [integer] * 3
                      + [_FLOAT, _POINTER, integer, _POINTER, integer, _FLOAT, _POINTER, integer])

    def gemm(transa, transb, m, n, k, a, lda, b, ldb, c, ldc):
        sgemm(ROW_MAJOR, TRANSPOSED if transa else PLAIN, TRANSPOSED if transb else PLAIN, m, n, k, 1.0, a, lda, b,
              ldb, 0.0, c, ldc)
    return gemm


def openblas_gemm():
    libraries = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "libopenblas*.so"))
    if not libraries:
        raise FileNotFoundError("numpy's wheel carries no OpenBLAS here")
    library = ctypes.CDLL(libraries[0])
    library.openblas_set_num_threads64_(1)
    return cblas_gemm(library.cblas_sgemm64_, _INT64)


def mkl_gemm(path):
    os.environ["MKL_THREADING_LAYER"] = "SEQUENTIAL"
    library = ctypes.CDLL(path)
    return cblas_gemm(library.cblas_sgemm, ctypes.c_int)


def gflops(gemm, shape, repeats):
    """Best of ``repeats`` calls, after checking the product against numpy's."""
    _, transa, transb, m, n, k = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if transa else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if transb else (k, n), dtype=np.float32)
    c = np.empty((m, n), np.float32)
    args = (transa, transb, m, n, k, a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], c.ctypes.data, n)
    gemm(*args)
    expected = (a.T if transa else a) @ (b.T if transb else b)
    if not np.allclose(c, expected, rtol=1e-3, atol=1e-2):
        raise AssertionError(f"{shape[0]}: the GEMM's product differs from numpy's")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        gemm(*args)
        best = min(best, time.perf_counter() - start)
    return 2 * m * n * k / best / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mkl", help="path of MKL's libmkl_rt.so (from its wheel); without it MKL is left out")
    parser.add_argument("--repeats", type=at_least(1), default=7)
    parser.add_argument("--json", help="write the rates here")
    args = parser.parse_args()
    if cxx_compiler() is None:
        parser.error("no C++ compiler (install g++ or set CXX): it builds the multiply-add loop that gives the peak "
                     "the rates are set against")
    libraries = {"oneDNN": onednn_gemm(), "OpenBLAS": openblas_gemm()}
    if args.mkl:
        try:
            libraries["MKL"] = mkl_gemm(args.mkl)
        except (OSError, AttributeError) as error:
            parser.error(f"--mkl {args.mkl}: not a loadable MKL runtime with cblas_sgemm ({error})")
    try:
        peak = fma_peak_gflops()
    except (OSError, subprocess.CalledProcessError) as error:
        parser.error(f"{cxx_compiler()} did not build the multiply-add loop that gives the peak: {error}")
    print(cpu_model(), f"- one core, GFLOP/s (% of its {peak:.0f} GFLOP/s multiply-add peak)")
    print("| GEMM | m | n | k | " + " | ".join(libraries) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(libraries))
    rows = []
    for shape in layer_shapes():
        rates = {name: gflops(gemm, shape, args.repeats) for name, gemm in libraries.items()}
        rows.append({"gemm": shape[0], "m": shape[3], "n": shape[4], "k": shape[5], "gflops": rates})
        print(f"| {shape[0]} | {shape[3]} | {shape[4]} | {shape[5]} | "
              + " | ".join(f"{rate:.0f} ({100 * rate / peak:.0f} %)" for rate in rates.values()) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cpu": cpu_model(), "fma_peak_gflops": peak, "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()
