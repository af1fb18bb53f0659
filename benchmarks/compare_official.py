"""Side by side: one search step of nasviz against the official DARTS and PC-DARTS code.

    python benchmarks/compare_official.py --official /tmp/pcdarts --official-darts /tmp/darts/cnn
    python benchmarks/compare_official.py ... --device cuda     # paper configuration

The official code is not part of nasviz: fetch yuhuixu1993/PC-DARTS and quark0/darts yourself and
pass their folders (for quark0/darts the `cnn` folder, or the repository root). Each run copies
them into a temporary folder and patches only what stops them running here: on CPU the `.cuda()`
calls are removed, and PC-DARTS' hard-coded ``self.k = 4`` is made settable for the K ablation.
Their deprecated calls (``Tensor.sub(Number, Tensor)``, ``Variable``) still run on current PyTorch
and are left as they are.

A step is what both search loops do per training batch: the architecture step on a validation
batch (first order, or second order with the unrolled model for DARTS), then the weight step
(forward, backward, gradient clipping at 5, SGD with momentum). Each step includes what its own
loop also does per batch: the official loops call ``model.train()`` on every batch (a walk over
its ~2,800 modules, about 6 ms at the small CPU size), nasviz's once per epoch
(`start_epoch`), so the official step includes it and nasviz's does not. Both implementations get the same
synthetic batches (speed does not depend on pixel values), the same hyperparameters and the same
thread count. Every (case, implementation) runs in a fresh process, so its peak memory is its own:
peak RSS on CPU, ``torch.cuda.max_memory_allocated`` on CUDA. The processes of one repeat are
started together, build and warm up, and then take turns one step at a time (official, nasviz,
nasviz, official, ...: the order rotates every step), so load from other processes on a shared
machine and the machine's drift over minutes hit every implementation alike; only one of them
runs at any moment. A process's time is the median of its steps; the table gives medians over
repeats (each repeat new processes) and the range of the per-repeat ratios.

``--baseline PATH`` adds a third implementation: nasviz imported from another checkout (e.g. a
``git archive`` of an older commit), for before/after figures in the same interleaved session.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (case name, method, overrides): the official code of each method runs the same case.
CASES: list[tuple[str, str, dict]] = [
    ("DARTS 1st order", "darts", dict(order=1)),
    ("DARTS 2nd order", "darts", dict(order=2)),
] + [(f"PC-DARTS K={k}", "pc-darts", dict(k=k)) for k in (1, 2, 4, 8)]

# The papers' hyperparameters (PAPERS.md); the official scripts' defaults are the same.
HYPER = {
    "darts": dict(lr=0.025, momentum=0.9, weight_decay=3e-4, arch_lr=3e-4, arch_wd=1e-3),
    "pc-darts": dict(lr=0.1, momentum=0.9, weight_decay=3e-4, arch_lr=6e-4, arch_wd=1e-3),
}
GRAD_CLIP = 5.0


@dataclass
class Shape:
    """Supernet and batch shape of one benchmark configuration."""

    C: int
    layers: int
    image_size: int
    batch: int


@dataclass
class Result:
    """What one child process measured."""

    impl: str
    case: str
    batch: int
    images_per_second: float  # by --clock: the process's CPU time (CPU) or wall time (CUDA)
    seconds_per_step: float
    wall_images_per_second: float
    peak_mb: float  # peak RSS (CPU) or max_memory_allocated (CUDA)
    base_mb: float  # RSS before the supernet was built (CPU), 0 on CUDA
    saved_mb: float  # tensors saved for backward by one forward (the larger of the step's two)
    threads: int  # torch intra-op threads the step ran with
    params: int  # weight parameters of the benchmarked supernet
    paper_params: int  # weight parameters of the same method at C=16, 8 cells


# ------------------------------------------------------------------------------ official code
def official_root(path: str, method: str) -> Path:
    """The folder holding model_search.py and architect.py of an official checkout."""
    p = Path(path).expanduser()
    for candidate in (p, p / "cnn"):
        if (candidate / "model_search.py").is_file() and (candidate / "architect.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"no model_search.py + architect.py in {p} or {p / 'cnn'}: pass the {method} checkout "
        "(yuhuixu1993/PC-DARTS for --official, quark0/darts for --official-darts)"
    )


def patched_copy(src: Path, device: str) -> Path:
    """Copy the official code into a temporary folder, patched only where it cannot run here."""
    dst = Path(tempfile.mkdtemp(prefix="official_")) / "code"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.pyc", "__pycache__", ".git"))
    for name in ("model_search.py", "architect.py"):
        f = dst / name
        text = f.read_text()
        if not device.startswith("cuda"):
            text = text.replace(".cuda()", "")  # hard-coded GPU placement
        if name == "model_search.py" and "self.k = 4" in text:
            # PC-DARTS fixes K=4 inside MixedOp; the K ablation sets it per run.
            text = "OFFICIAL_K = 4\n" + text.replace("self.k = 4", "self.k = OFFICIAL_K")
        f.write_text(text)
    return dst


def official_step(method: str, code: Path, shape: Shape, device: torch.device, k: int, order: int):
    """Build the official supernet and return (step function, weight parameter count)."""
    sys.path.insert(0, str(code))
    import architect as official_architect  # noqa: PLC0415 - the patched copy
    import model_search  # noqa: PLC0415

    if hasattr(model_search, "OFFICIAL_K"):
        model_search.OFFICIAL_K = k
    criterion = torch.nn.CrossEntropyLoss().to(device)
    model = model_search.Network(shape.C, 10, shape.layers, criterion).to(device)
    h = HYPER[method]
    args = types.SimpleNamespace(
        momentum=h["momentum"], weight_decay=h["weight_decay"],
        arch_learning_rate=h["arch_lr"], arch_weight_decay=h["arch_wd"],
    )  # fmt: skip
    architect = official_architect.Architect(model, args)
    optimizer = torch.optim.SGD(
        model.parameters(), h["lr"], momentum=h["momentum"], weight_decay=h["weight_decay"]
    )

    def step(x, y, x_val, y_val):
        # train_search.py's loop body, without its logging.
        model.train()
        architect.step(x, y, x_val, y_val, h["lr"], optimizer, unrolled=order == 2)
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()

    step.model = model

    def paper_params() -> int:
        # at C=16 on CPU the alphas need no GPU: only count parameters (not registered ones)
        return sum(p.numel() for p in model_search.Network(16, 10, 8, criterion).parameters())

    return step, sum(p.numel() for p in model.parameters()), paper_params


# ------------------------------------------------------------------------------ nasviz
def nasviz_step(method: str, shape: Shape, device: torch.device, k: int, order: int, fast_optim):
    """Build a nasviz search (the public factory) and return (step, weight parameter count)."""
    from nasviz.data import DatasetInfo, search_split, synthetic_dataset  # noqa: PLC0415
    from nasviz.search import create_search, preset  # noqa: PLC0415
    from nasviz.spaces.darts import Mixing, PartialChannelMixing, SearchNetwork, SpaceConfig  # noqa: PLC0415  # noqa: PLC0415

    h = HYPER[method]
    overrides = dict(
        C=shape.C, layers=shape.layers, batch_size=shape.batch, device=str(device),
        warmup_epochs=0, lr=h["lr"], arch_lr=h["arch_lr"], momentum=h["momentum"],
        weight_decay=h["weight_decay"], arch_weight_decay=h["arch_wd"], grad_clip=GRAD_CLIP,
    )  # fmt: skip
    if method == "pc-darts":
        overrides.update(k=k, edge_normalization=True)
    else:
        overrides.update(order=order)
    cfg = preset(method, "quick", dataset="cifar10", **overrides)
    info = DatasetInfo("cifar10", 10, 3, shape.image_size, (0.5,) * 3, (0.25,) * 3, 0, False, 0)
    train, val = search_split(synthetic_dataset(info, 4 * shape.batch, seed=0))
    search = create_search(cfg, None, train_data=train, val_data=val)
    if fast_optim:  # what engine.py gets once it builds its optimizers with nasviz.search.fast
        from nasviz.search import fast  # noqa: PLC0415

        search.w_optimizer = fast.weight_optimizer(
            search.model.weight_parameters(), cfg.lr, cfg.momentum, cfg.weight_decay
        )
        search.a_optimizer = fast.arch_optimizer(
            search.model.arch_parameters(), cfg.arch_lr, cfg.arch_betas, cfg.arch_weight_decay
        )
    cl = search.device.type == "cuda" and cfg.channels_last

    search.start_epoch(0)  # the loop's model.train(): once per epoch (train_search.py: per step)

    def step(x, y, x_val, y_val):
        if cl:
            x, x_val = (t.contiguous(memory_format=torch.channels_last) for t in (x, x_val))
        search.arch_step(x, y, x_val, y_val)
        search.weight_step(x, y)

    step.model = search.model

    def paper_params() -> int:
        mixing = PartialChannelMixing(k=k) if method == "pc-darts" else Mixing()
        net = SearchNetwork(SpaceConfig(C=16, layers=8), mixing)
        return sum(p.numel() for p in net.weight_parameters())

    params = sum(p.numel() for p in search.model.weight_parameters())
    return step, params, paper_params


# ------------------------------------------------------------------------------ one case
def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def saved_for_backward_mb(step, *batch: torch.Tensor) -> float:
    """MiB of the tensors that one forward of ``step`` saves for its backward (activations and
    the copies an implementation makes; the model's own parameters not counted), the larger of
    the step's two forwards (architecture step, weight step). Counted by storage, so views of
    one tensor count once. This is the memory the algorithm holds at its peak, without the
    allocator's and the runtime's share that a process's RSS also contains."""
    params = {p.untyped_storage().data_ptr() for p in step.model.parameters()}
    state: dict = {"packing": False, "current": {}, "totals": []}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if not state["packing"]:  # a new forward began
            state["packing"], state["current"] = True, {}
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            state["current"][storage.data_ptr()] = storage.nbytes()
        return t

    def unpack(t: torch.Tensor) -> torch.Tensor:
        if state["packing"]:  # its backward began: the forward's total is complete
            state["packing"] = False
            state["totals"].append(sum(state["current"].values()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        step(*batch)
    return max(state["totals"], default=0) / 2**20


PROTOCOL = "@@"  # prefix of the worker's protocol lines (the official code may print too)


def _reply(obj: dict) -> None:
    print(PROTOCOL + json.dumps(obj), flush=True)


def serve(opts: dict) -> None:
    """Worker (a fresh child process): build one (implementation, case), warm up, then run one
    timed step per ``step`` line on stdin until ``done``, and report memory and counts."""
    if opts["threads"] > 0:
        torch.set_num_threads(opts["threads"])
    # else "as shipped": the official code keeps torch's default, nasviz applies its own rule
    # (nasviz.threads: one thread on CPU unless told otherwise) when the search is built
    device = torch.device(opts["device"])
    name, method, over = next(c for c in CASES if c[0] == opts["case"])
    k, order = over.get("k", 1), over.get("order", 1)
    shape = Shape(**opts["shape"])
    gen = torch.Generator().manual_seed(0)
    size = (shape.batch, 3, shape.image_size, shape.image_size)
    x, x_val = (torch.randn(size, generator=gen).to(device) for _ in range(2))
    y, y_val = (torch.randint(0, 10, (shape.batch,), generator=gen).to(device) for _ in range(2))
    torch.manual_seed(0)
    base = _rss_mb() if device.type == "cpu" else 0.0
    if opts["impl"] == "official":
        root = opts["official_darts"] if method == "darts" else opts["official"]
        step, params, paper = official_step(method, Path(root), shape, device, k, order)
    else:
        fast_optim = opts["fast_optim"] and opts["impl"] == "nasviz"
        step, params, paper = nasviz_step(method, shape, device, k, order, fast_optim)
    for _ in range(opts["warmup"]):
        step(x, y, x_val, y_val)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    _reply({"ready": True})
    walls, cpus = [], []
    for line in sys.stdin:
        if line.strip() != "step":
            break
        t0, c0 = time.perf_counter(), time.process_time()
        step(x, y, x_val, y_val)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        _reply({"wall": walls[-1], "cpu": cpus[-1]})
    wall = statistics.median(walls)
    dt = statistics.median(cpus) if opts["clock"] == "cpu" else wall
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = _peak_rss_mb()  # read before counting the paper-size supernet below
    saved = saved_for_backward_mb(step, x, y, x_val, y_val)  # after the peak was read
    _reply(asdict(Result(
        opts["impl"], name, shape.batch, shape.batch / dt, dt, shape.batch / wall, peak, base,
        saved, torch.get_num_threads(), params, paper(),
    )))  # fmt: skip


class Worker:
    """One implementation of one case in its own Python process (its own peak memory and
    imports), driven one step at a time over a pipe."""

    def __init__(self, opts: dict) -> None:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        cwd = ROOT
        if opts["impl"] != "official":  # nasviz from this or another checkout
            cwd = Path(opts["baseline"] if opts["impl"] == "baseline" else opts["nasviz"])
            env["PYTHONPATH"] = str(cwd)
        self.label = f"{opts['impl']} / {opts['case']}"
        self.err = tempfile.TemporaryFile("w+")  # a pipe could fill up and block the child
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(opts)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
            env=env, cwd=cwd,
        )  # fmt: skip

    def read(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL):
                return json.loads(line[len(PROTOCOL) :])
        self.proc.wait()
        self.err.seek(0)
        raise RuntimeError(f"{self.label} failed:\n{self.err.read()[-3000:]}")

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def step(self) -> dict:
        self.send("step")
        return self.read()

    def finish(self) -> Result:
        self.send("done")
        result = Result(**self.read())
        self.close()
        return result

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.err.close()


def run_lockstep(opts: dict, impls: list[str], steps: int) -> tuple[dict, dict]:
    """Start one worker per implementation, let them warm up, then time ``steps`` steps of each,
    taking turns step by step. Returns (results, failures) keyed by implementation."""
    workers = {i: Worker(dict(opts, impl=i)) for i in impls}
    failed: dict[str, str] = {}

    def call(impl: str, method: str):  # noqa: ANN202 - the worker method's result or None
        try:
            return getattr(workers[impl], method)()
        except RuntimeError as err:  # e.g. official PC-DARTS cannot run K=1
            failed[impl] = str(err).strip().splitlines()[-1]
            workers.pop(impl).close()
            return None

    try:
        for impl in list(workers):
            call(impl, "read")  # ready: built and warmed up
        for s in range(steps):
            live = list(workers)
            turn = s % len(live) if live else 0  # rotate who goes first
            for impl in live[turn:] + live[:turn]:
                call(impl, "step")
        results = {impl: call(impl, "finish") for impl in list(workers)}
        return {i: r for i, r in results.items() if r is not None}, failed
    finally:
        for w in workers.values():
            w.close()


# ------------------------------------------------------------------------------ the table
def summarize(results: list[Result], impls: list[str]) -> list[str]:
    """One line per (case, batch): median images/s per implementation, ratios, memory, params."""
    lines = []
    head = f"{'case':<16} {'batch':>5} " + " ".join(f"{i + ' img/s':>16}" for i in impls)
    head += " " + " ".join(f"{'x ' + i:>17}" for i in impls[1:])
    head += " " + " ".join(f"{i[:8] + ' MiB':>13}" for i in impls)
    head += " " + " ".join(f"{i[:8] + ' saved':>14}" for i in impls)
    head += "   params (this / C=16 8 cells)"
    lines.append(head)
    keys = sorted(
        {(r.case, r.batch) for r in results},
        key=lambda t: ([c[0] for c in CASES].index(t[0]), t[1]),
    )
    for case, batch in keys:
        rows = {
            i: [r for r in results if r.impl == i and r.case == case and r.batch == batch]
            for i in impls
        }
        if any(not v for v in rows.values()):
            continue
        med = {i: statistics.median(r.images_per_second for r in v) for i, v in rows.items()}
        mem = {i: statistics.median(r.peak_mb for r in v) for i, v in rows.items()}
        saved = {i: statistics.median(r.saved_mb for r in v) for i, v in rows.items()}
        line = f"{case:<16} {batch:>5} " + " ".join(f"{med[i]:>16.2f}" for i in impls)
        for i in impls[1:]:  # ratio to the official code, with the range over repeats
            per = [
                a.images_per_second / b.images_per_second
                for a, b in zip(rows[i], rows[impls[0]], strict=False)
            ]
            line += f" {med[i] / med[impls[0]]:>6.2f} ({min(per):.2f}-{max(per):.2f})"
        line += " " + " ".join(f"{mem[i]:>13.0f}" for i in impls)
        line += " " + " ".join(f"{saved[i]:>14.1f}" for i in impls)
        line += "   " + ", ".join(
            f"{i} {rows[i][0].params:,}/{rows[i][0].paper_params:,}" for i in impls
        )
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", help="PC-DARTS checkout (yuhuixu1993/PC-DARTS)")
    parser.add_argument("--official-darts", help="DARTS checkout (quark0/darts or its cnn/)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", help="default: 8 32 (CPU), 64 256 (CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (5 CPU, 20 CUDA)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats per case")
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads of every process; 0: as each implementation ships (the official code "
        "with torch's default, nasviz with its own rule), timed by the wall clock",
    )  # fmt: skip
    parser.add_argument(
        "--clock", choices=("cpu", "wall"), default=None,
        help="cpu: the process's CPU time per step (default on CPU: on a shared machine the wall "
        "clock also counts the time other processes hold the cores); wall: elapsed time "
        "(default on CUDA). With --threads 1 both are equal on an idle machine.",
    )  # fmt: skip
    parser.add_argument(
        "--image-size", type=int, default=None,
        help="input height and width (default 16 on CPU, 32 on CUDA; 8 is the notebooks' quick "
        "preset on the 8x8 digits, with --batch 64)",
    )  # fmt: skip
    parser.add_argument("--only", nargs="+", help="substrings of the case names to run")
    parser.add_argument("--nasviz", default=str(ROOT), help="nasviz checkout (default: this one)")
    parser.add_argument("--baseline", help="also time nasviz imported from this checkout")
    parser.add_argument(
        "--fast-optim", action="store_true",
        help="nasviz with foreach/fused optimizers from nasviz.search.fast",
    )  # fmt: skip
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve(json.loads(args.child))
        return

    cuda = args.device.startswith("cuda")
    clock = args.clock or ("wall" if cuda or args.threads == 0 else "cpu")
    if clock == "cpu" and args.threads != 1:
        raise ValueError("--clock cpu needs --threads 1 (CPU time adds up over threads)")
    if cuda and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: CUDA is not available here")
    size = dict(C=16, layers=8, image_size=32) if cuda else dict(C=8, layers=5, image_size=16)
    if args.image_size is not None:
        if args.image_size < 4:
            raise ValueError(f"--image-size {args.image_size}: the two reduction cells need >= 4")
        size["image_size"] = args.image_size
    batches = args.batch or ([64, 256] if cuda else [8, 32])
    steps = args.steps or (20 if cuda else 5)
    cases = [c for c in CASES if not args.only or any(s in c[0] for s in args.only)]
    for method, flag, repo, given in (
        ("pc-darts", "--official", "yuhuixu1993/PC-DARTS", args.official),
        ("darts", "--official-darts", "quark0/darts", args.official_darts),
    ):
        if not given and any(c[1] == method for c in cases):
            print(f"skipping the {method} cases: no {flag} PATH (a checkout of {repo})")
            cases = [c for c in cases if c[1] != method]
    if not cases:
        raise ValueError("no case to run: give --official PATH and/or --official-darts PATH")
    roots = {}
    if any(c[1] == "pc-darts" for c in cases):
        roots["pc-darts"] = str(patched_copy(official_root(args.official, "PC-DARTS"), args.device))
    if any(c[1] == "darts" for c in cases):
        roots["darts"] = str(patched_copy(official_root(args.official_darts, "DARTS"), args.device))
    impls = ["official", "nasviz"] + (["baseline"] if args.baseline else [])
    if args.baseline and not (Path(args.baseline) / "nasviz").is_dir():
        raise FileNotFoundError(f"--baseline {args.baseline}: no nasviz package there")
    print(
        f"device={args.device} torch={torch.__version__} threads={args.threads} cores={os.cpu_count()} "
        f"config=C={size['C']} {size['layers']} cells {size['image_size']}x{size['image_size']} "
        f"steps={steps} warmup={args.warmup} repeats={args.repeats} fast_optim={args.fast_optim} "
        f"clock={clock}" + (f" baseline={args.baseline}" if args.baseline else "")
    )
    results: list[Result] = []
    try:
        for rep in range(args.repeats):
            for name, _method, _ in cases:
                for batch in batches:
                    opts = dict(
                        case=name, device=args.device, threads=args.threads,
                        shape=asdict(Shape(batch=batch, **size)), warmup=args.warmup,
                        official=roots.get("pc-darts"), official_darts=roots.get("darts"),
                        baseline=args.baseline, nasviz=args.nasviz, fast_optim=args.fast_optim,
                        clock=clock,
                    )  # fmt: skip
                    order = impls if rep % 2 == 0 else impls[::-1]
                    done, failed = run_lockstep(opts, order, steps)
                    for impl in order:
                        tag = f"  [{rep + 1}/{args.repeats}] {name:<16} b={batch:<4} {impl:<8}"
                        if impl in failed:
                            print(f"{tag} FAILED: {failed[impl]}", flush=True)
                            continue
                        r = done[impl]
                        results.append(r)
                        print(
                            f"{tag} {r.images_per_second:8.2f} img/s ({clock}; wall "
                            f"{r.wall_images_per_second:.2f})  peak {r.peak_mb:7.0f} MiB  saved "
                            f"{r.saved_mb:6.1f} MiB  threads {r.threads}",
                            flush=True,
                        )
    finally:
        for root in roots.values():
            shutil.rmtree(Path(root).parent, ignore_errors=True)
        if args.json:
            Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    mem = "max_memory_allocated" if cuda else "peak RSS of the process"
    print(
        f"\nmedian images/s ({clock} clock); x = ratio to the official code (range over repeats); "
        f"MiB = {mem}; saved = MiB of tensors one forward saves for backward"
    )
    print("\n".join(summarize(results, impls)))


if __name__ == "__main__":
    main()
