"""``python -m mindcv.kernels [--level LEVEL]``: builds the fused kernel library into the cache
(``$MINDCV_KERNEL_CACHE``) ahead of time, at install or in a container image, so that the first training step does
not wait on the compiler. Prints the level and the library's path; exits 1 with one line when it cannot build."""
import argparse
import sys

from .build import CACHE_ENV, build_library, cpu_level, isa_levels


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mindcv.kernels",
        description=f"Build the fused CPU kernel library into ${CACHE_ENV} (default ~/.cache/mindcv/kernels) ahead of "
                    "time, so that the first training step does not wait on the compiler.")
    parser.add_argument("--level", choices=isa_levels(), default=cpu_level(),
                        help="instruction-set level to build for (default: this CPU's, %(default)s)")
    level = parser.parse_args(argv).level
    try:
        path = build_library(level)
    except (OSError, RuntimeError) as error:
        print(f"error: cannot build the fused CPU kernels for {level}: {str(error).splitlines()[0]}", file=sys.stderr)
        return 1
    print(level, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
