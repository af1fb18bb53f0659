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
# # 06 · Which method is better, at what cost, and better than random?
#
# Notebooks 01-05 ran one method each, every time on its own settings. This one asks the
# question a reviewer asks after reading them: **which is better, at what cost, and is any of
# them better than picking a cell at random?** It runs DARTS, PC-DARTS, SNAS, NASNet and Cream
# under one protocol (`nasviz.compare`, the same code as `nasviz compare`):
#
# 1. **one dataset and one split**: every search trains its weights on the same first part of
#    the training data and holds out the same last part (DARTS and PC-DARTS fit their alphas on
#    it, NASNet scores its children on it, Cream's meta-network looks ahead on it, SNAS only
#    reports on it: it is single-level). The test split is read once per retraining, at its end;
# 2. **one budget**: the same number of training images through the weights of each search (or
#    the same wall clock): a method that is "better" with ten times the compute has not shown
#    it is better;
# 3. **one retraining**: every derived architecture is trained from scratch with the same recipe
#    and the search's seed, so the searches are compared on what they found, not on how long
#    their result was trained;
# 4. **a random baseline**: architectures drawn uniformly from each method's own space, retrained
#    the same way. Random search is the baseline NAS papers were later criticised for leaving
#    out (Li & Talwalkar 2019; Yang et al. 2020): in a well-designed space most cells are good,
#    and a method has only shown something if it beats that cloud;
# 5. **seeds**: a search is a random process. The spread of one method's results over seeds is
#    how much a single run can be trusted; a difference smaller than that spread is noise.
#
# **Modes.** `quick` (default) runs all five methods on the bundled 8×8 digits, **cut to finish
# within 5 minutes on 2 CPU cores** (Run All took 240 s in JupyterLab on ours): 1 seed, 2 random architectures per space,
# a fifth of the DARTS quick budget per search and 2 retraining epochs (the quick recipe has 20).
# With one seed there is no seed spread and two random cells make a rough cloud, so the quick run
# shows how the protocol works, not which method wins. **The full comparison** (3 seeds, 8 random cells per
# space, the whole quick budget, the quick retraining: 54 runs) is `FULL = True` below, about 2
# hours on 2 cores (measured: the runs' own times add up to 166 min with the cores shared by
# 2-3 runs at once), or `nasviz compare --methods darts,pc-darts,snas,nasnet,cream --dataset digits
# --preset quick --seeds 3 --random 8 --out runs/compare`. Every run is a normal run directory
# under `OUT`: Re-run All reads finished runs back, an interrupted comparison continues. With
# `NASVIZ_SMOKE=1` (CI) the smoke presets run a few steps in a temporary folder: their numbers
# mean nothing except that the code runs.

# %% tags=["parameters"]
DATASET = None  # None = digits (every preset of this comparison; "cifar10" for paper)
PRESET = "quick"  # search preset of every method: "paper" | "quick" | "smoke"
EPOCHS = None  # retraining epochs; None = this notebook's quick cut (2), or the retrain preset's
OUT = "../runs/06_compare"  # every run is kept here and read back on Re-run All
SEED = 0  # first seed (seeds SEED, SEED + 1, ...)

# %%
import os
import tempfile
import time

T0 = time.perf_counter()
FULL = False  # True: 3 seeds, 8 random architectures per space, the whole budget (~2 hours)
SEEDS, RANDOM, BUDGET_SHARE, RETRAIN_EPOCHS = (3, 8, 1.0, None) if FULL else (1, 2, 0.2, 2)
if PRESET != "quick":  # paper / smoke: the preset's own budget and retraining
    BUDGET_SHARE, RETRAIN_EPOCHS = 1.0, None
if os.environ.get("NASVIZ_SMOKE"):  # CI: the smoke presets, a fresh folder, nothing cached
    PRESET, OUT, SEEDS, RANDOM, BUDGET_SHARE, RETRAIN_EPOCHS = (
        "smoke", tempfile.mkdtemp(prefix="nasviz-06-"), 1, 2, 1.0, None)  # fmt: skip
RETRAIN_EPOCHS = EPOCHS or RETRAIN_EPOCHS

# %matplotlib inline
from IPython.display import display

from nasviz.analysis import child_claim_verdict
from nasviz.compare import CompareConfig, Runner, run_comparison, save_results
from nasviz.compare.budget import measure_shape, split_overrides
from nasviz.compare.plots import (
    plot_accuracy_vs_params,
    plot_cost_vs_accuracy,
    plot_decision_evolution,
    plot_seed_spread,
)
from nasviz.compare.table import display_frame, reading
from nasviz.data import load_dataset, search_split
from nasviz.search import registry

retrain_preset = "paper" if PRESET == "paper" else PRESET
config = CompareConfig(
    dataset=DATASET or ("cifar10" if PRESET == "paper" else "digits"), preset=PRESET,
    retrain_preset=retrain_preset, retrain_epochs=RETRAIN_EPOCHS, seeds=SEEDS, first_seed=SEED,
    random=RANDOM, out=OUT,
)  # fmt: skip
runner = Runner(config)
print(f"methods: {', '.join(runner.methods)}" +
      (f" (not in this version: {', '.join(runner.missing)})" if runner.missing else ""))
print(f"{config.seeds} seed(s), {config.random} random architectures per space, "
      f"{runner.total} runs in {OUT}")

# %% [markdown]
# ## 1 · One split
#
# Each method names the held-out share differently (the DARTS family's `train_portion`, NASNet's
# and Cream's `val_portion`); the comparison sets whichever a method has, so all hold out the same
# images. The default is DARTS's split, half and half: fair between DARTS, PC-DARTS, NASNet and
# Cream, which all use the held-out half to decide; SNAS trains on the first half only (its
# paper uses 90% for training), a cost of comparing it on the same data.

# %%
train = load_dataset(config.dataset, "train", root=config.data_root)
rows = []
for method in runner.methods:
    fields = split_overrides(registry.get(method).config_class, config.val_portion)
    cfg = runner.base_config(method)
    portion = cfg.train_portion if "train_portion" in fields else 1 - cfg.val_portion
    weights, held_out = search_split(train, portion)
    rows.append({"method": method, "field set": fields, "weights train on": len(weights),
                 "held out": len(held_out)})
display(__import__("pandas").DataFrame(rows).set_index("method"))

# %% [markdown]
# ## 2 · One budget
#
# The budget is counted in **training images pushed through weights being trained**: one batch
# step of a supernet, or every image of every NASNet child's short training. By default it is
# what the first method's preset spends; this notebook's quick cut takes `BUDGET_SHARE` of it.
# Each method meets it by its number of epochs (and steps per epoch); the table after the run
# shows the images each search really saw. (`budget="seconds"` gives every search the same wall
# clock instead: fair for "what do I get in an hour", and it also charges DARTS's architecture
# steps, Cream's teacher and NASNet's controller, which the image count does not.) Which is fair
# for which pair: within the DARTS family, images compare the relaxations on the same data and
# seconds test PC-DARTS's claim of cheaper steps; a DARTS-family method against Cream, images
# are fair for the shared weights and seconds also charge Cream's teacher; against NASNet,
# images count every child's own training, so NASNet gets few controller updates, and seconds
# are the practical question, on this machine.

# %%
first = runner.base_config(runner.methods[0])
preset_images = measure_shape(first).images(first)
config = config.replace(budget_value=round(BUDGET_SHARE * preset_images))
print(f"the {runner.methods[0]} {PRESET} preset spends {preset_images:,} training images; "
      f"each search gets {config.budget_value:,.0f}")

# %% [markdown]
# ## 3 · The comparison
#
# Searches first, then their retrainings, then the random architectures; each line says which run
# of how many is going, and whether it is read back from `OUT`.

# %%
t = time.perf_counter()
comparison = run_comparison(config, progress=False)
paths = save_results(comparison)
print(f"{time.perf_counter() - t:.0f} s; wrote {', '.join(p.name for p in paths)} in {OUT}")

# %% [markdown]
# One row per method and seed. `budget_images` is what the search saw (a NASNet update trains
# whole children, so it cannot spend less than one update); `supernet_acc` and `child_acc` are on
# the held-out split before any retraining; `retrained_acc` is the test accuracy after
# retraining; `z_vs_random` is how many standard deviations of the random cloud the retrained
# architecture lies above (or below) the cloud's mean.

# %%
frame = comparison.frame()
display(display_frame(frame).set_index(["method", "seed"]).round(4))

# %%
summary = comparison.summary()
display(summary.set_index("method").round(4))

# %% [markdown]
# ## 4 · Accuracy, size and cost
#
# Left: the searched architectures (colour) against the random ones (grey) of every space, by
# the parameters of the retrained network. A search that has learned something sits above its
# space's grey points, not merely to one side of them.

# %%
plot_accuracy_vs_params(frame, comparison.random_frame())

# %%
plot_cost_vs_accuracy(frame)

# %% [markdown]
# The seed spread: every seed's retrained accuracy, the method's mean (bar) and the random
# cloud's mean ± one standard deviation (grey band). With one seed there is no spread to read.

# %%
plot_seed_spread(frame)

# %% [markdown]
# ## 5 · How decided each method becomes
#
# Every method records its decisions in the same history format: DARTS-family alphas (and
# PC-DARTS betas), NASNet's controller probabilities, Cream's choice frequencies on its board.
# On one x axis, the fraction of each search's budget, the mean normalized entropy of all its
# decision rows (1 = uniform, 0 = decided) and the mean probability of each row's top choice:

# %%
plot_decision_evolution(comparison)

# %% [markdown]
# ## 6 · From supernet to child to retrained network
#
# A weight-sharing method trains one supernet and reads a child out of it. SNAS claims its child
# keeps the supernet's accuracy without retraining while DARTS's loses it; Cream claims its board
# paths are already good children. Before retraining: the supernet as the method evaluates it
# (Cream: the mean of random paths), the derived child with the inherited weights; after: the
# retrained network. For NASNet the child's accuracy before retraining is its reward (a short
# training of its own).

# %%
gap = frame[["method", "seed", "supernet_acc", "child_acc", "retrained_acc"]].copy()
gap["supernet - child"] = gap["supernet_acc"] - gap["child_acc"]
display(gap.set_index(["method", "seed"]).round(4))
by = frame.groupby("method")[["supernet_acc", "child_acc"]].mean()
if {"snas", "darts"} <= set(by.index):
    child = {name.upper(): {"supernet_acc": by.loc[name, "supernet_acc"],
                            "child_acc": by.loc[name, "child_acc"],
                            "drop": by.loc[name, "supernet_acc"] - by.loc[name, "child_acc"]}
             for name in ("snas", "darts")}  # fmt: skip
    n_val = len(search_split(train, 1 - config.val_portion)[1])
    info = train.info
    print("SNAS's claim on this run:", child_claim_verdict(child, n_val, chance=1 / info.num_classes))

# %% [markdown]
# ## 7 · Reading the table
#
# Every sentence below is computed from the tables above (nothing is typed by hand). A method
# "beats random" only in the sense that its retrained accuracy is above the random cloud's mean;
# a |z| below 1 is within the spread of random cells, and with one seed the method's own spread
# is unknown, so the quick mode's verdicts are about one run each.

# %%
for line in reading(summary, frame, comparison.budget):
    print("·", line)
print(f"this notebook ran in {time.perf_counter() - T0:.0f} s on this machine")

# %% [markdown]
# ## Where next
#
# * Run the full comparison (`FULL = True`, or the `nasviz compare` command above) and read the
#   seed spread before any ranking.
# * `budget="seconds"` (`nasviz compare --budget seconds`): the same question at equal wall clock.
# * `PRESET = "paper"` on a GPU with CIFAR-10: the papers' settings under one protocol, hours.
