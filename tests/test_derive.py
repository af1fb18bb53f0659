import numpy as np
import pytest

from nasviz.genotypes import PRIMITIVES
from nasviz.search.derive import derive_darts, derive_edge_all, normalize_betas, parse_cell

OPS = list(PRIMITIVES)


def _probs(winners):
    """[14, 8] probabilities where edge e puts `p` on op `name`, the rest spread evenly."""
    w = np.full((14, 8), 0.0)
    for e, (name, p) in enumerate(winners):
        w[e] = (1 - p) / 7
        w[e, OPS.index(name)] = p
    return w


def test_darts_rule_picks_two_strongest_non_none_edges():
    winners = [("sep_conv_3x3", 0.5), ("none", 0.9)] + [("skip_connect", 0.3)] * 12
    winners[3] = ("dil_conv_5x5", 0.6)  # node 1: edges 2, 3, 4
    w = _probs(winners)
    gene = parse_cell(w)
    # node 0: edge from input 1 is 'none'-dominated, but still kept (only 2 edges); its best non-none op
    assert gene[0] == ("sep_conv_3x3", 0)
    assert gene[1][1] == 1 and gene[1][0] != "none"
    assert gene[2] == ("dil_conv_5x5", 1)  # strongest edge first


def test_betas_change_which_edges_win():
    alpha = np.log(
        _probs([("sep_conv_3x3", 0.5), ("sep_conv_5x5", 0.4)] + [("skip_connect", 0.3)] * 12)
    )
    # node 1 (edges 2,3,4): without betas edges 2 and 3 tie with 4; make edge 4 weaker by alpha
    alpha[4] = np.log(_probs([("max_pool_3x3", 0.2)] * 14)[0])
    g_plain = derive_darts(alpha, alpha)
    assert sorted(j for _, j in g_plain.normal[2:4]) == [0, 1]
    beta = np.zeros(14)
    beta[4] = 3.0  # edge 4 (node 1 <- node 0 state 2) dominates its node after normalization
    beta[0] = 2.0  # node 0: edge from input 0 stronger
    g_beta = derive_darts(alpha, alpha, beta, beta)
    assert 2 in [j for _, j in g_beta.normal[2:4]]
    assert g_beta.normal[2] == ("max_pool_3x3", 2)


def test_normalize_betas_per_node():
    b = normalize_betas(np.arange(14.0))
    assert np.allclose([b[0:2].sum(), b[2:5].sum(), b[5:9].sum(), b[9:14].sum()], 1.0)


def test_edge_all_keeps_none():
    w = _probs([("none", 0.9)] * 14)
    w[0] = _probs([("sep_conv_3x3", 0.9)])[0]
    g = derive_edge_all(w, w)
    assert g.edge_all and len(g.normal) == 14
    assert g.normal[0] == ("sep_conv_3x3", 0)
    assert all(op == "none" for op, _ in g.normal[1:])


def test_wrong_shapes():
    with pytest.raises(ValueError, match="op columns"):
        parse_cell(np.zeros((14, 5)))
    with pytest.raises(ValueError, match="is not a cell"):
        parse_cell(np.zeros((13, 8)))
