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
# # 01 · DARTS: differentiable architecture search
#
# DARTS (Liu, Simonyan & Yang, ICLR 2019) turns the discrete choice "which operation on this
# edge?" into a continuous one, so the architecture can be learned by gradient descent together
# with the weights. In this notebook we
#
# 1. compute the continuous relaxation on a tiny example;
# 2. run a first-order and a second-order search;
# 3. watch the architecture weights evolve, and derive and draw the cell;
# 4. retrain the derived cell from scratch;
# 5. look for DARTS's best-known failure, the collapse onto skip connections, in our own run.
#
# **Modes.** `quick` (default) searches the bundled 8×8 digits in minutes on a laptop CPU;
# `paper` is the paper's CIFAR-10 setting (set `PRESET = "paper"`, `RETRAIN_PRESET = "paper"`
# and run on a GPU with CIFAR-10 in `data/`). With `NASVIZ_SMOKE=1` (CI) the same code runs the
# `smoke` presets: a few steps, so the numbers below mean nothing there except that it runs.

# %% tags=["parameters"]
PRESET = "quick"  # search preset: "paper" | "quick" | "smoke"
RETRAIN_PRESET = "quick"  # retraining preset: "paper" | "quick" | "smoke"
EPOCHS = None  # override the preset's search epochs (None = the preset's)
DATASET = None  # None = the preset's ("digits" for quick/smoke, "cifar10" for paper)
OUT = None  # a folder such as "runs/01_darts" keeps every run on disk; None = in memory only

# %%
import os

if os.environ.get("NASVIZ_SMOKE"):  # CI: the same presets, cut to a few steps
    PRESET, RETRAIN_PRESET = "smoke", "smoke"

# %matplotlib inline
import numpy as np
import torch

from nasviz.genotypes import PRIMITIVES
from nasviz.history import entropy
from nasviz.search import create_search, preset, run_search
from nasviz.train import retrain, retrain_preset
from nasviz.viz import evolution as ev
from nasviz.viz.cells import genotype_graph
from nasviz.viz.live import LivePlots
from nasviz.viz.runs import fresh_run_dir

print(f"search preset {PRESET!r}, retrain preset {RETRAIN_PRESET!r}")


def out_dir(name):
    """A new run folder under OUT (never an existing one), or None to keep the run in memory."""
    return fresh_run_dir(OUT, name) if OUT else None


# %% [markdown]
# ## 1 · The continuous relaxation
#
# On an edge $(i, j)$ the search keeps **all** 8 candidate operations and mixes their outputs
# with a softmax over architecture weights $\alpha^{(i,j)} \in \mathbb{R}^8$:
#
# $$\bar o^{(i,j)}(x) = \sum_{o \in \mathcal O} \frac{e^{\alpha^{(i,j)}_o}}{\sum_{o' \in \mathcal O} e^{\alpha^{(i,j)}_{o'}}}\, o(x).$$
#
# A node sums its mixed incoming edges, $x_j = \sum_{i<j} \bar o^{(i,j)}(x_i)$. Here is one
# edge, the library's `MixedOp`, on a random input with 4 channels:

# %%
from nasviz.spaces.darts import MixedOp

torch.manual_seed(0)
alpha = torch.tensor([0.0, 0.1, 0.1, 0.5, 1.0, 0.2, 0.3, 0.0])  # one alpha per op
weights = torch.softmax(alpha, dim=0)
for op, a, w in zip(PRIMITIVES, alpha, weights, strict=True):
    print(f"{op:>13}: alpha {a:4.1f} -> weight {w:.3f}")
print(f"weights sum to {weights.sum():.3f}")

# %%
edge = MixedOp(C=4, stride=1).eval()
x = torch.randn(1, 4, 6, 6)
with torch.no_grad():
    mixed = edge(x, weights)
    by_hand = sum(w * op(x) for w, op in zip(weights, edge.ops, strict=True))
same = torch.allclose(mixed, by_hand, atol=1e-6)
print(f"mixed output {tuple(mixed.shape)}; equals sum_o w_o * o(x): {same}")

# %% [markdown]
# Every op is a differentiable function of $x$ and the mix is differentiable in $\alpha$, so
# $\partial \mathcal L / \partial \alpha$ exists. At the end, each edge is made discrete again:
# a node keeps its 2 strongest incoming edges, each with its argmax operation (`none` excluded).
#
# ## 2 · The bilevel problem
#
# The weights $w$ should fit the training data; the architecture $\alpha$ should generalise.
# DARTS therefore splits the training set in two halves and solves
#
# $$\min_\alpha \; \mathcal L_{val}\big(w^*(\alpha), \alpha\big) \quad \text{s.t.} \quad w^*(\alpha) = \arg\min_w \mathcal L_{train}(w, \alpha),$$
#
# alternating one step on $\alpha$ (a validation batch) and one on $w$ (a training batch).
# **First order** uses $\nabla_\alpha \mathcal L_{val}(w, \alpha)$ at the current $w$.
# **Second order** looks one virtual SGD step ahead, $w' = w - \xi \nabla_w \mathcal L_{train}(w, \alpha)$,
# and differentiates $\mathcal L_{val}(w', \alpha)$; the Hessian term this brings in is
# approximated by finite differences — roughly twice the cost per step.
#
# The config of the first-order search (a dataclass; the preset fills in the paper's knobs):

# %%
config1 = preset("darts", PRESET, order=1, epochs=EPOCHS, dataset=DATASET)
SHOWN = ("dataset", "C", "layers", "epochs", "batch_size", "max_steps_per_epoch", "lr", "order")
print({k: getattr(config1, k) for k in SHOWN})

# %% [markdown]
# ## 3 · A first-order search
#
# The live plots below redraw the alphas of both cells and the loss curves while the search
# runs (at most every few seconds).

# %%
search = create_search(config1, out_dir("darts-order1"))
live = LivePlots(search.history, ["alpha_normal", "curves"], min_interval=5)
first = search.run(callbacks=[live])
live.finish()
h1 = first.history
print(f"first order: {config1.epochs} epochs, final val acc {h1.metric('val_acc')[1][-1]:.3f}, "
      f"{h1.metric('seconds')[1].mean():.1f} s/epoch")

# %% [markdown]
# ## 4 · A second-order search
#
# Same config, `order=2`. Compare the seconds per epoch with the first-order run:

# %%
config2 = config1.replace(order=2)
second = run_search(config2, out_dir("darts-order2"))
h2 = second.history
s1, s2 = h1.metric("seconds")[1].mean(), h2.metric("seconds")[1].mean()
print(f"second order: final val acc {h2.metric('val_acc')[1][-1]:.3f}, {s2:.1f} s/epoch "
      f"= {s2 / s1:.1f}x the first order's {s1:.1f} s/epoch")

# %% [markdown]
# ## 5 · How the architecture evolved
#
# The *history* holds, per epoch, the op probabilities $\mathrm{softmax}(\alpha)$ of every edge,
# the derived genotype and the metrics. First the training curves of the second-order run:

# %%
ev.plot_curves(h2)

# %% [markdown]
# One panel per edge of the normal cell, one line per operation; the title names the edge
# (input state → node):

# %%
ev.plot_alpha_evolution(h2, "normal")

# %% [markdown]
# The same probabilities at the last epoch, as an edges × operations heatmap:

# %%
ev.plot_alpha_heatmap(h2, "normal")

# %% [markdown]
# The **entropy** of each edge's distribution, $H = -\sum_o p_o \log p_o$, measures how decided
# the search is: $\log 8 \approx 2.08$ nats for a uniform edge, 0 for a one-hot one.

# %%
ev.plot_entropy(h2)

# %%
x_ep, p2 = h2.alpha_series("normal")
H = entropy(p2).mean(axis=1)
print(f"mean edge entropy of the normal cell: {H[0]:.3f} nats at epoch {x_ep[0]:g} "
      f"-> {H[-1]:.3f} at epoch {x_ep[-1]:g} (uniform = {np.log(len(PRIMITIVES)):.3f})")

# %% [markdown]
# **Stability**: when did each node's derived choice (its two edges and ops) stop changing?
# Red ticks mark changes. A cell that still changes in the last epochs was not converged.

# %%
ev.plot_stability(h2)

# %% [markdown]
# ## 6 · The derived cell
#
# By the DARTS rule: per node the 2 incoming edges with the strongest non-`none` op, each with
# that op.

# %%
print(second.genotype)
genotype_graph(second.genotype, title=f"DARTS 2nd order, preset {PRESET}")

# %% [markdown]
# ## 7 · The collapse onto skip connections
#
# DARTS is known to drift, on long searches, towards cells full of `skip_connect` and other
# **parameter-free** ops (pooling, `none`). One explanation: in the supernet, a skip connection
# lowers the loss quickly — it passes the signal and gradients straight through, like a
# residual connection — while a convolution must first be trained before it helps; the
# architecture gradient rewards what helps *now*. The resulting cells are shallow and retrain
# badly. Later methods (PC-DARTS among them) were partly designed against it.
#
# Does **our** run show it? We compute, per epoch, the share of the normal cell's probability
# mass on `skip_connect` and on all parameter-free ops, averaged over the 14 edges. Uniform
# weights give $1/8$ and $4/8$.

# %%
PARAM_FREE = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect"]
skip = PRIMITIVES.index("skip_connect")
free = [PRIMITIVES.index(op) for op in PARAM_FREE]
share = {}
for name, h in (("1st order", h1), ("2nd order", h2)):
    x_ep, p = h.alpha_series("normal")  # [epochs], [epochs, edges, ops]
    share[name] = (x_ep, p[:, :, skip].mean(axis=1), p[:, :, free].sum(axis=2).mean(axis=1))
    print(f"{name}: skip_connect share {share[name][1][0]:.3f} -> {share[name][1][-1]:.3f}, "
          f"parameter-free share {share[name][2][0]:.3f} -> {share[name][2][-1]:.3f}")

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, (x_ep, s_skip, s_free) in share.items():
    ax.plot(x_ep, s_skip, marker="o", label=f"skip_connect, {name}")
    ax.plot(x_ep, s_free, marker="s", ls="--", label=f"parameter-free, {name}")
ax.axhline(1 / 8, color="gray", lw=0.8)
ax.axhline(4 / 8, color="gray", lw=0.8)
ax.set(xlabel="epoch", ylabel="share of probability mass", title="normal cell: where the mass goes")
ax.legend(fontsize=7)
plt.show()

# %%
for name, r in (("1st order", first), ("2nd order", second)):
    x_ep, s_skip, s_free = share[name]
    n_skip = sum(op == "skip_connect" for op, _ in r.genotype.normal)
    n_free = sum(op in PARAM_FREE for op, _ in r.genotype.normal)
    trend = "rose" if s_skip[-1] > s_skip[0] else "did not rise"
    print(f"{name}: the skip_connect share {trend} over {x_ep[-1] - x_ep[0]:g} epochs; the derived "
          f"normal cell has {n_skip} skip_connect and {n_free} parameter-free edges of 8")

# %% [markdown]
# What to read from these numbers: the collapse is a *long-search* phenomenon — the DARTS
# paper's 50 epochs on CIFAR-10, and it grows with more epochs. A `quick` search of a few
# epochs on 8×8 digits (let alone a `smoke` run of a few steps) may show only its beginning, or
# nothing: the printed trend above is the honest answer for this run. To see it develop,
# raise `EPOCHS` (e.g. 30 with `quick`) and rerun this section; parameter-free shares that
# climb above their uniform level, and derived normal cells with several `skip_connect`s,
# are the signature.

# %% [markdown]
# ## 8 · Retraining the derived cell
#
# A search only ranks architectures; the cell's real accuracy comes from training its
# evaluation network from scratch (paper: 20 cells, 36 channels, 600 epochs, cutout, drop
# path, auxiliary head; `quick` and `smoke` run the same code smaller on digits).

# %%
rconfig = retrain_preset(RETRAIN_PRESET, dataset=DATASET)
retrained = retrain(second.genotype, rconfig, out_dir("darts-retrain"))
print(f"retrained {rconfig.epochs} epochs on {rconfig.dataset}: "
      f"test accuracy {retrained.test_acc:.4f}, {retrained.params:,} parameters "
      f"(eval net C={rconfig.C}, {rconfig.layers} cells)")

# %% [markdown]
# For scale, the paper's DARTS (2nd order) cell reaches 2.76% test error on CIFAR-10 with 3.3M
# parameters (paper's figures) after 600 epochs on a GPU. In `smoke` mode the accuracy above is
# that of a network trained for a few steps.
#
# **Next:** 02_pc_darts makes this search cheaper by sending only a part of the channels
# through the mixed operations.
