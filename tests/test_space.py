"""Operations, the supernet and the zero-one loss."""

import pytest
import torch

from dscd.ops import DARTS_OPS, FAIRDARTS_OPS, check_ops, make_op
from dscd.search_network import SearchNetwork, fairdarts_objective, num_edges, zero_one_loss


def test_reference_parameter_count():
    net = SearchNetwork(channels=16, num_classes=10, layers=8)
    assert sum(p.numel() for p in net.weights()) == 1_930_618
    # 'none' has no parameters: the DARTS space has the same count
    darts = SearchNetwork(channels=16, num_classes=10, layers=8, ops=DARTS_OPS, relaxation="softmax")
    assert sum(p.numel() for p in darts.weights()) == 1_930_618


def test_alphas_are_separate_and_start_at_zero():
    net = SearchNetwork(channels=4, layers=3)
    alphas = net.alphas()
    assert [tuple(a.shape) for a in alphas] == [(14, 7), (14, 7)] and num_edges(4) == 14
    assert sum(a.numel() for a in alphas) == 196
    assert all((a == 0).all() for a in alphas)
    ids = {id(p) for p in net.weights()}
    assert not ids & {id(a) for a in alphas}
    assert len(ids) + 2 == len(list(net.parameters()))
    assert "alpha_normal" in net.state_dict()
    darts = SearchNetwork(channels=4, layers=3, ops=DARTS_OPS, relaxation="softmax", alpha_init_std=1e-3,
                          generator=torch.Generator().manual_seed(0))
    assert 0 < darts.alpha_normal.abs().max() < 1e-2


@pytest.mark.parametrize("relaxation,ops", [("sigmoid", FAIRDARTS_OPS), ("softmax", DARTS_OPS)])
def test_output_shapes_and_gradients(relaxation, ops):
    net = SearchNetwork(channels=4, num_classes=5, layers=3, ops=ops, relaxation=relaxation)
    assert net.reduction_layers == [1, 2]
    x = torch.randn(2, 3, 16, 16)
    out = net(x)
    assert out.shape == (2, 5)
    out.sum().backward(inputs=net.alphas())
    assert all(a.grad is not None and a.grad.abs().sum() > 0 for a in net.alphas())
    assert all(p.grad is None for p in net.weights())  # the alpha step computes no weight gradients


def test_cell_shapes_normal_and_reduction():
    net = SearchNetwork(channels=4, layers=3, nodes=2)
    s = net.stem(torch.randn(2, 3, 8, 8))
    w = torch.sigmoid(net.alpha_normal)
    assert w.shape == (num_edges(2), 7) == (5, 7)
    normal = net.cells[0](s, s, w)
    assert normal.shape == (2, 2 * 4, 8, 8)  # nodes * C channels
    reduce = net.cells[1](s, normal, torch.sigmoid(net.alpha_reduce))
    assert reduce.shape == (2, 2 * 8, 4, 4)  # channels doubled, resolution halved


def test_shared_relu_gives_the_same_function_as_separate_relus():
    torch.manual_seed(0)
    op = make_op("sep_conv_3x3", 4, 1, affine=False, pre_relu=True)
    plain = make_op("sep_conv_3x3", 4, 1, affine=False)
    with torch.no_grad():  # same parameters in the same order; one ReLU fewer in the module list
        for a, b in zip(op.parameters(), plain.parameters(), strict=True):
            b.copy_(a)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(op(torch.relu(x)), plain(x))


def test_zero_one_loss_closed_form():
    big = 50.0  # sigmoid(+-50) is 0 or 1 to double precision
    assert float(zero_one_loss([torch.zeros(14, 7), torch.zeros(14, 7)])) == 0.0
    assert float(zero_one_loss([torch.full((14, 7), big), torch.full((14, 7), -big)])) == pytest.approx(-0.25)
    half = [torch.full((3,), big), torch.zeros(3)]  # half at 1 (-0.25 each), half at 0.5 (0)
    assert float(zero_one_loss(half)) == pytest.approx(-0.125)


def test_fairdarts_objective_adds_w01_times_the_zero_one_loss():
    logits, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    alphas = [torch.full((2, 2), 50.0)]
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert float(fairdarts_objective(logits, y, alphas, w01=10)) == pytest.approx(float(ce) - 2.5)
    assert float(fairdarts_objective(logits, y, alphas, w01=0)) == pytest.approx(float(ce))


def test_bad_configuration_is_named():
    with pytest.raises(ValueError, match="unknown operation 'conv_7x7'"):
        SearchNetwork(channels=4, layers=3, ops=("conv_7x7",))
    with pytest.raises(ValueError, match="relaxation"):
        SearchNetwork(channels=4, layers=3, relaxation="gumbel")
    with pytest.raises(ValueError, match="'none' is not an operation of the sigmoid relaxation"):
        SearchNetwork(channels=4, layers=3, ops=DARTS_OPS)
    with pytest.raises(ValueError, match="channels must be even"):
        SearchNetwork(channels=5, layers=3)
    with pytest.raises(ValueError, match="empty"):
        check_ops(())
    with pytest.raises(ValueError, match="unknown operation"):
        make_op("conv_7x7", 4, 1)


def _plain_and_shared(relaxation, ops, layers=3):
    torch.manual_seed(0)
    plain = SearchNetwork(4, 5, layers, nodes=3, ops=ops, relaxation=relaxation, alpha_init_std=0.5,
                          share_ops=False)
    shared = SearchNetwork(4, 5, layers, nodes=3, ops=ops, relaxation=relaxation, share_ops=True)
    shared.load_state_dict(plain.state_dict())
    return plain, shared


@pytest.mark.parametrize("relaxation,ops", [("sigmoid", FAIRDARTS_OPS), ("softmax", DARTS_OPS)])
@pytest.mark.parametrize("training", [True, False])
def test_shared_operations_match_the_per_edge_computation(relaxation, ops, training):
    """Outputs, alpha gradients, weight gradients and BatchNorm buffers agree between the per-edge
    computation and parameter-free operations computed once per state (3 cells: normal, reduction,
    normal after a reduction)."""
    plain, shared = _plain_and_shared(relaxation, ops)
    x = torch.randn(6, 3, 8, 8)
    y = torch.randint(0, 5, (6,))
    grads = []
    for net in (plain, shared):
        net.train(training)
        for _ in range(2):  # a second pass sees the updated running statistics in eval mode
            net.zero_grad(set_to_none=True)
            out = net(x)
            fairdarts_objective(out, y, net.alphas(), w01=1.0).backward()
        grads.append((out.detach(), {name: p.grad.clone() for name, p in net.named_parameters()}))
    (out_p, g_p), (out_s, g_s) = grads
    torch.testing.assert_close(out_s, out_p, rtol=1e-5, atol=1e-6)
    assert g_p.keys() == g_s.keys()
    for name in g_p:
        torch.testing.assert_close(g_s[name], g_p[name], rtol=1e-4, atol=1e-6, msg=name)
    for (name, a), (_, b) in zip(plain.state_dict().items(), shared.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    if training:  # the siblings' pool BatchNorm statistics moved, and moved alike
        pool = 1 if relaxation == "softmax" else 0  # max_pool_3x3's index
        means = [v for k, v in shared.state_dict().items() if k.endswith(f"ops.{pool}.1.running_mean")]
        assert len(means) > 2 and not torch.equal(means[0], torch.zeros_like(means[0]))


def test_shared_operations_change_nothing_in_the_state_dict_format():
    plain, shared = _plain_and_shared("sigmoid", FAIRDARTS_OPS)
    assert list(plain.state_dict()) == list(shared.state_dict())
    assert [p.shape for p in plain.parameters()] == [p.shape for p in shared.parameters()]


def test_factorized_reduce_equals_two_strided_convolutions():
    from dscd.ops import FactorizedReduce

    torch.manual_seed(0)
    for size in (8, 7):
        op = FactorizedReduce(4, 6).eval()
        x = torch.randn(3, 4, size, size)
        shifted = torch.nn.functional.pad(x.relu()[:, :, 1:, 1:], (0, 1, 0, 1))
        expected = op.bn(torch.cat([torch.nn.functional.conv2d(x.relu(), op.conv_1.weight, stride=2),
                                    torch.nn.functional.conv2d(shifted, op.conv_2.weight, stride=2)], dim=1))
        assert torch.allclose(op(x), expected, atol=1e-6)


def test_one_thread_channels_last_backward_of_a_reduction_does_not_crash():
    """torch 2.14.1 corrupts the heap in this backward with a strided 1x1 convolution (one thread)."""
    import subprocess
    import sys

    script = ("import torch; torch.set_num_threads(1)\n"
              "from dscd.ops import FactorizedReduce\n"
              "op = FactorizedReduce(2, 2).to(memory_format=torch.channels_last)\n"
              "x = torch.randn(10, 2, 8, 8).to(memory_format=torch.channels_last).requires_grad_()\n"
              "for _ in range(50):\n    op(x).sum().backward()\nprint('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-500:]
