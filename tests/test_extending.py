"""docs/extending.md's claims: a new layer token is one new file in blocks/ and one catalog entry, and
a new task one new file in tasks/ and one catalog entry.
Done for real, in a copy of the source tree that a fresh interpreter imports as `icl`."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "extending.md").read_text()

# A finder that makes icl.<x> the folder <x>/ of a given tree, as pyproject.toml maps it.
BOOTSTRAP = """
import importlib.machinery, importlib.util, sys, tomllib
from pathlib import Path
tree = Path(sys.argv[1])
mapping = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
class TreeFinder:
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in mapping:
            folder = tree / mapping[name]
            return importlib.util.spec_from_file_location(
                name, folder / "__init__.py", submodule_search_locations=[str(folder)])
        return None
sys.meta_path.insert(0, TreeFinder)
"""


def _code_blocks(doc: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", doc, flags=re.S)


def _copy_tree(dest: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    for folder in {Path(f).parts[0] for f in mapping.values()}:
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__"))


def _tree_with(tmp_path: Path, folder: str, filename: str, catalog_dict: str, module_code: str, entry: str) -> Path:
    """A copy of the checkout's tree plus the doc's new file in `folder` and its entry appended
    to the `catalog_dict` of folder/catalog.py."""
    tree = tmp_path / "tree"
    tree.mkdir()
    _copy_tree(tree)
    (tree / folder / filename).write_text(module_code)
    catalog = (tree / folder / "catalog.py").read_text()
    end = catalog.index("\n)}", catalog.index(catalog_dict))
    (tree / folder / "catalog.py").write_text(catalog[:end] + "\n" + entry.rstrip() + catalog[end:])
    return tree


def test_a_new_token_is_one_file_and_one_catalog_entry(tmp_path):
    tree = _tree_with(tmp_path, "blocks", "glu_mlp.py", "BLOCKS: dict[str, BlockKind]", *_code_blocks(DOC)[:2])
    spec = tmp_path / "glu.icl"
    spec.write_text(textwrap.dedent("""\
        model glu { layers = "(A G)*2"  width = 32  heads = 4  mlp_ratio = 2 }
        task linear { kind = linear_regression  dims = 5  points = 11 }
        train quick { steps = 2  batch = 4  lr = 1e-3  seeds = [0] }
        eval quick { prompts = 8 }
        experiment e {
          models = [glu]
          tasks = [linear]
          train extends quick {}
          eval extends quick {}
        }
        """))
    check = BOOTSTRAP + textwrap.dedent(f"""
        import torch
        import icl.blocks.catalog
        assert icl.blocks.catalog.__file__.startswith(str(tree)), icl.blocks.catalog.__file__
        from icl.compiler.runs import runs_of
        from icl.compiler.accounting import account
        from icl.compiler.build import build_model
        from icl.tasks.catalog import TASKS
        [run] = runs_of([{str(spec)!r}])
        layout = TASKS["linear_regression"].layout(run.task_config)
        model = build_model(run.model_config, layout)
        counted = account(run.model_config, layout)["params"]
        built = sum(p.numel() for p in model.parameters())
        assert counted == built, (counted, built)
        assert [type(layer.block).__name__ for layer in model.layers] == ["CausalSelfAttention", "GluMLP"] * 2
        x = torch.randn(3, layout.tokens, layout.token_dim)
        assert model(x).shape[:2] == (3, layout.tokens)
        from icl.blocks.model import stack_models
        torch.manual_seed(1)
        other = build_model(run.model_config, layout)
        packed = stack_models([model, other])
        x2 = torch.randn(2, 3, layout.tokens, layout.token_dim)
        out = packed(x2)
        torch.testing.assert_close(out[0], model(x2[0]))
        torch.testing.assert_close(out[1], other(x2[1]))
        print("ok", counted)
        """)
    out = subprocess.run([sys.executable, "-c", check, str(tree)], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr
    # The unmodified checkout does not know the token: the entry is what makes it work.
    out = subprocess.run([sys.executable, "-m", "icl.cli", "check", str(spec)], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 2 and "unknown layer token 'G'" in out.stderr, out.stdout + out.stderr


def test_a_new_task_is_one_file_and_one_catalog_entry(tmp_path):
    tree = _tree_with(tmp_path, "tasks", "sign_regression.py", "TASKS: dict[str, TaskKind]", *_code_blocks(DOC)[2:4])
    spec = tmp_path / "sign.icl"
    spec.write_text(textwrap.dedent("""\
        model t { layers = "A F" width = 16 heads = 2 positions = learned }
        task s { kind = sign_regression  dims = 4  points = 8 }
        train quick { steps = 2  batch = 4  lr = 1e-3  seeds = [0]  checkpoint_every = 2  log_every = 1 }
        eval quick { prompts = 16  batch = 16  bootstrap = 10 }
        experiment e {
          models = [t]
          tasks = [s]
          train extends quick {}
          eval extends quick {}
        }
        """))
    out = tmp_path / "out"
    check = BOOTSTRAP + textwrap.dedent(f"""
        import json
        import icl.tasks.catalog
        assert icl.tasks.catalog.__file__.startswith(str(tree)), icl.tasks.catalog.__file__
        from icl.compiler.runs import runs_of
        from icl.evaluation.evaluate import evaluate_run
        from icl.report import build_report
        from icl.tasks.catalog import TASKS
        from icl.training.train import train_run
        [run] = runs_of([{str(spec)!r}])
        out = Path({str(out)!r})
        folder = out / "runs" / run.id
        train_run(run, folder, progress=False, device="cpu")
        result = evaluate_run(run, folder, folder / f"eval-{{run.eval_id}}.json", device="cpu",
                              progress=False)
        # the entry's baselines, scored on the very prompts the model saw, read out after every example
        assert sorted(result["baselines"]) == sorted(TASKS["sign_regression"].baselines), result["baselines"]
        assert result["positions"] == list(range(8)) and result["summary"]["best_baseline"]
        assert 0.5 < result["summary"]["baselines_tail"]["zero"] < 1.5   # y = +-1: the zero predictor scores 1
        build_report([run], out / "runs", out / "report", "Sign")
        assert (out / "report" / "plots" / "s.png").stat().st_size > 0
        cell = json.loads((out / "report" / "table1.json").read_text())["s"]["t"]
        assert cell["verdict"] in ("check", "gap", "fails") and cell["seeds"] == 1, cell
        print("ok", cell["verdict"])
        """)
    done = subprocess.run([sys.executable, "-c", check, str(tree)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=600)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stdout + done.stderr
    # The unmodified checkout does not know the kind: the entry is what makes it work.
    done = subprocess.run([sys.executable, "-m", "icl.cli", "check", str(spec)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2 and "invalid value 'sign_regression' for 'kind'" in done.stderr, \
        done.stdout + done.stderr
