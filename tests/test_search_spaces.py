"""Search spaces as plug-ins: the registry, the relaxations, NAS-Bench-201's supernet and its searches."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dscd.executors import Job, run_job
from dscd.nas_bench_201 import OPS, Cell, lookup
from dscd.nas_bench_201_network import NasBench201SearchNetwork
from dscd.relaxations import RELAXATIONS, zero_one_loss
from dscd.search import SearchConfig, load_metrics, run_search, search_profile
from dscd.search_spaces import SPACES, get_space, space_of
from dscd.survival import collapse_time, is_collapsed
from tests.test_runfolder import _cli
from tests.test_search import _strip_times, kill_in_epoch_3

ROOT = Path(__file__).resolve().parents[1]
NB201 = dict(space="nas-bench-201", epochs=3, per_class=10, test_per_class=4, batch_size=5, channels=2, layers=3,
             image_size=8)


def nb201(**changes):
    return search_profile("smoke", **{**NB201, **changes})


# ----------------------------------------------------------------------------- the registry and the configuration


def test_the_space_and_the_relaxation_decide_the_operations_rule_and_regulariser():
    darts = search_profile("smoke")
    assert darts.space == "darts" and darts.rule == "fairdarts" and darts.w01 == 10.0 and "none" not in darts.ops
    sigmoid = nb201()
    assert sigmoid.ops == tuple(op for op in OPS if op != "none") and sigmoid.rule == "fairdarts"
    softmax = sigmoid.replace(relaxation="softmax")  # derived fields follow the relaxation
    assert softmax.ops == OPS and softmax.rule == "darts" and softmax.w01 == 0.0
    assert softmax.replace(relaxation="sigmoid") == sigmoid
    kept = sigmoid.replace(ops=("skip_connect", "nor_conv_3x3")).replace(seed=1)  # given fields stay given
    assert kept.ops == ("skip_connect", "nor_conv_3x3")
    assert SearchConfig.from_dict(softmax.to_dict()) == softmax


@pytest.mark.parametrize("changes,match", [
    ({"space": "nasbench"}, "space must be one of darts, nas-bench-201"),
    ({"relaxation": "gumbel"}, "relaxation must be one of sigmoid, softmax"),
    ({"relaxation": "softmax", "w01": 10.0}, "softmax has none: set w01 to 0"),
    ({"layers": 4}, "multiple of 3"),
    ({"rule": "threshold"}, "rule must be one of fairdarts, darts in the nas-bench-201 space"),
    ({"ops": ("skip_connect", "sep_conv_3x3")}, "ops of the nas-bench-201 space"),
    ({"ops": ("none", "skip_connect")}, "'none' is not an operation of the sigmoid relaxation"),
    ({"nodes": 5}, "leave nodes at 4"),
])
def test_a_configuration_a_space_cannot_search_is_one_clear_error(changes, match):
    with pytest.raises(ValueError, match=match):
        nb201(**changes)


def test_the_cli_refuses_an_unknown_space_in_one_line(tmp_path, capsys):
    code, err = _cli(["search", "--profile", "smoke", "--space", "nas_bench_201", "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "space must be one of darts, nas-bench-201" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_relaxations_are_records():
    sigmoid, softmax = RELAXATIONS["sigmoid"], RELAXATIONS["softmax"]
    a = [torch.full((6, 4), 3.0)]
    ce = torch.tensor(1.0)
    assert float(sigmoid.objective(ce, a, 10.0)) == pytest.approx(1.0 + 10.0 * float(zero_one_loss(a)))
    assert float(softmax.objective(ce, a, 10.0)) == 1.0  # no regulariser
    assert torch.allclose(softmax.weights(torch.zeros(6, 5)).sum(-1), torch.ones(6))
    assert not sigmoid.allows_none and softmax.allows_none


# ----------------------------------------------------------------------------- NAS-Bench-201's supernet and rule


def test_the_supernet_keeps_alpha_apart_and_mixes_every_edge():
    net = NasBench201SearchNetwork(channels=4, cells=1, ops=OPS, relaxation="softmax")
    assert [tuple(a.shape) for a in net.alphas()] == [(6, 5)]
    assert all(p is not net.alpha_cell for p in net.weights())
    assert len(net.weights()) + 1 == len(list(net.parameters()))
    out = net(torch.randn(2, 3, 8, 8))
    out.sum().backward()
    assert out.shape == (2, 10) and net.alpha_cell.grad is not None and net.alpha_cell.grad.abs().sum() > 0


def test_the_discretisation_keeps_one_operation_per_edge():
    space = get_space("nas-bench-201")
    sigmoid, softmax = nb201(), nb201(relaxation="softmax")
    w = np.full((6, 4), 0.5)
    w[0, 2] = 0.9  # clears the threshold: nor_conv_3x3 on edge 0
    w[5, 1] = 0.8  # the arg-max, below 0.85: none
    cell = space.discretise(w, sigmoid)
    assert cell.ops == ("nor_conv_3x3",) + ("none",) * 5
    assert space.discretise(np.full((6, 4), 0.5), sigmoid).empty  # at initialisation nothing is kept
    p = np.full((6, 5), 0.1)
    p[:, 0] = 0.6  # 'none' wins every edge under softmax's arg-max
    p[3, 4] = 0.7
    assert space.discretise(p, softmax).ops == ("none",) * 3 + ("avg_pool_3x3", "none", "none")


# ----------------------------------------------------------------------------- searches of the space


@pytest.mark.parametrize("relaxation", ["sigmoid", "softmax"])
def test_a_nas_bench_201_search_records_its_cells_lookup_every_epoch(tmp_path, relaxation):
    summary = run_search(nb201(relaxation=relaxation, optimizer="dscd", dscd_T=2), tmp_path / "run", progress=False)
    records = load_metrics(tmp_path / "run")
    assert len(records) == 3
    for r in records:
        cell = Cell.from_string(r["genotype"]["cell"])
        assert r["lookup"] == lookup(cell).to_dict() and r["valid"] == cell.connected
        assert {"kept_edges_cell", "mean_weight_cell"} <= set(r) and "kept_edges_normal" not in r
        assert {"proposed_cell", "accepted_cell"} <= set(r["dscd"]) and "valid" in r["best"]
    assert summary["lookup"] == records[-1]["lookup"] and "lookup_best" in summary
    assert json.loads((tmp_path / "run" / "genotype.json").read_text()) == summary["genotype"]
    assert summary["genotype"]["space"] == "nas-bench-201"
    assert space_of(summary["genotype"]) is SPACES["nas-bench-201"]
    alphas = [json.loads(line) for line in (tmp_path / "run" / "alphas.jsonl").read_text().splitlines()]
    assert set(alphas[0]) == {"epoch", "cell"}
    assert np.array(alphas[0]["cell"]).shape == (6, len(summary["config"]["ops"]))
    assert collapse_time(records).epoch in (1, 2, 3)
    assert is_collapsed(records[-1]) == (not Cell.from_string(records[-1]["genotype"]["cell"]).learns)


@pytest.mark.parametrize("relaxation", ["sigmoid", "softmax"])
def test_a_nas_bench_201_search_killed_resumes_exactly(tmp_path, relaxation):
    changes = dict(epochs=4, relaxation=relaxation, optimizer="dscd", dscd_T=2, checkpoint_minutes=1e-9)
    run_search(nb201(**changes), tmp_path / "whole", progress=False)
    folder = tmp_path / "killed"
    kill_in_epoch_3(f"from tests.test_search_spaces import nb201; from dscd.search import run_search; "
                    f"run_search(nb201(**{changes!r}), {str(folder)!r}, progress=False)", folder)
    assert len(load_metrics(folder)) < 4, "the run finished before it could be killed"
    run_search(nb201(**changes), folder, resume=True, progress=False)
    assert _strip_times(load_metrics(folder)) == _strip_times(load_metrics(tmp_path / "whole"))
    assert (folder / "alphas.jsonl").read_text() == (tmp_path / "whole" / "alphas.jsonl").read_text()


def test_the_cli_searches_the_space_and_looks_up_what_it_found(tmp_path, capsys):
    out = tmp_path / "nb"
    code, err = _cli(["search", "--profile", "smoke", "--space", "nas-bench-201", "--relaxation", "softmax",
                      "--epochs", "2", "--quiet", "--out", str(out)], capsys)
    assert code == 0, err
    code, err = _cli(["lookup", str(out), "--json"], capsys)
    assert code == 0, err
    found = json.loads((out / "genotype.json").read_text())["cell"]
    assert json.loads((out / "summary.json").read_text())["lookup"]["cell"] == found


# ----------------------------------------------------------------------------- runs recorded before the registry


def test_a_finished_run_recorded_without_a_space_is_reused(tmp_path):
    config = search_profile("smoke", epochs=1, per_class=10, test_per_class=4, batch_size=5, channels=2,
                            data="digits")
    job = Job(tmp_path / "run", config.to_dict())
    first = run_job(job)
    summary_path = tmp_path / "run" / "summary.json"
    old = json.loads(summary_path.read_text())
    del old["config"]["space"]  # as every run folder written before the registry
    summary_path.write_text(json.dumps(old))
    before = (tmp_path / "run" / "metrics.jsonl").stat().st_mtime_ns
    again = run_job(job)
    assert again["final"] == first["final"] and (tmp_path / "run" / "metrics.jsonl").stat().st_mtime_ns == before


def test_every_space_builds_its_final_network():
    darts = SPACES["darts"].final_network({"style": "darts", "normal": [["skip_connect", 0, 2], ["skip_connect", 1, 2]],
                                           "reduce": [["max_pool_3x3", 0, 2], ["max_pool_3x3", 1, 2]], "nodes": 1},
                                          channels=4, layers=3, auxiliary=False)
    assert darts(torch.randn(1, 3, 8, 8))[0].shape[-1] == 10
    cell = {"space": "nas-bench-201", "cell": Cell(("nor_conv_3x3",) * 6).to_string()}
    assert sum(p.numel() for p in SPACES["nas-bench-201"].final_network(cell).parameters()) == 1_531_546


def test_the_collapse_of_nas_bench_201_is_a_cell_without_a_learned_path():
    def cell(*ops):
        return Cell(ops)

    assert not cell(*["skip_connect"] * 6).learns  # DARTS' collapse in this space
    assert not cell(*["none"] * 6).learns  # the empty cell
    conv_off_path = cell("nor_conv_3x3", "skip_connect", "none", "skip_connect", "none", "none")  # 0->1 dead end
    assert conv_off_path.connected and not conv_off_path.learns
    assert cell("none", "none", "none", "nor_conv_1x1", "none", "none").learns  # 0->3 directly
    assert cell("avg_pool_3x3", "none", "nor_conv_3x3", "none", "none", "skip_connect").learns  # 0->1->2->3
    space = SPACES["nas-bench-201"]
    assert space.collapsed({"space": "nas-bench-201", "cell": cell(*["skip_connect"] * 6).to_string()})
    darts_empty = {"normal": [], "reduce": [["skip_connect", 0, 2]]}
    assert SPACES["darts"].collapsed(darts_empty) and is_collapsed({"genotype": darts_empty})


# ----------------------------------------------------------------------------- one place per fact


def test_the_package_import_graph_has_no_cycle():
    """Every ``from dscd... import`` (lazy ones included) as an edge: the graph of modules is acyclic."""
    import ast

    root = ROOT / "dscd"
    edges = {}
    for path in root.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        edges[name] = {node.module for node in ast.walk(ast.parse(path.read_text()))
                       if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dscd")}
    state = {}

    def visit(node, path):
        if state.get(node) == 1:
            raise AssertionError(f"import cycle: {' -> '.join(path[path.index(node):] + [node])}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            visit(dep, path + [node])
        state[node] = 2

    for module in sorted(edges):
        visit(module, [])


def test_dscd_settings_are_the_one_place_of_the_defaults():
    from dscd.optim import DSCD, DSCD_DEFAULTS, DSCDSettings
    from dscd.paper.figure3 import BenchConfig

    config = search_profile("paper")
    assert config.dscd_settings == DSCD_DEFAULTS == DSCDSettings()
    assert (BenchConfig().T, BenchConfig().K) == (DSCD_DEFAULTS.T, DSCD_DEFAULTS.K)
    x = torch.nn.Parameter(torch.zeros(3))
    settings = search_profile("smoke", dscd_K=7).dscd_settings
    opt = DSCD([x], torch.optim.Adam([x]), total_steps=10, seed=0, **settings.kwargs())
    assert opt._engine.K == 7 and opt._engine.T == settings.T == 5


def test_a_new_proposal_is_one_class():
    """The engine takes any Proposal: a uniform one (phi always 0) draws anywhere in the box."""
    from dscd.optim import DSCDEngine
    from dscd.proposals import BetaAnnealing

    class Uniform:
        def concentration(self, step, total_steps):
            return 0.0

        def sample(self, x, lo, hi, phi, rngs):
            return np.array([rng.uniform(a, b) for rng, a, b in zip(rngs, lo, hi, strict=True)])

    engine = DSCDEngine(np.zeros((2, 3)), -1.0, 1.0, total_steps=100, T=1, K=2, seeds=0, proposal=Uniform())
    engine.is_global[:] = True
    x = engine.propose()
    assert engine.phi == 0.0 and ((x >= -1) & (x <= 1)).all() and (x != 0).sum() == 2  # one coordinate per lane
    default = DSCDEngine(np.zeros((1, 3)), -1.0, 1.0, total_steps=100, seeds=0)
    assert isinstance(default.proposal, BetaAnnealing)
