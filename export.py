"""Export a model for deployment: python export.py --model svt_small --ckpt_path CKPT --format MINDIR|ONNX|AIR"""
import sys

from mindcv.cli import parse_export_args, run_cli
from mindcv.deploy.export import check_export_format, export_model
from mindcv.deploy.inference import check_image_size, create_inference_model
from mindcv.engine import init_context


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
    sys.exit(run_cli(main, parse_export_args))
