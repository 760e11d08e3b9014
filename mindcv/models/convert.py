"""``python -m mindcv.models.convert``: the weight converter's command line at its documented path. The converter
itself is ``mindcv.deploy.convert``; this module is a command-line entry point, not part of the model builders."""
import sys

from ..deploy.convert import convert_checkpoint, infer_twins_variant, main, read_state_dict

__all__ = ["convert_checkpoint", "infer_twins_variant", "main", "read_state_dict"]

if __name__ == "__main__":
    sys.exit(main())
