"""Predict images: python infer.py --model svt_small --ckpt_path CKPT IMAGE_OR_FOLDER [...] [--json]"""
import json
import sys

from mindcv.cli import parse_infer_args, run_cli
from mindcv.deploy.inference import (create_inference_model, eval_transforms, list_images, predict,
                                     resolve_class_names, top_k)
from mindcv.engine import init_context
from mindcv.foundation import InvalidValueError


def main(args):
    init_context(mode=0, device_target=args.device_target)
    inputs = list(args.images) + list(args.image_path or ())
    if not inputs:
        raise InvalidValueError("No images given: name image files or folders, or pass --image_path IMAGE.")
    paths = list_images(inputs)
    model = create_inference_model(args.model, args.ckpt_path, args.pretrained, args.num_classes, args.precision)
    class_names = resolve_class_names(model.num_classes, args.class_names, args.ckpt_path)
    if args.topk > model.num_classes:
        raise InvalidValueError(f"--topk must lie in 1..{model.num_classes} (the number of classes), got {args.topk}.")
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
        raise InvalidValueError(f"None of the {len(paths)} images could be read.")
    if args.json:
        print(json.dumps(results, indent=2))


def format_prediction(result):
    lines = [result["image"]]
    lines += [f"  {p['probability']:7.2%}  {p['label']} [{p['class_id']}]" for p in result["top_k"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_cli(main, parse_infer_args))
