"""PC-DARTS: DARTS with partial channel connections (1/K of the channels) and edge normalization.

Same bilevel loop as first-order DARTS; only the mixing differs (`PartialChannelMixing`), plus
the architecture warm-up (`warmup_epochs`, 15 in the paper) that the shared loop already honours.
With K=1 and edge normalization off it is exactly DARTS.
"""

from __future__ import annotations

from nasviz.search.darts import DartsSearch
from nasviz.spaces.darts import Mixing, PartialChannelMixing


class PCDartsSearch(DartsSearch):
    """PC-DARTS search: partial channels (k) and betas (edge_normalization)."""

    method = "pc-darts"

    def make_mixing(self) -> Mixing:
        return PartialChannelMixing(self.config.k, self.config.edge_normalization)
