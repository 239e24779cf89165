"""Synthetic test functions: known minima, hand-computed values, gradients, pycma agreement."""

import math

import cma
import numpy as np
import pytest
import torch

from dscd.paper.functions import make_function, random_rotation, schwefel, styblinski_tang

NAMES = ["styblinski_tang", "schwefel", "rotated_styblinski_tang", "rotated_schwefel"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [1, 4, 10])
def test_value_at_the_global_minimum(name, dim):
    fn = make_function(name, dim)
    assert float(fn(fn.x_min[None])[0]) == pytest.approx(fn.f_min, abs=1e-9 * dim)
    assert float(fn(fn.x_min.numpy()[None])[0]) == pytest.approx(fn.f_min, abs=1e-9 * dim)
    # and it is a minimum: random points nearby are worse
    near = fn.x_min.numpy() + np.random.default_rng(0).normal(0, 1e-2 * (fn.hi - fn.lo), (50, dim))
    assert (fn(near) > fn.f_min).all()


def test_hand_computed_values():
    st = make_function("styblinski_tang", 2)
    assert float(st(torch.tensor([[0.0, 0.0]], dtype=torch.float64))) == 0.0
    assert float(st(np.array([[1.0, 2.0]]))[0]) == 0.5 * ((1 - 16 + 5) + (16 - 64 + 10))
    sw = make_function("schwefel", 1)
    assert float(sw(np.array([[0.0]]))[0]) == pytest.approx(418.9829)
    assert float(sw(np.array([[1.0]]))[0]) == pytest.approx(418.9829 - math.sin(1.0))
    assert float(sw(np.array([[-100.0]]))[0]) == pytest.approx(418.9829 + 100 * math.sin(10.0))  # -x sin: x < 0
    # outside the box the penalty 1e4 * (|x| - 500)^2 applies
    assert float(sw(np.array([[600.0]]))[0]) == pytest.approx(418.9829 - 600 * math.sin(math.sqrt(600)) + 1e4 * 100**2)


def test_known_minima_and_basin_gaps():
    st = make_function("styblinski_tang", 10)
    assert st.f_min == pytest.approx(-39.16616570377142 * 10)
    assert st.basin_gap == pytest.approx(14.1367, abs=1e-3)  # one coordinate at x ~ 2.7468
    one_stuck = st.x_min.numpy().copy()
    one_stuck[3] = 2.746803
    assert float(st(one_stuck[None])[0]) - st.f_min == pytest.approx(st.basin_gap, abs=1e-6)
    sw = make_function("schwefel", 5)
    assert sw.f_min == pytest.approx(1.27275661e-5 * 5, abs=1e-9)
    assert 100 < sw.basin_gap < 130


@pytest.mark.parametrize("name", NAMES)
def test_analytic_gradient_matches_autograd(name):
    fn = make_function(name, 6)
    rng = np.random.default_rng(1)
    x = rng.uniform(fn.lo * 1.1, fn.hi * 1.1, (7, 6))  # some points outside the box too
    value, grad = fn.value_and_grad(x)
    xt = torch.tensor(x, requires_grad=True)
    vt = fn(xt)
    (gt,) = torch.autograd.grad(vt.sum(), xt)
    np.testing.assert_allclose(value, vt.detach().numpy(), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(grad, gt.numpy(), rtol=1e-9, atol=1e-7)


@pytest.mark.parametrize("name", NAMES)
def test_autograd_gradient_matches_finite_differences(name):
    fn = make_function(name, 3)
    x = torch.tensor(np.random.default_rng(2).uniform(fn.lo * 0.9, fn.hi * 0.9, (4, 3)), requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-4, rtol=1e-5)


def test_agreement_with_pycma_after_its_documented_shift():
    rng = np.random.default_rng(3)
    for d in (2, 10):
        st, sw = make_function("styblinski_tang", d), make_function("schwefel", d)
        for x in rng.uniform(-5, 5, (5, d)):
            # pycma shifts Styblinski-Tang by +39.166... * d so that its optimum is 0
            assert float(st(x[None])[0]) == pytest.approx(cma.ff.styblinski_tang(x) - 39.1661657037714171 * d,
                                                          abs=1e-9)
        for x in rng.uniform(-550, 550, (5, d)):
            # pycma's schwefelmult subtracts 1.27275661e-5 * d (so its optimum is ~0), same penalty outside 500
            assert float(sw(x[None])[0]) == pytest.approx(cma.ff.schwefelmult(x) + 1.27275661e-5 * d, rel=1e-12)


def test_rotation_is_orthogonal_seeded_and_changes_the_function():
    r = random_rotation(8, seed=5)
    np.testing.assert_allclose(r @ r.T, np.eye(8), atol=1e-12)
    np.testing.assert_array_equal(r, random_rotation(8, seed=5))
    assert not np.allclose(r, random_rotation(8, seed=6))
    plain, rot = make_function("styblinski_tang", 8), make_function("rotated_styblinski_tang", 8, rotation_seed=5)
    x = np.random.default_rng(0).uniform(-5, 5, (3, 8))
    assert not np.allclose(plain(x), rot(x))
    z = (x - plain.x_min.numpy()) @ r.T + plain.x_min.numpy()
    np.testing.assert_allclose(rot(x), plain(z), rtol=1e-12)


def test_torch_and_numpy_give_the_same_values():
    for name in NAMES:
        fn = make_function(name, 5)
        x = np.random.default_rng(4).uniform(fn.lo, fn.hi, (6, 5))
        np.testing.assert_allclose(fn(x), fn(torch.from_numpy(x)).numpy(), rtol=1e-13)
    assert styblinski_tang(torch.zeros(2, 3)).shape == (2,) and schwefel(np.zeros((2, 3))).shape == (2,)


@pytest.mark.parametrize("bad", ["rosenbrock", "rotated_foo"])
def test_unknown_function_is_named(bad):
    with pytest.raises(ValueError, match="unknown function"):
        make_function(bad, 2)
    with pytest.raises(ValueError, match="dim must be"):
        make_function("schwefel", 0)
