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
