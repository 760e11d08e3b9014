#!/usr/bin/env bash
# Launch data-parallel training with one process per device.
#
#   scripts/launch_distributed.sh msrun      8 train.py -c configs/twins/svt_s_gpu.yaml --data_dir /path/to/imagenet
#   scripts/launch_distributed.sh mpirun     8 train.py -c configs/twins/svt_s_ascend.yaml --data_dir ...
#   scripts/launch_distributed.sh mpirun-cpu 2 train.py -c configs/twins/svt_s_demo_cpu.yaml
#
# msrun (MindSpore's launcher, any device). Several nodes: run it on every node with NODE_RANK=0..N-1,
#   MASTER_ADDR=<node 0's address>, WORKER_NUM=<processes on all nodes>; NUM = processes on this node.
# mpirun (OpenMPI, GPU with NCCL / Ascend with HCCL). Several nodes: HOSTFILE=hosts, lines "node1 slots=8".
# mpirun-cpu: on CPU MindSpore's collectives need its own cluster (a scheduler process plus workers); mpirun
#   starts them. Plain mpirun fails on CPU with "Failed to initialize communication library on device side".
# MASTER_PORT (default 8118) must be free. "--distribute True" is appended to the training arguments.
# MPI_KILL_GRACE (default 10): seconds between the signals Open MPI 4's mpirun sends when told to end the job
#   (SIGCONT, SIGTERM, SIGKILL); its default, 1, ends the ranks before they can save on SIGTERM.
set -euo pipefail
mode=${1:?usage: $0 {msrun|mpirun|mpirun-cpu} NUM script.py [args...]}
num=${2:?number of processes (per node for msrun)}
shift 2
port=${MASTER_PORT:-8118}
root_flag=$([ "$(id -u)" -eq 0 ] && echo "--allow-run-as-root" || true)
grace=(--mca odls_base_sigkill_timeout "${MPI_KILL_GRACE:-10}")

case "$mode" in
  msrun)
    exec msrun --worker_num="${WORKER_NUM:-$num}" --local_worker_num="$num" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
      --master_port="$port" --node_rank="${NODE_RANK:-0}" --log_dir="${LOG_DIR:-msrun_log}" --join=True \
      --cluster_time_out="${CLUSTER_TIMEOUT:-600}" "$@" --distribute True ;;
  mpirun)
    exec mpirun $root_flag "${grace[@]}" -n "$num" ${HOSTFILE:+--hostfile "$HOSTFILE"} python "$@" --distribute True ;;
  mpirun-cpu)
    cluster=(-x MS_SCHED_HOST="${MASTER_ADDR:-127.0.0.1}" -x MS_SCHED_PORT="$port" -x MS_WORKER_NUM="$num" -x PATH)
    exec mpirun $root_flag "${grace[@]}" --oversubscribe -n 1 "${cluster[@]}" -x MS_ROLE=MS_SCHED python "$@" --distribute True : \
      -n "$num" "${cluster[@]}" -x MS_ROLE=MS_WORKER python "$@" --distribute True ;;
  *)
    echo "error: unknown launch mode '$mode'; use msrun, mpirun or mpirun-cpu" >&2; exit 2 ;;
esac
