"""The package layout: each top-level folder is icl.<folder>, mapped once in pyproject.toml."""
import importlib
import pkgutil
import tomllib
from pathlib import Path

import icl

ROOT = Path(__file__).resolve().parents[1]


def _mapping() -> dict[str, str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["package-dir"]


def test_every_icl_module_is_the_file_in_its_folder():
    mapping = _mapping()
    checked = 0
    for package, folder in mapping.items():
        if package == "icl.report.templates":  # package data (Jinja templates), no modules
            continue
        module = importlib.import_module(package)
        assert Path(module.__file__).resolve() == (ROOT / folder / "__init__.py").resolve(), package
        for info in pkgutil.iter_modules([str(ROOT / folder)]):
            if info.ispkg:
                continue
            name = f"{package}.{info.name}"
            spec = importlib.util.find_spec(name)
            assert spec is not None and Path(spec.origin).resolve() == (ROOT / folder / f"{info.name}.py").resolve(), name
            checked += 1
    assert checked > 40  # every folder's modules, not a vacuous pass


def test_the_mapping_covers_every_package_folder_and_no_path_patch():
    mapping = _mapping()
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert folders == {Path(f).name for p, f in mapping.items() if p != "icl.report.templates"}
    assert list(icl.__path__) == [str(ROOT / "icl")]  # the mapping alone joins the folders
