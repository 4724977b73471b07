"""Tests of the invertible layers and flows."""

import pytest
import torch
from torch.autograd.functional import jacobian

from pcflow.errors import PcflowError
from pcflow.flows import AdditiveCoupling, AffineCoupling, DiagonalScaling, Flow, build_flow, coupling_masks
from pcflow.flows import networks

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-12}


def trained_like(flow, seed=0):
    """Randomises every parameter (a fresh flow is the identity) so the tests see a non-trivial map."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return flow


def make_flow(coupling, dim, dtype, n_couplings=5):
    torch.manual_seed(0)
    flow = build_flow(dim, coupling=coupling, n_couplings=n_couplings, hidden_features=8)
    return trained_like(flow.to(dtype))


@pytest.mark.parametrize("dim", [2, 3, 4, 7])
def test_masks_update_every_coordinate(dim):
    masks = coupling_masks(dim, dim)
    updated = torch.stack([~m for m in masks]).any(dim=0)
    kept = torch.stack(masks).any(dim=0)
    assert updated.all() and kept.all()
    assert all(m.dtype == torch.bool and 0 < m.sum() < dim for m in masks)


def test_masks_need_two_dimensions():
    with pytest.raises(PcflowError, match="at least 2 dimensions"):
        coupling_masks(1, 3)


@pytest.mark.parametrize("coupling", [AdditiveCoupling, AffineCoupling])
def test_fresh_flow_is_identity(coupling):
    flow = build_flow(3, coupling=coupling)
    x = torch.randn(10, 3)
    z, logdet = flow(x)
    assert torch.equal(z, x)
    assert torch.equal(logdet, torch.zeros(10))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("coupling", [AdditiveCoupling, AffineCoupling])
@pytest.mark.parametrize("dim", [2, 3, 6])
def test_inverse_of_forward(coupling, dim, dtype):
    flow = make_flow(coupling, dim, dtype)
    x = torch.randn(64, dim, dtype=dtype)
    z, _ = flow(x)
    assert not torch.allclose(z, x)  # the map is not trivial
    torch.testing.assert_close(flow.inverse(z), x, atol=TOLERANCE[dtype], rtol=0)
    torch.testing.assert_close(flow(flow.inverse(x))[0], x, atol=TOLERANCE[dtype], rtol=0)


@pytest.mark.skipif(not networks._FUSED_LINEAR_SILU, reason="this torch build has no fused oneDNN linear layer")
@pytest.mark.parametrize("coupling", [AdditiveCoupling, AffineCoupling])
def test_fused_scoring_pass_equals_the_plain_one(coupling, monkeypatch):
    """Without gradient a float32 CPU pass fuses each linear layer with its SiLU; the values stay those of the
    network layer by layer, and float64 or a pass with gradient takes the plain path."""
    flow = make_flow(coupling, 3, torch.float32, n_couplings=4)
    x = torch.randn(300, 3)
    calls = []
    fused = torch.ops.mkldnn._linear_pointwise
    monkeypatch.setattr(networks, "_linear_silu", lambda *args: calls.append(1) or fused(*args))
    plain_z, plain_logdet = flow(x)  # gradient on: the plain layers
    assert not calls
    with torch.no_grad():
        z, logdet = flow(x)
        back = flow.inverse(plain_z.detach())
    assert len(calls) == 2 * 2 * 4  # two fused layers per network, forward and inverse, four couplings
    torch.testing.assert_close(z, plain_z.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logdet, plain_logdet.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(back, x, atol=1e-5, rtol=0)
    calls.clear()
    with torch.no_grad():
        flow.double()(x.double())
    assert not calls


@pytest.mark.parametrize("coupling", [AdditiveCoupling, AffineCoupling])
@pytest.mark.parametrize("dim", [2, 3, 5])
def test_logdet_matches_autograd_jacobian(coupling, dim):
    flow = make_flow(coupling, dim, torch.float64)
    x = torch.randn(6, dim, dtype=torch.float64)
    _, logdet = flow(x)
    for i in range(x.shape[0]):
        jac = jacobian(lambda v: flow(v[None])[0][0], x[i])
        sign, expected = torch.linalg.slogdet(jac)
        assert sign != 0
        torch.testing.assert_close(logdet[i], expected, atol=1e-10, rtol=0)


def test_nice_logdet_is_constant():
    flow = make_flow(AdditiveCoupling, 3, torch.float64)
    assert flow.constant_jacobian
    _, logdet = flow(torch.randn(50, 3, dtype=torch.float64) * 5)
    torch.testing.assert_close(logdet, logdet[0].expand(50), atol=1e-12, rtol=0)
    torch.testing.assert_close(logdet[0], flow.log_det_constant(), atol=1e-12, rtol=0)


def test_general_flow_is_not_constant_jacobian():
    flow = make_flow(AffineCoupling, 3, torch.float64)
    assert not flow.constant_jacobian
    with pytest.raises(PcflowError, match="constant-Jacobian"):
        flow.log_det_constant()
    _, logdet = flow(torch.randn(50, 3, dtype=torch.float64))
    assert logdet.std() > 1e-3


def test_long_flow_logdet_stays_finite():
    flow = make_flow(AffineCoupling, 4, torch.float32, n_couplings=64)
    with torch.no_grad():
        for layer in flow.layers:
            if isinstance(layer, AffineCoupling):
                layer.net[-1].bias.fill_(50.0)  # saturates every log-scale
    x = torch.randn(32, 4)
    z, logdet = flow(x)
    assert torch.isfinite(logdet).all()
    assert torch.isfinite(flow.inverse(torch.randn(32, 4))).all()


def test_layers_compose_explicitly():
    masks = coupling_masks(3, 2)
    flow = Flow([AdditiveCoupling(masks[0], 4, 1), AffineCoupling(masks[1], 4, 1), DiagonalScaling(3)])
    trained_like(flow.double())
    x = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(flow.inverse(flow(x)[0]), x)
    assert not flow.constant_jacobian


def test_inverse_and_log_det_gives_the_forward_log_det_at_the_preimage():
    masks = coupling_masks(3, 3)
    flow = Flow([AffineCoupling(masks[0], 8, 2), AdditiveCoupling(masks[1], 8, 1), AffineCoupling(masks[2], 8, 2),
                 DiagonalScaling(3)])
    trained_like(flow.double())
    z = 2.0 * torch.randn(40, 3, dtype=torch.float64)
    x, logdet = flow.inverse_and_log_det(z)
    torch.testing.assert_close(x, flow.inverse(z), atol=0, rtol=0)
    torch.testing.assert_close(logdet, flow(x)[1], atol=1e-12, rtol=0)
    assert logdet.std() > 1e-3  # a point-dependent log-det, not only the constant parts


def test_bad_architecture():
    with pytest.raises(PcflowError, match="n_couplings"):
        build_flow(3, n_couplings=0)


@pytest.mark.parametrize("coupling", [AdditiveCoupling, AffineCoupling])
def test_scoring_without_the_fused_op_is_the_plain_network(coupling, monkeypatch):
    """Where torch has no fused linear + SiLU, a pass without gradient runs the public layers: the same floats as
    the pass with gradient."""
    flow = make_flow(coupling, 3, torch.float32, n_couplings=4)
    x = torch.randn(300, 3)
    plain_z, plain_logdet = flow(x)
    monkeypatch.setattr(networks, "_FUSED_LINEAR_SILU", False)
    monkeypatch.setattr(networks, "_linear_silu", None)
    with torch.no_grad():
        z, logdet = flow(x)
    assert torch.equal(z, plain_z.detach()) and torch.equal(logdet, plain_logdet.detach())


def test_log_det_constant_sums_every_constant_layer():
    masks = coupling_masks(3, 2)
    flow = Flow([DiagonalScaling(3), AdditiveCoupling(masks[0], 4, 1), AdditiveCoupling(masks[1], 4, 1),
                 DiagonalScaling(3)])
    trained_like(flow.double())
    _, logdet = flow(torch.randn(7, 3, dtype=torch.float64))
    total = flow.log_det_constant()
    torch.testing.assert_close(total, logdet[0], atol=1e-12, rtol=0)
    total.backward()
    assert all(layer.log_scale.grad is not None for layer in flow.layers if isinstance(layer, DiagonalScaling))
