"""The layering of ../shared/design.md, read from the imports of every module: dependencies
point one way (dsl -> compiler -> blocks/tasks -> kernels; training and evaluation depend on
compiled models, never the other way; the report reads records, not the training loop)."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What each part may import, besides itself. icl/cli.py wires everything and is not listed.
LEAVES = {"errors", "schema", "atomic", "runfolder"}  # icl/<leaf>.py: the shared leaves
ALLOWED = {
    "dsl": {"errors"},
    "kernels": set(),
    "blocks": {"kernels", "schema"},
    "tasks": {"schema", "errors"},
    "compiler": {"dsl", "blocks", "tasks", "schema", "errors"},
    "training": {"compiler", "blocks", "tasks", "kernels", "schema", "errors", "atomic", "runfolder"},
    "evaluation": {"compiler", "blocks", "tasks", "kernels", "schema", "errors", "atomic", "runfolder"},
    "report": {"evaluation", "tasks", "schema", "errors", "atomic", "runfolder"},
}
ALLOWED.update({"errors": set(), "schema": set(), "atomic": {"errors"}, "runfolder": {"errors", "atomic"}})

# Arrows that break the layering today, each to be removed (issue #30): the test fails on any
# other, and on one of these once it is gone, so the list only shrinks.
KNOWN = {
    ("compiler/resolve.py", "evaluation"),     # baseline names checked by evaluation/baselines.py
    ("evaluation/evaluate.py", "training"),    # the training loop's model loading and devices
}


def _part(module: str) -> str | None:
    """'icl.compiler.runs' -> 'compiler'; 'icl.errors' -> 'errors'; 'icl' -> None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "icl" and len(parts) > 1 else None


def arrows() -> set[tuple[str, str]]:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = set()
    files = [(f, Path(folder).name) for package, folder in mapping.items() if package != "icl"
             for f in (ROOT / folder).glob("*.py")]
    files += [(f, f.stem) for f in (ROOT / "icl").glob("*.py") if f.stem in LEAVES]
    for path, part in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from icl import atomic` names the module icl.atomic
                names = [f"icl.{a.name}" for a in node.names] if node.module == "icl" else [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                target = _part(name)
                if target and target != part and (target in ALLOWED or target == "cli"):
                    found.add((str(path.relative_to(ROOT)), target, part))
    return found


def test_dependencies_point_one_way():
    bad = {(f, target) for f, target, part in arrows() if target not in ALLOWED[part]}
    assert bad - KNOWN == set(), f"imports against the layering: {sorted(bad - KNOWN)}"
    assert KNOWN - bad == set(), f"fixed, so remove from KNOWN: {sorted(KNOWN - bad)}"


def test_nothing_below_the_cli_imports_the_cli():
    assert not [a for a in arrows() if a[1] == "cli"]
