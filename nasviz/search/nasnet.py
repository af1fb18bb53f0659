"""NASNet search: an LSTM controller samples cells, children train as independent jobs, PPO updates.

Zoph et al. (2018), PAPERS.md. One iteration of this search is one controller update:

1. the controller (`nasviz.search.controller.Controller`) samples M architectures (both cells,
   50 decisions each) from its own seeded generator;
2. each becomes a child job (`nasviz.search.children.child_job`: genotype, child config, a seed
   derived from the run's seed and the genotype) that an executor trains and scores: in this
   process (``workers=0``, the default) or as Ray tasks (``workers=N``, optionally on the
   cluster at ``ray_address``); a genotype sampled before is answered from the reward cache;
3. the reward is the child's accuracy on a validation split carved from the TRAINING data
   (`children.validation_split`; the test split is never read), and the controller takes one
   PPO (or REINFORCE) update on the M rewards with the moving-average baseline (decay 0.95).

History: each update is a step record (``log_every=1`` by default) with the rewards (mean, max),
the baseline before the update and the controller's entropy (metrics and extra series); the
controller's per-decision probabilities along its greedy rollout are the history groups
``op/<cell>`` (rows: block and slot; columns: the 13 ops), ``input/<cell>`` (columns: the states
h_{i-1}, h_i, block 0 ...; NaN where a block cannot read the state) and ``combine/<cell>``. Epoch
records also carry the best cells so far (``extra["top_cells"]``).

`derive()` is the best-reward genotype sampled so far, as the paper retrains the top sampled
architectures; the controller's greedy cell has never been trained, so it is used only before
any child has been scored (the epoch-0 record).

Ray is optional (``pip install "nasviz[ray]"``). The same seeds give the same rewards with either
executor (the job carries everything; the search keeps its random streams out of the jobs).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass
from typing import Any

import torch

from nasviz.data import ImageDataset, search_split
from nasviz.search import registry
from nasviz.search.base import Search
from nasviz.search.children import ChildConfig, child_job, run_child_job, train_child
from nasviz.search.config import ConfigError, SearchConfig, param, presets_from
from nasviz.search.controller import Controller, Samples
from nasviz.search.executor import RAY_HINT, InProcessExecutor, make_executor
from nasviz.search.policy import ALGORITHMS, PolicyConfig, PolicyUpdater
from nasviz.spaces.nasnet import COMBINES, NasnetGenotype, NasnetSpace

TOP_CELLS = 5  # best cells kept in the epoch records


def ray_available() -> bool:
    """Whether ``import ray`` can work (cheap: no import; a None in sys.modules means blocked)."""
    if "ray" in sys.modules:
        return sys.modules["ray"] is not None
    return importlib.util.find_spec("ray") is not None


@dataclass
class NasnetConfig(SearchConfig):
    """NASNet search (defaults: the paper's controller; children N=2, 20 epochs on CIFAR-10).

    Not in PAPERS.md, our choices: M=20 children per update (paper preset: 100 epochs x 10
    updates x 20 = the paper's ~20,000 children), the children's width, batch and learning rate
    (`ChildConfig`), PPO's clip and epochs (PPO's defaults). ``batch_size`` is the children's.
    """

    # the controller and its update
    algorithm: str = param("ppo", choices=ALGORITHMS, help="ppo (the paper) or reinforce")
    children: int = param(20, min=1, max=100_000, help="M, children sampled per update")
    updates_per_epoch: int = param(10, min=1, max=100_000, help="controller updates per epoch")
    controller_lr: float = param(3.5e-4, min=0.0, min_open=True, max=1.0, help="Adam lr")
    entropy_weight: float = param(1e-5, min=0.0, help="weight of the entropy bonus")
    baseline_decay: float = param(0.95, min=0.0, max=1.0, max_open=True)
    ppo_clip: float = param(0.2, min=0.0, max=1.0, min_open=True, max_open=True)
    ppo_epochs: int = param(4, min=1, max=1000, help="PPO epochs over each batch")
    controller_hidden: int = param(100, min=1, max=4096, help="LSTM units")
    concat: bool = param(True, help="combine add or concat (the paper); False: add only")
    # where the children run
    workers: int = param(0, min=0, max=100_000, help="0: in this process; N: Ray, N at a time")
    ray_address: str | None = param(None, help="an existing Ray cluster (host:port, ray://...)")
    # the children (nasviz.search.children.ChildConfig)
    val_portion: float = param(
        0.1, min=0.0, max=1.0, min_open=True, max_open=True,
        help="share of the TRAIN split held out for the reward",
    )  # fmt: skip
    child_cells_per_stage: int = param(2, min=1, max=64, help="N normal cells per stage")
    child_C: int = param(32, min=1, max=4096, help="child filters of the first stage")
    child_epochs: int = param(20, min=1, max=100_000)
    child_lr: float = param(0.025, min=0.0, min_open=True, max=10.0)
    child_weight_decay: float = param(3e-4, min=0.0, max=1.0)
    child_max_steps: int | None = param(None, min=1, help="cap on a child's steps per epoch")
    log_every: int = param(1, min=0, help="record every N controller updates (0: per epoch)")

    def check(self) -> None:
        super().check()
        if self.ray_address is not None:
            if not isinstance(self.ray_address, str) or not self.ray_address.strip():
                raise ConfigError(
                    f"ray_address must be a non-empty string, got {self.ray_address!r}"
                )
            if self.workers == 0:
                raise ConfigError(
                    "ray_address runs the children on a Ray cluster: also give workers >= 1 "
                    "(--workers N, the children in flight at once)"
                )

    def child_config(self) -> ChildConfig:
        """The `ChildConfig` every child of this search is trained with."""
        return ChildConfig.create(
            dataset=self.dataset, data_root=self.data_root, download=self.download,
            val_portion=self.val_portion, cells_per_stage=self.child_cells_per_stage,
            C=self.child_C, epochs=self.child_epochs, batch_size=self.batch_size,
            lr=self.child_lr, weight_decay=self.child_weight_decay,
            max_steps_per_epoch=self.child_max_steps, device=self.device, amp=self.amp,
        )  # fmt: skip

    def policy_config(self) -> PolicyConfig:
        """The `PolicyConfig` of the controller update."""
        return PolicyConfig.create(
            algorithm=self.algorithm, lr=self.controller_lr, entropy_weight=self.entropy_weight,
            baseline_decay=self.baseline_decay, clip=self.ppo_clip, epochs=self.ppo_epochs,
        )  # fmt: skip

    def space(self) -> NasnetSpace:
        """The search space: the paper's (add or concat), or add only."""
        return NasnetSpace(combines=COMBINES if self.concat else ("add",))


class TrainOn:
    """A child job on data handed to the search (tests, notebooks), shipped with the function.

    A class of this module rather than a ``functools.partial``: the Ray executor pickles
    functions from modules outside nasviz by value, and a partial reports module 'functools'.
    """

    def __init__(self, train_data: ImageDataset, val_data: ImageDataset):
        self.train_data, self.val_data = train_data, val_data

    def __call__(self, job: dict[str, Any]) -> dict[str, Any]:
        return train_child(job["arch"], job["config"], job["seed"], self.train_data, self.val_data)


class NasnetSearch(Search):
    """NASNet: controller, policy update, executor of child jobs (see the module docstring)."""

    iteration_unit = "update"

    def setup(self, train_data: ImageDataset | None = None) -> None:
        cfg = self.config
        self.space = cfg.space()
        self.child_config = cfg.child_config()
        self.controller = Controller(self.space, hidden=cfg.controller_hidden).to(self.device)
        self.updater = PolicyUpdater(self.controller, cfg.policy_config())
        # the controller's own stream (CPU: the same draws on any device), kept out of the jobs
        self.generator = torch.Generator().manual_seed(cfg.seed)
        if train_data is None:  # each job loads the dataset and carves the validation split
            self.job_fn: Any = run_child_job
        else:  # carve the validation split from the given training data, never from test data
            train, val = search_split(train_data, 1.0 - cfg.val_portion)
            self.job_fn = TrainOn(train, val)
        self.scored: list[dict[str, Any]] = []  # every child: update, reward, architecture
        self.last: dict[str, float] = {}  # the last update's figures
        self.last_decisions: dict[str, list[float]] = {}  # its per-decision log-probs, entropies
        self._children_trained = 0  # this epoch's, for images/s (reset by start_epoch)
        self._executor: Any = None
        self._cache: dict[str, Any] | None = None
        self.executor()  # fail fast: Ray missing, a bad address, more workers than CPUs
        for name, (rows, cols, _) in self._groups().items():
            self.history.declare_group(name, rows, cols, title=_group_title(name))

    # ------------------------------------------------------------------ executor
    def executor(self) -> Any:
        """The executor of child jobs (made on first use; keeps the reward cache across runs)."""
        if self._executor is None:
            cfg = self.config
            if cfg.workers == 0:
                self._executor = InProcessExecutor()
            elif not ray_available():  # a ValueError: the CLI prints it as one line
                raise ConfigError(
                    f"workers={cfg.workers} runs the children on Ray, which is not installed: "
                    f"{RAY_HINT} (or workers=0 to train them in this process)"
                )
            else:
                self._executor = make_executor(cfg.workers, cfg.ray_address)
            if self._cache is not None:
                self._executor.load_state_dict(self._cache)
        return self._executor

    def close(self) -> None:
        """Release the executor (shuts down a Ray this search started); the cache is kept."""
        if self._executor is not None:
            self._cache = self._executor.state_dict()
            self._executor.close()
            self._executor = None

    def run(self, **kw: Any) -> Any:
        """`Search.run`, then the executor is released (Ray shut down if this search started it)."""
        try:
            return super().run(**kw)
        finally:
            self.close()

    # ------------------------------------------------------------------ hooks
    def iterations_per_epoch(self) -> int:
        return self.config.updates_per_epoch

    def run_iteration(self, index: int) -> tuple[dict[str, float], int]:
        cfg = self.config
        samples: Samples = self.controller.sample(cfg.children, generator=self.generator)
        jobs = [child_job(g, self.child_config, cfg.seed) for g in samples.genotypes]
        ex = self.executor()
        hits = ex.hits
        results = ex.map(self.job_fn, jobs)
        self._children_trained += len(jobs) - (ex.hits - hits)  # a cached duplicate trains nothing
        rewards = [float(r["reward"]) for r in results]
        stats = self.updater.update(samples, rewards)
        update = self.updater.updates
        for job, r in zip(jobs, rewards, strict=True):
            self.scored.append({"update": update, "reward": r, "architecture": job["arch"]})
        self.last = {
            "reward_mean": stats["reward_mean"],
            "reward_max": max(rewards),
            "baseline": stats["baseline"],
            "entropy": float(samples.entropies.sum(1).mean()),
            "best_reward": max(s["reward"] for s in self.scored),
            "cache_hits": float(ex.hits - hits),
        }
        # per decision (in `NasnetSpace.decisions()` order), the mean over this update's samples
        self.last_decisions = {
            "log_prob": samples.log_probs.mean(0).tolist(),
            "entropy": samples.entropies.mean(0).tolist(),
        }
        values = {**self.last, "controller_loss": stats["loss"], "approx_kl": stats["approx_kl"]}
        return values, len(jobs)

    def start_epoch(self, epoch: int) -> None:
        self._children_trained = 0

    def images_trained(self, weight: int) -> int:
        """The images of the epoch's children that were trained (cached duplicates are not)."""
        return self._children_trained * self.images_per_iteration() // self.config.children

    def end_epoch(self, means: dict[str, float]) -> dict[str, float]:
        metrics = dict(means)
        metrics["val_acc"] = means["reward_mean"]  # children's validation accuracy, this epoch
        metrics["best_reward"] = self.last["best_reward"]
        metrics["children"] = float(len(self.scored))
        return metrics

    def _groups(self) -> dict[str, tuple[list[str], list[str], torch.Tensor]]:
        """The controller's probabilities along its greedy rollout as {group: (rows, cols, RxC)}."""
        out = {}
        for key, (rows, cols, p) in self.controller.probabilities().items():
            cell, kind = key.split(" ")
            p = p.clone()
            if kind == "input":  # block b reads states 0..b+1 only: NaN = not available
                for r, row in enumerate(rows):
                    block = int(row[1:].split(".")[0])
                    p[r, block + 2 :] = math.nan
            out[f"{kind}/{cell}"] = (rows, cols, p)
        return out

    def snapshot(self, *, step: bool = False) -> dict[str, Any]:
        groups = {name: p for name, (_, _, p) in self._groups().items()}
        if self.last:  # the last update: its rewards, the baseline before it, the entropy
            names = ("reward_mean", "reward_max", "baseline", "entropy")
            extra: dict[str, Any] = {k: self.last[k] for k in names}
        else:  # before the first update
            extra = {"entropy": self._initial_entropy()}
        if step and self.last_decisions:  # the update's log-probabilities and entropies
            extra["decisions"] = self.last_decisions
        if not step:
            extra["top_cells"] = self.top_cells()
        return {"groups": groups, "extra": extra}

    def _initial_entropy(self) -> float:
        """The controller's entropy before any update, from a sample off the search's stream."""
        gen = torch.Generator().manual_seed(self.config.seed + 1)  # not the search's stream
        return float(self.controller.sample(8, generator=gen).entropies.sum(1).mean())

    def top_cells(self, k: int = TOP_CELLS) -> list[dict[str, Any]]:
        """The k best distinct children so far: [{"reward", "update", "architecture"}], best first."""
        best: dict[str, dict[str, Any]] = {}
        for s in self.scored:
            key = repr(sorted(s["architecture"].items()))
            if key not in best or s["reward"] > best[key]["reward"]:
                best[key] = s
        ranked = sorted(best.values(), key=lambda s: (-s["reward"], s["update"]))
        return [dict(s) for s in ranked[:k]]

    def derive(self) -> NasnetGenotype:
        """The best-reward child so far; before any child, the controller's greedy cell."""
        top = self.top_cells(1)
        if not top:
            return self.controller.greedy()
        return NasnetGenotype.from_dict(top[0]["architecture"])

    # ------------------------------------------------------------------ comparison hooks
    space_name = "nasnet-cell"

    def images_per_iteration(self) -> int:
        """Training images of one update: M children, each trained child_epochs on the split."""
        from nasviz.search.children import validation_split

        cfg = self.config
        if isinstance(self.job_fn, TrainOn):
            n = len(self.job_fn.train_data)
        else:
            n = len(validation_split(cfg.dataset, cfg.data_root, cfg.download, cfg.val_portion)[0])
        steps = math.ceil(n / cfg.batch_size)
        if cfg.child_max_steps:
            steps = min(steps, cfg.child_max_steps)
        return cfg.children * cfg.child_epochs * steps * cfg.batch_size

    def random_architectures(self, n: int, seed: int) -> list[NasnetGenotype]:
        """``n`` cells drawn uniformly from the block space (`random_genotypes`)."""
        return random_genotypes(self.space, n, seed)

    def subnet_gap(self) -> dict[str, float]:
        """No supernet: ``child_acc`` is the derived child's reward (its short training's score)."""
        top = self.top_cells(1)
        return {"child_acc": float(top[0]["reward"]) if top else math.nan}

    def rewards(self) -> list[float]:
        """Every child's reward, in sampling order (duplicates included, as the controller saw)."""
        return [s["reward"] for s in self.scored]

    # ------------------------------------------------------------------ checkpoints
    def method_state(self) -> dict[str, Any]:
        ex = self._executor
        return {
            "controller": self.controller.state_dict(),
            "updater": self.updater.state_dict(),
            "generator": self.generator.get_state(),
            "cache": ex.state_dict() if ex is not None else self._cache,
            "scored": [dict(s) for s in self.scored],
            "last": dict(self.last),
        }

    def load_method_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.updater.load_state_dict(state["updater"])
        self.generator.set_state(state["generator"])
        self._cache = state["cache"]
        if self._executor is not None and state["cache"] is not None:
            self._executor.load_state_dict(state["cache"])
        self.scored = [dict(s) for s in state["scored"]]
        self.last = dict(state["last"])


def random_genotypes(space: NasnetSpace, n: int, seed: int = 0) -> list[NasnetGenotype]:
    """``n`` genotypes drawn uniformly from ``space`` (every decision uniform): random search."""
    gen = torch.Generator().manual_seed(seed)
    decisions = space.decisions()
    out = []
    for _ in range(n):
        actions = [int(torch.randint(d.num_choices, (1,), generator=gen)) for d in decisions]
        out.append(space.decode(actions))
    return out


def score_genotypes(
    config: NasnetConfig,
    genotypes: list[NasnetGenotype],
    *,
    train_data: ImageDataset | None = None,
    progress: bool = True,
) -> list[float]:
    """Rewards of given genotypes, trained and scored exactly as the search's children.

    The same child config, seed rule and validation split as `NasnetSearch` with ``config``
    (and ``train_data``), in this process: a genotype the search sampled gets the same reward.
    """
    from tqdm.auto import tqdm

    config.validate()
    child = config.child_config()
    if train_data is None:
        fn: Any = run_child_job
    else:
        fn = TrainOn(*search_split(train_data, 1.0 - config.val_portion))
    ex = InProcessExecutor()
    rewards = []
    for g in tqdm(genotypes, desc="children", unit="child", disable=not progress):
        rewards.append(float(ex.map(fn, [child_job(g, child, config.seed)])[0]["reward"]))
    return rewards


def _group_title(name: str) -> str:
    kind, cell = name.split("/")
    what = {"op": "op per block input", "input": "input state per block", "combine": "combine"}
    return f"{cell} cell: {what[kind]} (controller, greedy rollout)"


# The paper (PAPERS.md): PPO, lr 3.5e-4, entropy 1e-5, baseline 0.95, children N=2 trained 20
# epochs on CIFAR-10, ~20,000 children. M=20 per update and 10 updates per epoch are our choice
# (100 x 10 x 20 = 20,000). Quick (ours): digits, 3 epochs of 2 updates of M=4 children (24
# children); each child N=1 cell per stage at C=8 for 2 epochs; the controller lr is raised so
# that 6 updates move it visibly (PPO's clip still bounds each update).
PRESETS = presets_from(
    paper=dict(dataset="cifar10", epochs=100, updates_per_epoch=10, children=20, batch_size=64),
    quick=dict(
        dataset="digits", epochs=3, updates_per_epoch=2, children=4, controller_lr=0.01,
        entropy_weight=1e-4, val_portion=0.2, child_cells_per_stage=1, child_C=8,
        child_epochs=2, child_lr=0.05, batch_size=64,
    ),
    smoke=dict(epochs=2, updates_per_epoch=1, children=2, child_C=4, child_epochs=1,
               child_max_steps=2, batch_size=16),
)  # fmt: skip


registry.register(
    registry.Method(
        name="nasnet",
        title="NASNet",
        search_class=NasnetSearch,
        config_class=NasnetConfig,
        presets=PRESETS,
        cli_flags=(
            registry.CliFlag(
                ("--algorithm",),
                "algorithm",
                dict(
                    choices=ALGORITHMS, help="NASNet: controller update, ppo (paper) or reinforce"
                ),
            ),
            registry.CliFlag(
                ("--workers",),
                "workers",
                dict(type=int, help="NASNet: train children on Ray, N at a time (0: in-process)"),
            ),
            registry.CliFlag(
                ("--ray-address",),
                "ray_address",
                dict(help="NASNet: join the Ray cluster at ADDR (host:port); needs --workers"),
            ),
            registry.CliFlag(
                ("--children",),
                "children",
                dict(type=int, help="NASNet: M, children sampled per controller update"),
            ),
        ),  # fmt: skip
        controls=(
            registry.Control(
                "controller_lr", "float", "controller lr", min=1e-6, max=1.0, step=1e-4
            ),
            registry.Control(
                "entropy_weight", "float", "entropy weight", min=0.0, max=1.0, step=1e-5
            ),
            registry.Control(
                "baseline_decay", "float", "baseline decay", min=0.0, max=0.999, step=0.01
            ),
            registry.Control("children", "int", "children per update", min=1, max=64),
            registry.Control("workers", "int", "Ray workers (0: in-process)", min=0, max=64),
        ),  # fmt: skip
        summary="an LSTM controller trained with PPO on the rewards of children trained apart",
        plots=("nasviz.viz.nasnet:save_run_plots",),
    )
)
