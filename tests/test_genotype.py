"""Genotypes: JSON, validation, discretisation rules, validity, drawing."""

import json
from pathlib import Path

import numpy as np
import pytest

from dscd.genotype import (
    Genotype,
    GenotypeError,
    cell_summary,
    check_validity,
    discretise,
    draw_genotype,
    load_genotype,
    load_genotypes,
    published_genotypes,
    topological_edges,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "genotypes.json"


def test_reads_the_reference_file_and_round_trips_exactly(tmp_path):
    genotypes = load_genotypes(REFERENCE)
    assert len(genotypes) == 8 and genotypes["DARTS_V2"].style == "darts"
    raw = json.loads(REFERENCE.read_text())
    for name, g in genotypes.items():
        assert [list(e) for e in g.normal] == raw[name]["normal"]
        assert Genotype.from_json(g.to_json()) == g
        g.save(tmp_path / f"{name}.json")
        assert load_genotype(tmp_path / f"{name}.json") == g
    assert load_genotype(REFERENCE, "FairDARTS_a") == genotypes["FairDARTS_a"]


@pytest.mark.parametrize(
    "content,match",
    [
        ('{"normal": [["conv_9x9", 0, 2]], "reduce": []}', "unknown operation 'conv_9x9'"),
        ('{"normal": [["sep_conv_3x3", 0, 7]], "reduce": []}', "node index 7 out of range"),
        ('{"normal": [["sep_conv_3x3", 9, 2]], "reduce": []}', "node index 9 out of range"),
        ('{"normal": [["sep_conv_3x3", 2, 1]], "reduce": []}', "edge into input node 1"),
        ('{"normal": [["sep_conv_3x3", 3, 2], ["skip_connect", 2, 3]], "reduce": []}', "cycle"),
        ('{"normal": [["sep_conv_3x3", 2, 2]], "reduce": []}', "cycle"),
        ('{"normal": [["sep_conv_3x3", 0]], "reduce": []}', "triples"),
        ('{"normal": []}', "missing"),
        ('{"a": 1', "not valid JSON"),
        ('[1, 2]', "expected a genotype"),
        ('{"normal": [], "reduce": [], "style": "weird"}', "style"),
    ],
)
def test_malformed_files_get_clear_errors(tmp_path, content, match):
    path = tmp_path / "g.json"
    path.write_text(content)
    with pytest.raises(GenotypeError, match=match):
        load_genotype(path)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(GenotypeError, match="no genotype file"):
        load_genotype(tmp_path / "nope.json")
    with pytest.raises(GenotypeError, match="no genotype named 'X'"):
        load_genotype(REFERENCE, "X")
    with pytest.raises(GenotypeError, match="choose one with --name"):
        load_genotype(REFERENCE)


def test_topological_order_ignores_the_listed_order():
    edges = [("skip_connect", 3, 5), ("sep_conv_3x3", 2, 3), ("max_pool_3x3", 0, 2), ("avg_pool_3x3", 1, 3)]
    order = topological_edges(edges)
    assert order.index(("max_pool_3x3", 0, 2)) < order.index(("sep_conv_3x3", 2, 3)) < order.index(
        ("skip_connect", 3, 5))
    assert topological_edges(list(reversed(edges))) == order


def _weights(value=0.5):
    return np.full((14, 7), value)


def test_all_half_gives_an_empty_invalid_genotype():
    g = discretise(_weights(), _weights())
    assert g.normal == () and g.reduce == ()
    validity = check_validity(g)
    assert not validity.valid and set(validity.reasons) == {"normal", "reduce"}


def test_fairdarts_rule_keeps_top2_edges_then_thresholds():
    w = _weights(0.1)
    # node 2 (edges 0, 1): both edges strong; node 3 (edges 2, 3, 4): three candidates, only top-2 kept
    w[0, 3] = 0.95
    w[1, 6] = 0.90
    w[2, 0], w[3, 4], w[4, 2] = 0.80, 0.99, 0.70  # edge 2 is in the top 2 but below the threshold; edge 4 is not
    w[3, 5] = 0.97  # a second op above threshold on edge 3: only the arg-max is kept
    g = discretise(w, _weights(0.1))
    assert g.normal == (("sep_conv_3x3", 0, 2), ("dil_conv_5x5", 1, 2), ("sep_conv_5x5", 1, 3))
    assert g.style == "threshold"
    # 'threshold' keeps every pair >= 0.85 on every edge
    t = discretise(w, _weights(0.1), rule="threshold")
    assert set(t.normal) == {("sep_conv_3x3", 0, 2), ("dil_conv_5x5", 1, 2), ("sep_conv_5x5", 1, 3),
                             ("dil_conv_3x3", 1, 3)}
    # 'darts' keeps the top-2 edges of every node with their arg-max op, whatever the threshold
    d = discretise(w, _weights(0.1), rule="darts")
    assert d.style == "darts" and len(d.normal) == 8 and len(d.reduce) == 8
    assert ("sep_conv_5x5", 1, 3) in d.normal and ("max_pool_3x3", 0, 3) in d.normal


def test_only_the_reduction_cell_survives():
    red = _weights(0.1)
    red[0, 1] = 0.9
    g = discretise(_weights(0.1), red)
    assert g.normal == () and g.reduce == (("avg_pool_3x3", 0, 2),)
    validity = check_validity(g)
    assert not validity.valid and list(validity.reasons) == ["normal"]
    assert "normal cell" in validity.message()


def test_a_node_fed_only_by_an_unreachable_node_does_not_make_a_cell_valid():
    g = Genotype(normal=(("skip_connect", 3, 4),), reduce=(("skip_connect", 0, 2),))
    assert check_validity(g).reasons == {"normal": "no intermediate node is reachable from the cell inputs"}


def test_cell_summary_numbers():
    w = _weights(0.1)
    w[0, 3] = 0.95
    w[1, :] = 0.9
    g = discretise(w, _weights(0.1))
    s = cell_summary(w, g.normal)
    assert s["mean_weight"] == pytest.approx(w.mean())
    assert s["fraction_above_threshold"] == pytest.approx(8 / 98)
    assert s["kept_edges"] == 2 and s["kept_pairs"] == 2 and s["mean_discretised"] == pytest.approx(2 / 98)


def test_discretise_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown discretisation rule"):
        discretise(_weights(), _weights(), rule="top3")
    with pytest.raises(ValueError, match="shape"):
        discretise(np.zeros((13, 7)), _weights())


def test_draw_genotype_returns_a_figure():
    import matplotlib.pyplot as plt

    fig = draw_genotype(load_genotype(REFERENCE, "FairDARTS_a"), title="a")
    assert len(fig.axes) == 2
    plt.close(fig)


# ----------------------------------------------------------------------------- published, DARTS' format

# As the DARTS, PC-DARTS and P-DARTS repositories print them (pairs: (op, from_node), two per node).
DARTS_V2_TEXT = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
                 "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
                 "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
                 "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
                 "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
# FairDARTS' own file writes triples (op, to_node, from_node).
FAIRDARTS_A_TEXT = ("FairDARTS_a = Genotype(normal=[('sep_conv_3x3', 2, 0), ('sep_conv_5x5', 2, 1), "
                    "('max_pool_3x3', 4, 0), ('sep_conv_3x3', 5, 0)], normal_concat=range(2, 6),\n"
                    "         reduce=[('max_pool_3x3', 2, 0), ('avg_pool_3x3', 2, 1), ('avg_pool_3x3', 3, 0), "
                    "('dil_conv_5x5', 3, 1), ('avg_pool_3x3', 4, 0), ('sep_conv_5x5', 4, 1),\n"
                    "                 ('skip_connect', 5, 0), ('skip_connect', 5, 1)], reduce_concat=range(2, 6))\n")


def test_published_genotypes_ship_with_the_package_and_load_by_name():
    published = published_genotypes()
    assert {"DARTS_V1", "DARTS_V2", "PC_DARTS", "PDARTS"} | {f"FairDARTS_{c}" for c in "abcdefg"} == set(published)
    reference = load_genotypes(REFERENCE)
    for name, genotype in reference.items():  # the same data as the reference copy
        assert published[name] == genotype, name
    assert load_genotype("DARTS_V2") == published["DARTS_V2"] and all(g.is_valid() for g in published.values())
    with pytest.raises(GenotypeError, match="no published genotype of that name .*DARTS_V2"):
        load_genotype("DARTS_V3")


def test_darts_text_reads_to_the_same_genotypes_and_round_trips_exactly(tmp_path):
    assert Genotype.from_darts(DARTS_V2_TEXT) == load_genotype("DARTS_V2")
    assert Genotype.from_darts(FAIRDARTS_A_TEXT) == load_genotype("FairDARTS_a")
    for name, genotype in published_genotypes().items():
        text = genotype.to_darts()
        assert Genotype.from_darts(text) == genotype, name
        assert Genotype.from_darts(text).to_darts() == text
    assert load_genotype("DARTS_V2").to_darts().startswith("Genotype(normal=[('sep_conv_3x3', 0), ")
    assert load_genotype("FairDARTS_a").to_darts().startswith("Genotype(normal=[('sep_conv_3x3', 2, 0), ")
    # a genotypes.py with several, an alias and other statements: by name
    source = tmp_path / "genotypes.py"
    source.write_text("from collections import namedtuple\nGenotype = namedtuple('Genotype', 'normal normal_concat "
                      "reduce reduce_concat')\n" + FAIRDARTS_A_TEXT + f"DARTS_V2 = {DARTS_V2_TEXT}\nDARTS = DARTS_V2\n")
    assert set(load_genotypes(source)) == {"FairDARTS_a", "DARTS_V2"}
    assert load_genotype(source, "DARTS_V2") == load_genotype("DARTS_V2")


@pytest.mark.parametrize("text,match", [
    ("Genotype(normal=[('sep_conv_5x5', 1)], normal_concat=[4, 5, 6], reduce=[], reduce_concat=[4, 5, 6])",
     "normal_concat=\\[4, 5, 6\\] is not supported"),
    ("Genotype(normal=[('sep_conv_7x7', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
     "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])", "unknown operation 'sep_conv_7x7'"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=range(2, 6), reduce=[], reduce_concat=range(2, 6))",
     "two"),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 2, 1)], normal_concat=[2], reduce=[], "
     "reduce_concat=[2])", "mixes pairs and triples"),
    ("Genotype(normal=[('sep_conv_3x3', 0)]", "not a Genotype"),
    ("x = 1", "no Genotype"),
])
def test_darts_text_errors_say_what_is_wrong(text, match):
    with pytest.raises(GenotypeError, match=match):
        Genotype.from_darts(text)


def test_published_sizes_match_the_papers():
    """Parameters of the evaluation network (C=36, 20 cells, auxiliary head excluded), as published:
    DARTS 3.3 M, PC-DARTS 3.6 M, P-DARTS 3.4 M. (FairDARTS' threshold genotypes build cells whose width
    depends on the nodes with input, so their published sizes are not this network's.)"""
    from dscd.eval_network import EvalNetwork, network_size

    for name, params in (("DARTS_V2", 3.3), ("PC_DARTS", 3.6), ("PDARTS", 3.4)):
        size = network_size(EvalNetwork(load_genotype(name)))
        assert size.params_m == pytest.approx(params, abs=0.1), name


def test_describe_takes_names_and_darts_text_files(tmp_path, capsys):
    from dscd import cli

    assert cli.main(["describe", "PC_DARTS"]) == 0
    assert "PC_DARTS" in capsys.readouterr().out
    path = tmp_path / "mine.txt"
    path.write_text(DARTS_V2_TEXT)
    assert cli.main(["describe", str(path)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mine "))
    assert row.split()[1] == "darts" and float(row.split()[2]) == pytest.approx(3.35, abs=0.01)  # as DARTS_V2
