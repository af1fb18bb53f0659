"""nasviz.compare: one split, one budget, random baseline, resume, table, CLI (smoke presets, digits)."""

import json
import math
import random
import shutil

import pandas as pd
import pytest

from nasviz.cli import main
from nasviz.compare import CSV_FILES, CompareConfig, run_comparison, save_results
from nasviz.compare.budget import Shape, fit_budget, split_overrides
from nasviz.compare.table import COLUMNS, RANDOM_COLUMNS, SUMMARY_COLUMNS, reading, z_score
from nasviz.config import ConfigError
from nasviz.data import load_dataset, search_split
from nasviz.genotypes import PRIMITIVES, random_genotype, random_genotypes, validate
from nasviz.search import preset, registry

# One method per search space: the three random clouds, supernets with and without a teacher,
# and a controller, at the smoke presets.
METHODS = "darts,nasnet,cream"
SMOKE = dict(
    methods=METHODS, preset="smoke", retrain_preset="smoke", seeds=1, random=2, val_portion=0.1
)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A finished smoke comparison and the lines it logged."""
    out = tmp_path_factory.mktemp("compare")
    lines: list[str] = []
    cmp = run_comparison(CompareConfig(**SMOKE, out=str(out)), progress=False, log=lines.append)
    return cmp, lines


# ---------------------------------------------------------------------------------- split, budget
def test_every_method_holds_out_the_same_images():
    train = load_dataset("digits", "train")
    held = {}
    for method in registry.names():
        cfg = preset(method, "quick", **split_overrides(registry.get(method).config_class, 0.3))
        portion = getattr(cfg, "train_portion", None)
        portion = portion if portion is not None else 1.0 - cfg.val_portion
        held[method] = len(search_split(train, portion)[1])
    assert len(set(held.values())) == 1, held


def test_fit_budget_meets_the_images_within_half_an_iteration_per_epoch():
    cfg = preset("darts", "quick")
    shape = Shape(iterations_per_epoch=12, images_per_iteration=64)
    for images in (64 * 12 * 7, 64 * 12 * 7 + 300, 5_000, 100_000, 64 * 5):
        fitted = fit_budget(cfg, shape, images)
        assert abs(shape.images(fitted) - images) <= 64 * (fitted.epochs + 1) / 2
        assert fitted.max_steps_per_epoch is None or fitted.max_steps_per_epoch <= 12
    assert fit_budget(cfg, shape, 64 * 12 * 7).max_steps_per_epoch is None  # whole epochs
    short = fit_budget(cfg, shape, 64 * 5)  # less than one epoch: steps capped
    assert shape.images(short) == 64 * 5 and short.max_steps_per_epoch == 1
    pc = fit_budget(preset("pc-darts", "quick"), shape, 64 * 12 * 5)  # warm-up keeps its share
    assert (pc.epochs, pc.warmup_epochs) == (5, 2)


def test_seconds_budget_end_to_end(tmp_path):
    """budget="seconds": each method timed in OUT/calibrate, then fitted to the same wall clock."""
    from nasviz.compare.budget import measure_shape, seconds_per_iteration
    from nasviz.history import SearchHistory

    cfg = CompareConfig(
        methods="darts,cream", preset="smoke", retrain_preset="smoke", seeds=1, random=0,
        budget="seconds", budget_value=4.0, val_portion=0.1, out=str(tmp_path),
    )  # fmt: skip
    lines: list[str] = []
    cmp = run_comparison(cfg, progress=False, log=lines.append)
    assert cmp.budget.kind == "seconds" and cmp.budget.value == 4.0
    assert sum(line.startswith("budget: 4 seconds per search (given)") for line in lines) == 1
    timing = [i for i, line in enumerate(lines) if "] timing " in line]
    assert len(timing) == 2 and timing == [0, 1]  # one calibration per method, before any search
    for s in cmp.searches:
        timed = SearchHistory.load(tmp_path / "calibrate" / s.method / "history.json")
        base = preset(s.method, "smoke", **split_overrides(type(s.config), 0.1))
        shape = measure_shape(base)
        steps = min(shape.steps(base), 3)
        rate = seconds_per_iteration(timed, steps, shape.steps(base))
        expected = 4.0 / rate * shape.images_per_iteration  # the images 4 s buy this method
        assert cmp.budget.images[s.method] == pytest.approx(expected)
        fitted = fit_budget(base, shape, expected).replace(seed=s.seed)
        assert (s.config.epochs, s.config.max_steps_per_epoch) == (
            fitted.epochs, fitted.max_steps_per_epoch
        )  # fmt: skip
    # the methods' images differ (their iterations cost differently), their seconds do not
    assert cmp.budget.images["darts"] != cmp.budget.images["cream"]


def test_random_genotypes_are_uniform_darts_cells():
    cells = random_genotypes(200, seed=3)
    assert cells == random_genotypes(200, seed=3) and cells != random_genotypes(200, seed=4)
    ops, inputs = set(), set()
    for g in cells:
        validate(g)
        for cell in ("normal", "reduce"):
            for i, node in enumerate(g.nodes(cell)):
                assert len({j for _, j in node}) == 2 and all(j < i + 2 for _, j in node)
                ops.update(op for op, _ in node)
                inputs.update(j for _, j in node)
    assert ops == set(PRIMITIVES) - {"none"} and inputs == set(range(5))
    with pytest.raises(ValueError, match="steps"):
        random_genotype(random.Random(0), steps=0)


# ---------------------------------------------------------------------------------- end to end
def test_comparison_table_has_every_column_and_consistent_figures(compared):
    cmp, lines = compared
    frame = cmp.frame()
    assert tuple(frame.columns) == COLUMNS
    assert list(frame["method"]) == METHODS.split(",")
    assert tuple(cmp.random_frame().columns) == RANDOM_COLUMNS
    assert tuple(cmp.summary().columns) == SUMMARY_COLUMNS
    rnd = cmp.random_frame()
    assert sorted(set(rnd["space"])) == ["cream-path", "darts-cell", "nasnet-cell"]
    assert rnd.groupby("space").size().eq(2).all()
    for _, row in frame.iterrows():
        cloud = rnd[rnd["space"] == row["space"]]["retrained_acc"]
        assert row["random_mean"] == pytest.approx(cloud.mean())
        assert row["random_std"] == pytest.approx(cloud.std(ddof=1))
        assert row["beats_random"] == (row["retrained_acc"] > row["random_mean"])
        z = z_score(row["retrained_acc"], row["random_mean"], row["random_std"])
        assert row["z_vs_random"] == pytest.approx(z, nan_ok=True)
        assert 0.0 <= row["retrained_acc"] <= 1.0 and 0.0 <= row["child_acc"] <= 1.0
        assert row["params"] > 0 and row["flops"] > 0 and row["search_seconds"] > 0
        # every search saw the budget, up to half an iteration per epoch of rounding
        s = next(s for s in cmp.searches if s.method == row["method"])
        slack = s.shape.images_per_iteration * (s.config.epochs + 1) / 2
        assert abs(row["budget_images"] - cmp.budget.value) <= slack
    # a supernet accuracy for the supernets, none for NASNet (its child_acc is the reward)
    by = frame.set_index("method")
    assert math.isnan(by.loc["nasnet", "supernet_acc"])
    assert not math.isnan(by.loc["darts", "supernet_acc"]) and not math.isnan(
        by.loc["cream", "supernet_acc"]
    )
    nasnet = next(s for s in cmp.searches if s.method == "nasnet")
    assert by.loc["nasnet", "child_acc"] == max(nasnet.history.metric("best_reward")[1])
    assert "what the darts smoke preset spends" in cmp.budget.describe()
    assert lines[1].startswith("[1/12] search darts seed 0") and "running" in lines[1]


def test_runs_are_normal_run_directories(compared):
    cmp, _ = compared
    root = cmp.out
    for name in ("search/darts-seed0", "search/nasnet-seed0", "search/cream-seed0"):
        assert {"history.json", "genotype.json", "checkpoint.pt"} <= {
            p.name for p in (root / name).iterdir()
        }
    for name in ("retrain/cream-seed0", "random/darts-cell-1", "random/nasnet-cell-0"):
        assert json.loads((root / name / "metrics.json").read_text())[-1]["test_acc"] >= 0


def test_rerun_reuses_finished_runs_and_resumes_a_missing_one(compared):
    cmp, _ = compared
    shutil.rmtree(cmp.out / "random" / "darts-cell-1")  # as if stopped before that run
    lines: list[str] = []
    again = run_comparison(cmp.config, progress=False, log=lines.append)
    runs = [line for line in lines if line.startswith("[")]
    assert len(runs) == 12
    assert [line for line in runs if "running" in line] == [
        next(line for line in runs if "random darts-cell #1" in line)
    ]
    pd.testing.assert_frame_equal(again.frame(), cmp.frame())


def test_more_samples_later_reuse_the_first_ones(compared):
    cmp, _ = compared
    lines: list[str] = []
    config = cmp.config.replace(methods="darts", random=3)
    more = run_comparison(config, progress=False, log=lines.append)
    running = [line for line in lines if line.startswith("[") and "running" in line]
    assert len(running) == 1 and "random darts-cell #2" in running[0]
    assert more.frame()["random_n"].iloc[0] == 3


def test_changed_settings_are_refused_not_overwritten(compared):
    cmp, _ = compared
    with pytest.raises(ValueError, match="other settings than this comparison"):
        run_comparison(cmp.config.replace(methods="darts", budget_value=2000.0), progress=False,
                       log=lambda _: None)  # fmt: skip


def test_results_files_and_reading(compared, tmp_path):
    cmp, _ = compared
    paths = save_results(cmp, tmp_path)
    assert [p.name for p in paths[:3]] == list(CSV_FILES)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert len(pd.read_csv(tmp_path / "comparison.csv")) == 3
    text = "\n".join(reading(cmp.summary(), cmp.frame()))
    for method in METHODS.split(","):
        assert method in text
    summary = cmp.summary()
    top = summary[summary["retrained_mean"] == summary["retrained_mean"].max()]["method"]
    highest = next(line for line in text.splitlines() if line.startswith("highest mean"))
    assert all(m in highest.split(";")[0] for m in top)  # every method at the top, ties too
    assert ("(tied)" in highest.split(";")[0]) == (len(top) > 1)


def test_reading_names_a_tie_as_one():
    """Two methods with the same mean are both 'highest': the reading does not pick one."""
    summary = pd.DataFrame(
        {"method": ["darts", "cream", "nasnet"], "retrained_mean": [0.106, 0.083, 0.106],
         "seeds": [1, 1, 1], "retrained_std": [float("nan")] * 3,
         "z_vs_random": [float("nan")] * 3, "beats_random": [None] * 3}
    )  # fmt: skip
    frame = pd.DataFrame(columns=["method", "supernet_acc", "child_acc", "retrained_acc"])
    first = reading(summary, frame)[0]
    assert first.startswith("highest mean retrained accuracy: darts and nasnet (tied) (0.106")
    assert first.endswith("lowest: cream (0.083)")


def test_reading_names_a_search_off_its_budget(compared):
    from nasviz.compare.protocol import Budget

    cmp, _ = compared
    frame = cmp.frame()
    text = reading(cmp.summary(), frame, cmp.budget)
    assert not [line for line in text if "off the budget" in line]  # the smoke budget is met
    half = Budget("images", cmp.budget.value / 2, "test")
    off = [line for line in reading(cmp.summary(), frame, half) if "off the budget" in line]
    assert len(off) == len(frame) and all("+" in line for line in off)


def test_cli_prints_the_table_and_writes_csv(compared, capsys):
    cmp, _ = compared
    args = ["compare", "--methods", METHODS, "--preset", "smoke", "--retrain-preset", "smoke",
            "--seeds", "1", "--random", "2", "--val-portion", "0.1", "--out", str(cmp.out),
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reusing finished" in out and "running" not in out.split("budget:")[1]
    assert "per method and seed" in out and "z_vs_random" in out and "reading:" in out
    for name in CSV_FILES + ("seed_spread.png", "decision_evolution.png"):
        assert (cmp.out / name).is_file()


# ---------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "values, message",
    [
        (dict(methods="darts,pcdarts"), "did you mean 'pc-darts'"),
        (dict(methods="darts,darts"), "given twice"),
        (dict(methods=" , "), "at least one method"),
        (dict(seeds=0), "seeds must be >= 1"),
        (dict(random=-1), "random must be >= 0"),
        (dict(budget="epochs"), "budget='epochs' is not allowed"),
        (dict(budget_value=0.0), "budget_value must be > 0"),
        (dict(val_portion=0.9), "val_portion must be <= 0.5"),
        (dict(dataset="mnist"), "unknown dataset 'mnist'"),
        (dict(seed=1), "did you mean 'seeds'"),
    ],
)
def test_bad_input_is_named(values, message):
    with pytest.raises(ConfigError, match=message):
        CompareConfig(**values)


def test_methods_not_landed_are_named_in_one_message(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "planned", lambda: ["nasnet", "cream"])
    monkeypatch.setattr(registry, "names", lambda: ["darts", "pc-darts", "snas"])
    config = CompareConfig(methods="nasnet,cream", out=str(tmp_path))
    assert config.landed_methods() == ([], ["nasnet", "cream"])
    with pytest.raises(ConfigError, match="none of the methods nasnet, cream has landed"):
        run_comparison(config, progress=False)
    lines: list[str] = []
    from nasviz.compare.protocol import Runner

    runner = Runner(config.replace(methods="darts,cream", random=0), log=lines.append)
    assert runner.methods == ["darts"] and runner.missing == ["cream"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "darts,sans"], "did you mean 'snas'"),
        (["--seeds", "0"], "seeds must be >= 1"),
        (["--retrain-preset", "fast"], "invalid choice"),
    ],
)
def test_cli_bad_input(args, message, tmp_path, capsys):
    try:
        code = main(["compare", *args, "--out", str(tmp_path / "x")])
    except SystemExit as exc:  # argparse's own choices
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_nasnet_cells_retrain_with_the_quick_darts_cell_count():
    from nasviz.spaces.nasnet import NasnetGenotype
    from nasviz.train import retrain_preset

    assert retrain_preset("paper", kind="nasnet").layers == 6  # NASNet-A CIFAR-10: N=6
    quick = retrain_preset("quick", kind="nasnet")
    darts = retrain_preset("quick")
    net = NasnetGenotype.builtin("nasnet_a").build_network(
        num_classes=10, in_channels=1, image_size=8, C=quick.C, layers=quick.layers
    )
    assert 3 * quick.layers + 2 == darts.layers == len(net.cells)
