"""How long train.py takes from a SIGTERM to its exit: the step in progress finishes, the state (weights,
optimizer, position in the epoch) is saved to ``<model>-partial.ckpt``, and the process exits 143.

Each round starts train.py afresh, sends SIGTERM once the log shows batch ``--at-batch`` done, and times the exit;
it checks the exit code and the saved file. Usage:

    python benchmarks/bench_preemption.py [--rounds 3] [--at-batch 8] [--data_dir DIGITS] [--json FILE]
                                          [-- TRAIN.PY ARGUMENTS]

Without ``--data_dir`` the scikit-learn digits are written to a temporary folder (tools/make_digits_imagefolder.py).
The train.py arguments default to svt_small at 224 px, batch 8, drop_path_rate 0.2 (the demo recipe otherwise).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench_models import at_least, cpu_model, machine_busy_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TRAIN_ARGS = ["-c", "configs/twins/svt_s_demo_cpu.yaml", "--model", "svt_small", "--image_resize", "224",
                      "--batch_size", "8", "--drop_path_rate", "0.2", "--epoch_size", "3", "--decay_epochs", "2",
                      "--val_while_train", "False"]


def wait_for_line(path, text, process):
    while not (os.path.exists(path) and text in open(path).read()):
        if process.poll() is not None:
            sys.exit(f"train.py ended (exit {process.returncode}) before logging {text!r}; see {path}")
        time.sleep(0.05)


def one_round(train_args, data_dir, at_batch, out):
    command = [sys.executable, os.path.join(ROOT, "train.py"), *train_args, "--data_dir", data_dir,
               "--ckpt_save_dir", out, "--log_interval", "1"]
    with open(os.path.join(out, "stderr.log"), "w") as err:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    wait_for_line(os.path.join(out, "train.log"), f" step {at_batch}/", process)
    busy, sent = machine_busy_seconds(), time.perf_counter()
    process.send_signal(signal.SIGTERM)
    code = process.wait()
    seconds = time.perf_counter() - sent
    saved = [name for name in os.listdir(out) if name.endswith("-partial.ckpt")]
    if code != 128 + signal.SIGTERM or not saved:
        sys.exit(f"expected exit 143 with a partial checkpoint, got exit {code} and files {os.listdir(out)}")
    # Every core the machine used meanwhile, ours included: compare with the cores this process can use.
    return {"seconds_to_exit": round(seconds, 2), "exit_code": code, "saved": saved[0],
            "machine_cores_busy": round((machine_busy_seconds() - busy) / seconds, 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--at-batch", type=at_least(1), default=8)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--json", default=None)
    argv = sys.argv[1:]
    train_args = argv[argv.index("--") + 1:] if "--" in argv else DEFAULT_TRAIN_ARGS
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or os.path.join(tmp, "digits")
        if args.data_dir is None:
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_digits_imagefolder.py"),
                            "--out", data_dir, "--size", "32"], check=True, stdout=subprocess.DEVNULL)
        rounds = []
        for i in range(args.rounds):
            out = os.path.join(tmp, f"round{i}")
            os.makedirs(out)
            rounds.append(one_round(train_args, data_dir, args.at_batch, out))
            print(json.dumps(rounds[-1]), flush=True)
    result = {"cpu": cpu_model(), "cores": os.cpu_count(), "train_args": train_args, "at_batch": args.at_batch,
              "rounds": rounds, "median_seconds_to_exit": statistics.median(r["seconds_to_exit"] for r in rounds)}
    print(f"SIGTERM to exit at batch {args.at_batch}: median {result['median_seconds_to_exit']:.2f} s over "
          f"{len(rounds)} rounds on {result['cpu']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
