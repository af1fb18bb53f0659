"""The `nasviz` command: search, retrain, info, plot.

nasviz search pc-darts --dataset digits --preset quick --out runs/pc-darts
nasviz retrain --genotype runs/pc-darts/genotype.json --dataset digits --preset quick --out runs/retrain
nasviz info --genotype pc_darts
nasviz plot runs/pc-darts
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nasviz import genotypes


def _search_parser(sub: argparse._SubParsersAction) -> None:
    from nasviz.search.config import METHODS, PRESETS

    p = sub.add_parser("search", help="run a DARTS / PC-DARTS / SNAS search")
    p.add_argument("method", choices=METHODS)
    p.add_argument("--dataset", default=None, help="digits (embedded default) or cifar10")
    p.add_argument("--preset", default="quick", choices=PRESETS)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument(
        "--k", type=int, help="PC-DARTS partial channels: 1/K of the channels pass the mixed op"
    )
    p.add_argument("--no-edge-normalization", action="store_true", help="PC-DARTS without betas")
    p.add_argument("--order", type=int, help="DARTS: 1 = first order, 2 = second order")
    p.add_argument("--seed", type=int)
    p.add_argument("--log-every", type=int, help="also record the alphas every N steps")
    p.add_argument("--max-steps-per-epoch", type=int)
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1 ...")
    p.add_argument("--data-root", default=None)
    p.add_argument(
        "--download", action="store_true", help="download CIFAR-10 into --data-root if missing"
    )
    # SNAS
    p.add_argument("--temperature", type=float, nargs=2, metavar=("START", "END"))
    p.add_argument("--temperature-schedule", choices=("linear", "exponential"))
    p.add_argument("--constraint", choices=("none", "mild", "moderate", "aggressive"))
    p.add_argument("--resource-lambda", type=float)
    p.add_argument("--penalty-form", choices=("log", "linear"))
    p.add_argument(
        "--out", required=True, help="run directory (history.json, genotype.json, checkpoint.pt)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    p.add_argument("--no-progress", action="store_true")


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `nasviz` command."""
    parser = argparse.ArgumentParser(prog="nasviz", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _search_parser(sub)
    _retrain_parser(sub)
    p = sub.add_parser("info", help="parameters and FLOPs of a genotype at the CIFAR eval config")
    p.add_argument("--genotype", help="a built-in name or a genotype.json")
    p.add_argument("--list", action="store_true", help="list the built-in genotypes")
    p.add_argument("--C", type=int, default=36)
    p.add_argument("--layers", type=int, default=20)
    p = sub.add_parser("plot", help="write every evolution plot of a run as PNG")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None, help="default: RUN_DIR/plots")
    return parser


def cmd_search(args: argparse.Namespace) -> int:
    from nasviz.models import NetworkCIFAR
    from nasviz.resources import count_parameters
    from nasviz.search import create_search, preset

    overrides = dict(
        dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size, k=args.k,
        order=args.order, seed=args.seed, log_every=args.log_every,
        max_steps_per_epoch=args.max_steps_per_epoch, device=args.device, data_root=args.data_root,
        download=args.download or None, temperature_schedule=args.temperature_schedule,
        constraint=args.constraint, resource_lambda=args.resource_lambda, penalty_form=args.penalty_form,
    )  # fmt: skip
    if args.no_edge_normalization:
        overrides["edge_normalization"] = False
    if args.temperature:
        overrides["temperature_start"], overrides["temperature_end"] = args.temperature
    given = {k: v for k, v in overrides.items() if v is not None}
    if args.resume:
        # Continue with the checkpoint's config; flags given now must agree with it.
        config = preset(args.method, args.preset, **given) if given.keys() - {"device"} else None
        search = create_search(config, args.out, resume=True, device=args.device)
    else:
        search = create_search(preset(args.method, args.preset, **given), args.out)
    cfg = search.config
    print(
        f"{cfg.method} search on {cfg.dataset} ({args.preset} preset) on {search.device}, out: {args.out}"
    )
    if search.epoch:
        print(f"resuming after epoch {search.epoch} of {cfg.epochs}")
    result = search.run(progress=not args.no_progress)
    last = result.history.last()
    g = result.genotype
    print("derived genotype:")
    print(f"  normal: {list(g.normal)}  concat {list(g.normal_concat)}")
    print(f"  reduce: {list(g.reduce)}  concat {list(g.reduce_concat)}")
    if last and "val_acc" in last["metrics"]:
        m = last["metrics"]
        print(f"supernet validation accuracy: {m['val_acc']:.4f} (train {m['train_acc']:.4f})")
        total = sum(r["metrics"].get("seconds", 0) for r in result.history.epochs())
        print(
            f"search time: {total:.1f} s ({total / max(1, len(result.history.epochs()) - 1):.1f} s/epoch)"
        )
    params = count_parameters(NetworkCIFAR(36, 10, 20, True, g))
    print(
        f"parameters at the CIFAR-10 eval config (C=36, 20 cells): {params:,} ({params / 1e6:.2f}M)"
    )
    print(f"wrote {Path(args.out) / 'history.json'}, genotype.json, checkpoint.pt")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from nasviz.train import retrain, retrain_preset

    genotype = genotypes.resolve(args.genotype)
    overrides = dict(
        dataset=args.dataset, epochs=args.epochs, batch_size=args.batch_size,
        drop_path_prob=args.drop_path_prob, seed=args.seed, max_steps_per_epoch=args.max_steps_per_epoch,
        device=args.device, data_root=args.data_root, download=args.download or None,
    )  # fmt: skip
    config = retrain_preset(args.preset, **{k: v for k, v in overrides.items() if v is not None})
    print(f"retraining on {config.dataset} ({args.preset} preset), out: {args.out}")
    result = retrain(genotype, config, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"parameters: {result.params:,}")
    print(f"test accuracy: {result.test_acc:.4f} (test loss {result.test_loss:.4f})")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from nasviz.models import NetworkCIFAR
    from nasviz.resources import cost_report

    if args.list or not args.genotype:
        print("built-in genotypes: " + ", ".join(genotypes.names()))
        return 0
    g = genotypes.resolve(args.genotype)
    model = NetworkCIFAR(args.C, 10, args.layers, True, g)
    print(
        f"genotype {args.genotype} at the CIFAR-10 eval config (C={args.C}, {args.layers} cells, 10 classes)"
    )
    print(cost_report(model, (1, 3, 32, 32)))
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
    handler = {"search": cmd_search, "retrain": cmd_retrain, "info": cmd_info, "plot": cmd_plot}[
        args.command
    ]
    try:
        return handler(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        print(f"nasviz {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; continue with the same command plus --resume (out: {getattr(args, 'out', '')})"
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
