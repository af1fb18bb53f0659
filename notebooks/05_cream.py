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
# # 05 · Cream of the Crop: prioritized paths and a teacher inside the supernet
#
# One-shot NAS in the SPOS style trains one big **supernet** in which every layer holds several
# candidate blocks, by sampling one **path** (one block per layer) per batch. Afterwards a
# separate search (evolution, usually) looks for the best path. Cream of the Crop (Peng et al.,
# NeurIPS 2020) changes two things:
#
# 1. during training it keeps a **prioritized path board**: the $K$ best paths seen so far
#    within the FLOPs constraint, so the result is simply the board's best path;
# 2. the board's paths **teach** the sampled path: a small **meta-network** picks the board path
#    that matches the student best, and the student distills from it, weighted by the match.
#
# The paper's ImageNet figures (paper's, not ours): 53.8% top-1 at 14M FLOPs, 77.6% at 287M,
# 80.0% at 604M. Here we run the same code on **your** machine.
#
# **Modes.** `quick` (default) searches the bundled 8×8 digits in a supernet scaled down with the
# same blocks (half width, 9 searchable layers). `paper` is the official setting: ImageNet read
# from an ImageFolder tree (`DATASET = "imagenet-folder"`, data under `data/train`, `data/val`),
# the 0-600M supernet, 120 epochs, many GPUs (`torchrun`). With `NASVIZ_SMOKE=1` (CI) the same
# code runs the `smoke` presets, a few steps each: their numbers mean nothing.
#
# Quick mode runs two searches (with and without distillation; each prints its time) and one
# short retraining; the search panel in section 6 runs more when you click.
# **The full version:** `EPOCHS = 30` or more on digits (a weight-sharing supernet needs many
# more steps than one network, section 3 shows why), or `PRESET = "paper"` on ImageNet.

# %% tags=["parameters"]
DATASET = None  # None = the preset's ("digits" for quick/smoke, "imagenet-folder" for paper)
PRESET = "quick"  # "paper" | "quick" | "smoke"
EPOCHS = None  # override the preset's search epochs (None = the preset's)
OUT = "../runs/05_cream"  # finished runs are kept here and read back; Re-run All reuses them
SEED = 2

# %%
import os
import tempfile
from pathlib import Path

SMOKE = bool(os.environ.get("NASVIZ_SMOKE"))
if SMOKE:  # CI: the same code on the smoke presets, in a fresh folder
    PRESET, OUT = "smoke", tempfile.mkdtemp(prefix="nasviz-05-")

# %matplotlib inline
import torch
from IPython.display import display

from nasviz.search import create_search, preset
from nasviz.search.cream import config_space
from nasviz.search.cream_meta import matching_scores
from nasviz.spaces.cream import CHOICE_NAMES, RELEASED, CreamSpace
from nasviz.train import retrain, retrain_preset
from nasviz.viz import evolution as ev
from nasviz.viz.cream import path_graph, plot_board
from nasviz.viz.runs import RunList, config_digest
from nasviz.viz.widgets import SearchPanel


def cream_config(**overrides):
    """The notebook's Cream config: the preset plus the parameters cell."""
    return preset("cream", PRESET, dataset=DATASET, epochs=EPOCHS, seed=SEED, **overrides)


def cached_search(config, name):
    """Run ``config`` in OUT/name-<digest>, or reuse (resume) the run already there."""
    out = Path(OUT) / f"{name}-{config_digest(config)}"
    resume = (out / "checkpoint.pt").is_file()
    search = create_search(config, out, resume=resume)
    print(f"{name}: {'reusing' if resume else 'running'} {out} (epoch {search.epoch} done)")
    return search, search.run(progress=not resume)


cfg = cream_config()
print(f"preset {PRESET!r} on {cfg.dataset}, {cfg.epochs} epochs, runs in {OUT}")

# %% [markdown]
# ## 1 · The space
#
# The supernet is MobileNetV3-like (PAPERS.md): a 3×3 stem, a fixed depthwise-separable block,
# five searchable stages (24, 40, 80, 96, 192 channels), a fixed 1×1 block and the head. Every
# searchable layer picks one of six MBConv blocks with squeeze-excitation:

# %%
print("choices per layer:", ", ".join(CHOICE_NAMES))  # NBVAL_CHECK_OUTPUT
imagenet = CreamSpace.for_flops(0, 600)
print(f"official 0-600M supernet: layers per stage {list(imagenet.depths)}, "
      f"{imagenet.image_size} px, {imagenet.num_paths():.3g} paths")

# %% [markdown]
# A path's FLOPs are a sum over a table measured once with `torch.utils.flop_counter` on the
# supernet's real modules. The spread of uniformly random paths shows why a constraint matters:
# a uniform sampler mostly draws paths near the middle of the range. Our run's space and the
# released cream_287m model:

# %%
space = config_space(cfg)
madds = space.sample_madds(20000, seed=SEED)
lo, hi = space.madds_bounds()
print(f"{cfg.dataset} space: layers {list(space.depths)}, width {space.width:g}, "
      f"{space.num_paths():,} paths from {lo:.2f}M to {hi:.2f}M multiply-adds")
print(f"cream_287m at 224 px: {RELEASED['cream_287m'].madds():.1f}M multiply-adds (flop counter)")

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(6.5, 3.2), layout="constrained")
ax = fig.subplots()
ax.hist(madds.numpy(), bins=60, color="#6baed6")
ax.set_xlabel("multiply-adds (M)")
ax.set_ylabel("random paths")
ax.set_title(f"FLOPs of 20,000 uniformly random paths ({cfg.dataset} space)")
LOW = (lo, float(madds.quantile(0.25)))  # the cheapest quarter of the space
HIGH = (float(madds.quantile(0.75)), hi)  # the dearest quarter
for (a, b), color in ((LOW, "green"), (HIGH, "crimson")):
    ax.axvspan(a, b, color=color, alpha=0.15)
fig

# %% [markdown]
# ## 2 · Uniform sampling within a range
#
# SPOS draws each layer's block uniformly. Cream keeps only paths within the FLOPs range:
# nasviz redraws until the path fits, so the result is uniform over the *fitting paths*, not
# per layer: a range can tilt the per-layer choice frequencies away from 1/6. We count the
# cheapest block (k3e4) among 300 paths drawn in the cheap range:

# %%
g = torch.Generator().manual_seed(SEED)
for name, rng in (("low", LOW), ("high", HIGH)):
    print(f"{name} range {rng[0]:.2f}-{rng[1]:.2f}M: "
          f"{space.fraction_in_range(rng):.0%} of all paths fit")
draws = [space.random_path(g, LOW) for _ in range(300)]
share = torch.tensor([[c == 0 for st in p.stages for c in st] for p in draws]).float().mean(0)
tol = 2 * (1 / 6 * 5 / 6 / len(draws)) ** 0.5  # 2 binomial std of a share of 1/6
for name, f in zip(space.layer_names(), share.tolist(), strict=True):
    verdict = "above" if f > 1 / 6 + tol else "below" if f < 1 / 6 - tol else "within 2 std of"
    print(f"{name}: k3e4 in {f:.2f} of the low-range paths, {verdict} the uniform 1/6")

# %% [markdown]
# ## 3 · The search: the board fills up, the teacher teaches
#
# After the warm-up (plain uniform sampling) every sampled path is offered to the board with
# its accuracy on the batch it just trained on; it enters if the board has room, if it beats the
# worst entry, or ties it with fewer FLOPs. For every batch the meta-network scores each board
# path against the student, picks the teacher and sets the weight $m$ of the loss
#
# $$\mathcal L = \tfrac12\left(m\,\mathrm{KD}(\text{student}, \text{teacher}) + (2-m)\,\mathrm{CE}\right).$$
#
# Every few hundred steps (every `meta_every`) the meta-network itself is updated by a one-step
# look-ahead: how would the student's loss on held-out images change after one step with this
# teacher weighting? Held-out images come from a validation split of the *training* data.

# %%
main, result = cached_search(cream_config(), "kd")
h = result.history
kd_last = h.last()["metrics"]
steps = main.global_step
chance = 1 / main.info.num_classes
print(f"after {steps} steps of batch {cfg.batch_size} the board's best path scores "
      f"{kd_last['val_acc']:.0%} on {len(main.eval_loader.data)} held-out images with the supernet's "
      f"shared weights (chance: {chance:.0%}); the sampled paths averaged {kd_last['train_acc']:.0%} "
      f"on their training batches in the last epoch")
plot_board(h) if h.has_group_data("board/choices") else print("the board is still empty")

# %% [markdown]
# Above: every epoch's board (color = epoch) in accuracy against multiply-adds, the last
# board's front (no other board path is better with fewer FLOPs) and its best path (★). A
# board accuracy is the path's accuracy on the one batch it trained on, so it is noisy.
#
# **Why so low?** A supernet trained for a few hundred steps is far from converged, and this
# space makes it slow: the first layer of every stage has no residual connection, so each of
# its six candidate blocks hands the following layers *different* features, and a path drawn
# at random changes them at five places per batch. In our measurements on digits (the comment
# on the quick preset in `nasviz/search/cream.py`; training accuracy, batch 32) one fixed path
# averages 94% over steps 51-100, the supernet with only those five layers random 23% over
# steps 151-200, with only the other layers random 95%. The paper trains its supernet for 120 ImageNet epochs. Section 7 retrains the
# best path alone and shows how much of the gap is the shared weights.
#
# Below, the choice frequencies per layer among the board's paths, as the shared evolution
# plots draw any method's decisions:

# %%
if h.has_group_data("board/choices"):
    display(ev.plot_group_heatmap(h, "board/choices"))
series = [n for n in ("board_best_acc", "board_mean_acc", "matching_score", "teacher_is_top")
          if n in h.extra_names()]
ev.plot_extra(h, series) if series else print("no board yet: the warm-up covered the whole run")

# %% [markdown]
# ## 4 · The teacher the meta-network picks
#
# The meta-network reads, for each board path, the difference between the student's softmax and
# the path's stored softmax on that path's stored images. We sample a fresh student and ask it:

# %%
board = main.board
if len(board):
    student = space.random_path(torch.Generator().manual_seed(SEED + 7), cfg.flops_range)
    with torch.no_grad():
        scores = matching_scores(main.meta, main.supernet, student, board)
    for i, (e, m) in enumerate(zip(board, scores.tolist(), strict=True)):
        print(f"board #{i + 1}: acc {e.accuracy:.3f}, {e.madds:.2f}M, matching score {m:.3f}")
    pick = max(range(len(board)), key=lambda i: scores[i] if board.entries[i].path != student
               else -1)
    top = "the board's best path" if pick == 0 else f"board path #{pick + 1}, not the best one"
    print(f"teacher: {top}; m = {float(scores[pick]):.3f}")
    last = h.last()["extra"]
    if "teacher_is_top" in last:
        print(f"in the last epoch the teacher was the board's best path in "
              f"{last['teacher_is_top']:.0%} of {last['kd_steps']} steps, mean m "
              f"{last['matching_score']:.3f}, {last['meta_updates']} meta updates")

# %% [markdown]
# ## 5 · Does distillation help? KD against no KD on your runs
#
# The paper's ablation (its Table 4) credits the distillation from prioritized paths with a
# clear gain over plain SPOS. We repeat it on the same preset: the same run without KD (the
# board is still kept, so both runs have a result). The verdict is computed from the two runs;
# a gap smaller than the noise of the validation split is reported as no evidence.

# %%
plain, result_plain = cached_search(cream_config(kd=False), "no-kd")
runs = RunList()
runs.add(result, "Cream (KD)")
runs.add(result_plain, "SPOS + board (no KD)")
display(runs)
a, b = (r.history.last()["metrics"]["val_acc"] for r in (result, result_plain))
n_val = len(main.eval_loader.data)
noise = (max(a, b) * (1 - max(a, b)) / n_val) ** 0.5  # binomial std of an accuracy on n_val
chance = 1 / main.info.num_classes
if min(a, b) <= chance + 2 * (chance * (1 - chance) / n_val) ** 0.5:
    print(f"KD {a:.3f} vs no KD {b:.3f} on {n_val} held-out images: at least one run is within "
          f"2 std of chance ({chance:.2f}); the supernet has not learned enough to compare, so "
          f"this run says nothing about distillation (more epochs, or the paper setting)")
elif abs(a - b) <= 2 * noise:
    print(f"KD {a:.3f} vs no KD {b:.3f} on {n_val} held-out images: the gap is within "
          f"2 std ({2 * noise:.3f}); this run does not show that distillation helps")
else:
    print(f"KD {a:.3f} vs no KD {b:.3f} on {n_val} held-out images: "
          f"{'KD' if a > b else 'no KD'} is better by {abs(a - b):.3f} (> 2 std = {2 * noise:.3f})")

# %%
runs.plot_overlay("val_acc")

# %% [markdown]
# ## 6 · The FLOPs constraint, interactively
#
# The panel runs Cream with your FLOPs range, board size and KD switch; every run you start
# lands in its table and overlay, next to the two runs above. It starts at the cheapest quarter
# of the space (the green band of section 1): click **Run** to search there, then compare the
# best path's multiply-adds and accuracy with the unconstrained run's.

# %%
seconds = sum(r["metrics"].get("seconds", 0.0) for r in h.epochs())
print(f"the KD run above searched for {seconds:.0f} s; a click runs the same preset. "
      f"Its best path has {space.madds(result.architecture):.2f}M multiply-adds "
      f"(range {cfg.flops_min:g}-{cfg.flops_max:g}M); the panel's range is "
      f"{LOW[0]:.2f}-{LOW[1]:.2f}M")

# %%
fixed = {"seed": SEED, "epochs": EPOCHS, "dataset": DATASET}
fixed = {k: v for k, v in fixed.items() if v is not None}
panel = SearchPanel("cream", preset=PRESET, runs=runs, out_root=OUT, live=False,
                    overrides=fixed)
panel.set(flops_min=round(LOW[0], 2), flops_max=round(LOW[1], 2))
panel.refresh_runs()
panel

# %% [markdown]
# ## 7 · The result, and retraining it
#
# The board's best path is the architecture: no separate search. Per layer: kernel,
# expansion, output channels and stride, in the run's own (scaled) space:

# %%
best = result.architecture
print(best, f"{space.madds(best):.2f}M multiply-adds")
path_graph(best, title=f"Cream best path ({cfg.dataset})", space=space)

# %% [markdown]
# Retraining builds the path as a standalone network (its own weights, from scratch). In `paper`
# mode the recipe is Cream's: timm's RMSpropTF, an EMA of the weights and RandAugment; `quick`
# uses SGD on digits at the search's width. The test split is read once, at the end.

# %%
rcfg = retrain_preset(PRESET, kind="cream", seed=SEED,
                      **({"dataset": DATASET} if DATASET else {}))
rout = Path(OUT) / f"retrain-{config_digest(cfg)}"
done = (rout / "metrics.json").is_file() and (rout / "checkpoint.pt").is_file()
final = retrain(best, rcfg, rout, resume=done, progress=not done)
print(f"retrained {final.params:,} parameters: test accuracy {final.test_acc:.3f}")
shared = kd_last["val_acc"]
gap = 2 * (shared * (1 - shared) / len(main.eval_loader.data)
           + final.test_acc * (1 - final.test_acc) / final.test_images) ** 0.5
if final.test_acc > shared + gap:
    print(f"trained alone the path reaches {final.test_acc:.0%} against {shared:.0%} with the "
          f"supernet's shared weights: the one-shot weights ranked the paths, they did not "
          f"train them")
elif final.test_acc < shared - gap:
    print(f"trained alone the path reaches only {final.test_acc:.0%} against {shared:.0%} with "
          f"the supernet's weights: the short retraining did not catch up")
else:
    print(f"trained alone {final.test_acc:.0%}, with the supernet's weights {shared:.0%}: "
          f"within 2 std ({gap:.2f}), no measurable gap")
