"""Data parallelism for every search: one process per device, started by ``torchrun``.

    torchrun --nproc-per-node 2 -m nasviz search cream --dataset digits --preset quick --out runs/c

`from_env` reads torchrun's variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins the process group: gloo on the CPU, nccl on CUDA (each rank on
``cuda:LOCAL_RANK``). Without them (``WORLD_SIZE`` unset or 1) nothing changes: `Dist` is a
single-process no-op and the search runs exactly as before.

What the engine does with it (``nasviz.search.base``, ``nasviz.search.supernet``,
``nasviz.search.cream``):

* every rank seeds identically, so every random decision that is not data (a Cream path, a
  Gumbel sample) is the same on every rank;
* the loaders keep the whole split on every rank and draw the same global batch (same
  generator, same augmentation) on every rank; `ShardedLoader` hands each rank its contiguous
  ``batch_size / world_size`` slice. The global batch is the single-process batch, and shard 0
  starts with the global batch's first images;
* gradients are averaged over ranks before anything reads them (clipping, the optimizer step):
  the Cream supernet through `torch.nn.parallel.DistributedDataParallel`
  (``find_unused_parameters=True``: a path uses one block per layer); the DARTS-family weights by
  one flat all-reduce once a backward has accumulated all of them
  (`average_gradients_on_backward`), so every backward of the method's own step is covered
  (DARTS' weight step, SNAS' single step); the architecture parameters by an all-reduce just before their optimizer steps
  (`average_gradients_before_step`), which also covers gradients assigned by hand (second-order
  DARTS);
* epoch means are summed over ranks; rank 0 alone writes files and shows the progress bar;
  BN running statistics are broadcast from rank 0 at the end of each epoch, so evaluation and
  checkpoints agree on every rank.

A rank that dies makes the others' next collective fail (the peer's socket closes), or time out
after ``NASVIZ_DIST_TIMEOUT`` seconds (default 300): they stop with `RankLostError`, naming the
last saved epoch that ``--resume`` continues.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

TIMEOUT_ENV = "NASVIZ_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 300.0


class RankLostError(RuntimeError):
    """Another rank stopped (crashed, killed, or stuck) while this one waited for it."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def timeout_seconds() -> float:
    """How long a collective waits for the other ranks (``NASVIZ_DIST_TIMEOUT``, seconds)."""
    value = os.environ.get(TIMEOUT_ENV)
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be > 0 seconds, got {value!r}")
    return seconds


@dataclass
class Dist:
    """Where this process stands in the data-parallel group (a no-op with one process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and shows progress."""
        return self.rank == 0

    # ------------------------------------------------------------------ devices and data
    def device(self, device: torch.device) -> torch.device:
        """This rank's device: ``cuda:LOCAL_RANK`` for a CUDA run, the device itself otherwise."""
        if self.enabled and device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def check_batch(self, batch_size: int, what: str = "batch_size") -> int:
        """The per-rank batch; a clear error when the global batch cannot be split evenly."""
        if not self.enabled:
            return batch_size
        if batch_size < self.world_size:
            raise ValueError(
                f"{self.world_size} processes but a global {what} of {batch_size}: there are "
                f"fewer data shards than processes; use at most {batch_size} processes "
                f"(torchrun --nproc-per-node) or a larger --batch-size"
            )
        if batch_size % self.world_size:
            raise ValueError(
                f"{what}={batch_size} does not split evenly over {self.world_size} processes; "
                f"use a multiple of {self.world_size} (each rank trains on batch_size / processes)"
            )
        return batch_size // self.world_size

    def shard(self, loader: Any) -> Any:
        """``loader`` handing this rank its slice of every global batch (itself with one rank)."""
        if not self.enabled:
            return loader
        return ShardedLoader(loader, self)

    def wrap(self, module: nn.Module, *, find_unused_parameters: bool = False) -> nn.Module:
        """``module`` in DistributedDataParallel (itself with one rank)."""
        if not self.enabled:
            return module
        device = next(module.parameters()).device
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            module, device_ids=ids, find_unused_parameters=find_unused_parameters
        )

    # ------------------------------------------------------------------ collectives
    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Sum (or ``op="mean"``) of ``tensor`` over ranks, in place; returns it."""
        if not self.enabled:
            return tensor
        _call(dist.all_reduce, tensor)
        if op == "mean":
            tensor.div_(self.world_size)
        return tensor

    def all_reduce_list(self, tensors: list[torch.Tensor], op: str = "mean") -> list[torch.Tensor]:
        """All-reduce several tensors in one flat buffer (one collective); returns new tensors."""
        if not self.enabled or not tensors:
            return tensors
        flat = torch.cat([t.reshape(-1).float() for t in tensors])
        self.all_reduce(flat, op)
        out, start = [], 0
        for t in tensors:
            out.append(flat[start : start + t.numel()].view_as(t).to(t.dtype))
            start += t.numel()
        return out

    def broadcast(self, tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
        """Rank ``src``'s ``tensor`` on every rank (in place; same shape and dtype everywhere)."""
        if self.enabled:
            _call(dist.broadcast, tensor, src)
        return tensor

    def broadcast_buffers(self, module: nn.Module) -> None:
        """Copy rank 0's buffers (BN running statistics) to every rank."""
        if not self.enabled:
            return
        for b in module.buffers():
            self.broadcast(b)

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.enabled:
            _call(dist.barrier)

    def average_gradients_before_step(self, optimizer: torch.optim.Optimizer) -> Any:
        """Average the optimizer's gradients over ranks right before each of its steps."""
        if not self.enabled:
            return None

        def hook(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
            for p, g in zip(params, self.all_reduce_list([p.grad for p in params]), strict=True):
                p.grad.copy_(g)

        return optimizer.register_step_pre_hook(hook)

    def average_gradients_on_backward(
        self, params: Iterable[nn.Parameter], optimizer: torch.optim.Optimizer | None = None
    ) -> list[Any]:
        """Average the gradients of ``params`` over ranks once a backward has accumulated them all.

        For networks whose every parameter takes part in every backward that reaches them (the
        DARTS-family supernets: every op of every edge runs): when the last of them is
        accumulated, all are averaged in one flat all-reduce, before anything reads them
        (clipping, the step). Every rank runs the same backward, so the collectives match. With
        ``optimizer``, its step refuses gradients that were left unreduced.
        """
        if not self.enabled:
            return []
        params = list(params)
        order = {id(p): i for i, p in enumerate(params)}
        pending: list[torch.Tensor] = []

        def hook(p: torch.Tensor) -> None:
            pending.append(p)
            if len(pending) == len(params):
                pending.sort(key=lambda q: order[id(q)])  # the same order on every rank
                grads = self.all_reduce_list([q.grad for q in pending], "mean")
                for q, g in zip(pending, grads, strict=True):
                    q.grad.copy_(g)
                pending.clear()

        def check(opt: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
            if pending:
                raise RuntimeError(
                    f"data parallel: a backward reached {len(pending)} of {len(params)} weights; "
                    "their gradients were not averaged over ranks (a network with parameters "
                    "that some steps skip needs DistributedDataParallel)"
                )

        handles = [p.register_post_accumulate_grad_hook(hook) for p in params]
        if optimizer is not None:
            handles.append(optimizer.register_step_pre_hook(check))
        return handles

    def same_on_all_ranks(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` is bitwise equal on every rank (for tests and checks)."""
        if not self.enabled:
            return True
        mine = tensor.detach().float().reshape(-1).clone()
        ref = self.broadcast(mine.clone())
        diff = torch.tensor([float((mine != ref).any())], device=mine.device)
        return float(self.all_reduce(diff)) == 0.0


def _call(fn: Any, *args: Any) -> Any:
    """A collective, with a lost peer turned into `RankLostError`."""
    try:
        return fn(*args)
    except RankLostError:
        raise
    except Exception as exc:  # gloo/nccl raise RuntimeError subclasses with transport messages
        raise RankLostError(lost_message(exc)) from exc


def lost_message(exc: BaseException) -> str:
    """The message every rank prints when the group breaks."""
    return (
        f"data-parallel rank {os.environ.get('RANK', '?')} lost contact with the other ranks "
        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); another process "
        f"probably died or was killed. Stopped; continue from the last saved epoch with the same "
        f"command plus --resume"
    )


def is_comm_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from a broken process group (e.g. raised inside a DDP backward)."""
    if isinstance(exc, RankLostError):
        return True
    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        k in text for k in ("gloo", "nccl", "connection", "timed out", "peer")
    )


class ShardedLoader:
    """A `DeviceLoader` giving this rank its contiguous slice of each global batch.

    Every rank holds the same loader (same data, generator and seed), so every rank draws the
    same global batch with the same augmentation; rank r keeps rows
    ``[r * b, (r + 1) * b)`` with ``b = batch_size / world_size``. Resuming restores the global
    loader's state, so a resumed run sees the same shards.
    """

    def __init__(self, loader: Any, group: Dist) -> None:
        self.loader = loader
        self.group = group
        self.local_batch = group.check_batch(loader.batch_size)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:  # data, info, device, epoch, ...
        return getattr(self.loader, name)

    def _slice(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = batch
        n = x.shape[0]
        if n < self.group.world_size:
            raise ValueError(
                f"a batch of {n} images cannot be split over {self.group.world_size} processes"
            )
        # a short last batch (drop_last=False) splits as evenly as possible
        per = (
            -(-n // self.group.world_size)
            if n % self.group.world_size
            else n // self.group.world_size
        )
        lo = min(self.group.rank * per, n)
        return x[lo : lo + per], y[lo : lo + per]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's slice of the next global batch."""
        return self._slice(self.loader.next())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for batch in self.loader:
            yield self._slice(batch)

    def state_dict(self) -> dict[str, Any]:
        """The global loader's state (the same on every rank)."""
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the global loader's state."""
        self.loader.load_state_dict(state)


_GROUP: Dist | None = None


def from_env(device: torch.device | str = "cpu") -> Dist:
    """This process's `Dist` from torchrun's variables, joining the process group once."""
    global _GROUP
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return Dist()
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    device = torch.device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(local)
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=world,
            timeout=datetime.timedelta(seconds=timeout_seconds()),
        )
    elif dist.get_world_size() != world or dist.get_rank() != rank:
        raise RuntimeError(
            f"a process group of size {dist.get_world_size()} (rank {dist.get_rank()}) is already "
            f"initialized, but the environment says rank {rank} of {world}"
        )
    group = Dist(rank=rank, world_size=world, local_rank=local, backend=dist.get_backend())
    _GROUP = group
    return group


def current() -> Dist:
    """The group joined by `from_env` (a single-process `Dist` before or without one)."""
    return _GROUP if _GROUP is not None else Dist()


__all__ = [
    "DEFAULT_TIMEOUT_S",
    "TIMEOUT_ENV",
    "Dist",
    "RankLostError",
    "ShardedLoader",
    "current",
    "from_env",
    "is_comm_error",
    "timeout_seconds",
]
