import json

import pytest
import torch

from nasviz.data import search_split, synthetic_dataset
from nasviz.genotypes import Genotype
from nasviz.models import NetworkCIFAR
from nasviz.search import create_search, preset, run_search
from nasviz.search.darts import DartsSearch


def _tiny(method="darts", **kw):
    base = dict(C=4, layers=3, batch_size=8, epochs=2, max_steps_per_epoch=2, warmup_epochs=0)
    base.update(kw)
    return preset(method, "quick", **base)


@pytest.fixture(scope="module")
def digits_like():
    data = synthetic_dataset("digits", 64, seed=0)
    return search_split(data, 0.5)


def _smooth(module: torch.nn.Module) -> None:
    """ReLU -> Softplus, max -> avg pool: finite differences need a smooth loss (kinks break them)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.Softplus(beta=4))
        elif isinstance(child, torch.nn.MaxPool2d):
            setattr(module, name, torch.nn.AvgPool2d(3, child.stride, 1))
        else:
            _smooth(child)


def test_second_order_gradient_matches_finite_differences(digits_like):
    torch.manual_seed(0)
    search = DartsSearch(_tiny(order=2), train_data=digits_like[0], val_data=digits_like[1])
    search.model.double()
    _smooth(search.model)
    search.loss = lambda logits, y: torch.nn.functional.cross_entropy(logits, y)  # keep float64
    gen = torch.Generator().manual_seed(1)
    x_t, x_v = (torch.randn(8, 1, 8, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    y_t, y_v = (torch.randint(0, 10, (8,), generator=gen) for _ in range(2))
    analytic = search.unrolled_arch_grad(x_t, y_t, x_v, y_v)[0]  # d/d alpha_normal

    names, params = zip(*search.model.named_weight_parameters(), strict=False)
    xi, wd = search.w_optimizer.param_groups[0]["lr"], search.config.weight_decay

    def objective() -> float:
        weights = dict(zip(names, params, strict=False))
        grads = torch.autograd.grad(search._loss_at(weights, x_t, y_t), params)
        virtual = {
            n: (p - xi * (g + wd * p)).detach()
            for n, p, g in zip(names, params, grads, strict=False)
        }
        return search._loss_at(virtual, x_v, y_v).item()

    alpha = search.model.alpha_normal
    h = 1e-5
    for idx in [(0, 4), (3, 1), (13, 7), (5, 3)]:
        with torch.no_grad():
            alpha[idx] += h
        up = objective()
        with torch.no_grad():
            alpha[idx] -= 2 * h
        down = objective()
        with torch.no_grad():
            alpha[idx] += h
        numeric = (up - down) / (2 * h)
        assert analytic[idx].item() == pytest.approx(numeric, rel=1e-2, abs=1e-5)


def test_exact_and_finite_difference_hvp_give_the_same_unrolled_gradient(digits_like):
    grads = {}
    for hvp in ("finite-difference", "exact"):
        torch.manual_seed(0)
        search = DartsSearch(
            _tiny(order=2, hvp=hvp), train_data=digits_like[0], val_data=digits_like[1]
        )
        search.model.double()
        _smooth(search.model)
        search.loss = lambda logits, y: torch.nn.functional.cross_entropy(logits, y)
        gen = torch.Generator().manual_seed(1)
        x_t, x_v = (torch.randn(8, 1, 8, 8, generator=gen, dtype=torch.float64) for _ in range(2))
        y_t, y_v = (torch.randint(0, 10, (8,), generator=gen) for _ in range(2))
        grads[hvp] = search.unrolled_arch_grad(x_t, y_t, x_v, y_v)
    # The central difference has an O(eps^2) truncation error: a percent of the gradient's size.
    for fd, exact in zip(grads["finite-difference"], grads["exact"], strict=True):
        assert (exact - fd).norm() < 1e-2 * fd.norm()
        assert not torch.equal(exact, fd)  # two different computations


def test_first_and_second_order_differ(digits_like):
    grads = []
    for order in (1, 2):
        torch.manual_seed(0)
        s = DartsSearch(_tiny(order=order), train_data=digits_like[0], val_data=digits_like[1])
        (x, y), (xv, yv) = s.train_loader.next(), s.val_loader.next()
        s.arch_step(x, y, xv, yv)
        grads.append(s.model.alpha_normal.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.slow
def test_quick_digits_search_learns_and_derives_a_valid_cell(tmp_path):
    cfg = preset("pc-darts", "quick", epochs=4, warmup_epochs=1)
    result = run_search(cfg, tmp_path / "run", progress=False)
    val = [r["metrics"]["val_acc"] for r in result.history.epochs()[1:]]
    print("supernet validation accuracy per epoch:", [round(v, 3) for v in val])
    assert max(val) > 0.5  # chance is 0.1
    g = Genotype.load(tmp_path / "run" / "genotype.json")
    assert g == result.genotype
    NetworkCIFAR(8, 10, 5, True, g, in_channels=1)(torch.randn(2, 1, 8, 8))
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["records"]) == 5 and "beta/normal" in history["records"][-1]["groups"]


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    "method, extra", [("darts", dict(order=2)), ("pc-darts", dict(k=2, warmup_epochs=1))]
)
def test_resume_equals_uninterrupted_run(tmp_path, method, extra):
    cfg = _tiny(method, epochs=3, **extra)
    straight = run_search(cfg, tmp_path / "a", progress=False)

    def stop_after_first_epoch(history, record):
        if record["kind"] == "epoch" and record["epoch"] == 1:
            raise _Stop

    with pytest.raises(_Stop):
        run_search(cfg, tmp_path / "b", progress=False, callbacks=[stop_after_first_epoch])
    resumed = run_search(None, tmp_path / "b", resume=True, progress=False)
    assert resumed.genotype == straight.genotype
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    for name, tensor in a["method_state"]["model"].items():
        assert torch.equal(tensor, b["method_state"]["model"][name]), name

    def strip(recs):
        return [
            {
                **r,
                "metrics": {
                    k: v
                    for k, v in r["metrics"].items()  # noqa: E731
                    if k not in ("seconds", "eval_seconds", "images_per_second", "peak_memory_mb")
                },
            }
            for r in recs
        ]

    assert strip(resumed.history.records) == strip(straight.history.records)


def test_existing_run_is_not_overwritten(tmp_path):
    run_search(_tiny(epochs=1), tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        create_search(_tiny(epochs=1), tmp_path)
    with pytest.raises(ValueError, match="different configuration.*batch_size"):
        create_search(_tiny(epochs=1, batch_size=4), tmp_path, resume=True)


def test_corrupt_or_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        create_search(None, tmp_path, resume=True)
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt"):
        create_search(None, tmp_path, resume=True)
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"garbage"  # left untouched


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(method="pc-darts", k=3), r"k=3 does not divide .* valid k: \[1, 2, 4\]"),
        (dict(order=3), r"order=3 is not allowed; allowed: 1, 2"),
        (dict(method="pc-darts", order=2), r"unknown pc-darts search option 'order'"),
        (dict(epochs=0), "epochs must be >= 1, got 0"),
    ],
)
def test_bad_options(kwargs, message, digits_like):
    method = kwargs.pop("method", "darts")
    with pytest.raises(ValueError, match=message):
        DartsSearch(
            _tiny(method, **kwargs), train_data=digits_like[0]
        ) if method == "darts" else create_search(
            _tiny(method, **kwargs), None, train_data=digits_like[0]
        )


def test_bad_preset_and_method():
    with pytest.raises(ValueError, match="unknown preset 'fast'.*paper, quick, smoke"):
        preset("darts", "fast")
    with pytest.raises(ValueError, match="unknown search method 'enas'"):
        preset("enas")


def test_paper_presets_follow_the_papers():
    d = preset("darts", "paper")
    assert (
        d.epochs,
        d.batch_size,
        d.lr,
        d.lr_min,
        d.arch_lr,
        d.arch_weight_decay,
        d.C,
        d.layers,
    ) == (50, 64, 0.025, 0.001, 3e-4, 1e-3, 16, 8)
    p = preset("pc-darts", "paper")
    assert (
        p.epochs,
        p.batch_size,
        p.k,
        p.lr,
        p.arch_lr,
        p.warmup_epochs,
        p.edge_normalization,
    ) == (50, 256, 4, 0.1, 6e-4, 15, True)


def test_step_records_when_asked(digits_like):
    s = create_search(
        _tiny(log_every=1, epochs=1), None, train_data=digits_like[0], val_data=digits_like[1]
    )
    h = s.run(progress=False).history
    steps = [r for r in h.records if r["kind"] == "step"]
    assert len(steps) == 2 and "alpha/normal" in steps[0]["groups"]
    assert "architecture" not in steps[0]  # derived per epoch only
