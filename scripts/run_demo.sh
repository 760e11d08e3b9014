#!/usr/bin/env bash
# The whole job on one CPU, offline: make the digits ImageFolder, train svt_small on it (with validation after
# every epoch), validate the final checkpoint and plot the curves. About 4–5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

config=configs/twins/svt_s_demo_cpu.yaml
out=ckpt/svt_s_demo
python tools/make_digits_imagefolder.py --out data/digits --size 32
python train.py -c "$config" --data_dir data/digits --ckpt_save_dir "$out"
python validate.py -c "$config" --data_dir data/digits --ckpt_path "$out/svt_small-10.ckpt"
python tools/plot_log.py "$out/train_log.csv"
