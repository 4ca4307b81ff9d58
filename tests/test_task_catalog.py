"""A task's catalog entry (tasks/catalog.py) is its whole description: the compiler, the evaluation
and the report read its fields and name no task. Checked here: no module outside tasks/ holds a
task kind's or a variant's name as a string (the study's own Table-1 marks excepted), and every
field of every entry points at something that exists."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from icl.compiler.resolve import EVAL_PARAMS
from icl.report.table1 import chance_error
from icl.tasks.catalog import READOUTS, TASKS, TaskKind, VariantBins, VariantSweep
from icl.tasks.registry import task_class

ROOT = Path(__file__).resolve().parents[1]
KIND_NAMES = set(TASKS)
VARIANT_NAMES = {v for t in TASKS.values() for v in t.variants}
# Data, not branches: the study's own verdicts, keyed by the names its specs give the tasks.
ALLOWED = {("report/table1.py", "PAPER_VERDICTS")}


def _project_files() -> list[Path]:
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    folders = {Path(f).parts[0] for f in mapping.values()} - {"tasks"}
    return sorted(f for folder in folders for f in (ROOT / folder).glob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}


def _allowed_nodes(tree: ast.AST, rel: str) -> set[int]:
    allowed = set()
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and (rel, t.id) in ALLOWED for t in targets):
            allowed |= {id(n) for n in ast.walk(node)}
    return allowed


def names_outside_the_catalog() -> list[tuple[str, int, str]]:
    """(file, line, string) of every string literal outside tasks/ that is a task kind's or a
    variant's name, or starts a variant's "name:value" (docstrings and ALLOWED left out)."""
    found = []
    for path in _project_files():
        rel = str(path.relative_to(ROOT))
        tree = ast.parse(path.read_text())
        skip = _docstrings(tree) | _allowed_nodes(tree, rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                text = node.value
                if text in KIND_NAMES or text in VARIANT_NAMES or text.partition(":")[0] in VARIANT_NAMES:
                    found.append((rel, node.lineno, text))
    return found


def test_no_module_outside_tasks_names_a_task_or_a_variant():
    assert names_outside_the_catalog() == []


def test_the_scan_finds_a_task_name():
    """The scan itself: a branch on a task name in a copy of a module is found."""
    source = (ROOT / "report" / "plots.py").read_text() + '\nIF = lambda kind: kind == "token_mqar"\n'
    tree = ast.parse(source)
    hits = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value == "token_mqar"
            and id(n) not in _docstrings(tree)]
    assert hits == ["token_mqar"]
    assert _allowed_nodes(ast.parse((ROOT / "report" / "table1.py").read_text()), "report/table1.py")


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_every_entry_points_at_what_exists(kind):
    entry: TaskKind = TASKS[kind]
    sampler = task_class(kind)
    assert sampler.kind == kind
    assert entry.readout in READOUTS
    for metric in entry.metrics:
        assert callable(getattr(sampler, f"{metric}_error", None)), f"{kind}: no {metric}_error"
    settings = {p.name: p for p in EVAL_PARAMS}
    for name, sweep in entry.variant_sweeps.items():
        assert isinstance(sweep, VariantSweep) and name in entry.variants
        assert settings[sweep.setting].type == "list[float]"
    for name, bins in entry.variant_bins.items():
        assert isinstance(bins, VariantBins) and name in entry.variants and bins.meaning
    config = entry.with_defaults({"kind": kind})
    chance = entry.chance(config)
    assert 0.0 < chance <= 1.0
    assert chance_error([], config) == chance


def test_the_readout_and_the_metrics_match_the_samplers_prompts():
    """A task read out once has one read-out position; its extra metrics have the error's shape."""
    import torch

    from icl.tasks import make_task

    for kind, entry in TASKS.items():
        task = make_task({"kind": kind})
        small = {"points": 4} if "points" in {p.name for p in entry.params} else {}
        prompts = task.sample(torch.Generator().manual_seed(0), 3, **small)
        if entry.readout == "once":
            assert prompts.readout.numel() == 1, kind
        out_dim = entry.layout(entry.with_defaults({"kind": kind})).out_dim
        pred = task.predict(lambda inputs: torch.zeros(*inputs.shape[:2], out_dim), prompts)
        assert pred.shape[:2] == prompts.targets.shape[:2], kind
        for metric in entry.metrics:
            assert getattr(task, f"{metric}_error")(pred, prompts).shape == prompts.mask.shape


def test_a_bad_entry_is_refused():
    with pytest.raises(ValueError, match="unknown readout"):
        TaskKind("t", "m:C", "", (), readout="sometimes")
    with pytest.raises(ValueError, match="not one of its variants"):
        TaskKind("t", "m:C", "", (), variant_sweeps={"noise": VariantSweep("noise_sigmas", "sigma")})
    with pytest.raises(ValueError, match="listed twice"):
        TaskKind("t", "m:C", "", (), baselines=("zero",), more_baselines=("zero",))
