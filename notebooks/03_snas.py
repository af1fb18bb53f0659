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
# # 03 · SNAS: stochastic neural architecture search
#
# SNAS (Xie, Zheng, Liu & Lin, ICLR 2019) searches the same cell space as DARTS, but instead of
# mixing all operations with fixed softmax weights it **samples** an (almost) one-hot
# architecture at every step from a relaxed categorical distribution, and updates weights and
# architecture from the same loss on the same batch. In this notebook we
#
# 1. look at the concrete (Gumbel-softmax) distribution and its temperature;
# 2. follow SNAS's central argument: the search gradient as credit assignment, its relation to
#    policy gradients and to DARTS's bias;
# 3. write the resource constraint in its decomposed form and take its gradient as the paper does;
# 4. run an SNAS search and watch temperature, entropy and the architecture parameters;
# 5. run the resource-constraint ablation, with both gradient estimators;
# 6. test the paper's claim that SNAS child networks keep their accuracy without retraining.
#
# **Symbols.** $\tau$ is the temperature and $\lambda$ the weight of the resource penalty, here
# and in the library (`temperature_start`, `resource_lambda`; the CLI's `--temperature`,
# `--resource-lambda`). The SNAS paper writes $\lambda$ for the temperature and $\eta$ for the
# penalty weight.
#
# **Modes.** `quick` (default) runs on the bundled 8×8 digits, cut so that the notebook takes
# about 3 minutes on 2 cores: SNAS searches of 4 epochs × 5 steps (the quick preset: 15 full
# epochs), two constraints and one seed, and a DARTS search of 2 epochs × 5 steps for the child
# test.
# **The full version:** `EPOCHS = 15`, `STEPS = None`, `SEEDS = [0, 1, 2]` and all four
# constraints (an hour or so on 2 cores), or `PRESET = "paper"` with `DATASET = "cifar10"` on a
# GPU. Finished runs are kept in `OUT` and read back on **Re-run All**. With `NASVIZ_SMOKE=1`
# (CI) the `smoke` preset runs a few steps in a temporary folder.

# %% tags=["parameters"]
DATASET = None  # None = the preset's ("digits" for quick/smoke, "cifar10" for paper)
PRESET = "quick"  # search preset: "paper" | "quick" | "smoke"
EPOCHS = None  # search epochs; None = this notebook's quick cut (4), or the preset's
OUT = "../runs/03_snas"  # finished runs are kept here and read back; None = in memory only
SEED = 0  # seed of the main search and of the DARTS search
STEPS = 5  # steps per epoch in quick mode (None = the full epoch)
CONSTRAINT = "mild"  # resource constraint of the main search: none | mild | moderate | aggressive
CONSTRAINTS = ["mild", "aggressive"]  # constraints of the ablation (all four in the full version)
SEEDS = [0]  # seeds of the ablation (one search per constraint and seed)
TEMPERATURES = [5.0, 1.0, 0.3, 0.05]  # temperatures of the sample figure

# %%
import os
import tempfile

if os.environ.get("NASVIZ_SMOKE"):  # CI: the same code, a few steps, a tiny ablation, no cache
    PRESET, OUT = "smoke", tempfile.mkdtemp(prefix="nasviz-smoke-")
    CONSTRAINTS, SEEDS = ["none", "aggressive"], [0]

# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from nasviz.analysis import child_claim_verdict
from nasviz.genotypes import PRIMITIVES
from nasviz.search import preset
from nasviz.spaces.darts import gumbel_softmax_sample
from nasviz.viz import evolution as ev
from nasviz.viz.runs import cached_search


def config_for(method, **kw):
    """The config of this notebook: the preset, the first cell's parameters, then ``kw``."""
    epochs = {"snas": 4, "darts": 2}[method]
    cut = {"quick": dict(epochs=epochs, max_steps_per_epoch=STEPS)}.get(PRESET, {})
    if EPOCHS is not None:
        cut = {"max_steps_per_epoch": STEPS} if PRESET == "quick" else {}
    if EPOCHS:
        cut["epochs"] = EPOCHS
    return preset(method, PRESET, **{**cut, "dataset": DATASET, "seed": SEED, **kw})


print(f"preset {PRESET!r}, constraint {CONSTRAINT!r}, ablation {CONSTRAINTS} x seeds {SEEDS}")

# %% [markdown]
# ## 1 · The concrete distribution
#
# On each edge SNAS keeps a vector of (log) architecture parameters $\log\alpha \in \mathbb{R}^8$.
# A sample is
#
# $$Z = \mathrm{softmax}\big((\log\alpha + G)/\tau\big), \qquad G_k = -\log(-\log U_k),\; U_k \sim \mathcal U(0,1).$$
#
# The argmax of $Z$ is distributed exactly as $\mathrm{softmax}(\log\alpha)$ (the Gumbel-max
# trick), and $Z$ is a differentiable function of $\log\alpha$. The temperature $\tau$ sets how
# discrete $Z$ is: large $\tau$ gives nearly uniform weights, $\tau \to 0$ gives one-hot vectors.
# Here are 6 samples from the same $\log\alpha$ at several temperatures:

# %%
log_alpha = torch.tensor([0.0, 0.2, 0.2, 0.6, 1.2, 0.4, 0.5, 0.1])  # one edge, 8 ops


def samples(temperature, n=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([gumbel_softmax_sample(log_alpha, temperature, gen) for _ in range(n)])


fig, axes = plt.subplots(1, len(TEMPERATURES), figsize=(3.2 * len(TEMPERATURES), 3), sharey=True)
for ax, t in zip(axes, TEMPERATURES, strict=True):
    ax.imshow(samples(t).numpy(), vmin=0, vmax=1, cmap="viridis")
    ax.set(title=f"τ = {t:g}", xlabel="op", xticks=range(8))
axes[0].set_ylabel("sample")
plt.show()

# %%
for t in TEMPERATURES:
    z = samples(t, n=500)
    print(
        f"τ = {t:5.2f}: mean max weight {z.max(1).values.mean():.3f}, "
        f"mean entropy {-(z * z.clamp_min(1e-12).log()).sum(1).mean():.3f} nats"
    )
print(f"uniform: max weight {1 / 8:.3f}, entropy {np.log(8):.3f} nats")

# %% [markdown]
# Move the slider (in a live notebook) to see one fixed sample sharpen as the temperature falls:

# %%
from ipywidgets import FloatLogSlider, Layout, interact


def show_sample(tau=1.0):
    z = samples(tau, n=1)[0]
    fig, ax = plt.subplots(figsize=(6, 2.5))
    ax.bar(range(8), z.numpy())
    ax.set(ylim=(0, 1), title=f"one sample, τ = {tau:.3g}", ylabel="Z")
    ax.set_xticks(range(8), PRIMITIVES, rotation=30, fontsize=7)
    plt.show()


slider = FloatLogSlider(value=1.0, base=10, min=-2, max=1, step=0.05, description="τ",
                        layout=Layout(width="420px"), style={"description_width": "initial"})
_ = interact(show_sample, tau=slider)

# %% [markdown]
# SNAS anneals $\tau$ from 1.0 to 0.03 over the search (the paper's schedule, linear here):
# early samples mix many ops, late ones are nearly the discrete child network.
#
# ## 2 · The search gradient as credit assignment
#
# SNAS states NAS as one objective over a **distribution** of architectures: with $Z$ the
# one-hot choices of all edges, drawn from the fully factorized $p_\alpha(Z)$,
#
# $$\min_{\alpha, \theta}\; \mathbb E_{Z \sim p_\alpha(Z)}\big[\mathcal L_\theta(Z)\big].$$
#
# This is the objective of reinforcement-learning NAS (NASNet, ENAS), with the reward $-\mathcal L$.
# RL takes its gradient with the score function (policy gradient),
# $\mathbb E\big[\mathcal L_\theta(Z)\, \nabla_\alpha \log p_\alpha(Z)\big]$: one scalar reward for the
# whole sampled network, handed back to every decision alike — the *delayed reward* SNAS sets
# out to avoid. SNAS relaxes $Z$ to the concrete sample above and differentiates through it
# (the reparameterization). The paper's point is what this gradient *is*: by the chain rule, the
# gradient for edge $(i,j)$ goes through that edge's own output,
#
# $$\frac{\partial \mathcal L}{\partial \log\alpha_{i,j}} = \frac{\partial \mathcal L}{\partial x_j}\, O_{i,j}(x_i)^{\!\top} \frac{\partial Z_{i,j}}{\partial \log\alpha_{i,j}},$$
#
# and SNAS shows it equals a policy gradient in which each edge gets its **own** reward: the
# first-order Taylor term of the loss in that edge's output ($\partial\mathcal L/\partial x_j$ times the
# op's output) — a credit assigned to each decision by how much it changed the loss, with no
# delay, on every training step. The same loss trains $\theta$ and $\alpha$, on the same batch.
#
# And DARTS? DARTS differentiates $\mathcal L_\theta(\mathbb E_p[Z])$ — the loss of the *mixed*
# network, the expectation moved *inside* the non-linear network — instead of
# $\mathbb E_p[\mathcal L_\theta(Z)]$, the expected loss of the *sampled* networks. The two differ
# (Jensen's gap); SNAS calls this DARTS's **bias**, and it is why a DARTS supernet can be good
# while its discretized child is not, so the child must be retrained (section 6 measures it). As
# $\tau \to 0$ the concrete sample becomes the discrete child, so SNAS trains, late in the
# search, nearly the network it will return.
#
# ## 3 · The resource constraint, decomposed
#
# SNAS adds the expected cost of the child to the objective:
# $\mathbb E_{Z}[\mathcal L_\theta(Z)] + \lambda\, \mathbb E_{Z}[C(Z)]$. The costs it uses — parameters,
# FLOPs and memory access cost (MAC) — are those of the ops each edge picks, so the cost of a
# cell **decomposes** over its edges:
#
# $$C(Z) = \sum_{(i,j)} C(Z_{i,j}) = \sum_{(i,j)} \sum_k Z^k_{i,j}\, c^k_{i,j},$$
#
# with $c^k_{i,j}$ the measured cost of op $k$ on edge $(i,j)$ (`nasviz.spaces.costs` measures every
# op at its real input shape). $C$ is not a differentiable function of the network's weights or
# output, so SNAS takes its gradient with the policy gradient — but since the cost decomposes,
# each edge's reward is **its own cost**, a local reward with none of RL's delay:
#
# $$\nabla_{\log\alpha_{i,j}} \mathbb E_Z\big[C(Z)\big] = \mathbb E_Z\Big[C(Z_{i,j})\, \nabla_{\log\alpha_{i,j}} \log p_\alpha(Z_{i,j})\Big], \qquad \nabla_{\log\alpha_{i,j}} \log p_\alpha(Z_{i,j}) = H_{i,j} - \mathrm{softmax}(\log\alpha_{i,j}),$$
#
# with $H_{i,j}$ the one-hot op the sample picks. This is the library's default
# (`resource_gradient="paper"`). The penalty combines the three costs as the mean of
# $\log(1 + \text{cost})$, averaged over the normal and reduction cells (`penalty_form="log"`); the
# log of a sum is not a sum over edges, so each edge's reward is its cost times the derivative of
# the log at the sampled child (the chain rule; exact for `penalty_form="linear"`). The tests
# (`tests/test_resource_gradient.py`) check this gradient against the formula on hand-made
# numbers, and that its average over samples equals the exact gradient of the expected cost.
#
# The alternative, `resource_gradient="relaxed"`, differentiates the cost of the relaxed sample,
# $\sum_k Z^k c^k$, through the Gumbel-softmax — lower variance, but it prices a *mixture* of ops
# rather than the child. Section 5 runs both.
#
# ## 4 · The search
#
# Each step: draw one $Z$ per cell type, run the supernet with it, and update the weights (SGD)
# and $\log\alpha$ (Adam) from **one** loss on **one** training batch — no bilevel split:
# $\mathcal L = \mathrm{CE} + \lambda \cdot \text{penalty}$. The progress bar counts steps; a run
# already in `OUT` is read back.

# %%
config = config_for("snas", constraint=CONSTRAINT)
search = cached_search(config, OUT, name=f"snas-{CONSTRAINT}-{config.resource_gradient}-seed{SEED}",
                       live=["curves"])
history = search.history
print(f"{config.epochs} epochs on {config.dataset}, λ = {config.effective_resource_lambda():g}, "
      f"resource gradient {config.resource_gradient!r}, "
      f"final val acc {history.metric('val_acc')[1][-1]:.3f}")

# %% [markdown]
# The temperature falls on schedule; the entropy of the samples falls with it (and with the
# architecture parameters becoming more decided); `penalty` is the mean penalty of the sampled
# children per epoch:

# %%
wanted = ["temperature", "entropy_normal", "entropy_reduce", "penalty"]
ev.plot_extra(history, [n for n in wanted if n in history.extra_names()])

# %%
_, temps = history.extra("temperature")
_, ent = history.extra("entropy_normal")
print(f"τ {temps[0]:.3f} -> {temps[-1]:.3f}; "
      f"mean sample entropy (normal cell) {ent[0]:.3f} -> {ent[-1]:.3f} nats")

# %% [markdown]
# The architecture distribution $\mathrm{softmax}(\log\alpha)$ per edge of the normal cell (group
# `alpha/normal`; the y axis fits the data, the dotted line is uniform):

# %%
ev.plot_group_evolution(history, "alpha/normal")

# %% [markdown]
# **Derivation.** SNAS takes the argmax on *every* edge, `none` included: an edge whose argmax
# is `none` simply disappears, and there is no "two inputs per node" rule.

# %%
from nasviz.viz.cells import DotNotFoundError, check_dot, genotype_graph

g = search.derive()
n_none = sum(op == "none" for cell in ("normal", "reduce") for op, _ in g.edges(cell))
print(f"{n_none} of 28 edges chose 'none'")
try:
    check_dot()
    display(genotype_graph(g, title=f"SNAS ({CONSTRAINT}), preset {PRESET}"))
except DotNotFoundError as exc:
    print(exc)

# %% [markdown]
# ## 5 · The resource constraint: strength and estimator
#
# The stronger the constraint, the more the penalty pushes probability towards cheap ops
# (pooling, skip, `none`). The paper reports on CIFAR-10 (**paper's figures**, after retraining):
#
# | constraint | test error | params |
# |---|---|---|
# | mild | 2.98% | 2.9M |
# | moderate | 2.85% | 2.8M |
# | aggressive | 3.10% | 2.3M |
#
# We run one search per constraint and seed with the paper's estimator, and the strongest
# constraint once more with the relaxed one; each derived cell is measured as a CIFAR-10
# evaluation network (36 channels, 20 cells) so the parameter counts compare with the paper's
# (FLOPs are skipped to save time: `measure_flops=True` adds them). The main search above is the
# `mild` row (read back, not rerun). `expected_penalty_change` is the penalty of the
# distribution $\mathrm{softmax}(\log\alpha)$ at the last epoch minus at the first: it moves with
# $\lambda$ long before any argmax flips.

# %%
from nasviz.search.snas import resource_ablation
from nasviz.viz.snas import ablation_reading, ablation_table, penalty_change_plot

base = config_for("snas")
kw = dict(out_root=OUT, progress=True, measure_flops=False)
rows = resource_ablation(CONSTRAINTS, SEEDS, base, **kw)
strongest = CONSTRAINTS[-1]
rows += resource_ablation([strongest], SEEDS, base, resource_gradients=["relaxed"], **kw)
display(ablation_table(rows))

# %%
penalty_change_plot(rows)
plt.show()

# %%
print("\n".join(ablation_reading(rows)))

# %% [markdown]
# How to read this: a search of a few dozen steps on 8×8 digits (let alone a `smoke` run) moves
# $\log\alpha$ only a little, so the change of the *expected* penalty is the first thing that
# shows the constraint working, long before the derived cells differ; the
# derived sizes above are what this run found, with one seed, and seed noise can be as large as
# the effect. The paper's trend (smaller cells and more `none` edges under stronger
# constraints) needs long searches: run the full version with several `SEEDS` to test it. The
# two estimators price different things (the child vs the mixture); at this length their rows
# differ by what one short run can show.
#
# ## 6 · The child network without retraining
#
# SNAS's claim: because training already used (nearly) one-hot samples, the derived child
# network — the argmax cell, in the *supernet's* weights — keeps the search-time validation
# accuracy, while the DARTS child loses much of it and must be retrained. We run a short DARTS
# search (2 epochs × 5 steps in quick mode) and measure both children on their validation
# splits; a drop counts only when it is larger than the split's noise (two standard errors).
# Like every evaluation of a supernet in nasviz, each network is measured with BatchNorm
# statistics recomputed from 512 training images for that network (`nasviz.bn_calibration`;
# the running averages of a few dozen steps lag the weights and would measure chance), so a
# drop here comes from the weights, not from stale BN averages:

# %%
from nasviz.search.child import child_accuracy, plot_child_vs_supernet

darts = cached_search(config_for("darts"), OUT, name="darts-child-test")
child = {"SNAS": child_accuracy(search), "DARTS": child_accuracy(darts)}
for name, c in child.items():
    print(f"{name:>5}: supernet {c['supernet_acc']:.3f}, child {c['child_acc']:.3f}, "
          f"drop {c['drop']:+.3f} ({c['n']} validation images)")

# %%
plot_child_vs_supernet(child)

# %%
n_val = min(c["n"] for c in child.values())
print("verdict:", child_claim_verdict(child, n_val, chance=1 / 10))  # 10 classes (digits, CIFAR-10)
for name, found in (("SNAS", search), ("DARTS", darts)):
    steps = found.history.metric("train_acc")[0][-1] * found.steps_per_epoch()
    print(f"{name:>5}: training accuracy {found.history.metric('train_acc')[1][-1]:.3f} at the last "
          f"epoch, after {steps:.0f} steps")

# %% [markdown]
# The paper's claim is about full searches on CIFAR-10 (150 epochs), where the SNAS temperature
# fell to 0.03 slowly and the DARTS mixture weights were far from one-hot. SNAS trains its
# weights through sampled, nearly one-hot children that change at every step — a noisier
# signal than DARTS's fixed mixture — so per step it learns much more slowly (compare the two
# training accuracies above), and the faster the temperature falls, the slower it learns. In a
# run of a few dozen steps its supernet can still be at chance while DARTS's is not. A
# supernet at chance, or a DARTS child that loses nothing, leaves nothing to test; the verdict
# above says which case this run is. The SNAS supernet here is measured on a fresh sample $Z$,
# so it can differ from the last epoch's `val_acc` by the noise. To test the claim, run longer
# (`EPOCHS`, `STEPS = None`).
#
# ## 7 · The search panel
#
# The panel builds a config from widgets (preset, constraint, τ, λ, the resource gradient, ...)
# and runs it with live plots when you press *Run* (nothing is run here):

# %%
from nasviz.viz.widgets import search_panel

panel = search_panel("snas", preset=PRESET,
                     overrides={"seed": SEED, **({"dataset": DATASET} if DATASET else {})})
display(panel)

# %% [markdown]
# **Summary.** SNAS replaces DARTS's deterministic mixture with annealed Gumbel-softmax
# samples, trains weights and architecture on one loss with a gradient that assigns each edge
# its own credit, adds a resource penalty that decomposes over edges (its gradient a local
# policy gradient), and derives cells by a plain argmax that may delete edges.
#
# **Next:** 04_nasnet (NASNet's RL controller, the policy gradient of section 2 at full scale)
# and 05_cream; 06_compare puts all five methods side by side on one split and one budget.
