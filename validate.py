"""Evaluate a checkpoint: python validate.py -c configs/twins/svt_s_gpu.yaml --data_dir DATA --ckpt_path CKPT"""
import sys

from mindcv.cli import call_with_options, parse_args, run_cli
from mindcv.engine import (apply_amp, build_dataset, build_eval_loader, build_model, check_precision_and_amp, evaluate,
                           init_context, resolve_num_classes)
from mindcv.foundation import InvalidValueError
from mindcv.loss import create_loss
from mindcv.models import set_matmul_precision


def main(args):
    init_context(args.mode, args.device_target)
    if not args.ckpt_path and not args.pretrained:
        raise InvalidValueError("validate.py needs --ckpt_path CKPT or --pretrained True.")
    check_precision_and_amp(args.val_precision, args.val_amp_level, "val_precision", "val_amp_level")
    val_set = call_with_options(build_dataset, args, args.val_split, shuffle=args.eval_shuffle)
    args.num_classes = resolve_num_classes(val_set, args.num_classes)
    model = call_with_options(build_model, args, checkpoint_path=args.ckpt_path,
                              ema=args.ema and bool(args.ckpt_path))
    model = apply_amp(model, args.val_amp_level)
    set_matmul_precision(model, args.val_precision)
    loader = call_with_options(build_eval_loader, args, val_set)
    metrics = evaluate(model, loader, create_loss(args.loss), desc=f"validate {args.model}")
    print(f"Top_1_Accuracy: {metrics['top1']:.4f}  Top_5_Accuracy: {metrics['top5']:.4f}  "
          f"Loss: {metrics['loss']:.4f}  ({metrics['samples']} images, {args.data_dir}/{args.val_split})")


if __name__ == "__main__":
    sys.exit(run_cli(main, lambda: parse_args(description="Evaluate a MindCV-Twins checkpoint.", check_names=True,
                                              check_launch=False)))
