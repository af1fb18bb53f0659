"""Data parallel searches on 2 CPU processes (gloo): ranks in sync, equal to one process, failures.

Each test starts two processes as torchrun would (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT in their environment) and reads what they wrote. Two runs per process:

* with the supernets' own (train-mode) batch norm: the ranks must hold bitwise the same
  architecture parameters / board, weights and BN statistics after every epoch;
* with batch norm frozen in eval mode: the network then has no batch statistics, so averaging
  the shards' gradients is exactly the global batch's gradient, and the 2-process run must equal
  a 1-process run with the same global batch to float tolerance. With train-mode batch norm it
  cannot: each shard is normalized by its own statistics (SyncBatchNorm is CUDA-only), as in
  any DistributedDataParallel run; Cream's meta-network look-ahead is off in that comparison
  (each rank simulates the student step on its own shard, so the averaged look-ahead gradient is
  not the global batch's).
"""

from __future__ import annotations

import multiprocessing as std_mp
import os
import socket
import time
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from nasviz.data import DeviceLoader, load_dataset
from nasviz.distributed import Dist, RankLostError, ShardedLoader

N_IMAGES = 128


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _digits():
    return load_dataset("digits", "train").subset(torch.arange(N_IMAGES))


def freeze_bn(module: nn.Module) -> None:
    """Every batch norm in eval mode for good (no batch statistics, running stats fixed)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            m.train = types.MethodType(lambda self, mode=True: self, m)


def _config(method: str, **kw):
    from nasviz.search import preset

    if method == "cream":
        base = dict(
            batch_size=16, epochs=2, max_steps_per_epoch=3, warmup_epochs=1, meta_every=2,
            board_size=3, val_portion=0.25, depths=(1, 1, 1, 1, 1), width=0.25,
        )  # fmt: skip
    else:
        base = dict(C=4, layers=3, batch_size=16, epochs=2, max_steps_per_epoch=3, warmup_epochs=0)
    base.update(kw)
    return preset(method, "smoke", **base)


def _state(search) -> dict:
    """What must agree across ranks: decisions, weights, BN statistics."""
    model = getattr(search, "supernet", None) or search.model
    out = {"weights": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    if hasattr(search, "board"):
        out["board"] = search.board.summary()
        out["meta"] = search.meta.layer.weight.detach().clone()
    else:
        out["arch"] = [p.detach().clone() for p in search.model.arch_parameters()]
    return out


def _run(method: str, frozen: bool, out: Path | None = None, **kw) -> tuple[dict, list[dict]]:
    from nasviz.search import create_search

    search = create_search(_config(method, **kw), out, train_data=_digits())
    if frozen:
        freeze_bn(search.supernet if method == "cream" else search.model)
    per_epoch: list[dict] = []
    search.run(progress=False, callbacks=[lambda h, r: per_epoch.append(_state(search))])
    metrics = [r["metrics"] for r in search.history.epochs()[1:]]
    return {"final": _state(search), "metrics": metrics, "epochs": per_epoch}, metrics


def _worker(rank: int, world: int, port: int, job: str, method: str, result: str) -> None:
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port), NASVIZ_DIST_TIMEOUT="30",
    )  # fmt: skip
    torch.set_num_threads(1)
    try:
        if job == "sync":
            live, _ = _run(method, frozen=False)
            exact, _ = _run(method, frozen=True, **_NO_META.get(method, {}))
            torch.save({"live": live, "frozen": exact}, result)
        elif job == "die":
            _die_after_first_epoch(rank, method, Path(result).parent / "run", result)
    finally:
        import torch.distributed as dist

        if dist.is_initialized() and job != "die":
            dist.destroy_process_group()


_NO_META = {"cream": dict(meta_every=10_000)}


def _die_after_first_epoch(rank: int, method: str, out: Path, result: str) -> None:
    from nasviz.search import create_search

    search = create_search(_config(method, epochs=3), out, train_data=_digits())

    def crash(history, record):
        if rank == 1 and record["epoch"] == 1:
            os._exit(3)  # a rank killed after the first epoch was saved

    t0 = time.perf_counter()
    try:
        search.run(progress=False, callbacks=[crash])
        torch.save({"error": None}, result)
    except RankLostError as exc:
        torch.save({"error": str(exc), "seconds": time.perf_counter() - t0}, result)
    os._exit(0)  # the group is broken: skip its teardown


def _spawn(job: str, method: str, tmp_path: Path, timeout: float = 200.0) -> list[Path]:
    ctx = std_mp.get_context("spawn")
    port = _free_port()
    results = [tmp_path / f"rank{r}.pt" for r in range(2)]
    procs = [
        ctx.Process(target=_worker, args=(r, 2, port, job, method, str(results[r])))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(1.0, deadline - time.monotonic()))
    hung = [i for i, p in enumerate(procs) if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
    assert not hung, f"ranks {hung} still running after {timeout} s"
    return results


def _assert_same(a: dict, b: dict, exact: bool, what: str) -> None:
    for k, v in a["weights"].items():
        w = b["weights"][k]
        if exact:
            assert torch.equal(v, w), f"{what}: {k} differs"
        elif v.is_floating_point():
            assert torch.allclose(v, w, rtol=1e-4, atol=1e-5), f"{what}: {k} differs"
    if "arch" in a:
        for x, y in zip(a["arch"], b["arch"], strict=True):
            assert torch.equal(x, y) if exact else torch.allclose(x, y, rtol=1e-4, atol=1e-6)
    else:
        if exact:
            assert a["board"] == b["board"], what
        else:
            assert [e["path"] for e in a["board"]] == [e["path"] for e in b["board"]], what
            for x, y in zip(a["board"], b["board"], strict=True):
                assert abs(x["accuracy"] - y["accuracy"]) < 1e-6
        assert torch.equal(a["meta"], b["meta"]) if exact else torch.allclose(a["meta"], b["meta"])


@pytest.mark.parametrize("method", ["pc-darts", "cream"])
def test_two_ranks_stay_in_sync_and_equal_one_process(method, tmp_path):
    r0, r1 = (torch.load(p, weights_only=True) for p in _spawn("sync", method, tmp_path))
    # train-mode BN: bitwise the same decisions, weights and BN statistics after every epoch
    assert len(r0["live"]["epochs"]) == 3  # epoch 0 (before training), 1, 2
    for e0, e1 in zip(r0["live"]["epochs"], r1["live"]["epochs"], strict=True):
        _assert_same(e0, e1, exact=True, what=f"{method} rank 0 vs 1")
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert [{k: m[k] for k in keys} for m in r0["live"]["metrics"]] == [
        {k: m[k] for k in keys} for m in r1["live"]["metrics"]
    ]
    # frozen BN: the 2-process run equals a 1-process run with the same global batch
    single, metrics = _run(method, frozen=True, **_NO_META.get(method, {}))
    _assert_same(single["final"], r0["frozen"]["final"], exact=False, what=f"{method} 1 vs 2")
    for m1, m2 in zip(metrics, r0["frozen"]["metrics"], strict=True):
        assert m1["train_loss"] == pytest.approx(m2["train_loss"], rel=1e-4)
        assert m1["val_acc"] == pytest.approx(m2["val_acc"], abs=1e-6)
    if method == "cream":  # the board filled the same way (after the warm-up)
        assert len(single["final"]["board"]) >= 1


def test_a_dead_rank_stops_the_other_and_the_checkpoint_resumes(tmp_path):
    from nasviz.search import create_search

    t0 = time.perf_counter()
    results = _spawn("die", "pc-darts", tmp_path, timeout=150.0)
    assert time.perf_counter() - t0 < 150.0
    report = torch.load(results[0], weights_only=True)
    assert report["error"] is not None, "rank 0 finished although rank 1 died"
    assert "lost contact with the other ranks" in report["error"]
    assert "--resume" in report["error"] and "last saved epoch: 1" in report["error"]
    assert not results[1].exists()  # rank 1 died before writing anything
    # the last checkpoint (epoch 1, written by rank 0) resumes, here in one process
    search = create_search(None, tmp_path / "run", resume=True, train_data=_digits())
    assert search.epoch == 1
    search.run(progress=False)
    assert search.epoch == 3


def test_more_processes_than_data_shards_is_a_clear_error():
    loader = DeviceLoader(_digits(), 2, train=True)
    with pytest.raises(ValueError, match="fewer data shards than processes"):
        ShardedLoader(loader, Dist(rank=0, world_size=4))
    with pytest.raises(ValueError, match="does not split evenly over 3 processes"):
        ShardedLoader(DeviceLoader(_digits(), 16), Dist(rank=0, world_size=3))


def test_shards_are_contiguous_slices_of_the_global_batch():
    data = _digits()
    full = DeviceLoader(data, 16, seed=5)
    shards = [
        ShardedLoader(DeviceLoader(data, 16, seed=5), Dist(rank=r, world_size=2)) for r in (0, 1)
    ]
    for _ in range(3):
        x, y = full.next()
        parts = [s.next() for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
    assert len(shards[0]) == len(full)


def test_single_process_is_a_no_op():
    group = Dist()
    t = torch.ones(3)
    assert not group.enabled and group.is_main
    assert group.all_reduce(t, "mean") is t and torch.equal(t, torch.ones(3))
    loader = DeviceLoader(_digits(), 16)
    assert group.shard(loader) is loader
    m = nn.Linear(2, 2)
    assert group.wrap(m) is m
