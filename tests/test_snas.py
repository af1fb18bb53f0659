import json

import pytest
import torch
import torch.nn.functional as F

from nasviz.data import load_dataset
from nasviz.search import create_search, preset, run_search
from nasviz.search.snas import CONSTRAINTS, SnasConfig, SnasSearch, temperature_schedule
from nasviz.spaces.darts import GumbelMixing, gumbel_softmax_sample


def _tiny(**kw):
    base = dict(C=4, layers=3, batch_size=8, epochs=2, max_steps_per_epoch=2)
    base.update(kw)
    return preset("snas", "quick", **base)


# ----------------------------------------------------------------------------- Gumbel-softmax
def test_samples_are_distributions_and_sharpen_at_low_temperature():
    log_alpha = torch.randn(2000, 8)
    z = gumbel_softmax_sample(log_alpha, 1.0)
    assert z.shape == log_alpha.shape and (z >= 0).all()
    torch.testing.assert_close(z.sum(-1), torch.ones(2000))
    cold = gumbel_softmax_sample(log_alpha, 0.01)
    torch.testing.assert_close(cold.sum(-1), torch.ones(2000))
    assert (cold.max(-1).values > 0.99).float().mean() > 0.95


def test_gumbel_max_property():
    """argmax of the samples is distributed as softmax(log_alpha), at any temperature."""
    log_alpha = torch.tensor([1.0, 0.5, -0.3, 2.0, 0.0, -1.0, 1.2, 0.3])
    gen = torch.Generator().manual_seed(0)
    z = gumbel_softmax_sample(log_alpha.expand(20000, 8), 0.7, gen)
    freq = torch.bincount(z.argmax(-1), minlength=8).float() / 20000
    assert (freq - F.softmax(log_alpha, -1)).abs().max() < 0.01  # ~3 standard errors


def test_gradients_reach_log_alpha_and_samples_follow_the_global_rng():
    mixing = GumbelMixing(temperature=0.5)
    log_alpha = torch.nn.Parameter(mixing.init_alpha((14, 8)))
    assert abs(log_alpha.mean().item() - 1.0) < 0.01 and 0.005 < log_alpha.std().item() < 0.02
    torch.manual_seed(3)
    z = mixing.op_weights(log_alpha)
    (z * torch.arange(8.0)).sum().backward()
    assert log_alpha.grad is not None and log_alpha.grad.abs().sum() > 0
    torch.testing.assert_close(mixing.last_sample(log_alpha), z.detach())
    torch.manual_seed(3)
    torch.testing.assert_close(mixing.op_weights(log_alpha), z)  # replayable from the RNG state
    torch.testing.assert_close(mixing.probabilities(log_alpha), F.softmax(log_alpha, -1))
    with pytest.raises(ValueError, match="temperature must be > 0"):
        gumbel_softmax_sample(log_alpha, 0.0)


# ----------------------------------------------------------------------------- temperature, config
def test_temperature_schedules():
    assert temperature_schedule(0, 10) == 1.0
    assert temperature_schedule(9, 10) == pytest.approx(0.03)
    assert temperature_schedule(4.5, 10) == pytest.approx((1.0 + 0.03) / 2)
    assert temperature_schedule(9, 10, 1.0, 0.01, "exponential") == pytest.approx(0.01)
    assert temperature_schedule(2, 5, 1.0, 0.01, "exponential") == pytest.approx(0.1)
    assert temperature_schedule(0, 1) == 1.0
    with pytest.raises(ValueError, match="'cosine'"):
        temperature_schedule(0, 10, kind="cosine")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(temperature_start=0.0), "temperature_start must be > 0.*0.0"),
        (dict(temperature_end=-0.1), "temperature_end must be > 0.*-0.1"),
        (
            dict(temperature_start=0.5, temperature_end=1.0),
            r"temperature_end \(1.0\) must not exceed",
        ),
        (dict(temperature_schedule="cosine"), "'cosine'.*linear, exponential"),
        (dict(constraint="extreme"), "'extreme'.*none, mild, moderate, aggressive"),
        (dict(penalty_form="sqrt"), "'sqrt'.*log, linear"),
        (dict(resource_lambda=-1.0), "resource_lambda must be >= 0"),
    ],
)
def test_bad_snas_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        preset("snas", "quick", **kwargs)


def test_constraint_presets_set_lambda_unless_given():
    lambdas = [preset("snas", constraint=c).effective_resource_lambda() for c in CONSTRAINTS]
    assert lambdas[0] == 0.0 and lambdas == sorted(lambdas) and len(set(lambdas)) == 4
    assert preset("snas", constraint="mild", resource_lambda=0.5).effective_resource_lambda() == 0.5
    p = preset("snas", "paper")
    assert (p.epochs, p.batch_size, p.temperature_start, p.temperature_end) == (150, 64, 1.0, 0.03)
    assert SnasConfig.from_dict(p.to_dict()) == p


# ----------------------------------------------------------------------------- the search
def test_derivation_keeps_none_on_every_edge(data):
    s = SnasSearch(_tiny(), train_data=data[0], val_data=data[1])
    with torch.no_grad():
        s.model.alpha_normal[3, 0] = 5.0  # edge 3 prefers none
        s.model.alpha_reduce[:, 4] = 5.0  # every reduce edge prefers sep_conv_3x3
    g = s.derive()
    assert g.edge_all and len(g.normal) == 14 and g.normal[3] == ("none", 1)
    assert all(op == "sep_conv_3x3" for op, _ in g.reduce)


class _Stop(Exception):
    pass


def test_tiny_search_records_series_and_resumes_exactly(tmp_path, data):
    cfg = _tiny(epochs=3, constraint="moderate")
    kw = dict(train_data=data[0], val_data=data[1], progress=False)
    straight = run_search(cfg, tmp_path / "a", **kw)
    last = straight.history.last()
    extra = last["extra"]
    assert extra["temperature"] == pytest.approx(0.03)
    for key in (
        "penalty",
        "entropy_normal",
        "entropy_reduce",
        "params_normal",
        "flops_reduce",
        "mac_normal",
    ):
        assert key in extra and extra[key] >= 0
    assert straight.history.epochs()[0]["extra"]["temperature"] == 1.0
    assert straight.genotype.edge_all
    saved = json.loads((tmp_path / "a" / "genotype.json").read_text())
    assert saved["edge_all"] is True and len(saved["normal"]) == 14

    def stop_in_second_epoch(
        history, record
    ):  # raised before epoch 2 is saved: resume from epoch 1
        if record["kind"] == "epoch" and record["epoch"] == 2:
            raise _Stop

    with pytest.raises(_Stop):
        run_search(cfg, tmp_path / "b", callbacks=[stop_in_second_epoch], **kw)
    resumed = run_search(None, tmp_path / "b", resume=True, **kw)
    assert resumed.genotype == straight.genotype
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    for name, tensor in a["method_state"]["model"].items():
        assert torch.equal(tensor, b["method_state"]["model"][name]), name
    timing = ("seconds", "eval_seconds", "images_per_second", "peak_memory_mb")

    def strip(recs):
        return [
            {**r, "metrics": {k: v for k, v in r["metrics"].items() if k not in timing}}
            for r in recs
        ]

    assert strip(resumed.history.records) == strip(straight.history.records)


def test_single_level_step_updates_weights_and_log_alpha_on_one_batch(data):
    s = create_search(_tiny(resource_lambda=0.1), None, train_data=data[0], val_data=data[1])
    before = s.model.alpha_normal.detach().clone()
    w_before = s.model.classifier.weight.detach().clone()
    x, y = s.train_loader.next()
    s.train_step(x, y)
    assert not torch.equal(before, s.model.alpha_normal) and not torch.equal(
        w_before, s.model.classifier.weight
    )
    assert s.val_loader.epoch == 0  # no architecture batches: single level


def test_cli_snas_search(tmp_path, capsys):
    from nasviz.cli import main

    out = tmp_path / "run"
    args = ["search", "snas", "--preset", "smoke", "--constraint", "moderate", "--out", str(out)]
    assert main([*args, "--epochs", "1", "--max-steps-per-epoch", "2", "--no-progress"]) == 0
    g = json.loads((out / "genotype.json").read_text())
    assert g["edge_all"] is True and len(g["normal"]) == 14
    history = json.loads((out / "history.json").read_text())
    assert (
        history["config"]["constraint"] == "moderate"
        and "penalty" in history["records"][-1]["extra"]
    )
    assert "derived architecture (darts)" in capsys.readouterr().out


def test_validation_never_reads_the_test_split():
    # Default data: the first 90% of the training split trains, the last 10% validates.
    s = SnasSearch(_tiny())
    n_train, n_val = len(s.train_loader.data), len(s.eval_loader.data)
    full = load_dataset("digits", "train")
    assert n_train + n_val == len(full)
    assert n_val == pytest.approx(0.1 * len(full), abs=1)
    assert torch.equal(s.train_loader.data.images.cpu(), full.images[:n_train])
    assert torch.equal(s.eval_loader.data.images.cpu(), full.images[n_train:])
