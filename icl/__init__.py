"""icl: compile .icl specs of in-context-learning studies into models, runs and a pipeline."""
import os as _os

__version__ = "0.1.0"

# Imported straight from a source checkout whose folder is on sys.path (Snakemake puts the
# Snakefile's folder there) while the project is installed as a plain, non-editable package:
# the subpackages are this checkout's sibling folders (dsl/, compiler/, ...), as pyproject.toml
# maps them, so look for them there too.
_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if (_os.path.isfile(_os.path.join(_checkout, "pyproject.toml"))
        and _os.path.isfile(_os.path.join(_checkout, "compiler", "__init__.py")) and _checkout not in __path__):
    __path__.append(_checkout)
