#!/usr/bin/env bash
# Test dependencies: the reference stack (torch, timm) and tools from requirements-test.txt, plus OpenMPI's
# mpirun for the distributed tests and gdb, which names the native stack of a rank that dumps core (Debian's
# openmpi-bin and gdb; needs root or sudo when one is missing). No pip cache:
# torch's CUDA wheels would leave gigabytes there, on a disk the test suite needs.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --no-cache-dir -r requirements-test.txt
missing=()
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin libopenmpi-dev)
command -v gdb >/dev/null 2>&1 || missing+=(gdb)
if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
