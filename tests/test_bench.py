"""The Figure 3 benchmark: batching, Adam's update, the median's CI, budgets, the CLI."""

import json

import numpy as np
import pytest
import torch

from dscd import cli
from dscd.paper.figure3 import (
    ALL_METHODS,
    BenchConfig,
    median_ci,
    paper_claims,
    run_benchmark,
    run_gradient_methods,
    summarise,
)
from dscd.paper.functions import make_function


@pytest.mark.parametrize("name", ["styblinski_tang", "rotated_schwefel"])
def test_a_batched_run_equals_the_same_runs_one_at_a_time(name):
    fn = make_function(name, 4)
    starts = np.random.default_rng(0).uniform(fn.lo, fn.hi, (5, 4))
    methods = ["adam_0.1", "adam_0.01+dscd", "adam_schedule+dscd"]
    together = run_gradient_methods(fn.value_and_grad, fn.lo, fn.hi, starts, methods, 400, seed=3, T=10, K=50)
    for r in range(5):
        alone = run_gradient_methods(fn.value_and_grad, fn.lo, fn.hi, starts[r : r + 1], methods, 400, seed=3,
                                     T=10, K=50, run_ids=[r])
        for m in methods:
            np.testing.assert_array_equal(alone[m][0], together[m][r])


def test_batched_adam_is_torch_adam():
    fn = make_function("styblinski_tang", 3)
    start = np.array([[1.0, -2.0, 4.0]])
    curves = run_gradient_methods(fn.value_and_grad, fn.lo, fn.hi, start, ["adam_0.05"], 200)
    x = torch.tensor(start, requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    values = []
    for _ in range(200):
        opt.zero_grad()
        loss = fn(x).sum()
        values.append(float(loss.detach()))
        loss.backward()
        opt.step()
    np.testing.assert_allclose(curves["adam_0.05"][0], np.minimum.accumulate(values), rtol=1e-10)


def test_median_ci_known_answers():
    lo, hi, coverage = median_ci(np.random.default_rng(0).permutation(np.arange(1.0, 21.0)))
    assert (lo, hi) == (6.0, 15.0) and coverage == pytest.approx(0.9586, abs=1e-4)
    lo, hi, coverage = median_ci(np.arange(1.0, 12.0))  # n = 11: ranks 2 and 10, coverage 0.988
    assert (lo, hi) == (2.0, 10.0) and coverage == pytest.approx(0.98828, abs=1e-5)
    lo, hi, coverage = median_ci(np.array([3.0, 1.0, 2.0]))  # too few for 95%: the range
    assert (lo, hi) == (1.0, 3.0) and coverage == pytest.approx(0.75)
    # along an axis, per column
    lo, hi, _ = median_ci(np.arange(40.0).reshape(20, 2), axis=0)
    np.testing.assert_array_equal(lo, [10.0, 11.0])


def test_median_ci_covers_at_its_stated_rate():
    rng = np.random.default_rng(1)
    samples = rng.exponential(size=(4000, 20))
    lo, hi, coverage = median_ci(samples, axis=1)
    hit = ((lo <= np.log(2)) & (np.log(2) <= hi)).mean()
    assert abs(hit - coverage) < 0.015


def test_every_method_respects_the_budget_and_shares_the_starts():
    cfg = BenchConfig(function="schwefel", dim=3, runs=4, budget=250, seed=1)
    res = run_benchmark(cfg, progress=False)
    assert list(res.curves) == list(ALL_METHODS)
    for m, curves in res.curves.items():
        assert curves.shape == (4, 250)
        assert (np.diff(curves, axis=1) <= 0).all(), m  # best-so-far never gets worse
        assert (np.asarray(res.evaluations[m]) <= 250).all()
    # every gradient method's first evaluation is at the shared start point
    first = res.function(res.starts)
    for m in ALL_METHODS[:8]:
        np.testing.assert_allclose(res.curves[m][:, 0], first)
    s = summarise(res)
    assert len(s["methods"]["random"]["median"]) == 250 and s["config"]["budget"] == 250
    claims = paper_claims(s)
    assert set(claims["dscd_improves"]) == {"0.001", "0.01", "0.1", "schedule"}


def test_dscd_finds_the_styblinski_tang_basin_that_adam_misses():
    cfg = BenchConfig(function="styblinski_tang", dim=6, runs=10, budget=3000,
                      methods=("adam_0.1", "adam_0.1+dscd"))
    s = summarise(run_benchmark(cfg, progress=False), include_curves=False)
    assert s["methods"]["adam_0.1"]["in_global_basin"] <= 2
    assert s["methods"]["adam_0.1+dscd"]["in_global_basin"] >= 8


def test_cli_writes_results(tmp_path, capsys):
    out = tmp_path / "bench"
    code = cli.main(["bench", "--function", "styblinski_tang", "--dim", "2", "--runs", "3", "--budget", "60",
                     "--methods", "adam_0.1,adam_0.1+dscd,random", "--out", str(out), "--quiet"])
    assert code == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["version"] and doc["benchmarks"][0]["config"]["budget"] == 60
    entry = doc["benchmarks"][0]["methods"]["adam_0.1+dscd"]
    assert len(entry["median"]) == len(entry["ci_lower"]) == 60 and len(entry["final"]) == 3
    assert (out / "figure.png").stat().st_size > 0 and (out / "figure.pdf").stat().st_size > 0
    with np.load(out / "curves.npz") as curves:
        assert curves["styblinski_tang_d2_random"].shape == (3, 60)
    assert "Adam 0.1 + DSCD" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,option",
    [
        (["--function", "rosenbrock"], "--function"),
        (["--methods", "adam_0.1,newton"], "--methods"),
        (["--dim", "0"], "--dim"),
        (["--runs", "0"], "--runs"),
        (["--budget", "5", "--runs", "10"], "--budget"),
        (["--methods", "adam_0"], "--methods"),
        (["--methods", "adam_-0.1+dscd"], "--methods"),
    ],
)
def test_cli_errors_name_the_option_and_write_nothing(tmp_path, capsys, args, option):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench", "--out", str(out), "--quiet", *args])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
    assert not out.exists()
