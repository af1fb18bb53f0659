import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from nasviz import checkpoint

ROOT = Path(__file__).resolve().parents[1]


class _Evil:
    """Unpickling this runs ``fn(*args)``: what a crafted checkpoint does."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _touch_command(marker: Path) -> _Evil:
    return _Evil(os.system, f"touch {marker}")


def _exec_code(marker: Path) -> _Evil:
    return _Evil(exec, f"open({str(marker)!r}, 'w').close()")


def _draws() -> tuple:
    return random.random(), np.random.randn(3).tolist(), torch.rand(3).tolist()


def _as_version_1(state: dict) -> dict:
    """``state`` the way nasviz wrote checkpoints before the format key (RNG states as tuples)."""
    state = {k: v for k, v in state.items() if k != "format"}
    rng = dict(state["rng"])
    py, npy = rng["python"], rng["numpy"]
    rng["python"] = (py["version"], tuple(py["internal"]), py["gauss_next"])
    key = npy["key"].numpy().astype(np.uint32)
    rng["numpy"] = (npy["bit_generator"], key, npy["pos"], npy["has_gauss"], npy["cached_gaussian"])
    state["rng"] = rng
    return state


def test_rng_state_is_plain_data_and_restores_every_stream(tmp_path):
    checkpoint.seed_everything(3)
    np.random.randn(1)  # an odd number of normals leaves a cached Gaussian in NumPy's state
    checkpoint.save({"kind": "search", "rng": checkpoint.rng_state()}, tmp_path / "c.pt")
    expected = _draws()
    raw = torch.load(tmp_path / "c.pt", weights_only=True)  # data only, no allow-list needed
    assert raw["rng"]["numpy"]["has_gauss"] == 1
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "c.pt", kind="search")["rng"])
    assert _draws() == expected


def test_save_load_round_trip_with_optimizer_and_scheduler_states(tmp_path):
    model = torch.nn.Linear(3, 2)
    sgd = torch.optim.SGD(model.parameters(), 0.1, momentum=0.9)
    adam = torch.optim.Adam(model.parameters(), 1e-3, betas=(0.5, 0.999))
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(sgd, T_max=5, eta_min=0.001)
    model(torch.randn(4, 3)).sum().backward()
    sgd.step(), adam.step(), cosine.step()
    state = {
        "kind": "retrain",
        "config": {"lr": 0.1, "betas": (0.5, 0.999), "name": "x", "cap": None},
        "model": model.state_dict(),
        "optimizer": sgd.state_dict(),
        "adam": adam.state_dict(),
        "scheduler": cosine.state_dict(),
    }
    checkpoint.save(state, tmp_path / "c.pt")
    loaded = checkpoint.load(tmp_path / "c.pt", kind="retrain")
    assert loaded["format"] == checkpoint.FORMAT
    assert loaded["config"] == state["config"] and loaded["scheduler"] == cosine.state_dict()
    torch.optim.SGD(model.parameters(), 0.1, momentum=0.9).load_state_dict(loaded["optimizer"])
    torch.optim.Adam(model.parameters()).load_state_dict(loaded["adam"])
    assert torch.equal(
        loaded["adam"]["state"][0]["exp_avg"], adam.state_dict()["state"][0]["exp_avg"]
    )


@pytest.mark.parametrize(
    "write",
    [
        lambda p, evil: torch.save({"kind": "search", "epoch": 1, "x": evil}, p),
        lambda p, evil: torch.save({"kind": "search", "rng": {"python": evil}}, p),
        lambda p, evil: p.write_bytes(pickle.dumps({"kind": "search", "x": evil}, protocol=2)),
        lambda p, evil: p.write_bytes(pickle.dumps(evil, protocol=4)),
    ],
    ids=["torch.save", "nested", "raw-pickle-2", "raw-pickle-4"],
)
@pytest.mark.parametrize("payload", [_touch_command, _exec_code], ids=["os.system", "exec"])
def test_malicious_checkpoint_runs_no_code(tmp_path, write, payload):
    marker = tmp_path / "MARKER"
    path = tmp_path / "checkpoint.pt"
    write(path, payload(marker))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"not a (safe|readable) nasviz checkpoint") as info:
        checkpoint.load(path, kind="search")
    assert str(path) in str(info.value) and "ran" in str(info.value)
    assert not marker.exists()
    assert path.read_bytes() == before
    # The file really is an attack: a full unpickler runs it (so this test can fail).
    try:
        torch.load(path, weights_only=False)
    except Exception:  # the payload's return value is not a checkpoint; the code ran anyway
        pass
    assert marker.exists()


def test_unsafe_message_names_what_the_file_asks_for(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"kind": "search", "x": _touch_command(tmp_path / "m")}, path)
    with pytest.raises(ValueError, match=r"not a safe nasviz checkpoint: it asks to build posix"):
        checkpoint.load(path, kind="search")


@pytest.mark.parametrize(
    "content, error, message",
    [
        (b"garbage", ValueError, "not a readable nasviz checkpoint .*corrupt"),
        (b"", ValueError, "not a readable nasviz checkpoint"),
        ("truncated", ValueError, "not a readable nasviz checkpoint"),
        ([1, 2], ValueError, "is not a nasviz checkpoint .*list"),
        ({"kind": "retrain"}, ValueError, "not a nasviz search checkpoint .*'retrain'"),
        ({"kind": "search", "format": 99}, ValueError, r"newer nasviz \(checkpoint format 99\)"),
        ({"kind": "search", "format": 0}, ValueError, r"older nasviz \(checkpoint format 0\)"),
        ({"kind": "search", "format": "2"}, ValueError, "invalid format version '2'"),
        (None, FileNotFoundError, "no checkpoint at .*nothing to resume"),
        ("directory", ValueError, "is a directory"),
    ],
)
def test_bad_checkpoints_get_clear_errors(tmp_path, content, error, message):
    path = tmp_path / "checkpoint.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "truncated":
        checkpoint.save({"kind": "search", "w": torch.randn(10_000)}, path)
        path.write_bytes(path.read_bytes()[:20_000])
    elif content == "directory":
        path.mkdir()
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(error, match=message):
        checkpoint.load(path, kind="search")


def test_version_messages_say_what_to_do(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"kind": "search", "format": checkpoint.FORMAT + 1}, path)
    with pytest.raises(ValueError, match=f"reads formats 1 to {checkpoint.FORMAT}: upgrade nasviz"):
        checkpoint.load(path, kind="search")


def test_version_1_checkpoint_loads_and_restores_the_same_streams(tmp_path):
    checkpoint.seed_everything(5)
    np.random.randn(1)
    old = {  # exactly what the code before the format key saved
        "kind": "search",
        "epoch": 1,
        "rng": {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
        },
    }
    torch.save(old, tmp_path / "c.pt")
    expected = _draws()
    with pytest.raises(pickle.UnpicklingError):  # why version 1 needs converting
        torch.load(tmp_path / "c.pt", weights_only=True)
    state = checkpoint.load(tmp_path / "c.pt", kind="search")
    assert "format" not in state and state["epoch"] == 1  # callers see version 1
    assert isinstance(state["rng"]["numpy"]["key"], torch.Tensor)
    checkpoint.set_rng_state(state["rng"])
    assert _draws() == expected
    checkpoint.set_rng_state(old["rng"])  # the old layout is accepted directly too
    assert _draws() == expected


def test_version_1_with_anything_else_unsafe_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    old = {"kind": "search", "rng": {"numpy": np.random.get_state()}, "x": _exec_code(marker)}
    torch.save(old, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="not a safe nasviz checkpoint: it asks to build exec"):
        checkpoint.load(tmp_path / "c.pt", kind="search")
    assert not marker.exists()


def test_arrays_are_allowed_only_in_version_1(tmp_path):
    torch.save({"kind": "search", "format": 2, "x": np.zeros(3, np.uint32)}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="not a safe nasviz checkpoint.*only in version-1"):
        checkpoint.load(tmp_path / "c.pt", kind="search")
    torch.save({"kind": "search", "x": np.zeros(3)}, tmp_path / "c.pt")  # float64: never
    with pytest.raises(ValueError, match="not a safe .* build numpy.dtypes.Float64DType"):
        checkpoint.load(tmp_path / "c.pt", kind="search")


class _Stop(Exception):
    pass


def _stop_after_first_epoch(history, record):
    if record["kind"] == "epoch" and record["epoch"] == 1:
        raise _Stop


def test_version_1_rng_state_resumes_a_search_exactly(tmp_path, data):
    from nasviz.search import preset, run_search

    cfg = preset("darts", "quick", C=4, layers=3, batch_size=8, epochs=2, max_steps_per_epoch=1)
    kw = dict(progress=False, train_data=data[0], val_data=data[1])
    straight = run_search(cfg, tmp_path / "a", **kw)
    with pytest.raises(_Stop):
        run_search(cfg, tmp_path / "b", callbacks=[_stop_after_first_epoch], **kw)
    ckpt = tmp_path / "b" / "checkpoint.pt"
    # no format key and the RNG states as the code before it pickled them
    torch.save(_as_version_1(checkpoint.load(ckpt, kind="search")), ckpt)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(ckpt, weights_only=True)
    resumed = run_search(None, tmp_path / "b", resume=True, **kw)
    assert resumed.genotype == straight.genotype
    a = _tensors(checkpoint.load(tmp_path / "a" / "checkpoint.pt", kind="search"))
    b = _tensors(checkpoint.load(ckpt, kind="search"))
    assert a.keys() == b.keys() and any("rng" in k for k in a)
    for name, tensor in a.items():  # weights, optimizer moments, data order, RNG states
        assert torch.equal(tensor, b[name]), name


def _tensors(value, prefix=""):
    """Every tensor of a nested checkpoint, by its path."""
    if isinstance(value, torch.Tensor):
        return {prefix: value}
    if not isinstance(value, (dict, list, tuple)):
        return {}
    items = value.items() if isinstance(value, dict) else enumerate(value)
    return {k: t for key, v in items for k, t in _tensors(v, f"{prefix}/{key}").items()}


_WRITER = r"""
import os, sys, time
import torch
from nasviz import checkpoint

path = sys.argv[1]
big = torch.zeros(4_000_000)  # 16 MB
checkpoint.save({"kind": "search", "epoch": 0, "w": big}, path)
fsync = os.fsync
os.fsync = lambda fd: (time.sleep(0.2), fsync(fd))  # a slow disk: writes take a while
print("ready", flush=True)
for epoch in range(1, 10_000):
    checkpoint.save({"kind": "search", "epoch": epoch, "w": big + epoch}, path)
"""


def test_kill_during_a_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while len(seen) < 3 and time.monotonic() < deadline:  # kill during the third rewrite
            seen.update(p.name for p in tmp_path.glob(".checkpoint.pt.*.tmp"))
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    left = list(tmp_path.glob(".checkpoint.pt.*.tmp"))
    assert left, "the kill did not land during a write"
    state = checkpoint.load(path, kind="search")
    assert 1 <= state["epoch"] <= 3
    assert torch.equal(state["w"], torch.full((4_000_000,), float(state["epoch"])))


def test_check_resume_config_names_each_field():
    checkpoint.check_resume_config(
        {"a": 1, "device": "cpu"}, {"a": 1, "device": "cuda"}, ["device"]
    )
    with pytest.raises(ValueError, match=r"a: checkpoint 1 vs asked 2; b: checkpoint None"):
        checkpoint.check_resume_config({"a": 1}, {"a": 2, "b": 3}, ["device"])


def test_resolve_device():
    assert checkpoint.resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert checkpoint.resolve_device("auto").type == expected
