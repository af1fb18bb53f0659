"""nasviz: a Jupyter-first toolkit for teaching and analysing neural architecture search.

The core (spaces, search methods, models, data, history, CLI) needs only torch, numpy and tqdm;
the visualization modules under ``nasviz.viz`` import matplotlib, graphviz and ipywidgets lazily.
"""

__version__ = "0.1.0"
