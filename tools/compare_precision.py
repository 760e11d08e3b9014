"""How far bf16 matmuls move a trained model's predictions: top-1 agreement with fp32 over a validation set.

    python tools/compare_precision.py -c configs/twins/svt_s_demo_cpu.yaml --data_dir digits \\
        --ckpt_path svt_small-best.ckpt [--json precision.json]

Takes validate.py's options (the config, data and checkpoint), runs the validation split once with fp32 matmuls
and once with ``--val_precision bf16``'s, and prints both accuracies, the share of images whose top-1 class
agrees, and the largest |logit difference|. Speed is bench_models.py's. Fails where the CPU has no bf16.
"""
import json
import sys

import numpy as np
from tqdm import tqdm

from mindcv.cli import call_with_options, parse_args, run_cli
from mindcv.engine import build_dataset, build_eval_loader, build_model, init_context, resolve_num_classes
from mindcv.foundation import InvalidValueError
from mindcv.models import set_matmul_precision


def split_args(argv):
    """(validate.py's arguments, the JSON path or None)."""
    if "--json" not in argv:
        return argv, None
    at = argv.index("--json")
    if at + 1 >= len(argv):
        raise InvalidValueError("--json needs a file path.")
    return argv[:at] + argv[at + 2:], argv[at + 1]


def logits_and_labels(model, loader, precision):
    """Every validation image's logits, and the labels."""
    logits, labels = [], []
    for images, targets in tqdm(loader.create_tuple_iterator(num_epochs=1), total=loader.get_dataset_size(),
                                desc=precision, leave=False):
        logits.append(model(images).asnumpy())
        labels.append(targets.asnumpy())
    return np.concatenate(logits), np.concatenate(labels)


def compare(args):
    init_context(args.mode, args.device_target)
    if not args.ckpt_path:
        raise InvalidValueError("compare_precision.py needs --ckpt_path CKPT (the trained weights).")
    val_set = call_with_options(build_dataset, args, args.val_split, shuffle=False)
    args.num_classes = resolve_num_classes(val_set, args.num_classes)
    model = call_with_options(build_model, args, checkpoint_path=args.ckpt_path)
    model.set_train(False)
    loader = call_with_options(build_eval_loader, args, val_set)
    fp32, labels = logits_and_labels(model, loader, "fp32")
    if set_matmul_precision(model, "bf16") != "bf16":
        raise InvalidValueError("This CPU has no bf16 instructions: there is nothing to compare.")
    bf16, _ = logits_and_labels(model, loader, "bf16")
    return {"model": args.model, "checkpoint": args.ckpt_path, "images": len(labels),
            "top1_fp32": 100 * float((fp32.argmax(1) == labels).mean()),
            "top1_bf16": 100 * float((bf16.argmax(1) == labels).mean()),
            "top1_agreement": 100 * float((fp32.argmax(1) == bf16.argmax(1)).mean()),
            "max_abs_logit_difference": float(np.abs(fp32 - bf16).max()),
            "max_abs_logit": float(np.abs(fp32).max())}


def main(argv):
    validate_argv, json_path = split_args(argv)
    result = compare(parse_args(validate_argv, description="fp32 against bf16 matmuls", check_names=True,
                                check_launch=False))
    print(f"{result['images']} images: top-1 {result['top1_fp32']:.2f} % (fp32), {result['top1_bf16']:.2f} % "
          f"(bf16); top-1 agrees on {result['top1_agreement']:.2f} %; max |logit difference| "
          f"{result['max_abs_logit_difference']:.4f} (logits up to {result['max_abs_logit']:.2f})")
    if json_path:
        with open(json_path, "w") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    sys.exit(run_cli(main, lambda: sys.argv[1:]))
