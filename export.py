"""Export a model for deployment: python export.py --model svt_small --ckpt_path CKPT --format MINDIR|ONNX|AIR"""
import argparse
import sys

from mindcv.utils.cli import run_cli
from mindcv.utils.distributed import init_context
from mindcv.utils.inference import (
    EXPORT_FORMATS,
    add_weights_arguments,
    check_export_format,
    check_image_size,
    create_inference_model,
    export_model,
)


def parse_args():
    parser = argparse.ArgumentParser(description="Export a MindCV-Twins model to MINDIR, ONNX or AIR.")
    add_weights_arguments(parser)
    parser.add_argument("--format", default="MINDIR", help=f"one of {', '.join(EXPORT_FORMATS)} (AIR: Ascend only)")
    parser.add_argument("--image_size", type=int, nargs=2, default=None, metavar=("HEIGHT", "WIDTH"),
                        help="input size (default: the model's input size)")
    parser.add_argument("--batch_size", type=int, default=1, help="the exported graph's fixed batch size")
    parser.add_argument("--output", default="",
                        help="file path, extension optional (default: <model>_<H>x<W>_bs<B>.<format extension>)")
    parser.add_argument("--device_target", choices=("auto", "CPU", "GPU", "Ascend"), default="auto")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    return parser.parse_args()


def main(args):
    init_context(mode=0, device_target=args.device_target)
    file_format = check_export_format(args.format)
    image_size = check_image_size(args.image_size) if args.image_size else None
    model = create_inference_model(args.model, args.ckpt_path, args.pretrained, args.num_classes)
    height, width = image_size or model.default_cfg["input_size"][1:]
    path = export_model(model, file_format, (height, width), args.batch_size, args.output)
    print(f"Wrote {path} ({file_format}: input {args.batch_size}x3x{height}x{width} float32, "
          f"output {args.batch_size}x{model.num_classes} logits)")


if __name__ == "__main__":
    sys.exit(run_cli(main, parse_args))
