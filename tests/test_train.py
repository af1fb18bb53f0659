"""Tests for nasviz.train: presets, validation, drop path ramp, learning, exact resume, errors."""

from __future__ import annotations

import json
import time

import pytest
import torch

from nasviz.data import load_dataset
from nasviz.genotypes import Genotype, get
from nasviz.train import RetrainConfig, Retrainer, retrain, retrain_preset

# A network small enough for a few seconds per run on 2 CPU cores (digits, 8x8).
TINY = dict(C=4, layers=3, epochs=3, batch_size=32, max_steps_per_epoch=3, device="cpu")


def tiny(**overrides) -> RetrainConfig:
    return retrain_preset("quick", **{**TINY, **overrides})


# ---- config and presets ----------------------------------------------------------------------


def test_paper_preset_is_the_darts_protocol():
    cfg = retrain_preset("paper")
    assert cfg == RetrainConfig()  # the dataclass defaults are the paper protocol
    assert (cfg.dataset, cfg.C, cfg.layers, cfg.auxiliary) == ("cifar10", 36, 20, True)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.lr_min) == (600, 96, 0.025, 0.0)
    assert (cfg.momentum, cfg.weight_decay, cfg.grad_clip) == (0.9, 3e-4, 5.0)
    assert (cfg.auxiliary_weight, cfg.cutout, cfg.drop_path_prob) == (0.4, True, 0.2)
    assert cfg.max_steps_per_epoch is None
    # PC-DARTS retrains with drop path 0.3
    assert retrain_preset("paper", drop_path_prob=0.3).drop_path_prob == 0.3


def test_quick_and_smoke_presets():
    quick, smoke = retrain_preset("quick"), retrain_preset("smoke")
    assert quick.dataset == "digits" and quick.auxiliary and quick.cutout
    assert 15 <= quick.epochs <= 20 and quick.batch_size == 64 and quick.lr == 0.05
    assert (smoke.epochs, smoke.max_steps_per_epoch) == (2, 3)
    assert smoke.replace(epochs=None, epochs_ignored=None) == smoke  # None values are ignored
    assert retrain_preset("quick", lr=0.1, seed=None).lr == 0.1


def test_unknown_preset_lists_presets():
    with pytest.raises(ValueError, match="paper, quick, smoke"):
        retrain_preset("fast")


@pytest.mark.parametrize(
    "field, value",
    [
        ("epochs", 0),
        ("batch_size", -1),
        ("C", 2.5),
        ("lr", 0.0),
        ("lr_min", 1.0),
        ("momentum", 1.0),
        ("weight_decay", -1e-4),
        ("grad_clip", 0.0),
        ("auxiliary_weight", -0.4),
        ("drop_path_prob", 1.0),
        ("max_steps_per_epoch", 0),
        ("dataset", "mnist"),
        ("device", "gpu0"),
    ],
)
def test_bad_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RetrainConfig(**{field: value})
    with pytest.raises(ValueError, match=field):
        retrain_preset("quick", **{field: value})


def test_unknown_option_and_dict_round_trip():
    with pytest.raises(ValueError, match="unknown retrain option"):
        retrain_preset("quick", learning_rate=0.1)
    cfg = retrain_preset("smoke")
    assert RetrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="bogus"):
        RetrainConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_unknown_op_in_genotype_is_rejected():
    g = get("darts_v2")
    bad = Genotype(
        normal=(("conv_9x9", 0),) + g.normal[1:],
        normal_concat=g.normal_concat,
        reduce=g.reduce,
        reduce_concat=g.reduce_concat,
    )
    with pytest.raises(ValueError, match="conv_9x9"):
        Retrainer(bad, tiny())
    with pytest.raises(ValueError, match="unknown architecture 'no_such_genotype'"):
        Retrainer("no_such_genotype", tiny())


# ---- the loop --------------------------------------------------------------------------------


def test_drop_path_ramps_linearly_per_epoch():
    cfg = tiny(epochs=4, drop_path_prob=0.2, max_steps_per_epoch=1)
    trainer = Retrainer("darts_v2", cfg)
    seen = []
    result = trainer.run(
        progress=False, callbacks=lambda m: seen.append(trainer.model.drop_path_prob)
    )
    expected = [0.2 * e / 4 for e in range(4)]  # 0-based epoch, as DARTS: 0, 0.05, 0.1, 0.15
    assert seen == pytest.approx(expected)
    assert [m["drop_path_prob"] for m in result.metrics] == pytest.approx(expected)
    assert [m["epoch"] for m in result.metrics] == [1, 2, 3, 4]
    lrs = [m["lr"] for m in result.metrics]
    assert lrs[0] == pytest.approx(cfg.lr) and lrs == sorted(lrs, reverse=True)  # cosine
    keys = {"train_loss", "train_acc", "seconds", "images_per_second", "peak_memory_mb"}
    assert keys <= set(result.metrics[0]) and "test_acc" not in result.metrics[0]
    assert {"test_loss", "test_acc"} <= set(result.metrics[-1])


def test_a_darts_network_needs_three_cells():
    with pytest.raises(ValueError, match="layers"):
        Retrainer("darts_v2", tiny(layers=2))


def test_held_out_validation_split_is_evaluated_every_epoch():
    cfg = tiny(epochs=2, val_portion=0.25, max_steps_per_epoch=1)
    trainer = Retrainer("darts_v2", cfg)
    n_train, n_val = len(trainer.train_loader.data), len(trainer.val_loader.data)
    assert n_train + n_val == len(load_dataset(cfg.dataset, "train"))
    assert n_val == pytest.approx(0.25 * (n_train + n_val), abs=1)
    result = trainer.run(progress=False)
    assert all("val_acc" in m for m in result.metrics)
    assert "test_acc" in result.metrics[-1] and "test_acc" not in result.metrics[0]


@pytest.mark.slow
def test_quick_retrain_of_a_published_genotype_learns_digits(tmp_path):
    # ~5 s per epoch on 2 CPU cores: 22 steps of batch 64 (C=8, 4 cells, auxiliary head, cutout).
    cfg = retrain_preset("quick", C=8, layers=4, epochs=5, device="cpu")
    t0 = time.perf_counter()
    result = retrain("pc_darts", cfg, tmp_path, progress=False)
    seconds = time.perf_counter() - t0
    print(f"\nquick retrain of PC-DARTS: test acc {result.test_acc:.3f} in {seconds:.1f} s")
    assert result.test_acc > 0.5  # chance is 0.1
    assert len(result.metrics) == 5 and result.params > 0
    assert result.test_acc == result.metrics[-1]["test_acc"]
    for name in ("checkpoint.pt", "metrics.json", "genotype.json", "config.json"):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "metrics.json").read_text()) == result.metrics
    assert RetrainConfig.from_dict(json.loads((tmp_path / "config.json").read_text())) == cfg
    assert Genotype.load(tmp_path / "genotype.json") == get("pc_darts")


# ---- resume ----------------------------------------------------------------------------------


class Interrupt(Exception):
    pass


def _interrupt_after_first_epoch(metrics):
    if metrics["epoch"] == 1:
        raise Interrupt


def test_interrupted_and_resumed_run_equals_straight_run(tmp_path):
    cfg = tiny(drop_path_prob=0.3)  # drop path > 0 from epoch 1: the global RNG matters
    straight = Retrainer("darts_v2", cfg, tmp_path / "straight")
    straight.run(progress=False)

    with pytest.raises(Interrupt):
        retrain(
            "darts_v2",
            cfg,
            tmp_path / "resumed",
            progress=False,
            callbacks=_interrupt_after_first_epoch,
        )
    first = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert len(first) == 1
    torch.manual_seed(1234)  # the resumed run must not depend on the RNG state it starts in
    resumed = Retrainer("darts_v2", cfg, tmp_path / "resumed")
    resumed.resume()
    result = resumed.run(progress=False)

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert result.test_acc == straight.metrics[-1]["test_acc"]
    ms = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("straight", "resumed")]
    assert len(ms[0]) == len(ms[1]) == cfg.epochs
    for m0, m1 in zip(*ms, strict=True):
        assert m0.keys() == m1.keys()
        assert m0["train_loss"] == m1["train_loss"] and m0.get("test_acc") == m1.get("test_acc")
    # The test split is read once, for the final figure; earlier epochs never see it.
    assert ["test_acc" in m for m in ms[0]] == [False] * (cfg.epochs - 1) + [True]
    history = json.loads((tmp_path / "resumed" / "history.json").read_text())
    assert [r["metrics"]["train_loss"] for r in history["records"]] == [
        m["train_loss"] for m in ms[1]
    ]


def test_resume_of_a_finished_run_returns_its_result(tmp_path):
    cfg = tiny(epochs=1)
    first = retrain("darts_v2", cfg, tmp_path, progress=False)
    again = retrain("darts_v2", cfg.replace(device="cpu"), tmp_path, resume=True, progress=False)
    assert again.test_acc == first.test_acc and len(again.metrics) == 1


def test_resume_with_a_different_config_names_the_fields(tmp_path):
    cfg = tiny(epochs=1)
    retrain("darts_v2", cfg, tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"batch_size: checkpoint .*; lr: checkpoint "):
        retrain(
            "darts_v2", cfg.replace(lr=0.1, batch_size=16), tmp_path, resume=True, progress=False
        )
    with pytest.raises(ValueError, match="genotype differs"):
        retrain("pc_darts", cfg, tmp_path, resume=True, progress=False)


def test_existing_checkpoint_without_resume_is_not_overwritten(tmp_path):
    cfg = tiny(epochs=1)
    retrain("darts_v2", cfg, tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        retrain("darts_v2", cfg, tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="another output directory"):
        Retrainer("darts_v2", cfg, tmp_path).run(progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before


def test_corrupt_or_missing_checkpoint_gets_a_clear_error(tmp_path):
    cfg = tiny(epochs=1)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        retrain("darts_v2", cfg, tmp_path, resume=True, progress=False)
    with pytest.raises(ValueError, match="out="):
        retrain("darts_v2", cfg, None, resume=True)
    (tmp_path / "checkpoint.pt").write_bytes(b"\x00garbage, not a torch checkpoint\xff" * 8)
    with pytest.raises(ValueError, match="corrupt"):
        retrain("darts_v2", cfg, tmp_path, resume=True, progress=False)


def test_smoke_preset_runs_the_same_code_path(tmp_path):
    trainer = Retrainer("darts_v2", retrain_preset("smoke", C=4, layers=3), tmp_path)
    result = trainer.run(progress=False)
    assert len(result.metrics) == 2
    assert result.test_acc == trainer.evaluate("test")[1]  # the final model's test accuracy
    assert result.out == tmp_path and result.config.max_steps_per_epoch == 3
