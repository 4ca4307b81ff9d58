"""icl: compile .icl specs of in-context-learning studies into models, runs and a pipeline.

The subpackages are the checkout's top-level folders (dsl/ is icl.dsl, compiler/ is
icl.compiler, ...), mapped once in pyproject.toml; `pip install -e .` makes that mapping
visible to every process, the pipeline's included.
"""

__version__ = "0.1.0"
