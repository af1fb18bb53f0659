"""nasviz: a Jupyter-first toolkit for teaching and analysing neural architecture search.

The core (spaces, search methods, models, data, history, CLI) needs only torch, numpy and tqdm;
the visualization modules under ``nasviz.viz`` import matplotlib, graphviz and ipywidgets lazily.
"""

__version__ = "0.1.0"


def _apply_thread_rule() -> None:
    """Use the library's CPU thread rule from the first import (`nasviz.threads`), so a notebook
    that only builds and counts networks gets it too; searches and retraining apply it again with
    their config's ``threads``."""
    from nasviz import threads

    threads.apply("cpu")


_apply_thread_rule()
