"""icl: compile .icl specs of in-context-learning studies into models, runs and a pipeline."""

__version__ = "0.1.0"
