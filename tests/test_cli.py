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
    assert "derived genotype" in printed and "parameters at the CIFAR-10 eval config" in printed
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
        (["search", "pc-darts", "--k", "3"], "valid K"),
        (["search", "darts", "--order", "3"], "order must be 1"),
        (["search", "darts", "--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["search", "darts", "--dataset", "cifar10", "--data-root", "/nonexistent"], "download"),
        (["retrain", "--genotype", "nope"], "unknown genotype 'nope'"),
        (["info", "--genotype", "missing.json"], "missing.json does not exist"),
    ],
)
def test_clear_errors(args, message, tmp_path, capsys):
    assert main([*args, *(["--out", str(tmp_path / "x")] if args[0] != "info" else [])]) == 2
    assert message in capsys.readouterr().err


def test_bad_preset_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit):
        main(["search", "darts", "--preset", "fast", "--out", "x"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err
