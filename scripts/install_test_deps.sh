#!/usr/bin/env bash
# Test dependencies: the reference stack (torch, timm) and tools from requirements-test.txt, plus OpenMPI's
# mpirun for the distributed tests (Debian's openmpi-bin; needs root or sudo when it is missing). No pip cache:
# torch's CUDA wheels would leave gigabytes there, on a disk the test suite needs.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --no-cache-dir -r requirements-test.txt
if ! command -v mpirun >/dev/null 2>&1; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq openmpi-bin libopenmpi-dev
fi
