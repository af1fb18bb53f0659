"""The fast search step computes what the straightforward one does (to float rounding).

* the fast cell forward (shared per-state work, one reduction per node) against the reference
  forward (every edge a MixedOp call): outputs, gradients of weights, alphas and betas, BN
  running statistics, for DARTS, PC-DARTS (K=2, 4) and SNAS;
* the multi-tensor optimizers and clipping of nasviz.search.fast against torch's default loop;
* the exact Hessian-vector product against the paper's finite difference and double backward.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from nasviz.search import fast
from nasviz.search.hessian import exact_hvp, finite_difference_hvp, named_arch_parameters
from nasviz.spaces.darts import (
    GumbelMixing,
    Mixing,
    PartialChannelMixing,
    SearchNetwork,
    SpaceConfig,
)

SMALL = SpaceConfig(C=8, layers=5, num_classes=10, in_channels=1)  # two reduction cells
MIXINGS = {
    "darts": lambda: Mixing(),
    "pc-darts-k2": lambda: PartialChannelMixing(k=2),
    "pc-darts-k4": lambda: PartialChannelMixing(k=4),
    "pc-darts-k4-no-betas": lambda: PartialChannelMixing(k=4, edge_normalization=False),
    "snas": lambda: GumbelMixing(temperature=0.7),
}


def _pair(mixing: str, config: SpaceConfig = SMALL) -> tuple[SearchNetwork, SearchNetwork]:
    nets = []
    for reference in (False, True):
        gen = torch.Generator().manual_seed(3)
        torch.manual_seed(3)
        nets.append(SearchNetwork(config, MIXINGS[mixing](), generator=gen, reference=reference))
    return nets[0], nets[1]


def _close(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """Equal to float32 rounding: relative 1e-4 of the tensor's scale, absolute 1e-6."""
    assert (a - b).abs().max().item() <= 1e-4 * b.abs().max().item() + 1e-6, what


def _same_loss_and_gradients(
    fast_net: SearchNetwork, ref_net: SearchNetwork, x: torch.Tensor, y: torch.Tensor
) -> None:
    """One forward + backward of both nets: equal logits and gradients of every parameter."""
    outs = []
    for net in (fast_net, ref_net):
        torch.manual_seed(11)  # SNAS: the same Gumbel sample for both
        out = net(x)
        F.cross_entropy(out, y).backward()
        outs.append(out)
    _close(outs[0], outs[1], "logits")
    named_ref = dict(ref_net.named_parameters())
    for n, p in fast_net.named_parameters():
        _close(p.grad, named_ref[n].grad, f"gradient of {n}")


@pytest.mark.parametrize("mixing", list(MIXINGS))
def test_fast_forward_and_gradients_equal_reference(mixing):
    fast_net, ref_net = _pair(mixing)
    for (n, a), (_, b) in zip(fast_net.named_parameters(), ref_net.named_parameters(), strict=True):
        assert torch.equal(a, b), f"same initialization: {n}"
    x = torch.randn(6, 1, 8, 8)
    _same_loss_and_gradients(fast_net, ref_net, x, torch.randint(0, 10, (6,)))
    assert fast_net.alpha_normal.grad.abs().sum() > 0 and fast_net.alpha_reduce.grad.abs().sum() > 0
    if fast_net.betas() is not None:
        assert fast_net.beta_normal.grad.abs().sum() > 0
    # BN running statistics (pooling BNs are shared per state in the fast net): equal everywhere
    sd_ref = ref_net.state_dict()
    for k, v in fast_net.state_dict().items():
        _close(v.float(), sd_ref[k].float(), f"buffer {k}")
    # ... so eval mode (running statistics) agrees too
    fast_net.eval(), ref_net.eval()
    torch.manual_seed(12)
    a = fast_net(x)
    torch.manual_seed(12)
    _close(a, ref_net(x), "eval-mode logits")


@pytest.mark.parametrize("mixing", ["darts", "pc-darts-k4", "snas"])
def test_vectorized_batch_norm_statistics_keep_the_numerics(mixing, monkeypatch):
    """nasviz.spaces.batchnorm on every grouped BN (its size thresholds at 0): logits,
    gradients and BN running statistics still equal the reference forward's."""
    from nasviz.spaces import batchnorm

    monkeypatch.setattr(batchnorm, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(batchnorm, "MIN_PIXELS", 0)
    calls = []
    monkeypatch.setattr(batchnorm._BatchNorm, "apply", _counting(batchnorm._BatchNorm.apply, calls))
    fast_net, ref_net = _pair(mixing)
    x = torch.randn(6, 1, 8, 8)
    _same_loss_and_gradients(fast_net, ref_net, x, torch.randint(0, 10, (6,)))
    assert calls, "the vectorized BN ran"
    sd_ref = ref_net.state_dict()
    for k, v in fast_net.state_dict().items():
        _close(v.float(), sd_ref[k].float(), f"buffer {k}")


@pytest.mark.parametrize("mixing", ["darts", "pc-darts-k4", "snas"])
def test_recalibrated_evaluation_runs_the_grouped_path_and_equals_reference(mixing):
    """`recalibrated_bn` sets momentum None (a cumulative average) on every BN: the grouped
    BNs keep running side by side (one conv per group, not one per op), and the recomputed
    statistics and eval-mode logits equal the reference forward's."""
    from nasviz.bn_calibration import recalibrated_bn

    fast_net, ref_net = _pair(mixing)
    gen = torch.Generator().manual_seed(5)
    batches = [(torch.randn(6, 1, 8, 8, generator=gen) * 2 + 1, None) for _ in range(3)]
    x = torch.randn(6, 1, 8, 8, generator=gen)
    outs, convs = [], []
    for net in (fast_net, ref_net):
        net.eval()
        calls = []
        torch.manual_seed(13)  # SNAS: the same Gumbel samples in both calibrations
        with (
            torch.no_grad(),
            _CountConvs(calls),
            recalibrated_bn(net, batches, torch.device("cpu"), amp=False, max_images=10**6),
        ):
            stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
            torch.manual_seed(12)
            outs.append((net(x), stats))
        convs.append(len(calls))
    (a, stats_fast), (b, stats_ref) = outs
    for k, v in stats_fast.items():
        _close(v, stats_ref[k], f"recalibrated {k}")
    _close(a, b, "eval-mode logits with recalibrated statistics")
    assert convs[0] < convs[1] / 4, f"fast net ran {convs[0]} convs, reference {convs[1]}"


class _CountConvs(torch.overrides.TorchFunctionMode):
    """Counts the F.conv2d calls made inside it."""

    def __init__(self, calls: list):
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.conv2d or func is torch.conv2d:
            self.calls.append(1)
        return func(*args, **(kwargs or {}))


def _counting(fn, calls):
    def wrapped(*args):
        calls.append(1)
        return fn(*args)

    return wrapped


@pytest.mark.parametrize("mixing", ["darts", "pc-darts-k4", "snas"])
def test_architecture_step_backward_equals_reference(mixing):
    """backward(inputs=alphas), as the first-order architecture step runs it: the custom
    backwards skip the weights' gradients (functions.grad_needed) and must still pass every
    gradient the alphas need."""
    fast_net, ref_net = _pair(mixing)
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 10, (6,))
    grads = []
    for net in (fast_net, ref_net):
        torch.manual_seed(11)
        F.cross_entropy(net(x), y).backward(inputs=net.arch_parameters())
        assert all(p.grad is None for p in net.weight_parameters())
        grads.append([p.grad for p in net.arch_parameters()])
    for a, b in zip(*grads, strict=True):
        assert a.abs().sum() > 0
        _close(a, b, "architecture gradient")


def test_swapped_modules_in_a_group_fall_back_to_each_op_and_stay_equal():
    """A member whose ReLU or BN was swapped makes its group run op by op (same function)."""
    from nasviz.genotypes import PRIMITIVES

    sep, dil = PRIMITIVES.index("sep_conv_3x3"), PRIMITIVES.index("dil_conv_3x3")
    fast_net, ref_net = _pair("darts")
    for net in (fast_net, ref_net):
        net.cells[0].edges[0].ops[sep][0][0] = torch.nn.Softplus()
        net.cells[1].edges[3].ops[dil][3].momentum = None  # cumulative moving average
    cell0, cell1 = fast_net.cells[0], fast_net.cells[1]
    assert not cell0._groups[cell0._member[(0, sep)][0]].usable()
    assert not cell1._groups[cell1._member[(3, dil)][0]].usable()
    assert cell0._groups[cell0._member[(4, sep)][0]].usable()  # edge 4 reads node 0: untouched
    _same_loss_and_gradients(fast_net, ref_net, torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))


def test_a_factorized_reduce_with_another_leading_module_runs_it():
    """The edges reading a state share the subsampling of its ReLU; a FactorizedReduce whose
    ReLU was swapped (here for Softplus) runs its own module on the state instead."""
    from nasviz.genotypes import PRIMITIVES
    from nasviz.spaces.operations import FactorizedReduce

    skip = PRIMITIVES.index("skip_connect")
    fast_net, ref_net = _pair("darts")
    reduction = next(i for i, c in enumerate(fast_net.cells) if c.reduction)
    for net in (fast_net, ref_net):
        op = net.cells[reduction].edges[0].ops[skip]
        assert isinstance(op, FactorizedReduce)
        op.relu = torch.nn.Softplus()
    _same_loss_and_gradients(fast_net, ref_net, torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))


@pytest.mark.parametrize("mixing", ["darts", "pc-darts-k2"])
def test_grouped_factorized_reduces_fall_back_after_a_swap(mixing):
    """A reduction cell's skip_connects run side by side (`GroupedReduce`); swapping one's BN
    for another module after a forward makes them run op by op, and the outputs stay equal."""
    from nasviz.genotypes import PRIMITIVES

    skip = PRIMITIVES.index("skip_connect")
    fast_net, ref_net = _pair(mixing)
    reduction = next(i for i, c in enumerate(fast_net.cells) if c.reduction)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    groups = fast_net.cells[reduction]._reduces
    assert sorted(groups) == [0, 1] and all(g.usable() for g, _ in groups.values())
    _same_loss_and_gradients(fast_net, ref_net, x, y)  # grouped
    for net in (fast_net, ref_net):
        op = net.cells[reduction].edges[1].ops[skip]  # edge 1 reads s1
        op.bn = torch.nn.GroupNorm(1, op.bn.num_features, affine=False)
    assert groups[0][0].usable() and not groups[1][0].usable()
    _same_loss_and_gradients(fast_net, ref_net, x, y)  # s1's op by op, s0's grouped


@pytest.mark.parametrize("mixing", ["darts", "pc-darts-k2"])
def test_fast_network_stays_equal_after_double_and_deepcopy(mixing):
    """`.double()` replaces every buffer and `deepcopy` copies them: the grouped BNs' running
    statistics (conv groups and `GroupedReduce`) are tied again and still update every edge's."""
    fast_net, ref_net = _pair(mixing)
    fast_net, ref_net = copy.deepcopy(fast_net).double(), ref_net.double()
    reduction = next(c for c in fast_net.cells if c.reduction)
    for group, _ in reduction._reduces.values():  # still one flat buffer, not a fallback
        storage = group.flat["running_mean"].untyped_storage().data_ptr()
        assert group.usable() and group.flat["running_mean"].dtype == torch.float64
        assert all(op.bn.running_mean.untyped_storage().data_ptr() == storage for op in group.ops)
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    _same_loss_and_gradients(fast_net, ref_net, x, torch.randint(0, 10, (4,)))
    sd_ref = ref_net.state_dict()
    for k, v in fast_net.state_dict().items():
        _close(v.double(), sd_ref[k].double(), f"buffer {k}")


@pytest.mark.parametrize("layout", [dict(merge=False), dict(merge=False, grouped=False)])
@pytest.mark.parametrize("mixing", ["darts", "pc-darts-k4"])
def test_other_group_layouts_stay_equal(mixing, layout):
    """Groups per (state, op), or none (every op stacked with the pools): the node sums read
    whatever sources the layout gives and the function stays the same."""
    fast_net, ref_net = _pair(mixing)
    for cell in fast_net.cells:
        cell._group_conv_ops(**layout)
        assert bool(cell._groups) == layout.get("grouped", True)
    _same_loss_and_gradients(fast_net, ref_net, torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,)))


def test_a_primitive_subset_without_pools_or_identity_stays_equal():
    """Only conv ops (no stacked 'rest' source) and only a parameter-free op (no groups)."""
    for primitives in (("none", "sep_conv_3x3", "dil_conv_5x5"), ("max_pool_3x3", "skip_connect")):
        nets = []
        for reference in (False, True):
            torch.manual_seed(5)
            gen = torch.Generator().manual_seed(5)
            nets.append(SearchNetwork(SMALL, Mixing(), primitives, gen, reference=reference))
        x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
        _same_loss_and_gradients(*nets, x, y)


def test_same_parameters_buffers_and_checkpoint_keys_as_reference():
    for mixing, expected in (("darts", 1_930_618), ("pc-darts-k4", 299_578)):
        fast_net, ref_net = _pair(mixing, SpaceConfig())
        for net in (fast_net, ref_net):
            assert sum(p.numel() for p in net.weight_parameters()) == expected  # official counts
        assert list(fast_net.state_dict()) == list(ref_net.state_dict())


def test_reference_checkpoint_loads_into_fast_network():
    fast_net, ref_net = _pair("pc-darts-k2")
    x = torch.randn(4, 1, 8, 8)
    ref_net(x)  # move the running statistics away from their initial values
    fast_net.load_state_dict(ref_net.state_dict())
    fast_net.eval(), ref_net.eval()
    _close(fast_net(x), ref_net(x), "eval-mode logits after loading")


def test_hooks_on_ops_see_every_op_call():
    """With hooks on the ops (cost measurement, debugging) every op runs as its own module."""
    fast_net, _ = _pair("darts")
    fast_net.eval()
    calls = []
    ops = {id(op): op for edge in fast_net.cells[0].edges for op in edge.ops}  # pools are shared
    for op in ops.values():
        op.register_forward_pre_hook(lambda m, inp: calls.append(m))
    fast_net(torch.randn(2, 1, 8, 8))
    assert len(calls) == 14 * 7  # 14 edges x 7 ops ('none' is skipped)


def test_fast_optimizers_and_clipping_equal_the_default_loop():
    torch.manual_seed(0)
    net = SearchNetwork(SpaceConfig(C=4, layers=3, in_channels=1), PartialChannelMixing(k=2))
    nets = [net, copy.deepcopy(net)]
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    w_opts = [
        fast.weight_optimizer(nets[0].weight_parameters(), 0.1, 0.9, 3e-4),
        torch.optim.SGD(nets[1].weight_parameters(), 0.1, momentum=0.9, weight_decay=3e-4),
    ]
    a_opts = [
        fast.arch_optimizer(nets[0].arch_parameters(), 6e-4, (0.5, 0.999), 1e-3),
        torch.optim.Adam(nets[1].arch_parameters(), 6e-4, betas=(0.5, 0.999), weight_decay=1e-3),
    ]
    for _ in range(2):
        for i, n in enumerate(nets):
            F.cross_entropy(n(x), y).backward()
            if i == 0:
                norm = fast.clip_grad_norm(n.weight_parameters(), 0.5)
            else:
                ref_norm = torch.nn.utils.clip_grad_norm_(n.weight_parameters(), 0.5)
            w_opts[i].step(), a_opts[i].step()
            w_opts[i].zero_grad(), a_opts[i].zero_grad()
        _close(norm, ref_norm, "gradient norm")
    for (name, a), (_, b) in zip(
        nets[0].named_parameters(), nets[1].named_parameters(), strict=True
    ):
        _close(a, b, name)


@pytest.mark.parametrize("max_norm", [0.05, 1e3])  # clipping active / inactive
@pytest.mark.parametrize("fused", [True, False])
def test_clip_and_step_equals_clip_then_step(max_norm, fused):
    torch.manual_seed(0)
    net = SearchNetwork(SpaceConfig(C=4, layers=3, in_channels=1))
    nets = [net, copy.deepcopy(net)]
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 10, (4,))
    kw = dict(momentum=0.9, weight_decay=3e-4)
    opts = [
        torch.optim.SGD(nets[0].weight_parameters(), 0.1, fused=fused, **kw),
        torch.optim.SGD(nets[1].weight_parameters(), 0.1, **kw),
    ]
    for _ in range(3):
        for i, n in enumerate(nets):
            opts[i].zero_grad()
            F.cross_entropy(n(x), y).backward()
            params = n.weight_parameters()
            if i == 0:
                norm = fast.clip_and_step(opts[0], params, max_norm)
            else:
                ref_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
                opts[1].step()
        _close(norm, ref_norm, "gradient norm")
        assert not hasattr(opts[0], "grad_scale")
    pairs = zip(nets[0].named_parameters(), nets[1].named_parameters(), strict=True)
    for (name, a), (_, b) in pairs:
        _close(a, b, name)
        _close(a.grad, b.grad, f"{name} (gradient left after the step)")


# ------------------------------------------------------------------------------ Hessian
def _smooth(module: torch.nn.Module) -> None:
    """ReLU -> Softplus, max -> avg pool: finite differences need a smooth loss (kinks break them)."""
    for name, child in module.named_children():
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, torch.nn.Softplus(beta=4))
        elif isinstance(child, torch.nn.MaxPool2d):
            setattr(module, name, torch.nn.AvgPool2d(3, child.stride, 1))
        else:
            _smooth(child)


@pytest.mark.parametrize("mixing", ["darts", "pc-darts-k2"])
def test_exact_hvp_matches_finite_difference_and_double_backward(mixing):
    config = SpaceConfig(C=4, layers=3, num_classes=10, in_channels=1)
    net, _ = _pair(mixing, config)
    net.double()
    _smooth(net)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(6, 1, 8, 8, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 10, (6,), generator=gen)

    def loss_at(p):
        return F.cross_entropy(functional_call(net, p, (x,)), y)

    weights = dict(net.named_weight_parameters())
    arch = named_arch_parameters(net)
    betas = ["beta_normal", "beta_reduce"] if mixing.startswith("pc") else []
    assert list(arch) == ["alpha_normal", "alpha_reduce", *betas]
    vector = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in weights.values()]
    running = net.cells[0].preprocess1[2].running_mean.clone()
    exact = exact_hvp(net, loss_at, weights, arch, vector)
    assert torch.equal(running, net.cells[0].preprocess1[2].running_mean)  # not updated
    approx = finite_difference_hvp(loss_at, weights, arch, vector, r=1e-4)
    g = torch.autograd.grad(loss_at({**weights, **arch}), list(weights.values()), create_graph=True)
    double = torch.autograd.grad(
        sum((a * v).sum() for a, v in zip(g, vector, strict=True)), list(arch.values())
    )
    for e, a, d, name in zip(exact, approx, double, arch, strict=True):
        assert e.shape == arch[name].shape
        assert torch.allclose(e, d, rtol=1e-9, atol=1e-12), name  # exact: same as double backward
        assert torch.allclose(e, a, rtol=1e-5, atol=1e-7), name  # the paper's approximation


def test_hvp_rejects_a_vector_of_the_wrong_length():
    net, _ = _pair("darts", SpaceConfig(C=4, layers=3, num_classes=10, in_channels=1))
    weights = dict(net.named_weight_parameters())
    with pytest.raises(ValueError, match="vector has 1 tensors"):
        exact_hvp(
            net,
            lambda p: p["alpha_normal"].sum(),
            weights,
            named_arch_parameters(net),
            [torch.ones(1)],
        )
