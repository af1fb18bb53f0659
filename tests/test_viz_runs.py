"""RunList tables and duplicates; cached_search reads a finished run back instead of rerunning."""

import re

import pytest

pytest.importorskip("pandas")

from nasviz.search import preset  # noqa: E402
from nasviz.viz.runs import (  # noqa: E402
    CELL_STYLE,
    RunList,
    cached_run,
    cached_run_dir,
    cached_search,
    config_digest,
)


def _cfg(**kw):
    return preset("darts", "smoke", epochs=1, max_steps_per_epoch=1, batch_size=8, **kw)


def test_cached_search_runs_once_then_reads_the_finished_run_back(tmp_path, data):
    train, val = data
    cfg = _cfg()
    first = cached_search(
        cfg, tmp_path, name="darts", progress=False, train_data=train, val_data=val
    )
    path = cached_run_dir(tmp_path, "darts", cfg)
    assert first.out == path and (path / "checkpoint.pt").is_file()
    stamp = (path / "checkpoint.pt").stat().st_mtime_ns
    again = cached_search(
        cfg, tmp_path, name="darts", progress=False, train_data=train, val_data=val
    )
    assert (path / "checkpoint.pt").stat().st_mtime_ns == stamp  # nothing ran, nothing rewritten
    assert again.derive() == first.derive()
    assert again.history.to_dict() == first.history.to_dict()
    # Another setting is another folder; the first stays as it was.
    other = cached_run(
        _cfg(seed=1), tmp_path, name="darts", progress=False, train_data=train, val_data=val
    )
    assert other.out != path and config_digest(_cfg(seed=1)) in other.out.name


def test_cached_search_finishes_an_interrupted_run(tmp_path, data):
    train, val = data
    short, full = _cfg(), _cfg().replace(epochs=2)
    path = tmp_path / "run"
    cached_search(short, path, progress=False, train_data=train, val_data=val)
    # The same folder asked for more epochs is a different setting: resuming refuses it clearly.
    with pytest.raises(ValueError, match="epochs"):
        cached_search(full, path, progress=False, train_data=train, val_data=val)


def test_duplicates_are_marked_and_tables_are_dataframes(data):
    train, val = data
    runs = RunList()
    for seed in (0, 0, 1):
        runs.add(cached_run(_cfg(seed=seed), None, progress=False, train_data=train, val_data=val))
    labels = [r.label for r in runs]
    assert labels[1].endswith("#2 (same settings as #1)")
    assert "same" not in labels[0] and "same" not in labels[2]
    frame = runs.to_dataframe()
    assert list(frame.index) == labels and "val acc" in frame.columns
    assert "<table" in runs.to_html() and labels[1] in runs.to_html()
    # numbers rounded to what each column can show; every HTML cell padded (widgets get no CSS)
    acc = frame["val acc"].tolist()
    assert acc == [round(a, 3) for a in acc] and frame["s/epoch"].tolist() == [
        round(v, 2) for v in frame["s/epoch"]
    ]
    html = runs.to_html()
    for tag in ("td", "th"):
        cells = re.findall(rf"<{tag}[ >][^>]*>", html)
        assert cells and all(f'style="{CELL_STYLE}"' in c for c in cells)
    fig = runs.plot_overlay("val_acc")
    lines = fig.axes[0].get_lines()
    assert [ln.get_linestyle() for ln in lines] == ["-", "--", "-"]
    ticks = fig.axes[0].xaxis.get_major_locator()()
    assert all(float(t).is_integer() for t in ticks)
