"""The command lines' layer: the option schemas (argparse and YAML from one source) and the runner that turns a
user's mistake into one line. Only train.py, validate.py, infer.py, export.py and entry points use it."""
from .config import (EXPORT_SCHEMA, INFER_SCHEMA, SCHEMA, call_with_options, create_parser, load_yaml_config,
                     options_for, parse_args, parse_export_args, parse_infer_args, save_config)
from .runner import run_cli

__all__ = ["EXPORT_SCHEMA", "INFER_SCHEMA", "SCHEMA", "call_with_options", "create_parser", "load_yaml_config",
           "options_for", "parse_args", "parse_export_args", "parse_infer_args", "run_cli", "save_config"]
