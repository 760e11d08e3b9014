"""Kill a training run again and again, resume it each time, and check it ends as the uninterrupted run did.

    python tools/fault_soak.py --kills 20 [--modes MODE ...] [--seed 0] [--reference DIR] [--out DIR] -- TRAIN.PY ARGS

The arguments after ``--`` are train.py's (e.g. ``-c configs/twins/svt_s_demo_cpu.yaml --data_dir digits``);
``--ckpt_save_dir``, ``--auto_resume`` and ``--log_interval`` are set here. The tool first runs them once
without interruption (or takes that run's folder from ``--reference``), then starts the run with
``--auto_resume True`` and stops it ``--kills`` times, each time in one of these ways (or of ``--modes``), in turn:

  sigterm               SIGTERM at a random moment of an epoch's steps, before its last: the run must save
                        and exit 143
  sigkill-step          SIGKILL at a random moment of an epoch's steps, before its last
  sigkill-checkpoint    SIGKILL while a checkpoint is being written (its temporary file exists)
  sigterm-validation    SIGTERM while the epoch's validation runs: the run must save and exit 143
  sigkill-validation    SIGKILL while the epoch's validation runs

and lets it finish. It passes when the final weights are bit-identical to the reference's, the per-epoch rows
of train_log.csv agree (all but the timings), every step's logged loss equals the reference's, and no
interrupted checkpoint write left its temporary file. Writes ``soak.json`` (kills, resumes, SIGTERM-to-exit
seconds, result) into the output folder; exits 1 on a failure.
"""
import argparse
import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILL_MODES = ("sigterm", "sigkill-step", "sigkill-checkpoint", "sigterm-validation", "sigkill-validation")
GRACEFUL_MODES = ("sigterm", "sigterm-validation")
STOP_LINE = re.compile(r"after batch (\d+) of (\d+) in epoch (\d+)")
TIMING_FIELDS = ("epoch_time_s", "images_per_s")
ERROR_LINE = re.compile(r"^([\w.]*(Error|Exception)\b|error: )")
STEP_LINE = re.compile(r"epoch (\d+) step (\d+)/(\d+): loss ([\d.eE+-]+|nan)")


def train_command(train_args, out, resume):
    return [sys.executable, os.path.join(ROOT, "train.py"), *train_args, "--ckpt_save_dir", out,
            "--log_interval", "1", "--auto_resume", str(resume)]


def epochs_logged(out):
    return len(read_rows(out)) if os.path.exists(os.path.join(out, "train_log.csv")) else 0


def read_rows(out):
    with open(os.path.join(out, "train_log.csv"), newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMING_FIELDS} for row in csv.DictReader(f)]


def step_losses(out):
    """The last logged loss of every (epoch, step): a step repeated after a kill counts once, as rerun."""
    with open(os.path.join(out, "train.log")) as f:
        return {(m.group(1), m.group(2)): m.group(4) for m in STEP_LINE.finditer(f.read())}


def steps_logged(out):
    path = os.path.join(out, "train.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return STEP_LINE.findall(f.read())


def wait_until(condition, process, timeout):
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.01)
    return True


def in_validation(out, lines_before, epochs_before):
    """This run logged an epoch's last step and not yet its row: validation (or the epoch's save) runs."""
    lines = steps_logged(out)
    return len(lines) > lines_before and lines[-1][1] == lines[-1][2] and epochs_logged(out) == epochs_before


def wait_for_kill_point(mode, out, process, rng):
    """Wait until ``mode``'s moment has come; False when the run ended first."""
    if mode == "sigkill-checkpoint":
        return wait_until(lambda: any(f.startswith(".tmp-") for f in os.listdir(out)), process, 900)
    if mode.endswith("-validation"):
        lines, epochs = len(steps_logged(out)), epochs_logged(out)
        return wait_until(lambda: in_validation(out, lines, epochs), process, 900)
    return wait_inside_steps(out, process, rng)


def wait_inside_steps(out, process, rng):
    """Wait for a random moment inside a step that is not its epoch's last (the validation modes cover the
    epoch's end): after the line of a random batch, for a random part of the time the step before it took."""
    seen_at, target = [], None
    while True:
        count = len(steps_logged(out))
        if not wait_until(lambda: len(steps_logged(out)) > count, process, 900):  # past start-up and compile
            return False
        seen_at.append(time.time())
        _, batch, batches, _ = steps_logged(out)[-1]
        if target is None and int(batches) >= 3:
            target = rng.randint(1, int(batches) - 2)
        if len(seen_at) >= 2 and int(batch) == target:
            break
    time.sleep(rng.uniform(0.0, 0.5) * (seen_at[-1] - seen_at[-2]))
    return process.poll() is None


def last_line(stderr):
    return stderr.strip().splitlines()[-1] if stderr.strip() else ""


def failure_line(stderr):
    """The exception's line of a failed run's stderr (MindSpore puts its C++ stack after it)."""
    errors = [line for line in stderr.splitlines() if ERROR_LINE.match(line)]
    return errors[-1] if errors else last_line(stderr)


def kill_once(mode, train_args, out, rng):
    """Start the resumable run, stop it as ``mode`` says; returns a record of what happened."""
    with tempfile.TemporaryFile("w+") as stderr:  # a pipe could fill up and block the run
        process = subprocess.Popen(train_command(train_args, out, True), cwd=ROOT, stdout=subprocess.DEVNULL,
                                   stderr=stderr, text=True, env=dict(os.environ, GLOG_v="3"))
        record = {"mode": mode, "epochs_logged_before": epochs_logged(out)}
        killed = wait_for_kill_point(mode, out, process, rng)
        signalled = time.time()
        if killed:
            process.send_signal(signal.SIGTERM if mode in GRACEFUL_MODES else signal.SIGKILL)
        process.wait()
        stderr.seek(0)
        text = stderr.read()
        last = last_line(text)
    record.update(killed=killed, returncode=process.returncode)
    if not killed:
        return dict(record, failure=failure_line(text)) if process.returncode else record
    record["seconds_to_exit"] = round(time.time() - signalled, 2)
    if mode in GRACEFUL_MODES:
        record["graceful"] = process.returncode == 128 + signal.SIGTERM and "--auto_resume True" in last
        stop = STOP_LINE.search(last)
        record["stopped_after"] = [int(n) for n in stop.groups()] if stop else None  # batch, of, epoch
    return record


def finish(train_args, out):
    """Run the resumable run to its end; a problem message when it fails."""
    result = subprocess.run(train_command(train_args, out, True), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, GLOG_v="3"))
    if result.returncode:
        return f"the last resumed run exited {result.returncode}: {failure_line(result.stderr)}"
    return ""


def compare(out, reference):
    """Differences between the soaked run and the reference, as messages (none: identical)."""
    from mindcv.foundation.checkpoint_io import read_checkpoint

    problems = []
    if read_rows(out) != read_rows(reference):
        problems.append("train_log.csv rows differ")
    ours, theirs = step_losses(out), step_losses(reference)
    if ours != theirs:
        problems.append(f"{sum(ours.get(k) != v for k, v in theirs.items())} of {len(theirs)} step losses differ")
    final = sorted(f for f in os.listdir(reference) if re.fullmatch(r".+-\d+\.ckpt", f))[-1]
    mine, expected = read_checkpoint(os.path.join(out, final)), read_checkpoint(os.path.join(reference, final))
    tensors = [k for k, v in expected.items() if not isinstance(v, str)]  # the config text names each run's folder
    differing = [k for k in tensors if k not in mine or not np.array_equal(mine[k].asnumpy(), expected[k].asnumpy())]
    if differing:
        problems.append(f"{len(differing)} parameters of {final} differ, e.g. {differing[:3]}")
    leftovers = [f for f in os.listdir(out) if f.startswith(".tmp-")]
    if leftovers:
        problems.append(f"interrupted checkpoint writes left {leftovers}")
    return problems


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--modes", nargs="+", choices=KILL_MODES, default=list(KILL_MODES),
                        help="the ways to stop the run, taken in turn")
    parser.add_argument("--seed", type=int, default=0, help="for the kill moments")
    parser.add_argument("--reference", help="folder of an uninterrupted run with the same arguments")
    parser.add_argument("--out", help="folder for the runs (default: a new temporary one)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then train.py's arguments")
    args = parser.parse_args()
    args.train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if args.kills < 1:
        parser.error(f"--kills {args.kills}: a soak needs at least 1 kill")
    if not args.train_args:
        parser.error("give train.py's arguments after --")
    return args


def main():
    args = parse_args()
    rng = random.Random(args.seed)
    base = args.out or tempfile.mkdtemp(prefix="fault_soak_")
    reference = args.reference or os.path.join(base, "reference")
    started = time.time()
    if not args.reference:
        subprocess.run(train_command(args.train_args, reference, False), cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, GLOG_v="3"))
    out = os.path.join(base, "soaked")
    os.makedirs(out, exist_ok=True)
    records = []
    for kill in range(args.kills):
        record = kill_once(args.modes[kill % len(args.modes)], args.train_args, out, rng)
        records.append(record)
        print(json.dumps(record), flush=True)
    failure = finish(args.train_args, out)
    problems = [failure] if failure else compare(out, reference)
    problems += [f"kill {i} ({r['mode']}): the run ended by itself with exit code {r['returncode']}: "
                 f"{r['failure']}" for i, r in enumerate(records) if "failure" in r]
    problems += [f"SIGTERM kill {i} did not save and exit 143" for i, r in enumerate(records)
                 if r.get("killed") and r["mode"] in GRACEFUL_MODES and not r["graceful"]]
    summary = {"kills": sum(r["killed"] for r in records), "asked": args.kills, "records": records,
               "sigterm_seconds_to_exit": [r["seconds_to_exit"] for r in records
                                           if r.get("killed") and r["mode"] in GRACEFUL_MODES],
               "identical": not problems, "problems": problems, "seconds": round(time.time() - started, 1),
               "train_args": args.train_args}
    with open(os.path.join(base, "soak.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"{summary['kills']} of {args.kills} kills landed; resumed run "
          f"{'identical to' if not problems else 'DIFFERS from'} the uninterrupted one"
          f"{': ' + '; '.join(problems) if problems else ''}. Details: {os.path.join(base, 'soak.json')}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
