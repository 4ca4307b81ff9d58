"""Plots, the Table-1 verdicts and the HTML/Markdown report.

    from icl.report import build_report, plot_only, write_report, verdicts, plot_task, write_exports
    from icl.report import build_comparison, write_run_pages

Exports are imported lazily, so `import icl.report` does not load matplotlib.
"""
from __future__ import annotations

_EXPORTS = {
    "build_report": "icl.report.build", "plot_only": "icl.report.build",
    "load_results": "icl.report.build", "load_states": "icl.report.build", "ReportError": "icl.report.build",
    "write_report": "icl.report.render", "verdicts": "icl.report.table1",
    "plot_task": "icl.report.plots", "write_exports": "icl.report.exports",
    "build_comparison": "icl.report.compare", "write_run_pages": "icl.report.runpages",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'icl.report' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)
