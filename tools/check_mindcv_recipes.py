"""Load every MindCV recipe YAML under a folder through train.py's config loader and report how many load.

    python tools/check_mindcv_recipes.py PATH/TO/mindcv/configs

The folder is upstream MindCV's ``configs/`` (a clone of mindspore-lab/mindcv). Loading checks every key and
value; the model each recipe names is not built (only Twins is registered here). Exits 1 if any fails, listing
each distinct error with its count.
"""
import argparse
import collections
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mindcv.cli.config import parse_args  # noqa: E402
from mindcv.foundation import UserError  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("configs", help="MindCV's configs/ folder")
    folder = parser.parse_args().configs
    files = sorted(glob.glob(os.path.join(folder, "**", "*.yaml"), recursive=True))
    if not files:
        parser.error(f"no .yaml files under {folder}")
    errors = collections.Counter()
    for path in files:
        try:
            parse_args(["-c", path])
        except UserError as err:
            errors[str(err).replace(path, "<file>")] += 1
        except SystemExit:  # argparse refused a value; it printed why
            errors["a value the command line refuses (printed above)"] += 1
    print(f"{len(files) - sum(errors.values())}/{len(files)} MindCV recipes load")
    for message, count in errors.most_common():
        print(f"  {count} x {message}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
