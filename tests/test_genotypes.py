import json

import pytest

from nasviz import genotypes as G


def test_all_published_genotypes_load_by_name():
    names = G.names()
    for required in [
        "DARTS_V1",
        "DARTS_V2",
        "PC_DARTS_cifar",
        "PC_DARTS_image",
        "NASNet",
        "AmoebaNet",
        "SNAS_mild",
        "SNAS_moderate",
        "SNAS_aggressive",
        "SNAS_mild_edge_all",
        "SNAS_moderate_edge_all",
        "SNAS_aggressive_edge_all",
    ]:
        assert required in names
    for name in names:
        g = G.get(name)
        assert g.edge_all == name.endswith("_edge_all")


def test_lookup_is_case_insensitive_with_aliases():
    assert G.get("darts_v2") == G.get("DARTS_V2")
    assert G.get("pc_darts") == G.get("PC_DARTS_cifar")
    assert G.get("snas-mild") == G.get("SNAS_mild")
    with pytest.raises(ValueError, match="unknown genotype 'nope'.*DARTS_V2"):
        G.get("nope")


def test_edge_all_nodes():
    g = G.get("snas_aggressive_edge_all")
    nodes = g.nodes("reduce")
    assert [len(n) for n in nodes] == [2, 3, 4, 5]
    assert all(op == "none" for op, _ in nodes[3])
    assert [len(n) for n in G.get("nasnet").nodes("normal")] == [2] * 5


def test_json_round_trip(tmp_path):
    for name in ["darts_v2", "snas_moderate_edge_all", "nasnet"]:
        g = G.get(name)
        path = g.save(tmp_path / f"{name}.json")
        assert G.Genotype.load(path) == g
        assert G.resolve(str(path)) == g


def test_edge_all_detected_without_flag(tmp_path):
    d = G.get("snas_mild_edge_all").to_dict()
    d.pop("edge_all")
    assert G.Genotype.from_dict(d).edge_all


def _darts_dict():
    return G.get("darts_v2").to_dict()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["normal"].__setitem__(0, ["sep_conv_9x9", 0]),
            r"normal cell, node 0: unknown op 'sep_conv_9x9'",
        ),
        (
            lambda d: d["reduce"].__setitem__(2, ["skip_connect", 3]),
            r"reduce cell, node 1: input 3 out of range",
        ),
        (
            lambda d: d["normal"].__setitem__(7, ["skip_connect", -1]),
            r"normal cell, node 3: input -1",
        ),
        (
            lambda d: d.__setitem__("normal_concat", [2, 3, 9]),
            r"normal_concat: state 9 does not exist",
        ),
        (lambda d: d.__setitem__("reduce_concat", []), r"reduce_concat is empty"),
        (lambda d: d.pop("reduce"), r"missing the key\(s\) \['reduce'\]"),
        (
            lambda d: d["normal"].__setitem__(1, ["sep_conv_3x3"]),
            r"normal\[1\].*not an \[op, input\] pair",
        ),
        (
            lambda d: d["normal"].__setitem__(1, ["sep_conv_3x3", "1"]),
            r"input '1' is not an integer",
        ),
        (lambda d: d["normal"].pop(), r"2 edges per node"),
    ],
)
def test_validation_names_the_problem(mutate, message):
    d = _darts_dict()
    mutate(d)
    with pytest.raises(ValueError, match=message):
        G.Genotype.from_dict(d)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        G.Genotype.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        G.Genotype.load(bad)
    wrong = tmp_path / "wrong.json"
    d = _darts_dict()
    d["normal"][0][0] = "conv_1x1"
    wrong.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"wrong.json: normal cell, node 0: unknown op 'conv_1x1'"):
        G.Genotype.load(wrong)


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(ValueError, match=r"unknown genotype 'darts_v3'; did you mean DARTS_V2"):
        G.get("darts_v3")
    with pytest.raises(ValueError, match=r"unknown op 'sep_conv3x3' \(did you mean 'sep_conv_3x3'"):
        d = _darts_dict()
        d["normal"][0][0] = "sep_conv3x3"
        G.Genotype.from_dict(d)


def test_nasnet_a_is_not_an_alias_of_the_darts_repo_approximation():
    # "nasnet_a" names the real NASNet block cell kind (nasviz.spaces.nasnet), not this one.
    assert G.get("nasnet") == G.get("NASNet")
    with pytest.raises(ValueError, match=r"unknown genotype 'nasnet_a'; did you mean NASNet"):
        G.get("nasnet_a")


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda p: p.write_bytes(b'{"normal": "\xc3\x28"}'), ValueError, "is not UTF-8 text"),
        (lambda p: p.mkdir(), ValueError, "is a directory"),
        (lambda p: p.write_text("[" * 50_000 + "]" * 50_000), ValueError, "deeper than 16"),
        (
            lambda p: p.write_text(json.dumps({"normal": [[[[[[[[[[[[[[[[[0]]]]]]]]]]]]]]]]]})),
            ValueError,
            "deeper than 16",
        ),  # fmt: skip
        (lambda p: p.write_text(" " * (G.MAX_FILE_BYTES + 1)), ValueError, "at most 1,048,576"),
    ],
)
def test_unreadable_files_name_the_file(tmp_path, make, error, message):
    path = tmp_path / "x.json"
    make(path)
    with pytest.raises(error, match=message) as info:
        G.Genotype.load(path)
    assert str(path) in str(info.value)
    with pytest.raises(error, match=message):
        G.resolve(str(path))


def _cells(n_nodes, edge_all=False, op="sep_conv_3x3"):
    if edge_all:
        edges = [[op, j] for i in range(n_nodes) for j in range(2 + i)]
    else:
        edges = [[op, 0], [op, 1]] * n_nodes
    concat = list(range(2, n_nodes + 2))
    return dict(normal=edges, normal_concat=concat, reduce=edges, reduce_concat=concat)


@pytest.mark.parametrize("edge_all", [False, True])
def test_cell_size_is_bounded(edge_all):
    assert G.Genotype.from_dict(_cells(G.MAX_NODES, edge_all)).num_nodes("normal") == 8
    # 9 nodes: the DARTS form's 18 edges are counted as nodes, edge-all's 54 are too many edges
    message = "has 54 edges, more than" if edge_all else "normal cell has 9 nodes; at most"
    with pytest.raises(ValueError, match=f"{message} .*MAX_NODES=8"):
        G.Genotype.from_dict(_cells(G.MAX_NODES + 1, edge_all))


def _genotype(normal, normal_concat, edge_all=False):
    darts = G.get("darts_v2")
    return G.Genotype(normal, normal_concat, darts.reduce, darts.reduce_concat, edge_all)


def test_removed_nodes_follow_none_edges_and_removed_inputs():
    g = G.get("snas_aggressive_edge_all")
    assert g.removed_nodes("reduce") == {2, 3} and g.removed_nodes("normal") == set()
    # node 0 only 'none'; node 1 reads only node 0; node 2 reads an input; node 3 node 1 and 2
    chain = [("none", 0), ("none", 1), ("skip_connect", 2), ("sep_conv_3x3", 2)]
    chain += [("none", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 3), ("skip_connect", 4)]
    g = _genotype(chain, [2, 3, 4, 5])
    assert G.removed_nodes(g, "normal") == {0, 1}
    assert G.degenerate_cells(g) == []
    assert G.degenerate_cells(_genotype(chain, [2, 3])) == ["normal"]


@pytest.mark.parametrize(
    "genotype, cells",
    [
        (_genotype([("none", i % 2) for i in range(8)], [2, 3, 4, 5]), ["normal"]),
        (  # SNAS edge-all form, every edge 'none' in both cells
            G.Genotype.from_dict(_cells(4, edge_all=True, op="none")),
            ["normal", "reduce"],
        ),
        (  # every concatenated node reachable only through 'none'
            _genotype(
                [("none", 0), ("none", 1), ("skip_connect", 2), ("skip_connect", 2)] * 2, [2, 3]
            ),
            ["normal"],
        ),  # fmt: skip
    ],
)
def test_degenerate_cells_are_found_and_refused(genotype, cells):
    assert G.degenerate_cells(genotype) == cells
    message = " and ".join(f"the {c} cell" for c in cells)
    with pytest.raises(ValueError, match=f"degenerate genotype: {message} outputs zeros"):
        G.check_not_degenerate(genotype)


def test_no_published_genotype_is_degenerate():
    for name in G.names():
        assert G.degenerate_cells(G.get(name)) == [], name
