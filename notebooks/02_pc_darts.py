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
# # 02 · PC-DARTS: partial channels and edge normalization
#
# DARTS keeps all 8 operations of all 14 edges in memory, for every cell of the supernet: the
# supernet needs several times the memory of the network it searches for, which forces small
# batches and makes the search slow. PC-DARTS (Xu et al., ICLR 2020) adds two ideas:
#
# 1. **partial channel connections**: only $1/K$ of each edge's channels go through the mixed
#    operation, the rest bypass it;
# 2. **edge normalization**: a learned weight $\beta$ per edge, so that choosing *which edges*
#    to keep no longer depends on the random channel sample.
#
# The paper reports a CIFAR-10 search in 0.1 GPU-day (about 1.5 h on one V100) and 2.57% test
# error with 3.6M parameters (paper's figures). Here we measure the memory/speed trade-off over
# $K$ on **your** machine, look at the betas, derive and retrain a cell, and leave you with a
# panel to search again.
#
# **Modes.** `quick` (default) searches the bundled 8×8 digits on a laptop CPU; for the paper's
# setting set `PRESET = "paper"`, `RETRAIN_PRESET = "paper"` and run on a GPU with CIFAR-10 in
# `data/`. With `NASVIZ_SMOKE=1` (CI) the same code runs the `smoke` presets, a few steps each.

# %% tags=["parameters"]
PRESET = "quick"  # search preset: "paper" | "quick" | "smoke"
RETRAIN_PRESET = "quick"  # retraining preset: "paper" | "quick" | "smoke"
K_VALUES = [1, 2, 4]  # partial-channel ratios to compare (K=1 is DARTS with edge normalization)
EPOCHS = None  # override the preset's search epochs (None = the preset's)
DATASET = None  # None = the preset's ("digits" for quick/smoke, "cifar10" for paper)
OUT = None  # a folder such as "runs/02_pc_darts" keeps every run on disk; None = in memory only

# %%
import os

if os.environ.get("NASVIZ_SMOKE"):  # CI: the same presets, cut to a few steps
    PRESET, RETRAIN_PRESET = "smoke", "smoke"

# %matplotlib inline
import torch
from IPython.display import display

from nasviz.search import preset
from nasviz.spaces.darts import MixedOp, PartialMixedOp
from nasviz.train import retrain, retrain_preset
from nasviz.viz import evolution as ev
from nasviz.viz.cells import genotype_graph
from nasviz.viz.runs import fresh_run_dir, run_ablation
from nasviz.viz.widgets import SearchPanel, valid_k_for

print(f"search preset {PRESET!r}, retrain preset {RETRAIN_PRESET!r}, K values {K_VALUES}")

# %% [markdown]
# ## 1 · Partial channel connections
#
# Let $S_{i,j}$ be a mask that selects $1/K$ of the channels of $x_i$. The PC-DARTS edge is
#
# $$f^{PC}_{i,j}(x_i; S_{i,j}) = \sum_{o \in \mathcal O} \frac{e^{\alpha^o_{i,j}}}{\sum_{o'} e^{\alpha^{o'}_{i,j}}}\, o(S_{i,j} * x_i) \;+\; (1 - S_{i,j}) * x_i .$$
#
# The selected channels go through the 8 operations (built with $C/K$ channels), the others
# are copied through, the two parts are concatenated and **channel-shuffled** with $K$ groups so
# that the next edge samples different channels. The operations' memory and compute drop by
# about $1/K$ — so, the paper argues, the batch can grow $K$-fold on the same GPU, which makes the
# search faster and the gradients less noisy.
#
# The library's edge, `PartialMixedOp`, on 16 channels:

# %%
x = torch.randn(2, 16, 8, 8)
weights = torch.softmax(torch.zeros(8), dim=0)
for k in (1, 2, 4, 8):
    edge = PartialMixedOp(16, 1, k) if k > 1 else MixedOp(16, 1)
    n = sum(p.numel() for p in edge.parameters())
    print(f"K={k}: {16 // k:2d} channels through the ops, {n:5d} op parameters, "
          f"output {tuple(edge(x, weights).shape)}")

# %% [markdown]
# ## 2 · Edge normalization
#
# With partial channels the op weights of an edge depend on which channels were sampled, and
# the edges a node keeps could flip from step to step. PC-DARTS gives every edge $(i, j)$ a
# weight $\beta_{i,j}$, normalized over the incoming edges of node $j$:
#
# $$x_j^{PC} = \sum_{i<j} \frac{e^{\beta_{i,j}}}{\sum_{i'<j} e^{\beta_{i',j}}}\, f^{PC}_{i,j}(x_i).$$
#
# The betas are shared across the whole search, whatever the channel sample, so they average
# the sampling noise out. To derive the cell, an edge's op probabilities are multiplied by its
# normalized beta before the DARTS rule (top-2 edges per node, argmax op).
#
# ## 3 · The K ablation on your machine
#
# The paper's ablation on CIFAR-10 (paper's figures, shown as a figure there): the search cost
# falls as $K$ grows, the accuracy of the derived cells holds up to $K=4$, and at $K=8$ too few
# channels are sampled and it degrades — $K=4$ is the best trade-off, the setting used for
# CIFAR-10 ($K=2$ on ImageNet). Our version runs one search per $K$ with the same preset and
# records seconds per epoch, peak memory and accuracy. K must divide the supernet's channels:

# %%
print(f"valid K for the {PRESET!r} supernet: {valid_k_for(preset('pc-darts', PRESET))}")
runs = run_ablation("pc-darts", PRESET, "k", K_VALUES, epochs=EPOCHS, dataset=DATASET,
                    out_root=OUT, progress=True)
display(runs)

# %%
runs.plot_tradeoff()

# %%
s = {r.config.k: r.summary() for r in runs}
lo, hi = s[min(s)], s[max(s)]
print(f"K={max(s)} vs K={min(s)}: "
      f"{hi['seconds_per_epoch']:.2f} vs {lo['seconds_per_epoch']:.2f} s/epoch "
      f"({lo['seconds_per_epoch'] / hi['seconds_per_epoch']:.2f}x as fast), "
      f"peak memory {hi['peak_memory_mb']:.0f} vs {lo['peak_memory_mb']:.0f} MB")

# %% [markdown]
# How to read the measured trade-off: on a GPU, peak memory is the supernet's own allocation
# and falls clearly with $K$. On a CPU the figure is the **whole process's** peak resident memory
# (it includes Python, PyTorch and earlier runs), so it hardly moves; the seconds per epoch are
# the meaningful column there. With the tiny `quick` supernet (8 channels) and small batches,
# fixed costs dominate each step, so the speed-up is smaller than the paper's; in `smoke` mode
# the timings are a handful of steps and mostly noise. The paper's figures come from a 16-channel
# supernet on CIFAR-10 with the batch raised to 256.
#
# The validation accuracy of each run over the epochs:

# %%
runs.plot_overlay("val_acc")

# %% [markdown]
# ## 4 · The betas
#
# We follow the run with the preset's own $K$ (the paper's $K=4$ in `paper` mode). One panel per
# node, one line per incoming edge: its normalized weight
# $\mathrm{softmax}(\beta)$ over the epochs. In the `quick` and `paper` presets the architecture
# is frozen for the first epochs (`warmup_epochs`, 15 in the paper), so the lines start flat.

# %%
k_main = preset("pc-darts", PRESET).k
main = next((r for r in runs if r.config.k == k_main), runs[-1])
h = main.history
print(f"main run: {main.label}, K={main.config.k}, warm-up {main.config.warmup_epochs} epochs")
ev.plot_beta_evolution(h, "normal")

# %%
ev.plot_beta_evolution(h, "reduce")

# %% [markdown]
# The op probabilities of the same run, and when its derived choices settled:

# %%
ev.plot_alpha_heatmap(h, "normal")

# %%
ev.plot_stability(h)

# %% [markdown]
# ## 5 · The derived cell
#
# Per edge, $\mathrm{softmax}(\alpha) \cdot \mathrm{softmax}(\beta)$; then per node the 2
# strongest edges, each with its argmax op (`none` excluded).

# %%
print(main.genotype)
genotype_graph(main.genotype, title=f"PC-DARTS K={main.config.k}, preset {PRESET}")

# %% [markdown]
# ## 6 · Retraining
#
# As for DARTS; in the paper's protocol PC-DARTS uses drop path 0.3 instead of 0.2.

# %%
rconfig = retrain_preset(RETRAIN_PRESET, dataset=DATASET,
                         drop_path_prob=0.3 if RETRAIN_PRESET == "paper" else None)
out = fresh_run_dir(OUT, "pc-darts-retrain") if OUT else None
retrained = retrain(main.genotype, rconfig, out)
print(f"retrained {rconfig.epochs} epochs on {rconfig.dataset}: "
      f"test accuracy {retrained.test_acc:.4f}, {retrained.params:,} parameters "
      f"(eval net C={rconfig.C}, {rconfig.layers} cells)")

# %% [markdown]
# For scale: the paper's PC-DARTS cell reaches 2.57% error on CIFAR-10 with 3.6M parameters
# (paper's figures); a `smoke` retraining is a few steps.
#
# ## 7 · Search again, interactively
#
# The panel below drives the same library calls: choose $K$ (only the values that divide the
# supernet's channels are offered), edge normalization, epochs and the other knobs of the
# paper, then press **Run**. Live plots, the derived cell and a table that compares every run —
# starting with the ablation above — appear underneath. (In CI the panel is only displayed.)

# %%
panel = SearchPanel("pc-darts", preset=PRESET, runs=runs,
                    out_root=OUT, overrides={"dataset": DATASET} if DATASET else None)
display(panel)

# %% [markdown]
# The same from code, without widgets: `panel.set(k=4, epochs=20)` then `panel.run()`. Notebook
# 01 compared first- and second-order DARTS; the comparison notebooks put DARTS, PC-DARTS and
# SNAS runs side by side with the same `RunList`.
