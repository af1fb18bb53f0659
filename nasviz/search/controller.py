"""The NASNet controller: a one-layer LSTM that samples both cells' decisions autoregressively.

Zoph et al. (2018): one-layer LSTM with 100 units, weights initialised U(-0.1, 0.1). Per block
of the normal and then the reduction cell it samples: the first input, the second input, the op
on the first, the op on the second, and (when the space allows concat) the combine; 2 x 5B
decisions in all. Each step feeds the embedding of the previous decision to the LSTM; each
decision type has its own softmax head (and embedding table). Input heads are masked to the states
that exist for the block (b + 2 choices).

`sample` draws a batch without gradients (actions, log-probabilities and entropies per decision);
`evaluate` recomputes them with gradients for given actions, which is what REINFORCE and PPO's
epochs differentiate (nasviz.search.policy).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from nasviz.spaces.nasnet import NasnetGenotype, NasnetSpace, state_name

DECISION_TYPES: tuple[str, ...] = ("input", "op", "combine")


@dataclass
class Samples:
    """A batch of sampled architectures: actions, per-decision log-probs and entropies [n, D]."""

    actions: torch.Tensor  # int64 [n, D]
    log_probs: torch.Tensor  # float [n, D], log pi(a_d | a_<d)
    entropies: torch.Tensor  # float [n, D], entropy of each decision's distribution
    genotypes: list[NasnetGenotype]

    def __len__(self) -> int:
        return self.actions.shape[0]


class Controller(nn.Module):
    """LSTM policy over a `NasnetSpace`'s decisions (see the module docstring)."""

    def __init__(
        self, space: NasnetSpace | None = None, hidden: int = 100, init_range: float = 0.1
    ):
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive integer, got {hidden!r}")
        self.space = space or NasnetSpace()
        self.hidden = hidden
        self.decisions = self.space.decisions()
        self.max_states = self.space.num_blocks + 1  # the last block reads states 0..B
        sizes = {
            "input": self.max_states,
            "op": len(self.space.ops),
            "combine": len(self.space.combines),
        }
        self.types = [t for t in DECISION_TYPES if any(d.type == t for d in self.decisions)]
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.go = nn.Parameter(torch.zeros(1, hidden))  # the first step's input
        self.embeddings = nn.ModuleDict({t: nn.Embedding(sizes[t], hidden) for t in self.types})
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, sizes[t]) for t in self.types})
        self.register_buffer(
            "num_choices", torch.tensor([d.num_choices for d in self.decisions]), persistent=False
        )
        for p in self.parameters():
            nn.init.uniform_(p, -init_range, init_range)

    @property
    def num_decisions(self) -> int:
        """D, the number of decisions per architecture."""
        return len(self.decisions)

    def decision_names(self) -> list[str]:
        """One name per decision, in sampling order (e.g. 'normal b0 input 0')."""
        return [d.name for d in self.decisions]

    def _logits(self, h: torch.Tensor, d: int) -> torch.Tensor:
        """[n, hidden] -> [n, num_choices of decision d], invalid choices masked out."""
        dec = self.decisions[d]
        logits = self.heads[dec.type](h)
        n = dec.num_choices
        if logits.shape[1] != n:  # inputs of early blocks: only states 0..b+1 exist
            logits = logits[:, :n]
        return logits

    def _rollout(
        self,
        n: int,
        actions: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        greedy: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Run the LSTM over all decisions; sample, take argmax, or teacher-force ``actions``."""
        device = self.go.device
        x = self.go.expand(n, -1)
        h = torch.zeros(n, self.hidden, device=device)
        c = torch.zeros(n, self.hidden, device=device)
        taken, log_probs, entropies, probs = [], [], [], []
        for d, dec in enumerate(self.decisions):
            h, c = self.lstm(x, (h, c))
            logp = torch.log_softmax(self._logits(h, d), dim=-1)  # [n, choices]
            p = logp.exp()
            if actions is not None:
                a = actions[:, d].to(device)
            elif greedy:
                a = p.argmax(dim=-1)
            elif generator is not None and generator.device != p.device:
                # a CPU generator for a controller on the GPU: draw on the CPU (D tiny draws)
                a = torch.multinomial(p.cpu(), 1, generator=generator).squeeze(1).to(device)
            else:
                a = torch.multinomial(p, 1, generator=generator).squeeze(1)
            taken.append(a)
            log_probs.append(logp.gather(1, a[:, None]).squeeze(1))
            entropies.append(-(p * logp).sum(dim=-1))
            probs.append(p)
            x = self.embeddings[dec.type](a)  # the decision's embedding feeds the next step
        return torch.stack(taken, 1), torch.stack(log_probs, 1), torch.stack(entropies, 1), probs

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Samples:
        """Sample ``n`` architectures (no gradients); ``generator`` makes it reproducible."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        actions, log_probs, entropies, _ = self._rollout(n, generator=generator)
        return Samples(actions, log_probs, entropies, self.genotypes(actions))

    def evaluate(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log_probs, entropies) [n, D] of given actions [n, D], with gradients (for PPO)."""
        actions = torch.as_tensor(actions, dtype=torch.long).cpu()
        if actions.dim() != 2 or actions.shape[1] != self.num_decisions:
            raise ValueError(
                f"actions must be [n, {self.num_decisions}], got {list(actions.shape)}"
            )
        bad = (actions < 0) | (actions >= self.num_choices.cpu())
        if bad.any():
            d = int(bad.any(0).nonzero()[0])
            raise ValueError(f"action out of range for decision {self.decision_names()[d]!r}")
        _, log_probs, entropies, _ = self._rollout(actions.shape[0], actions=actions)
        return log_probs, entropies

    def genotypes(self, actions: torch.Tensor) -> list[NasnetGenotype]:
        """Decode each row of actions [n, D] into a NasnetGenotype."""
        return [self.space.decode(row.tolist()) for row in actions.cpu()]

    @torch.no_grad()
    def greedy(self) -> NasnetGenotype:
        """The architecture of the argmax decision at every step."""
        actions, *_ = self._rollout(1, greedy=True)
        return self.genotypes(actions)[0]

    @torch.no_grad()
    def probabilities(
        self, actions: torch.Tensor | None = None
    ) -> dict[str, tuple[list[str], list[str], torch.Tensor]]:
        """Per-decision probability rows as history groups: {group: (rows, cols, matrix)}.

        Groups per cell: '<cell> op' (one row per block and slot, columns = ops), '<cell> input'
        (columns = states; states a block cannot read are 0) and '<cell> combine' when the space
        has concat. Without ``actions`` the distributions are those along the greedy rollout;
        with actions [n, D] they are averaged over the n teacher-forced rollouts.
        """
        if actions is None:
            _, _, _, probs = self._rollout(1, greedy=True)
        else:
            actions = torch.as_tensor(actions, dtype=torch.long)
            _, _, _, probs = self._rollout(actions.shape[0], actions=actions)
        mean = [p.mean(0).cpu() for p in probs]
        groups: dict[str, tuple[list[str], list[str], list[torch.Tensor]]] = {}
        cols = {
            "op": list(self.space.ops),
            "input": [state_name(j) for j in range(self.max_states)],
            "combine": list(self.space.combines),
        }
        for dec, p in zip(self.decisions, mean, strict=True):
            key = f"{dec.cell} {dec.type}"
            rows, _, data = groups.setdefault(key, ([], cols[dec.type], []))
            rows.append(f"b{dec.block}" if dec.type == "combine" else f"b{dec.block}.{dec.slot}")
            row = torch.zeros(len(cols[dec.type]))
            row[: p.numel()] = p
            data.append(row)
        return {k: (rows, c, torch.stack(data)) for k, (rows, c, data) in groups.items()}
