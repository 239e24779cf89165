"""The final-architecture network: published sizes, edge-order independence, invalid genotypes."""

import random
from pathlib import Path

import pytest
import torch

from dscd import cli
from dscd.eval_network import EvalNetwork, InvalidArchitectureError, network_size
from dscd.genotype import Genotype, load_genotype

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "genotypes.json"


def test_darts_v2_matches_its_published_size():
    size = network_size(EvalNetwork(load_genotype(REFERENCE, "DARTS_V2")))
    assert round(size.params_m, 1) == 3.3  # DARTS: 3.3 M (auxiliary head excluded)
    assert size.params_m == pytest.approx(3.349342, abs=1e-6)
    assert round(size.flops_m) == 528  # the paper's Table 2: 528 M


def test_fairdarts_a_matches_its_published_size():
    size = network_size(EvalNetwork(load_genotype(REFERENCE, "FairDARTS_a")))
    assert round(size.params_with_aux_m, 2) == 2.84  # FairDARTS reports 2.83 M, counting the auxiliary head
    assert size.flops_m == pytest.approx(373, rel=0.01)  # Table 2: 373 M (we count 371.5: conv + linear only)


def test_edge_order_does_not_matter():
    g = load_genotype(REFERENCE, "FairDARTS_c")
    shuffled = list(g.normal)
    random.Random(0).shuffle(shuffled)
    g2 = Genotype(normal=tuple(shuffled), reduce=tuple(reversed(g.reduce)), style=g.style)
    torch.manual_seed(0)
    a = EvalNetwork(g, channels=8, layers=5).eval()
    torch.manual_seed(0)
    b = EvalNetwork(g2, channels=8, layers=5).eval()
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(a(x), b(x))


def test_several_ops_on_an_edge_and_skipped_nodes():
    g = Genotype(normal=(("sep_conv_3x3", 0, 2), ("max_pool_3x3", 0, 2), ("skip_connect", 4, 5)),
                 reduce=(("avg_pool_3x3", 1, 3),))
    net = EvalNetwork(g, channels=4, layers=3, auxiliary=False)
    assert net.cells[0].concat == [2] and net.cells[0].multiplier == 1  # nodes 3-5 get no reachable input
    assert len(net.cells[0].ops) == 2  # the edge from unreachable node 4 is dropped
    assert net.cells[1].concat == [3]
    logits, aux = net.train()(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 10) and aux is None


def test_train_mode_returns_the_auxiliary_logits_and_drop_path_runs():
    net = EvalNetwork(load_genotype(REFERENCE, "FairDARTS_b"), channels=4, layers=5)
    net.drop_prob = 0.2
    logits, aux = net.train()(torch.randn(2, 3, 32, 32))
    assert logits.shape == aux.shape == (2, 10)
    assert net.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # eval mode: the logits alone


def test_invalid_genotype_is_refused_with_the_reason():
    with pytest.raises(InvalidArchitectureError, match="normal cell: no edge was kept"):
        EvalNetwork(Genotype(normal=(), reduce=(("skip_connect", 0, 2),)))


def test_describe_prints_sizes_and_draws(tmp_path, capsys):
    assert cli.main(["describe", str(REFERENCE), "--name", "DARTS_V2", "--plot", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert "DARTS_V2" in out and "3.349" in out and "528.4" in out
    assert (tmp_path / "g.png").stat().st_size > 0
