# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 00 · A tour of neural architecture search with nasviz
#
# **Neural architecture search (NAS)** automates one decision that used to be made by hand:
# *which layers, connected how?* A NAS method has three parts:
#
# 1. a **search space**: the architectures it may return (here: small *cells* that are stacked
#    into a network);
# 2. a **search strategy**: how it explores that space (reinforcement learning, evolution,
#    gradient descent ...);
# 3. a **performance estimate**: how it judges a candidate without training each one for days.
#
# This notebook is the map for the rest of the course: what the papers changed, the cell space
# they share, the cells they published (drawn and measured by the library), and how to drive the
# toolkit from a notebook or the command line. It trains nothing; the time it took is printed at
# the end. The papers' figures quoted here are collected, with their sources, in
# [`docs/papers.md`](../docs/papers.md).

# %% tags=["parameters"]
# The same parameters as every notebook (papermill / CI may override them). This one trains
# nothing, so only the last two lines matter here; the others are kept for a uniform interface.
DATASET = None  # None = the preset's ("digits" for quick/smoke, "cifar10" for paper)
PRESET = "quick"  # search preset: "paper" | "quick" | "smoke"
EPOCHS = None  # search epochs (None = the preset's)
OUT = None  # where runs are kept (nothing is run here)
SEED = 0
GENOTYPES = ["NASNet", "AmoebaNet", "DARTS_V1", "DARTS_V2", "PC_DARTS_cifar", "SNAS_mild"]
C, LAYERS = 36, 20  # the papers' CIFAR-10 evaluation network: 36 channels, 20 cells

# %%
import sys  # noqa: F401  (the shell command at the end uses sys.executable)
import time

T0 = time.perf_counter()

from nasviz import genotypes
from nasviz.genotypes import PRIMITIVES
from nasviz.models import NetworkCIFAR
from nasviz.resources import cost_report, count_parameters
from nasviz.viz.cells import cell_graph, genotype_graph

# %% [markdown]
# ## From 2,000 GPU-days to a tenth of one
#
# The search cost, as **reported by the papers** (not measured here; sources in
# `docs/papers.md`):
#
# | method | year | search strategy | search cost (paper) |
# |---|---|---|---|
# | NASNet | 2018 | RL controller (LSTM + PPO) samples ~20,000 child nets, each trained briefly | ~2,000 GPU-days (500 GPUs × 4 days) |
# | AmoebaNet | 2019 | regularized evolution of the NASNet cell space | 3,150 GPU-days |
# | DARTS | 2019 | gradient descent on a *continuous relaxation* of the cell space (weight sharing) | ~0.4 GPU-day (1st order) / 1 GPU-day (2nd order) per run |
# | SNAS | 2019 | gradients through Gumbel-softmax *samples*, one level | 1.5 GPU-days |
# | PC-DARTS | 2020 | DARTS with *partial channels* and *edge normalization* | 0.1 GPU-day (~1.5 h on one V100) |
#
# The leap is in the performance estimate. NASNet trains every candidate separately. DARTS
# trains **one supernet** that contains every candidate at once and reads the architecture off
# learned weights $\alpha$; PC-DARTS makes that supernet cheap enough for large batches.
# Notebooks 01 and 02 run both methods on your machine.

# %% [markdown]
# ## The DARTS cell space
#
# DARTS, PC-DARTS and SNAS search the same space. A **cell** takes the outputs of the two
# previous cells, $c_{k-2}$ and $c_{k-1}$, and computes **4 intermediate nodes**; node $i$ may
# read every earlier state, so it has $2+i$ incoming edges, and there are
# $2+3+4+5 = 14$ edges per cell. On every edge the search chooses one of **8 operations**:

# %%
# NBVAL_CHECK_OUTPUT
edges = sum(2 + i for i in range(4))
print(f"{len(PRIMITIVES)} operations, {edges} edges per cell:")
for column, op in enumerate(PRIMITIVES):
    print(f"  alpha[:, {column}]  {op}")

# %% [markdown]
# The final cell keeps **two** incoming edges per node, each with one operation, and
# concatenates the 4 nodes. The network stacks such cells: *normal* cells keep the resolution,
# two *reduction* cells (at 1/3 and 2/3 of the depth) halve it and double the channels. So a
# search only has to choose two small graphs — one normal, one reduction cell — e.g. the
# normal cell DARTS published:

# %%
cell_graph(genotypes.get("DARTS_V2"), "normal", title="DARTS (V2) normal cell")

# %% [markdown]
# ## The published cells, drawn
#
# The library ships the genotypes the papers published (`nasviz.genotypes.names()`), as plain
# data. Each drawing shows both cells: inputs on the left, the concatenated output on the right,
# edges coloured by operation family.

# %%
print("built-in genotypes:", ", ".join(genotypes.names()))
genotype_graph(genotypes.get("PC_DARTS_cifar"), title="PC-DARTS (CIFAR-10)")

# %%
genotype_graph(genotypes.get("NASNet"), title="NASNet-A (in the DARTS format)")

# %% [markdown]
# ## The published cells, measured
#
# Every number in the next table except the last column is **computed here** by the library:
# we build the CIFAR-10 evaluation network of each genotype (36 channels, 20 cells, auxiliary
# head) and count its parameters the way the papers do (without the auxiliary head) and its
# FLOPs for one 32×32 image (`torch.utils.flop_counter`; a multiply-add counts as 2 FLOPs).
# The error column is what each **paper** reports for its own training run.

# %%
PAPER_ERROR = {  # CIFAR-10 test error (%), as reported by the papers (docs/papers.md)
    "NASNet": 2.65, "AmoebaNet": 3.34, "DARTS_V1": 3.00, "DARTS_V2": 2.76, "PC_DARTS_cifar": 2.57,
    "SNAS_mild": 2.98, "SNAS_moderate": 2.85, "SNAS_aggressive": 3.10,
}  # fmt: skip
reports = {}
for name in GENOTYPES:
    model = NetworkCIFAR(C, 10, LAYERS, True, genotypes.get(name))
    reports[name] = cost_report(model, (1, 3, 32, 32))

# %%
from IPython.display import Markdown

rows = [
    "| genotype | params (computed) | FLOPs (computed) | error % (paper) |",
    "|---|---|---|---|",
]
for name, r in reports.items():
    err = f"{PAPER_ERROR[name]:.2f}" if name in PAPER_ERROR else "—"
    rows.append(f"| {name} | {r.params / 1e6:.2f}M | {r.flops / 1e6:,.0f}M | {err} |")
Markdown("\n".join(rows))

# %% [markdown]
# Two facts from the papers to check our counts against: DARTS V2 has 3.3M and PC-DARTS 3.6M
# parameters (paper). The exact counts of the official code are 3,349,342 and 3,634,678:

# %%
# NBVAL_CHECK_OUTPUT
for name in ("DARTS_V2", "PC_DARTS_cifar"):
    model = NetworkCIFAR(C, 10, LAYERS, True, genotypes.get(name))
    print(f"{name}: {count_parameters(model):,} parameters")

# %% [markdown]
# Read the table with care. The NASNet and AmoebaNet rows build their cells *in the DARTS
# network* (20 cells, 36 channels), not in their own networks, so their counts differ from the
# papers' figures (NASNet-A: 3.3M, AmoebaNet-A: 3.2M). And the errors come from
# 600-epoch trainings with cutout and drop path that we do not repeat here: cells with similar
# budgets land within a few tenths of a percent of each other, which is why the search *cost*
# was the real news.
#
# **What the count includes, and SNAS_mild.** Every parameter of the evaluation network except
# the auxiliary head (the papers' convention): stem, all cells (the DARTS ops, whose pooling ops
# have no BN), the classifier. The SNAS paper reports 2.9M for its mild cell, we count about
# 2.66M. SNAS's own evaluation network follows each pooling op with an affine BN (two
# parameters per channel); the next cell computes what that adds:

# %%
from nasviz.analysis import pooling_bn_parameters

SNAS_PAPER_PARAMS = {"SNAS_mild": 2.9e6, "SNAS_moderate": 2.8e6, "SNAS_aggressive": 2.3e6}
for name, paper in SNAS_PAPER_PARAMS.items():
    model = NetworkCIFAR(C, 10, LAYERS, True, genotypes.get(name))
    n, (pools, bn) = count_parameters(model), pooling_bn_parameters(model)
    print(f"{name}: {n:,} parameters; an affine BN after its {pools} pooling ops adds "
          f"{bn:,} -> {n + bn:,} (paper: {paper / 1e6:.1f}M)")

# %% [markdown]
# So the pooling BNs explain only a few thousand parameters: moderate and aggressive match the
# paper (2.85M vs 2.8M, 2.31M vs 2.3M), but the published mild cell counts about 0.24M fewer
# than the paper's 2.9M in either convention. We report the count of the genotype as published;
# the paper's mild figure is not reproduced by it.

# %% [markdown]
# ## Using the toolkit
#
# **From a notebook**, a search is one call on a config; every method returns the same
# `SearchResult(genotype, history, out, config)`, and every plot reads the `history`:
#
# ```python
# from nasviz.search import preset, run_search
# from nasviz.viz.evolution import plot_group_evolution
#
# result = run_search(preset("pc-darts", "quick"))      # "paper" on a GPU with CIFAR-10
# plot_group_evolution(result.history, "alpha/normal")  # groups: alpha/normal, beta/reduce, ...
# ```
#
# Presets: `paper` is each paper's setting (CIFAR-10, GPU-sized); `quick` runs the *same code*
# on the bundled 8×8 digits in minutes on a laptop CPU; `smoke` is `quick` cut to a few steps,
# for CI. Setting the environment variable `NASVIZ_SMOKE=1` makes notebooks 01-03 use it. Every
# notebook starts with the same parameters cell (`DATASET`, `PRESET`, `EPOCHS`, `OUT`, `SEED`),
# keeps its finished runs in `OUT` and reads them back when run again.
#
# **From the command line** the same steps are:
#
# ```bash
# nasviz search pc-darts --preset quick --out runs/pc     # writes history.json, genotype.json
# nasviz plot runs/pc                                     # every evolution plot as PNG
# nasviz retrain --genotype runs/pc/genotype.json --preset quick --out runs/pc-retrain
# nasviz info --genotype pc_darts                         # parameters and FLOPs of a cell
# ```
#
# The last one, run from here (`python -m nasviz.cli` is the `nasviz` command of the Python that
# runs this notebook), timed:

# %%
t = time.perf_counter()
# !{sys.executable} -m nasviz.cli info --genotype pc_darts
print(f"nasviz info took {time.perf_counter() - t:.1f} s here, Python start-up included")

# %% [markdown]
# ## Where to go next
#
# * **01_darts** — the continuous relaxation, the bilevel problem and its first- and
#   second-order gradients, how the architecture weights evolve, the derived cell, the
#   skip-connection collapse measured on your own run, retraining.
# * **02_pc_darts** — partial channels and edge normalization, each switched on and off against
#   a plain-DARTS baseline on your machine; the betas; an interactive panel to search again.
# * **03_snas** — the concrete distribution and its temperature, the search gradient as credit
#   assignment, the decomposed resource constraint and its policy-gradient estimator, the
#   child network without retraining.
# * **04_nasnet** — NASNet's search space and its RL controller.
# * **05_cream** — Cream of the Crop: prioritized paths in a one-shot supernet.
# * **06_compare** — all five methods on one split, one budget and one retraining, against
#   random architectures of each space: which is better, at what cost, and better than random?

# %%
print(f"this notebook ran in {time.perf_counter() - T0:.0f} s on this machine")
