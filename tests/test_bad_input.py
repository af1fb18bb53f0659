"""The bad-input catalogue: every way a careless user or a hostile file can go wrong, one line each.

A case is ``cli(name, argv, status, regex)`` (run ``nasviz.cli.main(argv)`` in-process) or
``py(name, fn, exception, regex)`` (call ``fn(tmp)``), with an optional ``setup(tmp, monkeypatch)``
that makes the user's files first. ``{tmp}`` in argv is the case's directory; ``<tmp>`` in the
regex matches it. Every case asserts the exit status or exception type, that the message matches,
that the CLI prints no traceback, that no code from a file ran (no ``MARKER`` file), and that no
file or directory the user had is changed, deleted or added to.

To add a new method's bad inputs, append one ``cli(...)`` / ``py(...)`` line per case to the
section for it at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nasviz import architectures, checkpoint
from nasviz import genotypes as G
from nasviz.cli import main
from nasviz.models import NetworkCIFAR

Setup = Callable[[Path, pytest.MonkeyPatch], None]


@dataclass(frozen=True)
class Case:
    """One bad input: what runs, what must come out."""

    run: tuple[str, ...] | Callable[[Path], Any]  # CLI argv, or a Python callable of the tmp dir
    expect: int | type[BaseException]  # exit status (CLI) or exception type (Python)
    message: str  # regex the error message must match
    setup: Setup | None = None
    run_dir: str | None = None  # a directory of nasviz's own the case may write into ...
    check: Callable[[Path], None] | None = None  # ... and what must hold there afterwards


def cli(
    name: str,
    argv: list[str],
    status: int,
    message: str,
    setup: Setup | None = None,
    *,
    run_dir: str | None = None,
    check: Callable[[Path], None] | None = None,
):
    """A CLI case: ``nasviz <argv>`` exits with ``status`` and an error matching ``message``."""
    return pytest.param(Case(tuple(argv), status, message, setup, run_dir, check), id=name)


def py(
    name: str,
    fn: Callable[[Path], Any],
    error: type[BaseException],
    message: str,
    setup: Setup | None = None,
):
    """A Python API case: ``fn(tmp)`` raises ``error`` with a message matching ``message``."""
    return pytest.param(Case(fn, error, message, setup), id=name)


# ------------------------------------------------------------------------- files a case can make
class _Payload:
    """Unpickling this with a full unpickler creates ``MARKER``: a crafted checkpoint's attack."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def malicious_checkpoint(run_dir: str = "run") -> Setup:
    def make(tmp: Path, _: pytest.MonkeyPatch) -> None:
        (tmp / run_dir).mkdir()
        state = {"kind": "search", "epoch": 1, "rng": _Payload(tmp / "MARKER")}
        torch.save(state, tmp / run_dir / "checkpoint.pt")

    return make


def checkpoint_bytes(content: bytes | Callable[[bytes], bytes], run_dir: str = "run") -> Setup:
    """``run_dir/checkpoint.pt`` holding ``content``, or ``content(a real checkpoint's bytes)``."""

    def make(tmp: Path, _: pytest.MonkeyPatch) -> None:
        path = tmp / run_dir / "checkpoint.pt"
        path.parent.mkdir()
        if callable(content):
            checkpoint.save({"kind": "search", "w": torch.randn(4096)}, path)
            path.write_bytes(content(path.read_bytes()))
        else:
            path.write_bytes(content)

    return make


def old_checkpoint(run_dir: str = "run", **fields: Any) -> Setup:
    """A checkpoint of another format version (or kind): ``fields`` go into its dict."""

    def make(tmp: Path, _: pytest.MonkeyPatch) -> None:
        (tmp / run_dir).mkdir()
        torch.save({"kind": "search", **fields}, tmp / run_dir / "checkpoint.pt")

    return make


def file(name: str, content: bytes | str | None = None) -> Setup:
    """``name`` holding ``content``; None makes a directory called ``name``."""

    def make(tmp: Path, _: pytest.MonkeyPatch) -> None:
        path = tmp / name
        if content is None:
            path.mkdir(parents=True)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)

    return make


def genotype_file(mutate: Callable[[dict], Any], name: str = "g.json", base: str = "darts_v2"):
    """A published genotype's JSON changed by ``mutate(d)`` (in place or returning a new dict)."""
    d = G.get(base).to_dict()
    d = mutate(d) or d
    return file(name, json.dumps(d))


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda d: d.__setitem__(key, value)


def _edge(cell: str, i: int, edge: list) -> Callable[[dict], None]:
    return lambda d: d[cell].__setitem__(i, edge)


def _all_none(d: dict) -> None:
    d["normal"] = [["none", j] for _, j in d["normal"]]


def _nodes(n: int) -> Callable[[dict], dict]:
    edges = [["sep_conv_3x3", 0], ["skip_connect", 1]] * n
    concat = list(range(2, n + 2))
    return lambda d: dict(normal=edges, normal_concat=concat, reduce=edges, reduce_concat=concat)


def cifar10(garbage_in: str | None) -> Setup:
    """``{tmp}/data/cifar-10-batches-py`` in the real layout (see tests/test_data.py) with garbage
    bytes in the file ``garbage_in``; torchvision's md5 check is what finds them."""

    def make(tmp: Path, _: pytest.MonkeyPatch) -> None:
        folder = tmp / "data" / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            entry = {
                "batch_label": name,
                "labels": rng.integers(0, 10, size=3).tolist(),
                "data": rng.integers(0, 256, size=(3, 3072), dtype=np.uint8),
            }
            (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": ["x"] * 10}))
        if garbage_in is not None:
            (folder / garbage_in).write_bytes(b"\x80\x02garbage, not a pickle of a batch")

    return make


# ------------------------------------------------------------------------------------ the cases
SEARCH = ["search", "darts", "--no-progress"]
RETRAIN = ["retrain", "--genotype", "darts_v2", "--preset", "smoke", "--no-progress"]
RESUME_SEARCH = [*SEARCH, "--out", "{tmp}/run", "--resume"]
RESUME_RETRAIN = [*RETRAIN, "--out", "{tmp}/run", "--resume"]
NOT_SAFE = r"<tmp>/run/checkpoint.pt is not a safe nasviz checkpoint: .*none of its code ran"
NOT_READABLE = r"<tmp>/run/checkpoint.pt is not a readable nasviz checkpoint \(corrupt"
INFO = ["info", "--genotype", "{tmp}/g.json"]

CHECKPOINT_CASES = [
    cli("malicious checkpoint, search --resume", RESUME_SEARCH, 2, NOT_SAFE, malicious_checkpoint()),
    cli("malicious checkpoint, retrain --resume", RESUME_RETRAIN, 2, NOT_SAFE, malicious_checkpoint()),
    cli("corrupt checkpoint", RESUME_SEARCH, 2, NOT_READABLE, checkpoint_bytes(os.urandom(4096))),
    cli("truncated checkpoint", RESUME_SEARCH, 2, NOT_READABLE, checkpoint_bytes(lambda b: b[:9000])),
    cli("empty checkpoint", RESUME_RETRAIN, 2, NOT_READABLE, checkpoint_bytes(b"")),
    cli("missing checkpoint, search --resume", RESUME_SEARCH, 2, r"no checkpoint at <tmp>/run/checkpoint.pt; nothing to resume", file("run")),
    cli("nothing to resume, retrain", RESUME_RETRAIN, 2, r"no checkpoint at <tmp>/run/checkpoint.pt; nothing to resume"),
    cli("checkpoint is a directory", RESUME_SEARCH, 2, r"checkpoint.pt is a directory", file("run/checkpoint.pt")),
    cli("checkpoint from a newer nasviz", RESUME_SEARCH, 2, r"newer nasviz \(checkpoint format 99\).*upgrade", old_checkpoint(format=99)),
    cli("checkpoint from an older nasviz", RESUME_SEARCH, 2, r"older nasviz \(checkpoint format 0\)", old_checkpoint(format=0)),
    cli("retrain checkpoint given to search", RESUME_SEARCH, 2, r"not a nasviz search checkpoint \(found 'retrain'\)", old_checkpoint(kind="retrain")),
    py("checkpoint.load of a malicious pickle", lambda t: checkpoint.load(t / "run/checkpoint.pt", kind="search"), ValueError, NOT_SAFE, malicious_checkpoint()),
]  # fmt: skip

GENOTYPE_CASES = [
    cli("genotype file with invalid UTF-8", INFO, 2, r"<tmp>/g.json is not UTF-8 text", file("g.json", b'{"normal": "\xff"}')),
    cli("genotype file with invalid UTF-8, retrain", [*RETRAIN[:1], "--genotype", "{tmp}/g.json", "--out", "{tmp}/run"], 2, r"<tmp>/g.json is not UTF-8", file("g.json", b"\xfe\xff")),
    cli("directory named x.json", ["info", "--genotype", "{tmp}/x.json"], 2, r"<tmp>/x.json is a directory", file("x.json")),
    cli("missing genotype file", ["info", "--genotype", "{tmp}/none.json"], 2, r"<tmp>/none.json does not exist"),
    cli("deeply nested JSON", INFO, 2, r"<tmp>/g.json nests arrays/objects deeper than 16", file("g.json", "[" * 100_000 + "]" * 100_000)),
    cli("genotype file not JSON", INFO, 2, r"<tmp>/g.json is not valid JSON", file("g.json", "{normal: ")),
    cli("unknown op", INFO, 2, r"g.json: normal cell, node 0: unknown op 'sep_conv3x3' \(did you mean 'sep_conv_3x3'", genotype_file(_edge("normal", 0, ["sep_conv3x3", 0]))),
    cli("input index out of range", INFO, 2, r"reduce cell, node 1: input 3 out of range", genotype_file(_edge("reduce", 2, ["skip_connect", 3]))),
    cli("empty concat", INFO, 2, r"g.json: normal_concat is empty", genotype_file(_set("normal_concat", []))),
    cli("all-none genotype, info", INFO, 2, r"degenerate genotype: the normal cell outputs zeros", genotype_file(_all_none)),
    cli("all-none genotype, retrain", ["retrain", "--genotype", "{tmp}/g.json", "--preset", "smoke", "--out", "{tmp}/run"], 2, r"degenerate genotype: the normal cell", genotype_file(_all_none)),
    cli("all-none SNAS edge-all genotype", INFO, 2, r"degenerate genotype: the normal cell", genotype_file(_all_none, base="snas_mild_edge_all")),
    cli("16-node genotype", INFO, 2, r"normal cell has 16 nodes; at most MAX_NODES=8", genotype_file(_nodes(16))),
    cli("unknown genotype name with a suggestion", ["info", "--genotype", "darts_v3"], 2, r"unknown architecture 'darts_v3'; did you mean darts_v2"),
    py("genotypes.get with a suggestion", lambda t: G.get("darts_v3"), ValueError, r"unknown genotype 'darts_v3'; did you mean DARTS_V2"),
    py("Genotype.load of a directory", lambda t: G.Genotype.load(t / "x.json"), ValueError, r"x.json is a directory", file("x.json")),
    py("architectures.load of invalid UTF-8", lambda t: architectures.load(t / "g.json"), ValueError, r"<tmp>/g.json is not UTF-8", file("g.json", b"\xff")),
    py("NetworkCIFAR of an all-none genotype", lambda t: NetworkCIFAR(8, 10, 5, False, G.Genotype.load(t / "g.json")), ValueError, r"allow_degenerate=True", genotype_file(_all_none)),
]  # fmt: skip

DATA_AND_RUN_CASES = [
    cli("unknown dataset, search", [*SEARCH, "--dataset", "mnist", "--out", "{tmp}/run"], 2, r"unknown dataset 'mnist'; known datasets: digits, cifar10"),
    cli("unknown dataset, retrain", [*RETRAIN, "--dataset", "mnist", "--out", "{tmp}/run"], 2, r"unknown dataset 'mnist'"),
    cli("missing CIFAR-10", [*SEARCH, "--dataset", "cifar10", "--data-root", "{tmp}/data", "--out", "{tmp}/run"], 2, r"CIFAR-10 not found or corrupted in <tmp>/data/cifar-10-batches-py.*--download", file("data")),
    cli("corrupt CIFAR-10 (md5 differs)", [*SEARCH, "--dataset", "cifar10", "--data-root", "{tmp}/data", "--out", "{tmp}/run"], 2, r"CIFAR-10 not found or corrupted in <tmp>/data", cifar10("data_batch_3")),
    cli("corrupt CIFAR-10 test batch, retrain", [*RETRAIN, "--dataset", "cifar10", "--data-root", "{tmp}/data", "--out", "{tmp}/run"], 2, r"CIFAR-10 not found or corrupted in <tmp>/data", cifar10("test_batch")),
    cli("plot on an empty directory", ["plot", "{tmp}/empty"], 2, r"no search history at <tmp>/empty/history.json", file("empty")),
    cli("existing run without --resume", [*RETRAIN, "--out", "{tmp}/run"], 2, r"checkpoint.pt already exists: pass --resume", checkpoint_bytes(b"a previous run")),
]  # fmt: skip

# ------------------------------------------------------------------ config and engine cases (lead)
# Misspelt keywords, bad values, resume with another method, bad --out, warm-up covering every
# epoch, NaN loss ...: one line each, e.g.
#   cli("misspelt option", [*SEARCH, "--epoch", "3", "--out", "{tmp}/run"], 2, r"--epochs"),
#   py("preset(lr='fast')", lambda t: preset("darts", "quick", lr="fast"), ValueError, r"lr"),
SMOKE = [*SEARCH, "--preset", "smoke"]


def a_darts_run(run_dir: str = "run") -> Setup:
    """A finished one-step DARTS smoke search in ``run_dir``."""

    def make(tmp: Path, _: pytest.MonkeyPatch) -> None:
        args = [*SMOKE, "--epochs", "1", "--max-steps-per-epoch", "1", "--out", str(tmp / run_dir)]
        assert main(args) == 0

    return make


def diverging_loss(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training loss is NaN from the first step (a stand-in for a learning rate that blows up)."""
    from nasviz.search.supernet import SupernetSearch

    monkeypatch.setattr(SupernetSearch, "loss", lambda self, logits, y: logits.sum() * float("nan"))


def _preset(**kw: Any) -> Callable[[Path], Any]:
    from nasviz.search import preset

    return lambda t: preset("pc-darts" if "k" in kw or "K" in kw else "darts", "quick", **kw)


CONFIG_AND_ENGINE_CASES = [
    py("preset(lr='fast')", _preset(lr="fast"), ValueError, r"lr must be a number, got 'fast'"),
    py("preset(lr=-1)", _preset(lr=-1.0), ValueError, r"lr must be > 0.0, got -1.0"),
    py("preset(arch_lr=nan)", _preset(arch_lr=float("nan")), ValueError, r"arch_lr must be a finite number"),
    py("preset(grad_clip=-1)", _preset(grad_clip=-1), ValueError, r"grad_clip must be > 0.0"),
    py("preset(seed='abc')", _preset(seed="abc"), ValueError, r"seed must be an integer, got 'abc'"),
    py("preset(train_portion=0.999)", _preset(train_portion=0.999), ValueError, r"train_portion must be <= 0.95"),
    py("misspelt keyword epoch", _preset(epoch=3), ValueError, r"unknown darts search option 'epoch' \(did you mean 'epochs'\?\)"),
    py("misspelt keyword batchsize", _preset(batchsize=8), TypeError, r"did you mean 'batch_size'"),
    py("misspelt keyword K", _preset(K=2), ValueError, r"unknown pc-darts search option 'K' \(did you mean 'k'\?\)"),
    py("k that does not divide the channels", _preset(k=3), ValueError, r"k=3 does not divide the channels .* valid k: \[1, 2, 4, 8\]"),
    py("replace with a misspelt name", lambda t: _preset()(t).replace(lr_mn=0.1), ValueError, r"did you mean 'lr_min'"),
    py("temperature <= 0", lambda t: __import__("nasviz.search", fromlist=["preset"]).preset("snas", "quick", temperature_end=0.0), ValueError, r"temperature_end must be > 0.0"),
    py("unknown method with a suggestion", lambda t: __import__("nasviz.search", fromlist=["preset"]).preset("pcdarts"), ValueError, r"did you mean 'pc-darts'"),
    cli("misspelt flag", [*SEARCH, "--epcohs", "3", "--out", "{tmp}/run"], 2, r"unrecognized arguments: --epcohs 3 \(did you mean '--epochs'\?\)"),
    cli("another method's flag", [*SEARCH, "--k", "2", "--out", "{tmp}/run"], 2, r"--k is a pc-darts option; darts does not use it"),
    cli("bad value on the command line", [*SEARCH, "--epochs", "0", "--out", "{tmp}/run"], 2, r"epochs must be >= 1, got 0"),
    cli("resume with another method", ["search", "pc-darts", "--no-progress", "--out", "{tmp}/run", "--resume"], 2, r"<tmp>/run holds a darts search, not pc-darts", a_darts_run()),
    cli("resume with a different setting", [*SMOKE, "--seed", "5", "--out", "{tmp}/run", "--resume"], 2, r"cannot resume with a different configuration \(seed: checkpoint 2 vs asked 5\)", a_darts_run()),
    cli("--out is a file", [*SMOKE, "--out", "{tmp}/afile"], 2, r"--out <tmp>/afile is a file, not a directory", file("afile", "my notes")),
    cli("--out not writable", [*SMOKE, "--out", "/proc/nasviz-run"], 2, r"cannot write to /proc"),
    cli("an existing search without --resume", [*SMOKE, "--out", "{tmp}/run"], 2, r"already holds a search \(checkpoint.pt\); pass --resume", a_darts_run()),
    cli("loss becomes NaN", [*SMOKE, "--epochs", "1", "--out", "{tmp}/run"], 2, r"darts search diverged: train_loss is nan in epoch 1, by step \d; the last good checkpoint", diverging_loss),
]  # fmt: skip


def diverging_retrain(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The retraining's loss is NaN from its third step on (epoch 2 at 2 steps per epoch)."""
    from nasviz.train import Retrainer

    step, calls = Retrainer.train_step, []

    def nan_later(self, x, y):
        loss, logits = step(self, x, y)
        calls.append(1)
        return (loss * float("nan") if len(calls) > 2 else loss), logits

    monkeypatch.setattr(Retrainer, "train_step", nan_later)


def epoch_1_kept(tmp: Path) -> None:
    """The checkpoint and metrics of the last good epoch (1) are there and load."""
    from nasviz.train import CHECKPOINT, METRICS

    state = checkpoint.load(tmp / "run" / CHECKPOINT, kind="retrain")
    assert state["epoch"] == 1, state["epoch"]
    assert [m["epoch"] for m in json.loads((tmp / "run" / METRICS).read_text())] == [1]


def interrupted_search(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the first weight step of a search."""
    from nasviz.search.supernet import SupernetSearch

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SupernetSearch, "weight_step", interrupt)


def _warm_up_covers_every_epoch(tmp: Path) -> None:
    from nasviz.search import create_search, preset

    create_search(preset("pc-darts", "quick", epochs=3), None)


def _nasnet_genotype(**change: Any) -> Callable[[Path], Any]:
    from nasviz.spaces.nasnet import NasnetGenotype

    def load(t: Path) -> Any:
        d = NasnetGenotype.builtin("nasnet_a").to_dict()
        d["normal"] = [dict(b) for b in d["normal"]]
        d["normal"][1].update(change)
        return NasnetGenotype.from_dict(d)

    return load


def _darts_genotype_to_nasnet_network(t: Path) -> Any:
    from nasviz.spaces import nasnet as N

    return N.NasnetNetwork(G.get("darts_v2"), N.network_preset("cifar"), 10)


RUN = ["--out", "{tmp}/run"]
NASNET = ["search", "nasnet", "--no-progress", *RUN]
CREAM = ["search", "cream", "--no-progress", *RUN]
COMPARE = ["compare", "--out", "{tmp}/cmp", "--no-progress"]

# ---------------------------------------------------------------- NASNet, Cream, compare, retrain
METHOD_CASES = [
    cli("NASNet: no children per update", [*NASNET, "--children", "0"], 2, r"children must be >= 1, got 0"),
    cli("NASNet: Ray address without workers", [*NASNET, "--ray-address", "127.0.0.1:1"], 2, r"ray_address runs the children on a Ray cluster: also give workers >= 1"),
    cli("NASNet: Ray address not host:port", [*NASNET, "--preset", "smoke", "--workers", "2", "--ray-address", "nowhere"], 2, r"Ray address 'nowhere' is not host:port"),
    cli("NASNet: nobody answers at the Ray address", [*NASNET, "--preset", "smoke", "--workers", "2", "--ray-address", "127.0.0.1:1"], 2, r"no Ray cluster answers at '127.0.0.1:1'"),
    cli("NASNet: unknown algorithm", [*NASNET, "--algorithm", "ppo2"], 2, r"invalid choice: 'ppo2'"),
    py("NASNet genotype: unknown op", _nasnet_genotype(ops=["sep_conv_9x9", "identity"]), ValueError, r"unknown op 'sep_conv_9x9'"),
    py("NASNet genotype: input from a later block", _nasnet_genotype(inputs=[0, 3]), ValueError, r"normal cell, block 1: input 3 is block 1, which is not built yet"),
    py("DARTS genotype handed to a NASNet network", _darts_genotype_to_nasnet_network, ValueError, r"needs a NasnetGenotype .*kind 'darts'"),
    cli("Cream: FLOPs range reversed", [*CREAM, "--flops", "10", "5"], 2, r"flops_min \(10\) must not exceed flops_max \(5\)"),
    cli("Cream: empty path board", [*CREAM, "--board-size", "0"], 2, r"board_size must be >= 1, got 0"),
    cli("compare: unknown method", [*COMPARE, "--methods", "darts,pcdarts"], 2, r"unknown search method 'pcdarts' \(did you mean 'pc-darts'"),
    cli("compare: a method twice", [*COMPARE, "--methods", "darts,darts"], 2, r"method 'darts' is given twice"),
    cli("compare: no seeds", [*COMPARE, "--seeds", "0"], 2, r"seeds must be >= 1, got 0"),
    cli("an option of another command", ["info", "--genotype", "darts_v2", "--no-progress"], 2, r"--no-progress is an option of nasviz search, nasviz retrain, nasviz compare only"),
    cli("retraining loss becomes NaN in epoch 2", [*RETRAIN, "--epochs", "3", "--max-steps-per-epoch", "2", *RUN], 2, r"training diverged: the loss is nan in epoch 2, by step \d+; the last good checkpoint is kept", diverging_retrain, run_dir="run", check=epoch_1_kept),
]  # fmt: skip

CASES = (
    CHECKPOINT_CASES + GENOTYPE_CASES + DATA_AND_RUN_CASES + CONFIG_AND_ENGINE_CASES + METHOD_CASES
)

#: Allowed but probably not meant: a documented warning, and the run goes on.
WARNING_CASES = [
    py("warm-up covers every epoch (PC-DARTS quick, 3 epochs)", _warm_up_covers_every_epoch, UserWarning, r"warmup_epochs=3 covers all 3 epochs: the architecture parameters will not be trained"),
]  # fmt: skip


# ------------------------------------------------------------------------------------- the test
def _snapshot(root: Path) -> dict[str, str]:
    """Every file (sha256) and directory under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): "dir"
        if p.is_dir()
        else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    try:
        status = main(argv)
    except SystemExit as exc:  # argparse's own errors
        status = exc.code
    captured = capsys.readouterr()
    return status, captured.out + captured.err


@pytest.mark.parametrize("case", CASES)
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    before = _snapshot(tmp_path)
    message = case.message.replace("<tmp>", re.escape(str(tmp_path)))
    if isinstance(case.run, tuple):
        status, printed = _run_cli([a.format(tmp=tmp_path) for a in case.run], capsys)
        assert status == case.expect, printed
        errors = [line for line in printed.splitlines() if ": error: " in line]
        assert len(errors) == 1 and re.search(message, errors[0]), printed
        assert "Traceback" not in printed, printed
    else:
        with pytest.raises(case.expect, match=message):
            case.run(tmp_path)
    assert not (tmp_path / "MARKER").exists(), "code from a file ran"
    after = _snapshot(tmp_path)
    if case.run_dir is not None:  # nasviz's own run directory: only new files may appear there
        after = {k: v for k, v in after.items() if k in before or not _under(k, case.run_dir)}
        case.check(tmp_path)
    assert after == before, "a file the user had was changed, removed or added"


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + "/")


@pytest.mark.parametrize("case", WARNING_CASES)
def test_documented_warning(case: Case, tmp_path: Path) -> None:
    with pytest.warns(case.expect, match=case.message):
        case.run(tmp_path)


def test_ctrl_c_stops_with_a_resume_hint_and_loses_no_user_file(tmp_path, monkeypatch, capsys):
    """Ctrl-C in a search: exit status 130, the way to continue printed, no traceback."""
    interrupted_search(tmp_path, monkeypatch)
    (tmp_path / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    status, printed = _run_cli([*SMOKE, "--out", str(tmp_path / "run")], capsys)
    assert status == 130, printed
    assert (
        f"interrupted; continue with the same command plus --resume (out: {tmp_path / 'run'})"
        in printed
    )
    assert "Traceback" not in printed
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("run")} == before
