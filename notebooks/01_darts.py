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
# 2. write down the bilevel problem and its first- and second-order gradients (DARTS eqs. 6-8);
# 3. run a first-order search, and time a second-order one against it;
# 4. watch the architecture weights evolve, and derive and draw the cell;
# 5. look for DARTS's best-known failure, the collapse onto skip connections, in our own run;
# 6. retrain the derived cell from scratch.
#
# **Modes.** `quick` (default) searches the bundled 8×8 digits on a laptop CPU, cut so that the
# whole notebook runs in about 3 minutes on 2 cores: a 4-epoch first-order search (the library's
# quick preset has 10), a second-order search of 3 steps (enough to time it), and a
# 2-epoch retraining. **The full version:** set `EPOCHS = 10` (the whole quick preset, about
# 10 minutes) or more; `PRESET = "paper"` with `DATASET = "cifar10"` is the paper's setting (50
# epochs on CIFAR-10, for a GPU). Finished runs are kept in `OUT` and read back when you run the
# notebook again, so **Re-run All** does not search twice; change a parameter and only the
# affected runs run. With `NASVIZ_SMOKE=1` (CI) the `smoke` presets run a few steps in a
# temporary folder: the numbers then mean nothing except that the code runs.

# %% tags=["parameters"]
DATASET = None  # None = the preset's ("digits" for quick/smoke, "cifar10" for paper)
PRESET = "quick"  # search preset: "paper" | "quick" | "smoke"
EPOCHS = None  # search epochs; None = this notebook's quick cut (4), or the preset's
OUT = "../runs/01_darts"  # finished runs are kept here and read back; None = in memory only
SEED = 0  # seed of every search and of the retraining

# %%
import os
import tempfile

if os.environ.get("NASVIZ_SMOKE"):  # CI: the same presets cut to a few steps, nothing cached
    PRESET, OUT = "smoke", tempfile.mkdtemp(prefix="nasviz-smoke-")

# %matplotlib inline
import numpy as np
import torch
from IPython.display import display

from nasviz.analysis import collapse_report
from nasviz.genotypes import PRIMITIVES
from nasviz.search import preset
from nasviz.train import retrain, retrain_preset
from nasviz.viz import evolution as ev
from nasviz.viz.cells import genotype_graph
from nasviz.viz.runs import cached_run, fresh_run_dir

CUT = {"quick": dict(epochs=4)}  # this notebook's cut of the quick preset (see Modes)


def darts_config(**kw):
    """The DARTS config of this notebook: the preset, the first cell's parameters, then ``kw``."""
    cut = dict(CUT.get(PRESET, {})) if EPOCHS is None else {"epochs": EPOCHS}
    return preset("darts", PRESET, **{**cut, "dataset": DATASET, "seed": SEED, **kw})


print(f"preset {PRESET!r}, runs kept in {OUT!r}")

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
# ## 2 · The bilevel problem and its gradient
#
# The weights $w$ should fit the training data; the architecture $\alpha$ should generalise.
# DARTS therefore splits the training set in two halves and solves
#
# $$\min_\alpha \; \mathcal L_{val}\big(w^*(\alpha), \alpha\big) \quad \text{s.t.} \quad w^*(\alpha) = \arg\min_w \mathcal L_{train}(w, \alpha).$$
#
# Computing $w^*(\alpha)$ exactly would mean training the supernet to convergence for every
# architecture step. DARTS approximates it by **one** virtual SGD step with the weights'
# learning rate $\xi$ (its eq. 6):
#
# $$\nabla_\alpha \mathcal L_{val}\big(w^*(\alpha), \alpha\big) \approx \nabla_\alpha \mathcal L_{val}\big(w', \alpha\big), \qquad w' = w - \xi \nabla_w \mathcal L_{train}(w, \alpha).$$
#
# $w'$ depends on $\alpha$, so the chain rule gives two terms (eq. 7):
#
# $$\nabla_\alpha \mathcal L_{val}(w', \alpha) \;-\; \xi\, \nabla^2_{\alpha, w} \mathcal L_{train}(w, \alpha)\, \nabla_{w'} \mathcal L_{val}(w', \alpha).$$
#
# The second term is a matrix-vector product with a matrix of size $|\alpha| \times |w|$. DARTS
# never forms it: with $w^\pm = w \pm \epsilon\, \nabla_{w'} \mathcal L_{val}(w', \alpha)$ and a small
# $\epsilon$ (the paper uses $\epsilon = 0.01 / \lVert \nabla_{w'} \mathcal L_{val}(w', \alpha) \rVert$), the
# central finite difference (eq. 8)
#
# $$\nabla^2_{\alpha, w} \mathcal L_{train}(w, \alpha)\, \nabla_{w'} \mathcal L_{val}(w', \alpha) \approx \frac{\nabla_\alpha \mathcal L_{train}(w^+, \alpha) - \nabla_\alpha \mathcal L_{train}(w^-, \alpha)}{2 \epsilon}$$
#
# costs two more forward-backward passes instead of $O(|\alpha||w|)$ work. This is the
# **second-order** gradient (`order=2`; the library also follows the paper's virtual step with
# momentum and weight decay). Setting $\xi = 0$ drops the second term and $w' = w$: the
# gradient is $\nabla_\alpha \mathcal L_{val}(w, \alpha)$ at the current weights, the **first-order**
# approximation (`order=1`) — faster, and in the paper slightly worse (3.00% vs 2.76% test error
# on CIFAR-10, paper's figures). Either way, the search alternates one step on $\alpha$ (a
# validation batch) and one on $w$ (a training batch).
#
# The config of the first-order search (a dataclass; the preset fills in the paper's knobs):

# %%
config1 = darts_config(order=1)
SHOWN = ("dataset", "C", "layers", "epochs", "batch_size", "max_steps_per_epoch", "lr", "order")
print({k: getattr(config1, k) for k in SHOWN})

# %% [markdown]
# ## 3 · A first-order search
#
# The progress bar counts steps; the live plots below redraw the alphas of the normal cell and
# the loss curves while the search runs (at most every few seconds). If this run is already in
# `OUT` from an earlier Run All, it is read back and the bar is full at once.

# %%
first = cached_run(config1, OUT, name="darts-order1", live=["alpha_normal", "curves"])
h1 = first.history
print(f"first order: {config1.epochs} epochs, final val acc {h1.metric('val_acc')[1][-1]:.3f}, "
      f"{h1.metric('seconds')[1].mean():.1f} s/epoch (training), kept in {first.out}")

# %% [markdown]
# ## 4 · What the second order costs
#
# Same config with `order=2`, run for 1 epoch of 3 steps only: enough to time a step (the
# accuracy of so short a run means nothing). The fair comparison is images per second of
# training, which does not depend on the number of steps:

# %%
config2 = config1.replace(order=2, epochs=1, max_steps_per_epoch=3)
second = cached_run(config2, OUT, name="darts-order2")
ips1 = first.history.metric("images_per_second")[1].mean()
ips2 = second.history.metric("images_per_second")[1].mean()
print(f"training speed: first order {ips1:.0f} img/s, second order {ips2:.0f} img/s: "
      f"a second-order step costs {ips1 / ips2:.1f}x a first-order one here")

# %% [markdown]
# The paper reports about 1 GPU-day for a second-order search against 0.4 (first order): 2.5×
# (paper's figures). Per step, the second order adds the virtual step and the two
# finite-difference passes of eq. 8 to the first order's one backward pass. The rest of this
# notebook follows the first-order run, which is the longer one.
#
# ## 5 · How the architecture evolved
#
# The *history* holds, per epoch, the op probabilities $\mathrm{softmax}(\alpha)$ of every edge
# (the groups `alpha/normal` and `alpha/reduce`), the derived genotype and the metrics. First
# the training curves:

# %%
ev.plot_curves(h1)

# %% [markdown]
# One panel per edge of the normal cell, one line per operation; the title names the edge
# (input state → node). The y axis fits the data (the dotted line is the uniform 1/8), because
# in a short search the probabilities move only a little away from it:

# %%
ev.plot_group_evolution(h1, "alpha/normal")

# %% [markdown]
# The same probabilities at the last epoch, as an edges × operations heatmap:

# %%
ev.plot_group_heatmap(h1, "alpha/normal")

# %% [markdown]
# The **entropy** of each edge's distribution, $H = -\sum_o p_o \log p_o$, measures how decided
# the search is: $\log 8 \approx 2.08$ nats for a uniform edge, 0 for a one-hot one. The plot
# divides by $\log 8$ (1 = undecided) and its y axis fits the data (a short search stays just
# below 1, where a 0..1 axis would show flat lines on the top frame):

# %%
CELLS = ["alpha/normal", "alpha/reduce"]
ev.plot_entropy(h1, groups=CELLS)

# %%
for g in CELLS:
    x_ep, hn = ev.group_entropy(h1, g)  # [epochs], [epochs, edges] normalized
    mean = np.nanmean(hn, axis=1) * np.log(len(PRIMITIVES))
    print(f"{g}: mean edge entropy {mean[0]:.4f} nats at epoch {x_ep[0]:g} -> {mean[-1]:.4f} at "
          f"epoch {x_ep[-1]:g} (uniform = {np.log(len(PRIMITIVES)):.4f})")

# %% [markdown]
# **Stability**: when did each node's derived choice (its two edges and ops) stop changing?
# Red ticks mark changes. A cell that still changes in the last epochs was not converged.

# %%
ev.plot_stability(h1)

# %% [markdown]
# ## 6 · The derived cell
#
# By the DARTS rule: per node the 2 incoming edges with the strongest non-`none` op, each with
# that op.

# %%
print(first.genotype)
genotype_graph(first.genotype, title=f"DARTS 1st order, preset {PRESET}")

# %% [markdown]
# ## 7 · The collapse onto skip connections
#
# DARTS is known to drift, on long searches, towards cells full of `skip_connect` and other
# **parameter-free** ops (pooling, `none`). One explanation: in the supernet, a skip connection
# lowers the loss quickly — it passes the signal and gradients straight through, like a
# residual connection — while a convolution must first be trained before it helps; the
# architecture gradient rewards what helps *now*. The resulting cells are shallow and retrain
# badly. PC-DARTS (notebook 02) argues that its partial channels work against it.
#
# Does **our** run show it? `collapse_report` computes, per epoch, the share of the normal
# cell's probability mass on `skip_connect` and on all parameter-free ops, averaged over the 14
# edges (uniform weights give $1/8$ and $4/8$), and a verdict from those numbers: a change
# smaller than 0.005 (what three decimals can show) counts as no change.

# %%
report = collapse_report(h1, first.genotype)
s_skip, s_free = report["skip_share"], report["free_share"]
print(f"skip_connect share {s_skip[0]:.3f} -> {s_skip[-1]:.3f} ({report['skip_trend']}), "
      f"parameter-free share {s_free[0]:.3f} -> {s_free[-1]:.3f} ({report['free_trend']})")
print(f"derived normal cell: {report['derived_skip']} skip_connect and {report['derived_free']} "
      f"parameter-free edges of {report['derived_edges']}")
print("verdict:", report["verdict"])

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(6, 3.4), layout="constrained")
ax = fig.subplots()
x_ep = report["epochs"]
ax.plot(x_ep, s_skip - report["uniform_skip"], marker="o", label="skip_connect")
ax.plot(x_ep, s_free - report["uniform_free"], marker="s", ls="--", label="all parameter-free")
ax.axhline(0, color="gray", lw=0.8)
ax.set(xlabel="epoch", ylabel="share − uniform share", title="normal cell: where the mass goes")
ax.set_xticks(x_ep)
ax.legend(fontsize=8)
display(fig)

# %% [markdown]
# What to read from these numbers: the collapse is a *long-search* phenomenon — the DARTS
# paper's 50 epochs on CIFAR-10, and it grows with more epochs. A `quick` search of a few
# epochs on 8×8 digits (let alone a `smoke` run of a few steps) may show only its beginning, or
# nothing: the verdict above is the honest answer for this run. To see it develop, raise
# `EPOCHS` (e.g. 30 with `quick`, about half an hour on 2 cores) and rerun this section;
# parameter-free shares that climb above their uniform level, and derived normal cells with
# several `skip_connect`s, are the signature.

# %% [markdown]
# ## 8 · Retraining the derived cell
#
# A search only ranks architectures; the cell's real accuracy comes from training its
# evaluation network from scratch (paper: 20 cells, 36 channels, 600 epochs, cutout, drop
# path, auxiliary head). Here the quick retraining preset (16 channels, 8 cells, on digits) runs
# for 2 epochs (its full length is 20: set `RETRAIN_EPOCHS = None` for it), with a held-out
# validation split carved from the training data; the test split is read once, at the end.

# %%
RETRAIN_EPOCHS = 2 if PRESET == "quick" else None
rconfig = retrain_preset(PRESET, dataset=DATASET, epochs=RETRAIN_EPOCHS, seed=SEED, val_portion=0.1)
retrain_out = fresh_run_dir(OUT, "darts-retrain") if OUT else None
retrained = retrain(first.genotype, rconfig, retrain_out)
print(f"retrained {rconfig.epochs} epochs on {rconfig.dataset}: "
      f"test accuracy {retrained.test_acc:.4f}, {retrained.params:,} parameters "
      f"(eval net C={rconfig.C}, {rconfig.layers} cells)")

# %% [markdown]
# For scale, the paper's DARTS (2nd order) cell reaches 2.76% test error on CIFAR-10 with 3.3M
# parameters (paper's figures) after 600 epochs on a GPU. A 2-epoch retraining on digits says
# only that the derived cell trains.
#
# **Next:** 02_pc_darts makes this search cheaper by sending only a part of the channels
# through the mixed operations, and measures what its two ideas change against this DARTS.
