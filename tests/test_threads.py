"""nasviz.threads: the library picks CPU threads; config, NASVIZ_THREADS and OMP_NUM_THREADS win."""

import pytest
import torch

from nasviz import threads


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_rule_precedence(monkeypatch):
    monkeypatch.delenv("NASVIZ_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.choose("cpu") == threads.DEFAULT_CPU_THREADS == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads.choose("cpu") is None  # torch already read it: left alone
    monkeypatch.setenv("NASVIZ_THREADS", "3")
    assert threads.choose("cpu") == 3
    assert threads.choose("cpu", requested=2) == 2  # the config's field wins
    assert threads.choose("cuda") is None  # nothing changes on a GPU


def test_apply_sets_torch_threads(monkeypatch):
    monkeypatch.delenv("NASVIZ_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    assert threads.apply("cpu") == 1 == torch.get_num_threads()
    assert threads.apply("cpu", 2) == 2 == torch.get_num_threads()


@pytest.mark.parametrize("value", ["two", "0", "-1"])
def test_bad_environment_value_is_named(monkeypatch, value):
    monkeypatch.setenv("NASVIZ_THREADS", value)
    with pytest.raises(
        ValueError, match=f"NASVIZ_THREADS must be a positive integer, got '{value}'"
    ):
        threads.choose("cpu")


def test_a_search_applies_its_config_threads(monkeypatch):
    from nasviz.data import synthetic_dataset
    from nasviz.search import create_search, preset

    monkeypatch.delenv("NASVIZ_THREADS", raising=False)
    data = synthetic_dataset("digits", 32, seed=0), synthetic_dataset("digits", 16, seed=1)
    cfg = preset("darts", "smoke", C=4, layers=3, batch_size=8, threads=2)
    s = create_search(cfg, None, train_data=data[0], val_data=data[1])
    assert s.threads == 2 == torch.get_num_threads()
