"""Shared test settings: one intra-op thread (the tiny test networks run faster without
thread hand-offs, and pytest-xdist-free CI has 2 cores), deterministic CPU runs."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
