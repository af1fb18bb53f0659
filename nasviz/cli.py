"""The `nasviz` command: search, retrain, compare, info, plot.

nasviz search pc-darts --dataset digits --preset quick --out runs/pc-darts
nasviz retrain --genotype runs/pc-darts/genotype.json --dataset digits --preset quick --out runs/retrain
nasviz info --genotype pc_darts
nasviz plot runs/pc-darts
nasviz compare --methods darts,pc-darts,snas,nasnet,cream --dataset digits --seeds 3 --random 8 --out runs/cmp
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from nasviz import architectures


def _search_parser(sub: argparse._SubParsersAction) -> None:
    from nasviz.search import registry
    from nasviz.search.config import PRESETS

    methods = registry.names()
    listing = "; ".join(f"{m}: {registry.get(m).summary}" for m in methods)
    p = sub.add_parser(
        "search",
        help=f"run a search ({', '.join(methods)})",
        description=f"Run an architecture search. Methods: {listing}.",
    )
    p.add_argument("method", choices=methods, help="the search method (from the registry)")
    p.add_argument("--dataset", default=None, help="digits (embedded default) or cifar10")
    p.add_argument("--preset", default="quick", choices=PRESETS)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--log-every", type=int, help="also record the decisions every N steps")
    p.add_argument("--max-steps-per-epoch", type=int)
    p.add_argument("--threads", type=int, help="CPU threads (default: the library's rule)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--data-root", default=None)
    p.add_argument(
        "--download", action="store_true", help="download CIFAR-10 into --data-root if missing"
    )
    seen: dict[str, str] = {}
    for m in methods:  # each method's own flags, from its registry entry
        group = p.add_argument_group(f"{registry.get(m).title} options")
        for flag in registry.get(m).cli_flags:
            if flag.flags[0] in seen:
                continue
            seen[flag.flags[0]] = m
            kwargs = dict(flag.kwargs)
            if "action" not in kwargs and "choices" not in kwargs:
                kwargs.setdefault("metavar", flag.flags[0].lstrip("-").upper().replace("-", "_"))
            group.add_argument(*flag.flags, dest=_dest(flag.flags[0]), **kwargs)
    p.add_argument(
        "--out", required=True, help="run directory (history.json, genotype.json, checkpoint.pt)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    p.add_argument("--no-progress", action="store_true")


def _dest(flag: str) -> str:
    return "m_" + flag.lstrip("-").replace("-", "_")


_COMMON_FLAGS = (
    "dataset", "epochs", "batch_size", "seed", "log_every", "max_steps_per_epoch", "threads",
    "device", "data_root",
)  # fmt: skip


def search_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the command line sets: common flags and the method's registered flags."""
    from nasviz.search import registry
    from nasviz.search.config import ConfigError

    given = {k: getattr(args, k) for k in _COMMON_FLAGS if getattr(args, k) is not None}
    if args.download:
        given["download"] = True
    entry = registry.get(args.method)
    own = {f.flags[0] for f in entry.cli_flags}
    for m in registry.names():
        for flag in registry.get(m).cli_flags:
            value = getattr(args, _dest(flag.flags[0]), None)
            if value is None or value is False:
                continue
            if flag.flags[0] not in own:
                raise ConfigError(f"{flag.flags[0]} is a {m} option; {args.method} does not use it")
            given.update(flag.config_values(value))
    return given


def _retrain_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retrain", help="train a genotype's evaluation network from scratch")
    p.add_argument(
        "--genotype", required=True, help="a built-in name (nasviz info --list) or a genotype.json"
    )
    p.add_argument("--dataset", default=None)
    p.add_argument("--preset", default="quick", choices=("paper", "quick", "smoke"))
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--drop-path-prob", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-steps-per-epoch", type=int)
    p.add_argument("--device", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--download", action="store_true")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def _compare_parser(sub: argparse._SubParsersAction) -> None:
    from nasviz.compare.config import ALL_METHODS, BUDGETS, CompareConfig
    from nasviz.search.config import PRESETS

    defaults = CompareConfig.__dataclass_fields__
    p = sub.add_parser(
        "compare",
        help="compare search methods on one split and one budget, against random architectures",
        description="Search with each method and seed on the same dataset, split and budget, "
        "retrain every result and a random baseline of each search space with the same "
        "retraining; print the table and write CSV files and plots into --out. Finished runs "
        "in --out are reused, an interrupted comparison continues where it stopped.",
    )
    p.add_argument(
        "--methods", default=ALL_METHODS, help=f"comma-separated (default {ALL_METHODS})"
    )
    p.add_argument("--dataset", default="digits")
    p.add_argument(
        "--preset", default="quick", choices=PRESETS, help="every method's search preset"
    )
    p.add_argument(
        "--seeds", type=int, default=defaults["seeds"].default, help="searches per method"
    )
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument(
        "--random", type=int, default=defaults["random"].default,
        help="random architectures per search space (0: no baseline)",
    )  # fmt: skip
    p.add_argument("--budget", default="images", choices=BUDGETS,
                   help="images: the same training images per search; seconds: the same wall clock")  # fmt: skip
    p.add_argument("--budget-value", type=float, default=None,
                   help="images or seconds per search (default: what the first method's preset spends)")  # fmt: skip
    p.add_argument("--val-portion", type=float, default=defaults["val_portion"].default,
                   help="held-out share of the training data, the same for every search")  # fmt: skip
    p.add_argument("--retrain-preset", default="quick", choices=PRESETS)
    p.add_argument("--retrain-epochs", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", default="data")
    p.add_argument("--out", required=True, help="folder of every run, the CSV files and the plots")
    p.add_argument("--no-progress", action="store_true", help="no per-run progress bars")


class _Parser(argparse.ArgumentParser):
    """argparse with a "did you mean" for a misspelt flag (``--epcohs`` -> ``--epochs``)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("allow_abbrev", False)  # --epoch must not silently mean --epochs
        super().__init__(*args, **kw)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            from nasviz.config import suggest

            owners: dict[str, list[str]] = {}
            for p in _all_parsers(self):
                for a in p._actions:
                    for flag in a.option_strings:
                        owners.setdefault(flag, []).append(p.prog)
            for word in message.split(":", 1)[1].split():
                if word.startswith("--"):
                    flag = word.split("=")[0]
                    if flag in owners:  # a real flag, given to a command that has no such option
                        message += f" ({flag} is an option of {', '.join(owners[flag])} only)"
                    else:
                        message += suggest(flag, sorted(owners))
                    break
        super().error(message)


def _all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _all_parsers(sub)
    return found


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `nasviz` command."""
    parser = _Parser(prog="nasviz", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _search_parser(sub)
    _retrain_parser(sub)
    _compare_parser(sub)
    p = sub.add_parser("info", help="parameters and FLOPs of a genotype at the CIFAR eval config")
    p.add_argument("--genotype", help="a built-in name or a genotype.json")
    p.add_argument("--list", action="store_true", help="list the built-in genotypes")
    p.add_argument("--C", type=int, default=None, help="width (default: the kind's paper configs)")
    p.add_argument("--layers", type=int, default=None, help="depth (default: the paper configs)")
    p = sub.add_parser("plot", help="write every evolution plot of a run as PNG")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="default: RUN_DIR/plots")
    return parser


def cmd_search(args: argparse.Namespace) -> int:
    from nasviz.search import create_search, preset

    given = search_overrides(args)
    if args.resume:
        # Continue with the checkpoint's config; the flags given now must agree with it.
        search = create_search(
            None, args.out, resume=True, device=args.device, method=args.method, overrides=given
        )
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            search = create_search(preset(args.method, args.preset, **given), args.out)
        for w in caught:  # settings that are allowed but probably not meant
            print(f"nasviz search: warning: {w.message}", file=sys.stderr)
    cfg = search.config
    if not search.dist.is_main:  # torchrun: rank 0 alone reports (and writes files)
        search.run(progress=False)
        return 0
    ranks = f", {search.dist.world_size} processes" if search.dist.enabled else ""
    print(
        f"{cfg.method} search on {cfg.dataset} ({args.preset} preset) on {search.device} "
        f"({search.threads} CPU threads{ranks}), out: {args.out}"
    )
    if search.epoch:
        print(f"resuming after epoch {search.epoch} of {cfg.epochs}")
    result = search.run(progress=not args.no_progress)
    _print_search_result(result)
    print(f"wrote {Path(args.out) / 'history.json'}, genotype.json, checkpoint.pt")
    return 0


def _print_search_result(result: Any) -> None:
    from nasviz.resources import count_parameters

    arch = result.architecture
    print(f"derived architecture ({arch.kind}):")
    print(f"  {arch}")
    last = result.history.last()
    m = last["metrics"] if last else {}
    if "val_acc" in m:
        train = f" (train {m['train_acc']:.4f})" if "train_acc" in m else ""
        print(f"validation accuracy: {m['val_acc']:.4f}{train}")
    epochs = result.history.epochs()[1:]
    total = sum(r["metrics"].get("seconds", 0) for r in epochs)
    print(f"search time: {total:.1f} s ({total / max(1, len(epochs)):.1f} s/epoch)")
    try:
        desc, net, _ = arch.reference_networks()[0]
    except ValueError as exc:  # e.g. a degenerate cell: the search result is saved all the same
        print(f"warning: the derived architecture has no evaluation network: {exc}")
        return
    params = count_parameters(net)
    print(f"parameters at {desc}: {params:,} ({params / 1e6:.2f}M)")


def cmd_retrain(args: argparse.Namespace) -> int:
    from nasviz.train import retrain, retrain_preset

    genotype = architectures.resolve(args.genotype)
    overrides = dict(
        dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        drop_path_prob=args.drop_path_prob, seed=args.seed, max_steps_per_epoch=args.max_steps_per_epoch,
        device=args.device, data_root=args.data_root, download=args.download or None,
    )  # fmt: skip
    given = {k: v for k, v in overrides.items() if v is not None}
    config = retrain_preset(args.preset, kind=genotype.kind, **given)  # Cream: its own recipe
    print(f"retraining on {config.dataset} ({args.preset} preset), out: {args.out}")
    result = retrain(genotype, config, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"parameters: {result.params:,}")
    print(f"test accuracy: {result.test_acc:.4f} (test loss {result.test_loss:.4f})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from nasviz.compare import CompareConfig, run_comparison, save_results
    from nasviz.compare.table import display_frame, reading

    config = CompareConfig.create(
        methods=args.methods, dataset=args.dataset, data_root=args.data_root, preset=args.preset,
        seeds=args.seeds, first_seed=args.first_seed, random=args.random, budget=args.budget,
        budget_value=args.budget_value, val_portion=args.val_portion,
        retrain_preset=args.retrain_preset, retrain_epochs=args.retrain_epochs, out=args.out,
        device=args.device,
    )  # fmt: skip
    comparison = run_comparison(config, progress=not args.no_progress)
    paths = save_results(comparison)
    frame = display_frame(comparison.frame())
    with _pandas_wide():
        print("\nper method and seed:")
        print(frame.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
        print("\nper method (means over seeds):")
        print(comparison.summary().to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    print("\nreading:")
    for line in reading(comparison.summary(), comparison.frame(), comparison.budget):
        print(f"  {line}")
    print(f"\nbudget: {comparison.budget.describe()}")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _pandas_wide() -> Any:
    import pandas as pd

    return pd.option_context("display.width", 250, "display.max_columns", 40)


def cmd_info(args: argparse.Namespace) -> int:
    from nasviz.resources import cost_report

    if args.list or not args.genotype:
        for kind, names in architectures.names().items():
            print(f"built-in {kind} architectures: " + ", ".join(names))
        return 0
    arch = architectures.resolve(args.genotype)
    if args.C is not None or args.layers is not None:
        net = arch.build_network(num_classes=10, image_size=32, C=args.C, layers=args.layers)
        nets = [(f"C={args.C}, layers={args.layers}, 32x32, 10 classes", net, (1, 3, 32, 32))]
    else:
        nets = arch.reference_networks()
    for desc, net, shape in nets:
        print(f"{args.genotype} ({arch.kind}) at {desc}")
        print(cost_report(net, shape))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from nasviz.viz.evolution import plot_run

    paths = plot_run(args.run_dir, args.out)
    for p in paths:
        print(p)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `nasviz` command; user errors print one clear line and exit 2."""
    args = build_parser().parse_args(argv)
    handler = {
        "search": cmd_search, "retrain": cmd_retrain, "compare": cmd_compare, "info": cmd_info,
        "plot": cmd_plot,
    }[args.command]  # fmt: skip
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as exc:
        print(f"nasviz {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; continue with the same command plus --resume (out: {getattr(args, 'out', '')})"
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
