"""DARTS: continuous relaxation + bilevel optimization (first and second order).

Each step (after the optional warm-up):
1. architecture step on a validation batch: Adam on alpha with the gradient of L_val
   - first order: at the current weights w;
   - second order: at the virtual weights w' = w - xi * (momentum + grad_w L_train + wd * w),
     minus xi * (Hessian-vector product), the latter by central finite differences;
2. weight step on a training batch: SGD on w.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.func import functional_call

from nasviz.genotypes import Genotype
from nasviz.search import registry
from nasviz.search.config import param, presets_from
from nasviz.search.derive import derive_darts
from nasviz.search.hessian import exact_hvp, finite_difference_hvp, named_arch_parameters
from nasviz.search.supernet import SupernetConfig, SupernetSearch, supernet_presets_common


@dataclass
class DartsConfig(SupernetConfig):
    """DARTS: the shared supernet fields plus the order of the architecture gradient."""

    order: int = param(1, choices=(1, 2), help="1 = first order, 2 = second order (unrolled)")
    hvp: str = param(
        "finite-difference",
        choices=("finite-difference", "exact"),
        help="second order: the paper's central difference, or the exact product (torch.func)",
    )


@contextlib.contextmanager
def frozen(params: list[torch.Tensor]) -> Iterator[None]:
    """``params`` do not require grad inside (restored after, also on an error).

    The first-order architecture step differentiates L_val with respect to the alphas only, so
    autograd need not record what depends on the weights alone (the stem, the first cell's ops,
    the ops reading the stem output in the second): that part of the graph, its saved tensors
    and its bookkeeping are skipped; the gradient is the same (benchmarks/README.md, item 20).
    """
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class DartsSearch(SupernetSearch):
    """DARTS bilevel search on the DARTS cell space (softmax mixing)."""

    config: DartsConfig

    def arch_active(self) -> bool:
        """False during the warm-up epochs, where only the weights train."""
        return self.epoch >= self.config.warmup_epochs

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.arch_active():
            x_val, y_val = self.val_loader.next()
            self.arch_step(x, y, x_val, y_val)
        return self.weight_step(x, y)

    # ------------------------------------------------------------------ architecture step
    def arch_step(
        self, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor
    ) -> None:
        """One Adam step on the architecture parameters."""
        self.a_optimizer.zero_grad(set_to_none=True)
        if self.config.order == 1:
            with self.autocast(), frozen(self._weight_tensors()):
                logits = self.model(x_val)
                self.loss(logits, y_val).backward(inputs=self.model.arch_parameters())
        else:
            grads = self.unrolled_arch_grad(x_train, y_train, x_val, y_val)
            for p, g in zip(self.model.arch_parameters(), grads, strict=True):
                p.grad = g
        self.a_optimizer.step()

    def _loss_at(
        self, weights: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        """Loss of the network with its weights replaced by ``weights`` (architecture unchanged)."""
        with self.autocast():
            logits = functional_call(self.model, weights, (x,))
        return self.loss(logits, y)

    def unrolled_arch_grad(
        self, x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor
    ) -> list[torch.Tensor]:
        """Second-order DARTS gradient of L_val(w*(alpha), alpha) w.r.t. the architecture parameters."""
        names, params = zip(*self.model.named_weight_parameters(), strict=True)
        arch = self.model.arch_parameters()
        xi = self.w_optimizer.param_groups[0]["lr"]
        momentum, wd = self.config.momentum, self.config.weight_decay

        # Virtual step w' = w - xi * (momentum * buffer + grad + wd * w), as SGD would do it.
        loss = self._loss_at(dict(zip(names, params, strict=True)), x_train, y_train)
        grads = torch.autograd.grad(loss, params)
        virtual = []
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                buf = self.w_optimizer.state.get(p, {}).get("momentum_buffer")
                d = g + wd * p
                if buf is not None:
                    d = d + momentum * buf
                virtual.append((p - xi * d).requires_grad_())

        # dalpha = grad_alpha L_val(w', alpha), and dw' = grad_w' L_val(w', alpha).
        loss_val = self._loss_at(dict(zip(names, virtual, strict=True)), x_val, y_val)
        dboth = torch.autograd.grad(loss_val, list(arch) + virtual)
        d_alpha, d_w = dboth[: len(arch)], dboth[len(arch) :]

        # Hessian-vector product grad^2_{alpha,w} L_train(w) . dw': the paper's central finite
        # difference, or exactly with forward-over-reverse autodiff (nasviz.search.hessian).
        weights = dict(zip(names, params, strict=True))
        arch_named = named_arch_parameters(self.model)

        def loss_at(p: dict[str, torch.Tensor]) -> torch.Tensor:
            with self.autocast():
                logits = functional_call(self.model, p, (x_train,))
            return self.loss(logits, y_train)

        if self.config.hvp == "exact":
            hvp = exact_hvp(self.model, loss_at, weights, arch_named, d_w)
        else:
            hvp = finite_difference_hvp(loss_at, weights, arch_named, d_w)
        return [da - xi * h for da, h in zip(d_alpha, hvp, strict=True)]

    # ------------------------------------------------------------------ derivation
    def derive(self) -> Genotype:
        betas = self.model.betas()
        a = self.model.alphas()
        return derive_darts(
            a["normal"], a["reduce"],
            betas["normal"] if betas else None, betas["reduce"] if betas else None,
            self.model.primitives,
        )  # fmt: skip


# Digits on 2 CPU cores: ~80 architecture steps instead of the paper's thousands, so the
# architecture learning rate is raised (ours, not the paper's) to let the alphas visibly move.
PRESETS = presets_from(
    paper=dict(epochs=50, batch_size=64, lr=0.025, lr_min=0.001, arch_lr=3e-4, order=2),
    quick=dict(supernet_presets_common(), lr=0.05, lr_min=0.001, arch_lr=2e-2),
    smoke=dict(epochs=2, max_steps_per_epoch=4, warmup_epochs=0),
)

registry.register(
    registry.Method(
        name="darts",
        title="DARTS",
        search_class=DartsSearch,
        config_class=DartsConfig,
        presets=PRESETS,
        cli_flags=(
            registry.CliFlag(
                ("--hvp",),
                "hvp",
                dict(
                    choices=("finite-difference", "exact"),
                    help="DARTS second order: Hessian-vector product",
                ),
            ),
            registry.CliFlag(
                ("--order",),
                "order",
                dict(type=int, choices=(1, 2), help="DARTS: 1 = first order, 2 = second order"),
            ),
        ),
        controls=(
            registry.Control(
                "order", "toggle", "order", options=[("1st order", 1), ("2nd order", 2)]
            ),
        ),
        summary="continuous relaxation (softmax over ops), bilevel first/second-order search",
    )
)
