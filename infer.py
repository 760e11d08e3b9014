"""Predict images: python infer.py --model svt_small --ckpt_path CKPT IMAGE_OR_FOLDER [...] [--json]"""
import argparse
import json
import sys

from mindcv.data import INTERPOLATIONS
from mindcv.utils.cli import run_cli
from mindcv.utils.distributed import init_context
from mindcv.utils.inference import (
    CLASS_NAMES_FILE,
    add_weights_arguments,
    create_inference_model,
    eval_transforms,
    list_images,
    predict,
    resolve_class_names,
    top_k,
)


def parse_args():
    parser = argparse.ArgumentParser(description="Top-k predictions of a MindCV-Twins model for images.")
    parser.add_argument("images", nargs="+", help="image files and folders (searched recursively)")
    add_weights_arguments(parser)
    parser.add_argument("--class_names", default="",
                        help=f"text file, one class name per line (default: {CLASS_NAMES_FILE} beside the "
                             "checkpoint, else ImageNet-1k's names for 1000 classes, else class indices)")
    parser.add_argument("--topk", type=int, default=5, help="how many classes to print per image")
    parser.add_argument("--batch_size", type=int, default=8, help="images per forward pass")
    parser.add_argument("--image_size", type=int, nargs=2, default=None, metavar=("HEIGHT", "WIDTH"),
                        help="crop size (default: the model's input size)")
    parser.add_argument("--crop_pct", type=float, default=None,
                        help="resize to image_size / crop_pct before the centre crop (default: the model's)")
    parser.add_argument("--interpolation", choices=sorted(INTERPOLATIONS), default=None,
                        help="resize interpolation (default: the model's)")
    parser.add_argument("--json", action="store_true", help="print the predictions as JSON")
    parser.add_argument("--device_target", choices=("auto", "CPU", "GPU", "Ascend"), default="auto")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    return parser.parse_args()


def main(args):
    if args.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}.")
    init_context(mode=0, device_target=args.device_target)
    paths = list_images(args.images)
    model = create_inference_model(args.model, args.ckpt_path, args.pretrained, args.num_classes)
    class_names = resolve_class_names(model.num_classes, args.class_names, args.ckpt_path)
    if not 1 <= args.topk <= model.num_classes:
        raise ValueError(f"--topk must lie in 1..{model.num_classes} (the number of classes), got {args.topk}.")
    transforms = eval_transforms(model.default_cfg, args.image_size, args.crop_pct, args.interpolation)

    results = []
    for path, probabilities, problem in predict(model, paths, transforms, args.batch_size):
        if problem:
            print(f"warning: skipped {problem}", file=sys.stderr)
            continue
        results.append({"image": path, "top_k": top_k(probabilities, args.topk, class_names)})
        if not args.json:
            print(format_prediction(results[-1]), flush=True)
    if not results:
        raise ValueError(f"None of the {len(paths)} images could be read.")
    if args.json:
        print(json.dumps(results, indent=2))


def format_prediction(result):
    lines = [result["image"]]
    lines += [f"  {p['probability']:7.2%}  {p['label']} [{p['class_id']}]" for p in result["top_k"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_cli(main, parse_args))
