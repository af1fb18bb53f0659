"""Shared test settings: one intra-op thread (the tiny test networks run faster without
thread hand-offs, and pytest-xdist-free CI has 2 cores), deterministic CPU runs."""

import pytest
import torch

from nasviz.data import synthetic_dataset

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def data():
    """A tiny (train, validation) pair of random digits-shaped images for smoke searches."""
    return synthetic_dataset("digits", 32, seed=0), synthetic_dataset("digits", 16, seed=1)
