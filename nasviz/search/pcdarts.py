"""PC-DARTS: DARTS with partial channel connections (1/K of the channels) and edge normalization.

Same bilevel loop as first-order DARTS; only the mixing differs (`PartialChannelMixing`), plus
the architecture warm-up (`warmup_epochs`, 15 in the paper) that the shared loop already honours.
With K=1 and edge normalization off it is exactly DARTS.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasviz.search import registry
from nasviz.search.config import ConfigError, param, presets_from
from nasviz.search.darts import DartsSearch
from nasviz.search.supernet import SupernetConfig, supernet_presets_common
from nasviz.spaces.darts import Mixing, PartialChannelMixing, SpaceConfig, valid_k


@dataclass
class PCDartsConfig(SupernetConfig):
    """PC-DARTS: partial channels (1/K pass the mixed op) and edge normalization (betas)."""

    k: int = param(4, min=1, max=1024, help="1/K of the channels pass the mixed op")
    edge_normalization: bool = param(True, help="betas: learned weights of a node's input edges")

    #: PC-DARTS searches with the first-order DARTS gradient.
    order = 1

    def check(self) -> None:
        super().check()
        ks = valid_k(SpaceConfig(C=self.C, layers=self.layers, steps=self.steps))
        if self.k not in ks:
            raise ConfigError(
                f"k={self.k} does not divide the channels of this supernet (C={self.C}, "
                f"layers={self.layers}); valid k: {ks}"
            )


class PCDartsSearch(DartsSearch):
    """PC-DARTS search: partial channels (k) and betas (edge_normalization)."""

    config: PCDartsConfig  # type: ignore[assignment]

    def make_mixing(self) -> Mixing:
        return PartialChannelMixing(self.config.k, self.config.edge_normalization)


def valid_k_for(config: SupernetConfig) -> list[int]:
    """The K values PC-DARTS accepts for ``config``'s supernet (C, layers, steps)."""
    return valid_k(SpaceConfig(C=config.C, layers=config.layers, steps=config.steps))


PRESETS = presets_from(
    paper=dict(
        epochs=50, batch_size=256, lr=0.1, lr_min=0.0, arch_lr=6e-4, k=4,
        edge_normalization=True, warmup_epochs=15,
    ),
    quick=dict(
        supernet_presets_common(), lr=0.1, lr_min=0.0, arch_lr=3e-2, k=2,
        edge_normalization=True, warmup_epochs=3,
    ),
    smoke=dict(epochs=2, max_steps_per_epoch=4, warmup_epochs=0),
)  # fmt: skip

registry.register(
    registry.Method(
        name="pc-darts",
        title="PC-DARTS",
        search_class=PCDartsSearch,
        config_class=PCDartsConfig,
        presets=PRESETS,
        cli_flags=(
            registry.CliFlag(
                ("--k",),
                "k",
                dict(
                    type=int,
                    help="PC-DARTS partial channels: 1/K of the channels pass the mixed op",
                ),
            ),
            registry.CliFlag(
                ("--no-edge-normalization",),
                "edge_normalization",
                dict(action="store_true", help="PC-DARTS without betas"),
                to_config=lambda v: {"edge_normalization": False},
            ),
        ),  # fmt: skip
        controls=(
            registry.Control("k", "dropdown", "K", options=valid_k_for),
            registry.Control("edge_normalization", "checkbox", "edge normalization"),
        ),
        summary="partial channel connections (1/K) and edge normalization on the DARTS loop",
    )
)
