"""One split and one budget for every method: the config changes a comparison makes.

**The split.** Every search splits the training data in order (`nasviz.data.search_split`): the
first part trains weights, the last ``val_portion`` is held out. The methods only name the share
differently: the DARTS family's ``train_portion`` (DARTS, PC-DARTS, SNAS) is ``1 - val_portion``,
NASNet's and Cream's ``val_portion`` is ``val_portion``. `split_overrides` finds which field a
config has, so every method of a comparison trains its weights on the same images and decides
(DARTS/PC-DARTS: the alphas; NASNet: the reward; Cream: the meta-network) or reports on the same
held-out ones. SNAS is single-level: it trains its alphas on the weights' part and only reports
on the held-out part, so at the DARTS split (0.5) it trains on half of what its paper uses (0.9).

**The budget.** ``images``: the same number of training images pushed through weights being
trained (a supernet batch, or every image of every NASNet child's training): fair between methods
whose cost is their training, and the one that a faster machine does not change. ``seconds``: the
same wall clock, estimated from a short measured run of each method: fair for the question "what
do I get in an hour", and it counts what ``images`` does not (DARTS's architecture steps, Cream's
teacher, NASNet's controller). A budget is met by changing ``epochs`` and, where whole epochs
do not fit it, ``max_steps_per_epoch`` (the epochs x steps closest to the budget; within 2%, the
fewest epochs); warm-up epochs keep their share of the schedule. The images each run really
sees are reported next to its results, so a rounding is never hidden. A NASNet update trains M
whole children: a budget below one update still gets one.

Which budget is fair for which pair:

* DARTS vs PC-DARTS vs SNAS (one supernet space): ``images`` compares what each learns from the
  same data; ``seconds`` rewards PC-DARTS's cheaper partial-channel steps and charges DARTS's
  extra architecture step (a second forward/backward on a held-out batch), which is exactly
  PC-DARTS's claim, so use ``seconds`` to test it and ``images`` to compare the relaxations.
* a DARTS-family method vs Cream: ``images`` is fair for the weights (both train one shared
  network per batch); ``seconds`` also charges Cream's teacher forward and meta-network updates.
* anything vs NASNet: ``images`` counts every child's own training, so NASNet gets few updates;
  ``seconds`` is the practical question ("what does an hour buy"), and it depends on the machine.
* on one machine, one run at a time, ``seconds`` is reproducible only to the timing noise; the
  measured search seconds of every run are in the table next to its budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nasviz.search.config import SearchConfig


def split_overrides(config_class: type[SearchConfig], val_portion: float) -> dict[str, float]:
    """The config fields that hold out the last ``val_portion`` of the training data."""
    fields = config_class.field_names()
    if "train_portion" in fields:
        return {"train_portion": round(1.0 - val_portion, 6)}
    if "val_portion" in fields:
        return {"val_portion": val_portion}
    return {}


@dataclass(frozen=True)
class Shape:
    """How a search config spends its budget: iterations per epoch and images per iteration."""

    iterations_per_epoch: int  # before the config's max_steps_per_epoch cap
    images_per_iteration: int

    def steps(self, config: SearchConfig) -> int:
        """Iterations per epoch under ``config``'s cap."""
        cap = config.max_steps_per_epoch
        return min(self.iterations_per_epoch, cap) if cap else self.iterations_per_epoch

    def images(self, config: SearchConfig) -> int:
        """Training images the whole search of ``config`` sees."""
        return config.epochs * self.steps(config) * self.images_per_iteration


def measure_shape(config: SearchConfig, **data: Any) -> Shape:
    """The `Shape` of ``config``, read from a search built in memory (no step is run)."""
    from nasviz.search import create_search

    search = create_search(config, None, **data)
    try:
        return Shape(search.iterations_per_epoch(), search.images_per_iteration())
    finally:
        close = getattr(search, "close", None)
        if close is not None:
            close()


def fit_budget(config: SearchConfig, shape: Shape, images: float) -> SearchConfig:
    """``config`` with epochs (and, below one epoch, a step cap) spending about ``images``."""
    iters = max(1, round(images / shape.images_per_iteration))
    per_epoch = shape.steps(config)
    if iters % per_epoch == 0:  # whole epochs
        epochs, cap = iters // per_epoch, config.max_steps_per_epoch
    elif iters > per_epoch:  # epochs x steps (<= per_epoch) closest to iters; within 2%: fewest
        epochs, cap = min(
            ((e, min(per_epoch, max(1, round(iters / e)))) for e in
             range(math.ceil(iters / per_epoch), 2 * math.ceil(iters / per_epoch) + 1)),
            key=lambda ec: (max(0.0, abs(ec[0] * ec[1] - iters) - 0.02 * iters), ec[0]),
        )  # fmt: skip
    else:  # less than one epoch: keep up to the preset's epochs, fewer steps in each
        epochs = max(1, min(config.epochs, iters))
        cap = max(1, round(iters / epochs))
    changes: dict[str, Any] = {"epochs": epochs, "max_steps_per_epoch": cap}
    fitted = config.replace(**{k: v for k, v in changes.items() if k != "max_steps_per_epoch"})
    fitted = _set(fitted, max_steps_per_epoch=cap)
    warmup = getattr(config, "warmup_epochs", None)
    if warmup:  # the warm-up keeps its share of the schedule, and leaves one epoch at least
        share = round(warmup * epochs / config.epochs)
        fitted = _set(fitted, warmup_epochs=min(share, max(epochs - 1, 0)))
    return fitted


def _set(config: SearchConfig, **values: Any) -> SearchConfig:
    """`replace` that may also set a field to None."""
    import dataclasses

    config.check_names(values)
    return dataclasses.replace(config, **values)


def seconds_per_iteration(history: Any, measured_steps: int, steps_per_epoch: int) -> float:
    """Wall seconds of one iteration: the measured run's training time per step (it ran
    ``measured_steps`` per epoch) plus its evaluation spread over a real epoch's steps."""
    train = history.metric("seconds")[1]
    evals = history.metric("eval_seconds")[1]
    steps = len(train) * measured_steps
    if steps == 0 or not math.isfinite(float(train.sum())):
        raise ValueError("the measured run recorded no epoch to time")
    return float(train.sum()) / steps + float(evals.mean()) / max(steps_per_epoch, 1)


__all__ = ["Shape", "fit_budget", "measure_shape", "seconds_per_iteration", "split_overrides"]
