"""Updating the NASNet controller from child rewards: PPO (the paper) and REINFORCE.

Both maximise E[R] with a moving-average baseline b (decay 0.95) and an entropy bonus, with Adam
at lr 3.5e-4 (Zoph et al. 2018). A sample's log-probability is the sum over its D decisions.

* REINFORCE: one step on  mean_i (R_i - b) log pi(a_i)  +  w_H * mean_i H_i.
* PPO (Schulman et al. 2017): ``epochs`` steps over the same batch on the clipped surrogate
  mean_i min(rho_i A_i, clip(rho_i, 1 - eps, 1 + eps) A_i) + w_H * mean_i H_i, where
  rho_i = pi(a_i) / pi_old(a_i) and pi_old is the controller that sampled the batch.

The baseline before a batch gives that batch's advantages; then it absorbs each reward in turn,
b <- decay * b + (1 - decay) * R. The first batch starts it at the batch's mean reward. The number
of PPO epochs and eps are not given by the NASNet paper: the defaults are PPO's (4, 0.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from nasviz.config import Config, param
from nasviz.search.controller import Controller, Samples

ALGORITHMS: tuple[str, ...] = ("ppo", "reinforce")


@dataclass
class PolicyConfig(Config):
    """The controller update's knobs (defaults: the NASNet paper; PPO's eps and epochs)."""

    label: ClassVar[str] = "controller policy"

    algorithm: str = param("ppo", choices=ALGORITHMS, help="ppo (the paper) or reinforce")
    lr: float = param(3.5e-4, min=0.0, min_open=True, max=1.0, help="Adam learning rate")
    entropy_weight: float = param(1e-5, min=0.0, help="weight of the entropy bonus")
    baseline_decay: float = param(0.95, min=0.0, max=1.0, max_open=True)
    clip: float = param(0.2, min=0.0, max=1.0, min_open=True, max_open=True, help="PPO's eps")
    epochs: int = param(4, min=1, max=1000, help="PPO epochs over each batch")
    grad_clip: float | None = param(None, min=0.0, min_open=True, help="max gradient norm")


class MovingAverageBaseline:
    """b <- decay * b + (1 - decay) * R for each reward in turn; starts at the first batch's mean."""

    def __init__(self, decay: float = 0.95):
        self.decay = decay
        self.value: float | None = None

    def advantages(self, rewards: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """R - b with the baseline before this batch, then absorb the batch's rewards."""
        r = torch.as_tensor(rewards, dtype=torch.float64).flatten()
        if r.numel() == 0:
            raise ValueError("no rewards given")
        if not torch.isfinite(r).all():
            raise ValueError(f"rewards must be finite, got {r.tolist()}")
        if self.value is None:
            self.value = float(r.mean())
        adv = r - self.value
        for x in r.tolist():
            self.value = self.decay * self.value + (1 - self.decay) * x
        return adv.float()

    def state_dict(self) -> dict[str, Any]:
        """The decay and the current value (None before the first batch)."""
        return {"decay": self.decay, "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict`."""
        self.decay = float(state["decay"])
        self.value = None if state["value"] is None else float(state["value"])


def ppo_objective(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip: float
) -> torch.Tensor:
    """PPO's clipped surrogate (to maximise): mean(min(rho A, clip(rho, 1-eps, 1+eps) A)), [n] inputs."""
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1 - clip, 1 + clip)
    return torch.minimum(ratio * advantages, clipped * advantages).mean()


def reinforce_objective(log_probs: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """REINFORCE's surrogate (to maximise): mean(A log pi), [n] inputs."""
    return (advantages * log_probs).mean()


class PolicyUpdater:
    """Adam, the baseline and one `update` per batch; PPO or REINFORCE by ``config.algorithm``."""

    def __init__(self, controller: Controller, config: PolicyConfig | None = None):
        self.controller = controller
        self.config = config or PolicyConfig()
        self.config.validate()
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=self.config.lr)
        self.baseline = MovingAverageBaseline(self.config.baseline_decay)
        self.updates = 0

    def update(self, samples: Samples, rewards: Sequence[float] | torch.Tensor) -> dict[str, float]:
        """One controller update from a batch and its rewards; returns what to record."""
        rewards = torch.as_tensor(rewards, dtype=torch.float32).flatten()
        if rewards.numel() != len(samples):
            raise ValueError(f"got {rewards.numel()} rewards for {len(samples)} samples")
        baseline_before = self.baseline.value
        adv = self.baseline.advantages(rewards).to(samples.actions.device)
        old = samples.log_probs.sum(1).to(adv.device)
        cfg = self.config
        steps = cfg.epochs if cfg.algorithm == "ppo" else 1
        stats: dict[str, float] = {}
        for _ in range(steps):
            log_probs, entropies = self.controller.evaluate(samples.actions)
            logp, entropy = log_probs.sum(1), entropies.sum(1).mean()
            if cfg.algorithm == "ppo":
                objective = ppo_objective(logp, old, adv, cfg.clip)
            else:
                objective = reinforce_objective(logp, adv)
            loss = -(objective + cfg.entropy_weight * entropy)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.controller.parameters(), cfg.grad_clip)
            self.optimizer.step()
            with torch.no_grad():
                ratio = torch.exp(logp - old)
                stats = {
                    "loss": float(loss),
                    "entropy": float(entropy),
                    # KL(old || new) by the k3 estimator E[(r - 1) - log r], r = new/old:
                    # unbiased and never negative (the plain mean of log(old/new) over a few
                    # samples often is, which reads as nonsense on a plot)
                    "approx_kl": float(((ratio - 1) - (logp - old)).mean()),
                    "clip_fraction": float(((ratio - 1).abs() > cfg.clip).float().mean()),
                }
        self.updates += 1
        return {
            **stats,
            "reward_mean": float(rewards.mean()),
            "reward_max": float(rewards.max()),
            "baseline": float(baseline_before if baseline_before is not None else rewards.mean()),
            "advantage_mean": float(adv.mean()),
            "steps": float(steps),
        }

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, baseline, config and update count (the controller's weights are its own)."""
        return {
            "config": self.config.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline.state_dict(),
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict`; the config must match."""
        if state["config"] != self.config.to_dict():
            raise ValueError(
                f"cannot resume: the policy config differs from the checkpoint's "
                f"({state['config']} vs {self.config.to_dict()})"
            )
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline.load_state_dict(state["baseline"])
        self.updates = int(state["updates"])


def make_updater(controller: Controller, algorithm: str = "ppo", **config: Any) -> PolicyUpdater:
    """A `PolicyUpdater` for 'ppo' or 'reinforce' with config overrides."""
    return PolicyUpdater(controller, PolicyConfig.create(algorithm=algorithm, **config))
