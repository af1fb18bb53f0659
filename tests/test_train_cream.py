"""Retraining a Cream path: the recipe presets, timm's RMSpropTF, EMA and RandAugment, the CLI."""

import pytest
import torch

from nasviz import architectures
from nasviz.cli import main
from nasviz.data import load_dataset
from nasviz.spaces.cream import CreamPath
from nasviz.train import Retrainer, cream_retrain_preset, make_randaugment, retrain_preset


def test_paper_preset_is_the_official_recipe():
    cfg = retrain_preset("paper", kind="cream")
    assert cfg == cream_retrain_preset("paper")
    assert (cfg.optimizer, cfg.opt_eps, cfg.lr, cfg.ema_decay) == ("rmsproptf", 1e-2, 1e-2, 0.9998)
    assert cfg.randaugment == "rand-m9-mstd0.5" and cfg.label_smoothing == 0.1
    assert cfg.layers is None and not cfg.auxiliary and cfg.drop_path_prob == 0.0
    assert retrain_preset("paper").optimizer == "sgd"  # the DARTS protocol is unchanged


def test_rmsproptf_ema_and_randaugment_train_a_released_path(tmp_path):
    from timm.optim import RMSpropTF
    from timm.utils import ModelEmaV3

    data = load_dataset("digits", "train").subset(torch.arange(64))
    test = load_dataset("digits", "test").subset(torch.arange(32))
    cfg = cream_retrain_preset(
        "smoke", optimizer="rmsproptf", lr=1e-3, ema_decay=0.9, randaugment="rand-m9-mstd0.5",
        batch_size=16, epochs=1, max_steps_per_epoch=2,
    )  # fmt: skip
    trainer = Retrainer("cream_14m", cfg, tmp_path, train_data=data, test_data=test)
    assert isinstance(trainer.optimizer, RMSpropTF) and isinstance(trainer.ema, ModelEmaV3)
    before = [p.clone() for p in trainer.ema.module.parameters()]
    result = trainer.run(progress=False)
    assert 0.0 <= result.test_acc <= 1.0
    assert any(
        not torch.equal(a, b) for a, b in zip(before, trainer.ema.module.parameters(), strict=True)
    )
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert "ema" in state


def test_randaugment_changes_pixels_and_keeps_shape():
    data = load_dataset("digits", "train").subset(torch.arange(8))
    from nasviz.data import DeviceLoader

    x, _ = DeviceLoader(data, 8, train=False).next()
    aug = make_randaugment("rand-m9-mstd0.5", data.info)
    torch.manual_seed(0)
    import random

    random.seed(0)
    out = aug(x)
    assert out.shape == x.shape and out.dtype == x.dtype and not torch.equal(out, x)
    with pytest.raises(ValueError, match="not a timm RandAugment config"):
        make_randaugment("nonsense", data.info)


def test_cli_retrains_a_cream_path_json(tmp_path, capsys):
    path = CreamPath(stages=((0,), (1, 2), (3, 4), (5, 0), (1, 2)), resolution=8)
    architectures.save(path, tmp_path / "path.json")
    code = main([
        "retrain", "--genotype", str(tmp_path / "path.json"), "--preset", "smoke",
        "--max-steps-per-epoch", "1", "--epochs", "1", "--out", str(tmp_path / "r"),
        "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert "test accuracy" in capsys.readouterr().out
