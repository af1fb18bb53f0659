"""Tests for nasviz.search.children: one NASNet child trained and scored on a validation split."""

from __future__ import annotations

import pytest

from nasviz import genotypes
from nasviz.data import synthetic_dataset
from nasviz.resources import count_parameters
from nasviz.search import children
from nasviz.search.children import ChildConfig, child_job, child_preset, child_seed, train_child
from nasviz.spaces.nasnet import NasnetGenotype

NASNET_A = NasnetGenotype.builtin("nasnet_a")


def _cfg(**kw) -> ChildConfig:
    return child_preset("smoke", device="cpu", batch_size=16, **kw)


@pytest.fixture
def fake_digits(monkeypatch):
    """load_dataset replaced by tiny synthetic digits; records which splits were asked for."""
    asked = []

    def load(name, split="train", root="data", download=False):
        asked.append(split)
        return synthetic_dataset(name, 40, seed=0 if split == "train" else 1)

    monkeypatch.setattr(children, "load_dataset", load)
    children.validation_split.cache_clear()
    yield asked
    children.validation_split.cache_clear()


def test_reward_is_validation_accuracy_from_the_train_split(fake_digits):
    out = train_child(NASNET_A.to_dict(), _cfg().to_dict(), seed=3)
    assert fake_digits == ["train"]  # the test split is never loaded
    assert 0.0 <= out["reward"] <= 1.0 and out["seed"] == 3
    # 20% of 40 training images held out: accuracy is a multiple of 1/8
    assert (out["reward"] * 8) == pytest.approx(round(out["reward"] * 8))
    # N=2 cells per stage, no auxiliary head
    net = NASNET_A.build_network(num_classes=10, in_channels=1, image_size=8, C=4, layers=2)
    assert out["params"] == count_parameters(net)


def test_same_seed_same_reward(fake_digits):
    a = train_child(NASNET_A.to_dict(), _cfg().to_dict(), seed=5)
    b = train_child(NASNET_A.to_dict(), _cfg().to_dict(), seed=5)
    assert a["reward"] == b["reward"] and a["val_loss"] == b["val_loss"]


def test_explicit_data_is_used_as_given():
    train, val = synthetic_dataset("digits", 32, seed=0), synthetic_dataset("digits", 12, seed=1)
    out = train_child(NASNET_A.to_dict(), _cfg().to_dict(), 0, train, val)
    assert (out["reward"] * 12) == pytest.approx(round(out["reward"] * 12))
    with pytest.raises(ValueError, match="both train_data and val_data"):
        train_child(NASNET_A.to_dict(), _cfg().to_dict(), 0, train, None)


def test_a_darts_genotype_is_refused():
    with pytest.raises(ValueError, match="needs a 'nasnet' genotype, got kind 'darts'"):
        train_child(genotypes.get("darts_v2").to_dict(), _cfg().to_dict(), 0)


def test_config_validation_and_presets():
    assert child_preset("paper").cells_per_stage == 2 and child_preset("paper").epochs == 20
    assert child_preset("quick").dataset == "digits"
    with pytest.raises(ValueError, match="cells_per_stage"):
        ChildConfig(cells_per_stage=0)
    with pytest.raises(ValueError, match="val_portion"):
        ChildConfig(val_portion=1.0)
    with pytest.raises(ValueError, match="unknown child option"):
        ChildConfig.from_dict({"layers": 2})
    with pytest.raises(ValueError, match="unknown child preset"):
        child_preset("fast")


def test_child_seed_depends_on_genotype_and_run_seed():
    a, b = NASNET_A.to_dict(), NasnetGenotype(NASNET_A.normal, NASNET_A.reduce).to_dict()
    assert child_seed(0, a) == child_seed(0, a) != child_seed(1, a)
    assert child_seed(0, a) != child_seed(0, b)
    job = child_job(NASNET_A, _cfg(), 0)
    assert job["seed"] == child_seed(0, NASNET_A.to_dict()) and job["arch"]["kind"] == "nasnet"
