"""Shared test settings: 2 threads like CI, deterministic CPU runs."""

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
