"""The package's layers import one way: foundation <- kernels <- builders <- engine <- deploy <- command lines.

Every import statement of the package and the four scripts (function-level ones included) is read from the
source and checked against the rule that the README's layout section states."""
import ast
import os
import sys

import pytest

from .helpers import ROOT

# Layer rank of each package; a module may import its own layer and lower ranks only. The builders are
# independent of each other.
LAYERS = {
    "mindcv.foundation": ("foundation", 0),
    "mindcv.kernels": ("kernels", 1),
    "mindcv.models": ("builders", 2),
    "mindcv.data": ("builders", 2),
    "mindcv.loss": ("builders", 2),
    "mindcv.optim": ("builders", 2),
    "mindcv.scheduler": ("builders", 2),
    "mindcv.engine": ("engine", 3),
    "mindcv.deploy": ("deploy", 4),
    "mindcv.cli": ("cli", 5),
    "mindcv.models.convert": ("cli", 5),  # `python -m mindcv.models.convert`: an entry point at MindCV's path
    "train": ("cli", 5), "validate": ("cli", 5), "infer": ("cli", 5), "export": ("cli", 5),
}
FACADES = {"mindcv", "mindcv.utils"}  # re-export names for MindCV users; hold no code of their own
FOUNDATION_THIRD_PARTY = {"mindspore", "tqdm"}
SCRIPTS = ("train.py", "validate.py", "infer.py", "export.py")


def _module_files():
    for folder, _, names in os.walk(os.path.join(ROOT, "mindcv")):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__")
                yield module, path, name == "__init__.py"
    for script in SCRIPTS:
        yield script[:-3], os.path.join(ROOT, script), False


def _imports(module, path, is_package):
    """Absolute names of everything ``module`` imports, with the line of each."""
    package = module if is_package else module.rpartition(".")[0]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base, node.lineno
            yield from ((f"{base}.{alias.name}", node.lineno) for alias in node.names)


def _layer(module):
    owner = max((name for name in LAYERS if module == name or module.startswith(name + ".")), key=len, default=None)
    return owner, LAYERS.get(owner)


def _own(module):
    return module.split(".")[0] in ("mindcv", "train", "validate", "infer", "export")


def violations():
    found = []
    for module, path, is_package in _module_files():
        if module in FACADES:
            continue
        owner, (layer, rank) = _layer(module)
        for imported, line in _imports(module, path, is_package):
            where = f"{os.path.relpath(path, ROOT)}:{line} ({layer})"
            if layer == "foundation" and not _own(imported) and imported.split(".")[0] not in sys.stdlib_module_names:
                if imported.split(".")[0] not in FOUNDATION_THIRD_PARTY:
                    found.append(f"{where} imports {imported}: the foundation imports MindSpore only")
            if not _own(imported) or imported in FACADES:
                if imported in FACADES and imported != "mindcv":
                    found.append(f"{where} imports the facade {imported}")
                continue
            other_owner, other = _layer(imported)
            if other is None:
                continue  # the top-level package itself, e.g. `from mindcv import kernels` names the sub-package
            if other[1] > rank:
                found.append(f"{where} imports {imported} ({other[0]}): a lower layer imports a higher one")
            elif other[1] == rank == 2 and other_owner != owner and other_owner.count(".") == 1:
                found.append(f"{where} imports {imported}: builders do not import each other")
    return found


def test_no_import_runs_against_the_layer_rule():
    assert violations() == []


def test_the_check_sees_a_violation(tmp_path, monkeypatch):
    """A foundation module importing the engine, and a builder importing another builder, are reported."""
    bad = tmp_path / "mindcv" / "foundation"
    bad.mkdir(parents=True)
    (bad / "bad.py").write_text("from ..engine import TrainStep\n\ndef f():\n    from ..data import create_loader\n")
    builder = tmp_path / "mindcv" / "loss"
    builder.mkdir()
    (builder / "bad.py").write_text("from ..models import create_model\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    monkeypatch.setattr(sys.modules[__name__], "SCRIPTS", ())
    found = violations()
    assert any("foundation/bad.py:1" in v and "mindcv.engine" in v for v in found)
    assert any("foundation/bad.py:4" in v and "mindcv.data" in v for v in found)
    assert any("loss/bad.py:1" in v and "builders do not import each other" in v for v in found)


def test_every_module_has_a_layer():
    unplaced = [module for module, _, _ in _module_files() if module not in FACADES and _layer(module)[0] is None]
    assert unplaced == []


@pytest.mark.parametrize("name", ["TrainStep", "CheckpointManager", "CheckpointError", "download_url"])
def test_mindcv_utils_reexports_engine_and_foundation_names(name):
    import mindcv.engine
    import mindcv.foundation
    import mindcv.utils

    source = getattr(mindcv.engine, name, None) or getattr(mindcv.foundation, name)
    assert getattr(mindcv.utils, name) is source
