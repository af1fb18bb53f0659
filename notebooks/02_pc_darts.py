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
# error with 3.6M parameters (paper's figures). Here we run the two ideas **on and off** on your
# machine — PC-DARTS, partial channels only, edge normalization only, and the plain-DARTS
# baseline with neither — and compare speed, accuracy and the cells they derive.
#
# **Modes.** `quick` (default) runs on the bundled 8×8 digits, cut so that the notebook takes
# about 3 minutes on 2 cores: four searches of 3 epochs × 5 steps (1 warm-up epoch) instead of
# the quick preset's 10 full epochs (3 warm-up). **The full version:** `EPOCHS = 10` and
# `STEPS = None` (the whole quick preset, about 10 minutes per search), or `PRESET = "paper"`
# with `DATASET = "cifar10"` on a GPU. Finished runs are kept in `OUT` and read back on
# **Re-run All**. With `NASVIZ_SMOKE=1` (CI) the `smoke` preset runs a few steps in a temporary
# folder.

# %% tags=["parameters"]
DATASET = None  # None = the preset's ("digits" for quick/smoke, "cifar10" for paper)
PRESET = "quick"  # search preset: "paper" | "quick" | "smoke"
EPOCHS = None  # search epochs; None = this notebook's quick cut (3), or the preset's
OUT = "../runs/02_pc_darts"  # finished runs are kept here and read back; None = in memory only
SEED = 0  # seed of every search
STEPS = 5  # steps per epoch in quick mode (None = the full epoch)

# %%
import os
import tempfile

if os.environ.get("NASVIZ_SMOKE"):  # CI: the same presets cut to a few steps, nothing cached
    PRESET, OUT = "smoke", tempfile.mkdtemp(prefix="nasviz-smoke-")

# %matplotlib inline
import torch
from IPython.display import display

from nasviz.analysis import (
    PARAMETER_FREE,
    SHARE_TOLERANCE,
    choice_share,
    compare_accuracies,
    count_ops,
    edges_differing,
    frame,
    validation_size,
)
from nasviz.search import preset
from nasviz.search.pcdarts import valid_k_for
from nasviz.spaces.darts import MixedOp, PartialMixedOp
from nasviz.viz import evolution as ev
from nasviz.viz.cells import genotype_graph
from nasviz.viz.runs import RunList, cached_run
from nasviz.viz.widgets import SearchPanel


def pc_config(**kw):
    """The PC-DARTS config of this notebook: the preset, the first cell's parameters, then ``kw``."""
    cut = {"quick": dict(epochs=3, warmup_epochs=1, max_steps_per_epoch=STEPS)}.get(PRESET, {})
    if EPOCHS is not None:
        cut = {"max_steps_per_epoch": STEPS} if PRESET == "quick" else {}
    if EPOCHS:
        cut["epochs"] = EPOCHS
    return preset("pc-darts", PRESET, **{**cut, "dataset": DATASET, "seed": SEED, **kw})


K = preset("pc-darts", PRESET).k  # the preset's K (2 for the 8-channel quick supernet, 4 on CIFAR)
print(f"preset {PRESET!r}, K={K}, runs kept in {OUT!r}")

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
# normalized beta before the DARTS rule (top-2 edges per node, argmax op). The paper reports
# that edge normalization also helps plain DARTS (its ablation on CIFAR-10).
#
# ## 3 · The regularization argument against parameter-free ops
#
# Notebook 01 met DARTS's drift towards `skip_connect` and the other parameter-free ops. The
# PC-DARTS paper's account of it: early in the search, an op without weights gives a useful,
# consistent output at once, while a convolution is still untrained, so the architecture
# gradient favours the parameter-free ops before the others can compete — and the supernet
# **over-fits** the search: a better-trained supernet does not give a better child. Sampling a
# $1/K$ part of the channels is, in the paper's words, a kind of **regularization**: every op
# sees a random part of the features, the supernet fits the search data less tightly, and the
# gap between the searched and the evaluated network shrinks — the paper's reason why its cells
# keep more parameterized ops. Edge normalization adds stability on top (fewer flips of the
# kept edges). These are the paper's arguments on CIFAR-10; below we measure what a short run
# on digits shows.
#
# ## 4 · The ablation on your run: each idea on and off
#
# Four searches with the same preset, seed and steps: only `k` and `edge_normalization` change.
# `K=1` without edge normalization is **plain DARTS** (first order, with PC-DARTS's
# hyperparameters, so only the two ideas differ). K must divide the supernet's channels:

# %%
print(f"valid K for the {PRESET!r} supernet: {valid_k_for(preset('pc-darts', PRESET))}")
VARIANTS = {  # label -> the two knobs
    f"PC-DARTS (K={K}, edge norm.)": dict(k=K, edge_normalization=True),
    f"partial channels only (K={K})": dict(k=K, edge_normalization=False),
    "edge normalization only (K=1)": dict(k=1, edge_normalization=True),
    "DARTS baseline (K=1, no edge norm.)": dict(k=1, edge_normalization=False),
}
runs = RunList()
for label, knobs in VARIANTS.items():
    name = f"pc-darts-k{knobs['k']}-en{int(knobs['edge_normalization'])}"
    runs.add(cached_run(pc_config(**knobs), OUT, name=name), label=label)
display(runs.to_dataframe())

# %% [markdown]
# The table: final validation accuracy, training seconds per epoch, peak memory, training
# images per second and the parameters of each derived cell's evaluation network. Their
# validation accuracy over the epochs:

# %%
runs.plot_overlay("val_acc")

# %% [markdown]
# And what each derived cell chose: parameter-free edges in the normal cell, and the final share
# of the normal cell's probability mass on parameter-free ops (uniform: 0.5). Accuracy
# differences are compared against the validation set's noise (two standard errors):

# %%
rows = []
for r in runs:
    _, free = choice_share(r.history, "alpha/normal", PARAMETER_FREE)
    s = r.summary()
    rows.append({
        "run": r.label,
        "img/s": s["images_per_second"],
        "val acc": s["val_acc"],
        "param-free edges (normal)": count_ops(r.genotype, "normal", PARAMETER_FREE),
        "skip_connect edges (normal)": count_ops(r.genotype, "normal", ["skip_connect"]),
        "param-free share, last epoch": float(free[-1]),
        "edges unlike DARTS baseline": edges_differing(r.genotype, runs[3].genotype),
    })
display(frame(rows).set_index("run").round(4))

# %%
n_val = validation_size(runs[0].config)
pc, dart = runs[0].summary(), runs[3].summary()
speed = pc["images_per_second"] / dart["images_per_second"]
print(f"PC-DARTS (K={K}) trains {speed:.2f}x as many images per second as the DARTS baseline "
      f"({'faster' if speed > 1 else 'not faster'} here; the paper's gain is on a GPU).")
for r in runs[:3]:
    acc, ref = r.summary()["val_acc"], dart["val_acc"]
    rel = compare_accuracies(acc, ref, n_val)  # higher | lower | the same within noise
    print(f"{r.label}: val acc {acc:.3f}, {rel} {'as' if rel.startswith('the same') else 'than'} "
          f"the baseline's {ref:.3f} ({n_val} validation images)")
share = "param-free share, last epoch"
pc_free, base_free = rows[0][share], rows[3][share]
if pc_free < base_free - SHARE_TOLERANCE:
    said = "agrees with the paper's argument: PC-DARTS kept less mass on parameter-free ops"
elif pc_free > base_free + SHARE_TOLERANCE:
    said = "goes against the paper's argument: PC-DARTS put more mass on parameter-free ops"
else:
    said = "shows no difference in the mass on parameter-free ops"
print(f"parameter-free share {pc_free:.3f} (PC-DARTS) vs {base_free:.3f} (DARTS baseline): "
      f"this run {said} (one short run per variant, one seed)")

# %% [markdown]
# How to read the measurements. **Speed**: on a GPU, the memory of the mixed ops falls about
# $1/K$ and the paper spends it on a $K$-fold batch; on a CPU the peak-memory column is the whole
# process's resident memory (Python, PyTorch, earlier runs), so it hardly moves, and with the
# tiny quick supernet (8 channels) fixed costs dominate each step, so the ratio printed above
# stays far from the paper's; the four searches run one after the other, so on a machine shared
# with other work it also moves with the load (rerun on an idle machine to compare speeds).
# **Accuracy and cells**: four searches of a few dozen steps on digits, one
# seed each: the printed comparisons say which differences exceed the validation noise, and
# the last line says whether this run agrees with the paper's regularization argument — but
# one short run per variant is weak evidence either way, and a supernet trained for a few
# dozen steps ranks ops poorly. The paper's claims
# (regularization against parameter-free ops, stability from edge normalization) are about
# 50-epoch searches on CIFAR-10: to test them here, run the full version with several seeds
# (`SEED`) and compare the parameter-free columns.
#
# ## 5 · The betas
#
# We follow the PC-DARTS run (the first row). One panel per node, one line per incoming edge:
# its normalized weight $\mathrm{softmax}(\beta)$ over the epochs (group `beta/normal`). The
# architecture is frozen for the warm-up epochs (`warmup_epochs`; 15 of 50 in the paper), so the
# lines start flat.

# %%
main = runs[0]
h = main.history
print(f"main run: {main.label}, warm-up {main.config.warmup_epochs} of {main.config.epochs} epochs")
ev.plot_group_evolution(h, "beta/normal")

# %%
ev.plot_group_evolution(h, "beta/reduce")

# %% [markdown]
# The op probabilities of the same run, and when its derived choices settled:

# %%
ev.plot_group_heatmap(h, "alpha/normal")

# %%
ev.plot_stability(h)

# %% [markdown]
# ## 6 · The derived cell
#
# Per edge, $\mathrm{softmax}(\alpha) \cdot \mathrm{softmax}(\beta)$; then per node the 2
# strongest edges, each with its argmax op (`none` excluded). To retrain it, do as in notebook
# 01 (`retrain(main.genotype, retrain_preset(...))`); the paper's PC-DARTS protocol uses drop path
# 0.3 instead of DARTS's 0.2: `retrain_preset("paper", drop_path_prob=0.3)`. The paper's cell
# reaches 2.57% error on CIFAR-10 with 3.6M parameters (paper's figures).

# %%
print(main.genotype)
genotype_graph(main.genotype, title=f"PC-DARTS K={main.config.k}, preset {PRESET}")

# %% [markdown]
# ## 7 · Search again, interactively
#
# The panel below drives the same library calls: choose $K$ (only the values that divide the
# supernet's channels are offered), edge normalization, epochs and the other knobs of the
# paper, then press **Run**. Live plots, the derived cell and a table that compares every run —
# starting with the four above — appear underneath; a run with the settings of an earlier one
# is marked "(same settings as #n)" and drawn dashed. (In CI the panel is only displayed.)

# %%
panel = SearchPanel("pc-darts", preset=PRESET, runs=runs, out_root=OUT,
                    overrides={"seed": SEED, **({"dataset": DATASET} if DATASET else {})})
display(panel)

# %% [markdown]
# The same from code, without widgets: `panel.set(k=4, epochs=20)` then `panel.run()`.
#
# **Next:** 03_snas replaces the softmax mixture by sampled, almost one-hot architectures;
# 04_nasnet (NASNet's RL controller) and 05_cream (Cream of the Crop) follow. 06_compare puts all
# five methods side by side on one split and one budget.
