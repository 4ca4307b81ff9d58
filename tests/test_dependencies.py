"""The layering of ../shared/design.md, read from the imports of every module: dependencies
point one way (dsl -> compiler -> blocks/tasks -> kernels; training and evaluation depend on
compiled models, never the other way; evaluation never imports the training loop; the report
reads records, not the training loop)."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What each part may import, besides itself. icl/cli.py wires everything and is not listed.
LEAVES = {"errors", "schema", "atomic", "runfolder", "run"}  # icl/<leaf>.py: the shared leaves
# training/ holds the training loop and, beside it, what an evaluation runs with too: the seed
# streams, the curriculum's end sizes, the precision contexts, the run error, the device and its
# GPU slot. Those modules are a part of their own, "runtime": evaluation may import them (never
# the loop), and they import nothing of the loop.
RUNTIME = {"training/seeds.py", "training/curriculum.py", "training/precision.py", "training/errors.py",
           "training/device.py", "training/gpu_slots.py"}
ALLOWED = {
    "dsl": {"errors"},
    "kernels": set(),
    "blocks": {"kernels", "schema", "errors"},
    "tasks": {"schema", "errors"},
    "compiler": {"dsl", "blocks", "tasks", "schema", "errors", "run"},
    "runtime": {"compiler", "tasks", "schema", "errors", "atomic", "runfolder", "run"},
    "training": {"compiler", "blocks", "tasks", "kernels", "runtime", "schema", "errors", "atomic", "runfolder", "run"},
    "evaluation": {"compiler", "blocks", "tasks", "kernels", "runtime", "schema", "errors", "atomic", "runfolder", "run"},
    "report": {"evaluation", "tasks", "schema", "errors", "atomic", "runfolder", "run"},
}
ALLOWED.update({"errors": set(), "schema": set(), "atomic": {"errors"}, "runfolder": {"errors", "atomic"},
                "run": set()})

# Arrows that break the layering, each to be removed: the test fails on any other, and on one of
# these once it is gone, so the list only shrinks. Empty since issue #30; keep it for the next.
KNOWN: set[tuple[str, str]] = set()


def _part(module: str) -> str | None:
    """'icl.compiler.runs' -> 'compiler'; 'icl.errors' -> 'errors'; 'icl.training.seeds' ->
    'runtime'; 'icl' -> None."""
    parts = module.split(".")
    if parts[0] != "icl" or len(parts) < 2:
        return None
    if len(parts) > 2 and f"{parts[1]}/{parts[2]}.py" in RUNTIME:
        return "runtime"
    return parts[1]


def arrows() -> set[tuple[str, str]]:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = set()
    files = [(f, Path(folder).name) for package, folder in mapping.items() if package != "icl"
             for f in (ROOT / folder).glob("*.py")]
    files += [(f, f.stem) for f in (ROOT / "icl").glob("*.py") if f.stem in LEAVES]
    for path, part in files:
        part = _file_part(path, part)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from icl import atomic` names the module icl.atomic, `from icl.training import
                # gpu_slots` icl.training.gpu_slots (a name that is no module only adds a level)
                names = [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                target = _part(name)
                if target and target != part and (target in ALLOWED or target == "cli"):
                    found.add((str(path.relative_to(ROOT)), target, part))
    return found


def _file_part(path: Path, folder_part: str) -> str:
    return "runtime" if str(path.relative_to(ROOT)) in RUNTIME else folder_part


def test_dependencies_point_one_way():
    bad = {(f, target) for f, target, part in arrows() if target not in ALLOWED[part]}
    assert bad - KNOWN == set(), f"imports against the layering: {sorted(bad - KNOWN)}"
    assert KNOWN - bad == set(), f"fixed, so remove from KNOWN: {sorted(KNOWN - bad)}"


def test_the_runtime_modules_exist():
    assert [f for f in sorted(RUNTIME) if not (ROOT / f).is_file()] == []


def test_nothing_below_the_cli_imports_the_cli():
    assert not [a for a in arrows() if a[1] == "cli"]
