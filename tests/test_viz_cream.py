"""The Cream path drawing: stage labels and block labels agree on the space's channels."""

from __future__ import annotations

import torch

from nasviz.spaces.cream import RELEASED, STAGE_CHANNELS, CreamSpace
from nasviz.viz.cream import path_graph


def test_scaled_space_labels_its_own_channels() -> None:
    space = CreamSpace.digits()  # half width: stage 1 has 16 channels, not the official 24
    path = space.random_path(torch.Generator().manual_seed(0), (0.0, 100.0))
    src = path_graph(path, space=space).source
    _, stage_chs, _, _ = space.channels()
    for s, chs in enumerate(stage_chs):
        assert f"stage {s + 1}: {chs} ch ({STAGE_CHANNELS[s]} at width 1)" in src
        assert f"{chs} ch, s" in src  # the blocks of that stage say the same width


def test_official_space_has_plain_stage_labels() -> None:
    src = path_graph(RELEASED["cream_287m"]).source
    assert 'label="stage 1: 24 ch"' in src
    assert "at width 1" not in src
