import json

import pytest

from nasviz.cli import main

TINY = ["--preset", "smoke", "--max-steps-per-epoch", "2", "--batch-size", "16", "--no-progress"]


def test_info_prints_the_papers_parameter_count(capsys):
    assert main(["info", "--genotype", "pc_darts"]) == 0
    out = capsys.readouterr().out
    assert "3,634,678" in out and "FLOPs" in out
    assert main(["info", "--list"]) == 0
    assert "DARTS_V2" in capsys.readouterr().out


def test_search_end_to_end_then_resume_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["search", "pc-darts", "--k", "2", "--epochs", "1", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "derived architecture (darts)" in printed
    assert "parameters at CIFAR-10 eval config (C=36, 20 cells, 10 classes)" in printed
    for name in ("history.json", "genotype.json", "checkpoint.pt"):
        assert (out / name).is_file()
    assert json.loads((out / "history.json").read_text())["method"] == "pc-darts"
    # the same command again refuses to overwrite; --resume continues (nothing left to do here)
    assert main(["search", "pc-darts", "--k", "2", "--epochs", "1", *TINY, "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["search", "pc-darts", "--out", str(out), "--resume", "--no-progress"]) == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "pc-darts", "--k", "3"], "valid k: [1, 2, 4, 8]"),
        (["search", "darts", "--k", "2"], "--k is a pc-darts option; darts does not use it"),
        (["search", "darts", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["search", "darts", "--dataset", "cifar10", "--data-root", "/nonexistent"], "download"),
        (["retrain", "--genotype", "nope"], "unknown architecture 'nope'"),
        (["retrain", "--genotype", "darts_v3"], "did you mean darts_v2"),
        (["info", "--genotype", "missing.json"], "missing.json does not exist"),
    ],
)
def test_clear_errors(args, message, tmp_path, capsys):
    assert main([*args, *(["--out", str(tmp_path / "x")] if args[0] != "info" else [])]) == 2
    assert message in capsys.readouterr().err


def test_search_help_lists_the_registered_methods(capsys):
    from nasviz.search import registry

    with pytest.raises(SystemExit):
        main(["search", "--help"])
    out = capsys.readouterr().out
    for name in registry.names():
        assert name in out and registry.get(name).summary.split()[0] in out


def test_misspelt_flag_gets_a_suggestion(capsys):
    with pytest.raises(SystemExit):
        main(["search", "pc-darts", "--epcohs", "3", "--out", "x"])
    assert "did you mean '--epochs'" in capsys.readouterr().err


def test_order_outside_its_choices_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["search", "darts", "--order", "3", "--out", "x"])
    assert "invalid choice: 3" in capsys.readouterr().err


def test_bad_preset_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["search", "darts", "--preset", "fast", "--out", "x"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err


def test_warm_up_covering_every_epoch_is_warned_before_training(tmp_path, capsys):
    argv = [
        "search",
        "pc-darts",
        "--preset",
        "quick",
        "--epochs",
        "3",
        "--max-steps-per-epoch",
        "1",
    ]
    assert main([*argv, "--no-progress", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert (
        "warning: warmup_epochs=3 covers all 3 epochs: the architecture parameters will not be trained"
        in err
    )
