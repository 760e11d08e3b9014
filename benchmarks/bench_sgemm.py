"""One core's fp32 GEMM rate at Twins' batch-8 dense-layer shapes, for the BLAS libraries a dense kernel could
call: oneDNN's ``dnnl_sgemm`` (the libdnnl.so.3 MindSpore ships, which the fused kernels use), numpy's bundled
OpenBLAS and, given ``--mkl``, MKL's ``cblas_sgemm`` (the BLAS PyTorch uses). The fused kernels run one GEMM per
core, so one core's rate is what decides between them.

    python benchmarks/bench_sgemm.py [--mkl /path/to/libmkl_rt.so.3] [--json out.json]

MKL is not a dependency: unpack its wheel (``pip download --no-deps mkl``) and point ``--mkl`` at libmkl_rt.
"""
import argparse
import ctypes
import glob
import json
import os
import time

import numpy as np

from bench_models import cpu_model

ROW_MAJOR, PLAIN, TRANSPOSED = 101, 111, 112
_INT64, _FLOAT, _POINTER = ctypes.c_int64, ctypes.c_float, ctypes.c_void_p
# Tokens of a batch of 8 at 224 px, embedding width and MLP width of each stage (pcpvt_small's third stage is 320
# wide, svt_small's 256).
STAGES = [(25088, 64, 256), (6272, 128, 512), (1568, 256, 1024), (1568, 320, 1280), (392, 512, 2048)]


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
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="write the rates here")
    args = parser.parse_args()
    libraries = {"oneDNN": onednn_gemm(), "OpenBLAS": openblas_gemm()}
    if args.mkl:
        libraries["MKL"] = mkl_gemm(args.mkl)
    print(cpu_model(), "- one core, GFLOP/s")
    print("| GEMM | m | n | k | " + " | ".join(libraries) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(libraries))
    rows = []
    for shape in layer_shapes():
        rates = {name: gflops(gemm, shape, args.repeats) for name, gemm in libraries.items()}
        rows.append({"gemm": shape[0], "m": shape[3], "n": shape[4], "k": shape[5], "gflops": rates})
        print(f"| {shape[0]} | {shape[3]} | {shape[4]} | {shape[5]} | "
              + " | ".join(f"{rate:.0f}" for rate in rates.values()) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"cpu": cpu_model(), "rows": rows}, out, indent=1)


if __name__ == "__main__":
    main()
