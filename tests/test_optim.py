"""The DSCD optimiser: proposal maths, engine rules, the torch.optim wrapper."""

import copy
import math

import numpy as np
import pytest
import torch

from dscd import DSCD, PHI_MAX, DSCDEngine, beta_params, phi_schedule, propose

# ----------------------------------------------------------------------------- proposal


def test_beta_params_phi_zero_is_exactly_uniform():
    for v in (0.0, 0.3, 0.75, 1.0):
        a, b = beta_params(v, 0.0)
        assert float(a) == 1.0 and float(b) == 1.0


def test_beta_params_moments_on_a_grid():
    v = torch.linspace(0, 1, 21)[:, None]
    phi = torch.tensor([0.0, 0.1, 0.5, 0.9, 0.99, 0.999])[None, :]
    a, b = beta_params(v, phi)
    assert a.shape == b.shape == (21, 6)  # vectorised, broadcasting
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert (a > 0).all() and (b > 0).all()
    mu = phi.double() * v.double() + (1 - phi.double()) * 0.5
    sigma = (1 - phi.double()) / math.sqrt(12)
    mean = a / (a + b)
    std = torch.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
    torch.testing.assert_close(mean, mu.expand_as(mean), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(std, sigma.expand_as(std), rtol=1e-9, atol=0)


def test_beta_params_matches_the_papers_formula():
    v, phi = torch.rand(200, dtype=torch.float64), torch.rand(200, dtype=torch.float64) * 0.99
    mu = phi * v + (1 - phi) * 0.5
    sigma = (1 - phi) / math.sqrt(12)
    c1 = mu / (1 - mu)
    c2 = sigma**2 * (c1 + 1) ** 2
    beta = (c1 - c2) / (c2 * (c1 + 1))
    a, b = beta_params(v, phi)
    torch.testing.assert_close(b, beta, rtol=1e-8, atol=0)
    torch.testing.assert_close(a, c1 * beta, rtol=1e-8, atol=0)


def test_proposals_stay_in_the_domain_and_have_the_intended_moments():
    rng = np.random.default_rng(0)
    n = 40000
    for phi in (0.0, 0.5, 0.95):
        # x outside the box: its unit position is clipped to 1
        for x, v in ((1.5, 0.75), (7.0, 1.0), (-9.0, 0.0)):
            s = propose(np.full(n, x), -3.0, 3.0, phi, rng).numpy()
            assert (s >= -3).all() and (s <= 3).all()
            unit = (s + 3) / 6
            mu, sigma = phi * v + (1 - phi) * 0.5, (1 - phi) / math.sqrt(12)
            assert abs(unit.mean() - mu) < 5 * sigma / math.sqrt(n)
            assert abs(unit.std() / sigma - 1) < 0.03


def test_propose_at_the_concentration_cap_is_finite():
    s = propose(torch.tensor([1.5, -3.0, 3.0]), -3.0, 3.0, PHI_MAX, np.random.default_rng(0))
    assert torch.isfinite(s).all()
    torch.testing.assert_close(s, torch.tensor([1.5, -3.0, 3.0], dtype=torch.float64), atol=1e-4, rtol=0)


def test_phi_schedule_is_cosine_and_capped():
    assert phi_schedule(0, 10) == 0.0
    assert phi_schedule(10, 10) == PHI_MAX and phi_schedule(50, 10) == PHI_MAX
    assert phi_schedule(5, 10) == pytest.approx(0.5)
    assert phi_schedule(2, 8) == pytest.approx((1 - math.cos(math.pi / 4)) / 2)


@pytest.mark.parametrize("v,phi", [(0.5, 1.0), (0.5, -0.1), (1.1, 0.5), (-0.1, 0.5), (float("nan"), 0.5)])
def test_beta_params_rejects_out_of_range(v, phi):
    with pytest.raises(ValueError, match="phi must lie|v must lie"):
        beta_params(v, phi)


# ----------------------------------------------------------------------------- engine rules


def engine(n=2, lanes=1, **kw):
    kw.setdefault("T", 1000)
    return DSCDEngine(torch.zeros(lanes, n), -1.0, 1.0, kw.pop("total_steps", 100), seeds=0, **kw)


def test_acceptance_needs_strict_improvement_on_the_window_minimum():
    e = engine()
    x = torch.zeros(1, 2)
    accepted = [bool(e.observe([val], x + i).accepted[0]) for i, val in enumerate([3.0, 3.0, 2.0, 2.5, 2.0, 1.0])]
    assert accepted == [True, False, True, False, False, True]
    np.testing.assert_array_equal(e.x_best, (x + 5).numpy())


def test_window_forgets_values_older_than_K():
    short, long = engine(K=3), engine(K=1000)
    x = torch.zeros(1, 2)
    for val in (1.0, 2.0, 3.0, 4.0):
        short.observe([val], x)
        long.observe([val], x)
    # 1.0 has left the short window (it holds 2, 3, 4), so 1.5 is an improvement there only
    assert bool(short.observe([1.5], x).accepted[0])
    assert not bool(long.observe([1.5], x).accepted[0])


def test_switch_after_T_steps_only_without_improvement():
    e = engine(T=3)
    x = torch.zeros(1, 2)
    for val in (3.0, 2.0, 1.0):  # every step improves: no switch even at T
        assert not bool(e.observe([val], x).switched[0])
    assert not bool(e.is_global[0])
    r = e.observe([5.0], x)  # run length 4 >= T, no improvement
    assert bool(r.switched[0]) and bool(e.is_global[0]) and int(e.run_length[0]) == 0
    for _ in range(2):  # a new run must again reach T
        e.propose()
        assert not bool(e.observe([9.0], x).switched[0])
    e.propose()
    assert bool(e.observe([9.0], x).switched[0]) and not bool(e.is_global[0])


def test_nan_values_are_never_accepted_and_do_not_poison_the_window():
    e = engine()
    x = torch.zeros(1, 2)
    e.observe([1.0], x)
    assert not bool(e.observe([float("nan")], x).accepted[0])
    assert float(e.best_value()[0]) == 1.0
    assert bool(e.observe([0.5], x).accepted[0])


def test_lanes_are_independent_of_the_batch_they_run_in():
    def run(lanes_entropy, starts):
        e = DSCDEngine(starts, -2.0, 2.0, 300, T=7, K=50, seeds=lanes_entropy)
        x = starts.clone()
        for _ in range(300):
            prop = torch.from_numpy(e.propose())
            point = torch.where(torch.from_numpy(e.is_global)[:, None], prop, x)
            values = ((point**2 - 1) ** 2 + 0.3 * point).sum(1)
            r = e.observe(values, point)
            x = torch.where(torch.from_numpy(r.was_global)[:, None], torch.from_numpy(e.x_best),
                            x - 0.01 * (4 * x * (x**2 - 1) + 0.3))
        return torch.from_numpy(e.x_best)

    starts = torch.tensor([[1.5, 1.0], [0.5, -1.0], [1.0, 1.9]], dtype=torch.float64)
    entropy = [(7, 0), (7, 1), (7, 2)]
    together = run(entropy, starts)
    for lane in range(3):
        torch.testing.assert_close(run([entropy[lane]], starts[lane : lane + 1])[0], together[lane], rtol=0, atol=0)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"T": 0}, "T must be"),
        ({"K": 0}, "K must be"),
        ({"total_steps": 0}, "total_steps must be"),
        ({"phi_max": 1.0}, "phi_max must lie"),
    ],
)
def test_engine_rejects_bad_numbers(kwargs, match):
    with pytest.raises(ValueError, match=match):
        engine(**kwargs)


# ----------------------------------------------------------------------------- the optimiser


def quadratic_setup(seed=0, T=5, total=200, **kw):
    # x at its minimum, every y near the worse well of sin(3y) + 0.1 y^2 (y ~ 1.57; the better one is y ~ -0.52):
    # Adam stalls within a few steps, so global steps start early, while phi is small
    x = torch.nn.Parameter(torch.full((2, 2), 0.5))
    y = torch.nn.Parameter(torch.full((16,), 1.55))
    opt = DSCD([x, y], torch.optim.Adam([x, y], lr=0.05), total_steps=total, T=T, seed=seed, **kw)
    return x, y, opt


def closure_for(x, y):
    return lambda: ((x - 0.5) ** 2).sum() + (torch.sin(3 * y) + 0.1 * y**2).sum()


def test_loss_goes_down_and_both_step_types_happen():
    x, y, opt = quadratic_setup()
    f = closure_for(x, y)
    first = float(f().detach())
    for _ in range(200):
        opt.step(f)
    s = opt.stats
    assert s["local_steps"] > 0 and s["global_steps"] > 0 and s["accepted"] > 0 and s["rejected"] > 0
    assert s["local_steps"] + s["global_steps"] == s["step"] == 200
    assert s["accepted"] + s["rejected"] == s["global_steps"]
    opt.load_best()
    assert float(f().detach()) < first
    assert float(f().detach()) == pytest.approx(s["best_value"], rel=1e-6)
    per = opt.stats_per_parameter()
    assert sum(p["proposed"] for p in per) == s["global_steps"]
    assert sum(p["accepted"] for p in per) == s["accepted"]


def test_global_steps_build_no_graph_and_local_steps_do():
    x, y, opt = quadratic_setup(T=3)
    seen = []

    def closure():
        loss = (x**2).sum() * 0 + (y**2).sum() * 0 + 1.0  # flat: no improvement, so the type switches every T
        seen.append((opt.next_step_is_global, torch.is_grad_enabled(), loss.grad_fn is not None))
        return loss

    for _ in range(60):
        opt.step(closure)
    assert any(g for g, _, _ in seen) and any(not g for g, _, _ in seen)
    for is_global, grad_enabled, has_graph in seen:
        assert grad_enabled == has_graph == (not is_global)


def test_backward_reaches_only_the_optimised_parameters():
    w = torch.nn.Parameter(torch.ones(3))
    a = torch.nn.Parameter(torch.zeros(3))
    opt = DSCD([a], torch.optim.Adam([a], lr=0.1), total_steps=10)
    opt.step(lambda: (w * torch.sigmoid(a)).sum())
    assert w.grad is None and a.grad is not None


def test_local_state_survives_switches_unless_reset_is_asked():
    for reset in (False, True):
        x, y, opt = quadratic_setup(T=4, reset_local_state=reset)
        f = closure_for(x, y)
        saw_global = False
        while True:
            was_global = opt.next_step_is_global
            opt.step(f)
            saw_global |= was_global
            if saw_global and not opt.next_step_is_global and was_global:
                break  # just switched back to local
        adam_steps = int(opt.local.state[x]["step"]) if opt.local.state.get(x) else 0
        if reset:
            assert adam_steps == 0
        else:
            assert adam_steps == opt.stats["local_steps"]


def test_state_dict_round_trip_is_lock_step():
    x, y, opt = quadratic_setup(seed=3, T=4)
    f = closure_for(x, y)
    for _ in range(37):
        opt.step(f)
    state = copy.deepcopy(opt.state_dict())
    x2 = torch.nn.Parameter(x.detach().clone())
    y2 = torch.nn.Parameter(y.detach().clone())
    opt2 = DSCD([x2, y2], torch.optim.Adam([x2, y2], lr=0.05), total_steps=200, T=4, seed=999)
    opt2.load_state_dict(state)
    f2 = closure_for(x2, y2)
    for _ in range(60):
        l1, l2 = opt.step(f), opt2.step(f2)
        assert float(l1.detach()) == float(l2.detach())
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert opt.stats == opt2.stats
    for a, b in zip(opt.best_params(), opt2.best_params(), strict=True):
        assert torch.equal(a, b)


def test_state_dict_survives_torch_save(tmp_path):
    x, y, opt = quadratic_setup(seed=1)
    f = closure_for(x, y)
    for _ in range(20):
        opt.step(f)
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    x2, y2, opt2 = quadratic_setup(seed=2)
    opt2.load_state_dict(torch.load(tmp_path / "opt.pt"))  # weights_only: plain tensors and numbers
    with torch.no_grad():  # the parameters themselves are the model's state, not the optimiser's
        x2.copy_(x), y2.copy_(y)
    assert opt2.stats == opt.stats


def test_deepcopy_continues_identically():
    x, y, opt = quadratic_setup(seed=5, T=3)
    for _ in range(15):
        opt.step(closure_for(x, y))
    twin = copy.deepcopy(opt)
    x2, y2 = twin.param_groups[0]["params"]
    assert x2 is not x and torch.equal(x2, x)
    for _ in range(30):
        opt.step(closure_for(x, y))
        twin.step(closure_for(x2, y2))
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_load_state_dict_rejects_foreign_or_mismatched_state():
    x, y, opt = quadratic_setup()
    with pytest.raises(ValueError, match="not a DSCD state_dict"):
        opt.load_state_dict(torch.optim.Adam([x]).state_dict())
    z = torch.nn.Parameter(torch.zeros(2))
    other = DSCD([z], torch.optim.Adam([z]), total_steps=5)
    with pytest.raises(ValueError, match="same parameters"):
        opt.load_state_dict(other.state_dict())


def test_per_group_domains():
    a = torch.nn.Parameter(torch.zeros(50))
    b = torch.nn.Parameter(torch.zeros(50))
    opt = DSCD([{"params": [a]}, {"params": [b], "domain": (10.0, 11.0)}], torch.optim.SGD([a, b], lr=0.0),
               total_steps=400, T=1, seed=0)
    proposals = []

    def closure():
        proposals.append((a.detach().clone(), b.detach().clone()))
        return -(a.sum() + b.sum())  # every proposal that increases a or b is accepted

    for _ in range(400):
        opt.step(closure)
    best_a, best_b = opt.best_params()
    assert (best_a >= -3).all() and (best_a <= 3).all()
    assert (best_b[best_b != 0] >= 10).all() and (best_b <= 11).all() and (best_b != 0).any()


# ----------------------------------------------------------------------------- bad input


def test_bad_constructor_arguments():
    x = torch.nn.Parameter(torch.zeros(2))
    adam = torch.optim.Adam([x])
    with pytest.raises(ValueError, match="empty parameter list"):
        DSCD([], adam, total_steps=10)
    with pytest.raises(ValueError, match="lo < hi"):
        DSCD([x], adam, total_steps=10, domain=(1.0, 1.0))
    with pytest.raises(ValueError, match="pair"):
        DSCD([x], adam, total_steps=10, domain=3.0)
    with pytest.raises(ValueError, match="T must be"):
        DSCD([x], adam, total_steps=10, T=0)
    with pytest.raises(ValueError, match="K must be"):
        DSCD([x], adam, total_steps=10, K=0)
    with pytest.raises(ValueError, match="total_steps must be"):
        DSCD([x], adam, total_steps=0)
    y = torch.nn.Parameter(torch.zeros(2))
    with pytest.raises(ValueError, match="exactly the parameters"):
        DSCD([x], torch.optim.Adam([y]), total_steps=10)
    # a factory builds the local optimiser over the same parameters
    opt = DSCD([x], lambda ps: torch.optim.Adam(ps, lr=0.1), total_steps=10)
    assert isinstance(opt.local, torch.optim.Adam)


def test_closure_must_return_a_scalar_tensor():
    x = torch.nn.Parameter(torch.zeros(2))
    opt = DSCD([x], torch.optim.Adam([x]), total_steps=10)
    with pytest.raises(ValueError, match="scalar tensor"):
        opt.step(lambda: x * 2)
    with pytest.raises(ValueError, match="scalar tensor"):
        opt.step(lambda: 1.0)
    with pytest.raises(ValueError, match="needs a closure"):
        opt.step()
    with pytest.raises(ValueError, match="does not depend"):
        opt.step(lambda: torch.tensor(1.0))


def test_nan_in_a_local_step_raises_and_changes_nothing():
    x, y, opt = quadratic_setup()
    f = closure_for(x, y)
    for _ in range(3):
        opt.step(f)
    before = (x.detach().clone(), opt.state_dict())
    with pytest.raises(ValueError, match="objective is nan"):
        opt.step(lambda: f() * float("nan"))
    assert torch.equal(x, before[0])
    assert opt.stats["step"] == before[1]["engine"]["step_count"]
    np.testing.assert_array_equal(opt._engine.x_best, before[1]["engine"]["x_best"].numpy())


def test_nan_proposal_is_rejected_and_counted():
    x = torch.nn.Parameter(torch.zeros(3))
    opt = DSCD([x], torch.optim.SGD([x], lr=0.01), total_steps=100, T=1, seed=0)
    for _ in range(40):
        opt.step(lambda: (x**2).sum() if torch.is_grad_enabled() else (x**2).sum() * float("nan"))
    s = opt.stats
    assert s["global_steps"] > 0 and s["nan_proposals"] == s["global_steps"] == s["rejected"]
    assert math.isfinite(s["best_value"])


# ----------------------------------------------------------------------------- behaviour


def test_double_well_dscd_finds_the_better_well_where_adam_does_not():
    """f(x) = (x^2 - 1)^2 + 0.3 x: the left well (x ~ -1.04) is the global one.

    From x0 = 1.5 Adam alone settles in the right well every time; DSCD's global
    steps find the left one in most of 20 seeds.
    """

    def run(use_dscd, seed):
        x = torch.nn.Parameter(torch.tensor([1.5]))
        adam = torch.optim.Adam([x], lr=0.02)
        opt = DSCD([x], adam, total_steps=600, T=25, seed=seed) if use_dscd else adam
        f = lambda: ((x**2 - 1) ** 2 + 0.3 * x).sum()  # noqa: E731
        for _ in range(600):
            if use_dscd:
                opt.step(f)
            else:
                opt.zero_grad()
                f().backward()
                opt.step()
        if use_dscd:
            opt.load_best()
        return float(x.detach())

    adam_left = sum(run(False, s) < 0 for s in range(20))
    dscd_left = sum(run(True, s) < 0 for s in range(20))
    assert adam_left == 0
    assert dscd_left >= 15, dscd_left


# ----------------------------------------------------------------------------- the optimiser contract


def test_load_state_dict_checks_shapes_not_only_counts():
    a = torch.nn.Parameter(torch.zeros(2, 2))
    b = torch.nn.Parameter(torch.zeros(4))
    opt_a = DSCD([a], torch.optim.Adam([a]), total_steps=10)
    opt_b = DSCD([b], torch.optim.Adam([b]), total_steps=10)
    with pytest.raises(ValueError, match=r"shapes \[\[2, 2\]\].*\[\[4\]\]"):
        opt_b.load_state_dict(opt_a.state_dict())


def test_load_state_dict_is_all_or_nothing():
    x, y, opt = quadratic_setup(seed=3, T=4)
    f = closure_for(x, y)
    for _ in range(30):
        opt.step(f)
    other_x, other_y, other = quadratic_setup(seed=4, T=4)
    before = copy.deepcopy(other.state_dict())
    state = copy.deepcopy(opt.state_dict())
    state["local"]["param_groups"][0]["params"] = [0]  # the wrapped optimiser will refuse this part, after the engine
    with pytest.raises(ValueError):
        other.load_state_dict(state)
    after = other.state_dict()
    assert after["engine"]["step_count"] == before["engine"]["step_count"] == 0
    assert torch.equal(after["engine"]["x_best"], before["engine"]["x_best"]) and after["local"] == before["local"]


@pytest.mark.parametrize("setting", [{"T": 9}, {"total": 300}, {"phi_max": 0.5}])
def test_a_saved_schedule_setting_that_differs_is_refused(setting):
    _, _, opt = quadratic_setup(seed=1)
    _, _, other = quadratic_setup(seed=1, **setting)
    with pytest.raises(ValueError, match="saved with .*construct the optimiser with the settings"):
        other.load_state_dict(opt.state_dict())


def test_add_param_group_after_construction_raises():
    x, _, opt = quadratic_setup()
    with pytest.raises(ValueError, match="fixed when it is built"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(3))]})


def test_a_scheduler_attached_to_dscd_drives_the_wrapped_optimiser():
    x = torch.nn.Parameter(torch.zeros(3))
    adam = torch.optim.Adam([x], lr=0.1)
    opt = DSCD([x], adam, total_steps=10, T=100, seed=0)  # T=100: every step here is local
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    lrs = []
    for _ in range(3):
        opt.step(lambda: ((x - 1) ** 2).sum())
        lrs.append(adam.param_groups[0]["lr"])
        scheduler.step()
    assert lrs == [0.1, 0.05, 0.025]
    # one attached to the wrapped optimiser instead is not overridden by DSCD
    y = torch.nn.Parameter(torch.zeros(3))
    adam = torch.optim.Adam([y], lr=0.1)
    opt = DSCD([y], adam, total_steps=10, T=100, seed=0)
    local_scheduler = torch.optim.lr_scheduler.StepLR(adam, step_size=1, gamma=0.1)
    for _ in range(2):
        opt.step(lambda: ((y - 1) ** 2).sum())
        local_scheduler.step()
    opt.step(lambda: ((y - 1) ** 2).sum())
    assert adam.param_groups[0]["lr"] == pytest.approx(0.001) and opt.param_groups[0]["lr"] == pytest.approx(0.001)


def test_the_engine_proposes_through_the_public_kernel():
    """One proposal rule: a global step of the engine equals propose() with the same generator."""
    x0 = np.linspace(-2.0, 2.0, 7)[None]
    engine = DSCDEngine(x0, -3.0, 3.0, total_steps=100, T=1, seeds=[11])
    engine.observe([1.0], x0)  # one local step: the schedule switches to global (T=1, no improvement after)
    engine.observe([2.0], x0)
    assert engine.is_global[0]
    phi = engine.phi
    proposal = engine.propose()[0]
    rng = np.random.default_rng(11)
    d = min(int(rng.random() * 7), 6)
    expected = x0[0].copy()
    expected[d] = float(propose(x0[0, d], -3.0, 3.0, phi, rng))
    assert np.array_equal(proposal, expected)


# ----------------------------------------------------------------------------- where the search stands


def test_engine_counts_x_best_age_local_improvements_and_phases():
    e = engine(T=2)
    x = torch.zeros(1, 2)
    e.observe([3.0], x)  # local, accepted (the window was empty)
    assert int(e.best_age[0]) == 0 and int(e.counters.local_improvements[0]) == 1
    e.observe([4.0], x)  # local, run length 2 >= T, no improvement: switch to global
    assert int(e.best_age[0]) == 1 and int(e.counters.global_phases[0]) == 1 and bool(e.is_global[0])
    e.propose()
    e.observe([2.0], x + 1)  # global, accepted: the phase accepts, x_best young again
    assert int(e.best_age[0]) == 0 and int(e.counters.phases_accepting[0]) == 1 and int(e.accepted[0]) == 1
    e.propose()
    e.observe([1.0], x + 2)  # a second acceptance in the same phase: still one accepting phase
    assert int(e.counters.phases_accepting[0]) == 1 and int(e.accepted[0]) == 2
    e.propose()
    e.observe([5.0], x)  # rejected: back to local
    e.observe([6.0], x)
    e.observe([7.0], x)  # switch to global: a second phase
    e.propose()
    e.observe([8.0], x)
    assert int(e.counters.global_phases[0]) == 2 and int(e.counters.phases_accepting[0]) == 1
    assert int(e.best_age[0]) == 4 and int(e.counters.local_improvements[0]) == 1  # four steps since x + 2


def test_restart_window_makes_the_given_value_the_only_one():
    e = engine(K=5)
    x = torch.zeros(1, 2)
    for val in (0.5, 2.0, 3.0):
        e.observe([val], x)
    e.restart_window([1.5])
    assert float(e.best_value()[0]) == 1.5 and int(e.counters.refreshes[0]) == 1
    assert np.isinf(e.window).sum() == e.K - 1
    assert bool(e.observe([1.0], x + 1).accepted[0])  # beats 1.5, though not the forgotten 0.5
    e.restart_window([float("nan")])  # a non-finite value leaves the window as it was
    assert float(e.best_value()[0]) == 1.0 and int(e.counters.refreshes[0]) == 1


def drifting_problem(refresh_best):
    """f_t(x) = (x - 1)^2 + t / 50: the objective's floor rises as "training" goes on, the way the
    alpha loss rises while the network's weights overfit their half of the data."""
    x = torch.nn.Parameter(torch.full((1,), -2.0))
    opt = DSCD([x], torch.optim.SGD([x], lr=0.0), total_steps=600, domain=(-3, 3), T=10, K=1000, seed=0,
               refresh_best=refresh_best)
    calls = []

    def closure():
        calls.append(opt.next_step_is_global)
        return ((x - 1) ** 2).sum() + opt.stats["step"] / 50

    for _ in range(600):
        opt.step(closure)
    return opt, calls


def test_a_stale_y_best_freezes_the_search_and_refresh_best_keeps_it_moving():
    plain, plain_calls = drifting_problem(False)
    fresh, fresh_calls = drifting_problem(True)
    # Local steps (lr 0) never move x, so only global steps can. Without the refresh, the first
    # window values stay the minimum: after the first phase nothing is ever accepted again.
    assert plain.stats["refreshes"] == 0 and plain.stats["phases_accepting"] <= 1
    assert plain.stats["best_age"] > 400 and plain.stats["at_best"]
    # With it, every global phase compares proposals with f(x_best) under the current objective.
    s = fresh.stats
    assert s["refreshes"] == s["global_phases"] >= 10
    assert s["phases_accepting"] >= plain.stats["phases_accepting"] + 4 and s["best_age"] < 100
    assert abs(float(fresh.best_params()[0]) - 1) < abs(float(plain.best_params()[0]) - 1)
    # one extra evaluation per global phase, nothing else
    assert len(fresh_calls) == 600 + s["global_phases"] and len(plain_calls) == 600


def test_refresh_best_is_saved_and_resumes_lock_step():
    x, y, opt = quadratic_setup(seed=3, T=4, refresh_best=True)
    f = closure_for(x, y)
    for _ in range(37):
        opt.step(f)
    state = copy.deepcopy(opt.state_dict())
    x2, y2 = torch.nn.Parameter(x.detach().clone()), torch.nn.Parameter(y.detach().clone())
    opt2 = DSCD([x2, y2], torch.optim.Adam([x2, y2], lr=0.05), total_steps=200, T=4, seed=999)
    opt2.load_state_dict(state)
    assert opt2.refresh_best
    f2 = closure_for(x2, y2)
    for _ in range(60):
        assert float(opt.step(f).detach()) == float(opt2.step(f2).detach())
    assert opt.stats == opt2.stats and opt.stats["refreshes"] > 0


def test_a_closure_that_calls_backward_or_no_closure_is_one_clear_error():
    x = torch.nn.Parameter(torch.full((2,), 2.5))
    opt = DSCD([x], torch.optim.Adam([x], lr=0.05), total_steps=40, T=2, seed=0)

    def torch_idiom():  # LBFGS' closure style: zero_grad, loss, backward
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        return loss

    before = x.detach().clone()
    with pytest.raises(ValueError, match="the DSCD closure called backward"):  # a local step: nothing changed
        opt.step(torch_idiom)
    assert torch.equal(x.detach(), before) and opt.stats["local_steps"] == 0
    while not opt.next_step_is_global:
        opt.step(lambda: (x**2).sum())
    best, steps = opt.best_params()[0].float(), opt.stats["step"]
    with pytest.raises(ValueError, match="the DSCD closure called backward"):  # a global step: as if not begun
        opt.step(torch_idiom)
    assert torch.equal(x.detach(), best) and opt.stats["step"] == steps and opt.next_step_is_global
    with pytest.raises(ValueError, match="passes step\\(lambda: objective"):
        opt.step()


def test_the_architect_refuses_a_model_without_architecture_weights_and_step_without_closure():
    from dscd.architect import DSCDArchitect

    with pytest.raises(ValueError, match="arch_parameters"):
        DSCDArchitect(torch.nn.Linear(2, 2), torch.nn.functional.cross_entropy, total_steps=10)
    x = torch.nn.Parameter(torch.zeros(2))
    opt = DSCD([x], torch.optim.Adam([x]), total_steps=10, seed=0)
    with pytest.raises(ValueError, match="dscd.architect.DSCDArchitect"):
        opt.step()
