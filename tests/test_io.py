import os
import stat

import pytest

from nasviz.io import atomic_write, atomic_write_text, json_depth, read_json


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_text(path, "one")
    atomic_write_text(path, "two")
    assert path.read_text() == "two"
    assert _leftovers(path.parent) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"previous")

    def half_then_fail(f):
        f.write(b"half of the new")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"previous"
    assert _leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_mode_is_kept_or_follows_the_umask(tmp_path):
    kept = tmp_path / "kept"
    kept.write_text("x")
    kept.chmod(0o640)
    atomic_write_text(kept, "y")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    umask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "new", "z")  # not mkstemp's 0600
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o644


def test_read_json_reads_plain_json(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"a": [1, 2, {"b": null}]}')
    assert read_json(path) == {"a": [1, 2, {"b": None}]}


@pytest.mark.parametrize(
    "make, kwargs, error, message",
    [
        (lambda p: p.mkdir(), {}, ValueError, r"x\.json is a directory, not a file"),
        (lambda p: None, {}, FileNotFoundError, r"x\.json does not exist"),
        (lambda p: p.write_bytes(b'{"a": "\xff"}'), {}, ValueError, r"x\.json is not UTF-8 text"),
        (lambda p: p.write_text("{not json"), {}, ValueError, r"x\.json is not valid JSON"),
        (lambda p: p.write_text("[" * 100_000), {}, ValueError, r"deeper than 64 levels"),
        (lambda p: p.write_text("[" * 9 + "]" * 9), dict(max_depth=8), ValueError, "deeper than 8"),
        (lambda p: p.write_text("[1, 2, 3]"), dict(max_bytes=4), ValueError, "at most 4 are read"),
    ],
)
def test_read_json_errors_name_the_file_and_the_problem(tmp_path, make, kwargs, error, message):
    path = tmp_path / "x.json"
    make(path)
    with pytest.raises(error, match=message) as info:
        read_json(path, "genotype file", **kwargs)
    assert str(info.value).startswith(f"genotype file {path}")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_is_a_value_error(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{}")
    path.chmod(0)
    with pytest.raises(ValueError, match=r"cannot read JSON file .*x\.json: Permission denied"):
        read_json(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_is_refused_instead_of_blocking(tmp_path):
    os.mkfifo(tmp_path / "x.json")
    with pytest.raises(ValueError, match="is not a regular file"):
        read_json(tmp_path / "x.json")


def test_json_depth():
    assert json_depth(3) == 0
    assert json_depth([]) == 1
    assert json_depth({"a": [[1], 2]}) == 3
    assert json_depth([[[[]]]]) == 4
