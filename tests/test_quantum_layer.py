"""QDI layer: the torch state vector equals PennyLane's default.qubit QNode (values, gradients, second derivatives)."""

from __future__ import annotations

import math

import pytest
import torch
from qallegro.quantum import QDILayer
from qallegro.quantum.circuit import make_qnode
from qallegro.quantum.statevector import n_blocks_for, pad_inputs, qdi_expectations, qdi_probabilities

TOL = 1e-6
# (n_qubits, depth, in_features): every qubit count 2-5 and depth 1-3, with and without zero padding.
CASES = [
    (2, 1, 2),
    (2, 2, 5),
    (2, 3, 4),
    (3, 1, 3),
    (3, 2, 6),
    (3, 3, 4),
    (4, 1, 4),
    (4, 2, 7),
    (4, 3, 8),
    (5, 1, 5),
    (5, 2, 9),
    (5, 3, 3),
]


def _layer(in_features: int, n: int, depth: int, seed: int) -> QDILayer:
    torch.manual_seed(seed)
    return QDILayer(in_features, n, depth).double()


def _reference(x: torch.Tensor, weight: torch.Tensor, n: int) -> torch.Tensor:
    """The plain PennyLane QNode (default.qubit, torch interface, backprop) on padded inputs."""
    return torch.stack(make_qnode(n)(pad_inputs(x, n), weight), -1)


@pytest.mark.parametrize("n, depth, in_features", CASES)
def test_torch_path_equals_pennylane_values_and_gradients(n: int, depth: int, in_features: int) -> None:
    layer = _layer(in_features, n, depth, seed=n * 10 + depth)
    x = torch.randn(5, in_features, dtype=torch.float64) * 2
    cot = torch.randn(5, n, dtype=torch.float64)  # a random cotangent, so every output matters
    got, want = {}, {}
    for store, fn in ((got, lambda xx, w: layer(xx)), (want, lambda xx, w: _reference(xx, w, n))):
        xx = x.clone().requires_grad_()
        out = fn(xx, layer.weight)
        gx, gw = torch.autograd.grad((out * cot).sum(), [xx, layer.weight])
        store.update(out=out.detach(), gx=gx, gw=gw)
    assert got["out"].shape == (5, n)
    for key in ("out", "gx", "gw"):
        assert torch.allclose(got[key], want[key], atol=TOL, rtol=0), key
    assert got["gw"].abs().max() > 1e-3 and got["gx"].abs().max() > 1e-3  # the check is not vacuous


@pytest.mark.parametrize("n, depth, in_features", [(4, 1, 4), (3, 2, 5), (2, 3, 4), (5, 1, 7)])
def test_second_derivatives_equal_pennylane_backprop(n: int, depth: int, in_features: int) -> None:
    """d/d(theta, x) of sum (d out/dx)^2 (the shape of a force loss), against PennyLane backprop."""
    layer = _layer(in_features, n, depth, seed=7 + n)
    x = torch.randn(4, in_features, dtype=torch.float64)
    results = []
    for backend in ("torch", "pennylane"):
        layer.backend = backend
        xx = x.clone().requires_grad_()
        out = layer(xx)
        (dx,) = torch.autograd.grad(
            (out * torch.arange(1.0, n + 1, dtype=out.dtype)).sum(), xx, create_graph=True
        )
        results.append(torch.autograd.grad(dx.square().sum(), [layer.weight, xx]))
    for mine, ref in zip(*results):
        assert torch.allclose(mine, ref, atol=TOL, rtol=0)
        assert mine.abs().max() > 1e-3


def test_gradgradcheck_float64() -> None:
    torch.manual_seed(3)
    weight = (torch.rand(3, 2, 3, 3, dtype=torch.float64) * 2 * math.pi).requires_grad_()
    x = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(qdi_expectations, (x, weight))
    assert torch.autograd.gradgradcheck(qdi_expectations, (x, weight))


def test_paper_circuit_has_24_weights_initialised_in_0_2pi() -> None:
    layer = QDILayer(4, n_qubits=4, depth=1)
    assert layer.weight.shape == (2, 1, 4, 3)
    assert sum(p.numel() for p in layer.parameters()) == 24
    assert QDILayer(4, 4, 3).weight.numel() == 72  # the Cu-Li row of Table 3: depth 3
    assert QDILayer(21, 4, 4).weight.shape == (7, 4, 4, 3)  # 21 features -> 6 chunks (3 zeros padded)
    big = QDILayer(40, 4, 3).weight
    assert big.min() >= 0 and big.max() < 2 * math.pi and big.std() > 1.0


def test_padding_is_zero_features() -> None:
    layer = _layer(7, 4, 2, seed=1)
    x = torch.randn(6, 7, dtype=torch.float64)
    padded = torch.cat([x, torch.zeros(6, 1, dtype=torch.float64)], -1)
    assert torch.equal(pad_inputs(x, 4), padded)
    assert torch.allclose(layer(x), qdi_expectations(padded, layer.weight), atol=1e-14)
    assert n_blocks_for(7, 4) == 3 and n_blocks_for(8, 4) == 3 and n_blocks_for(9, 4) == 4


def test_probabilities_are_a_distribution_and_match_pennylane() -> None:
    torch.manual_seed(5)
    weight = torch.rand(2, 1, 4, 3, dtype=torch.float64) * 2 * math.pi
    x = torch.randn(8, 4, dtype=torch.float64)
    probs = qdi_probabilities(x, weight, basis="z")
    ref = make_qnode(4, probs="z")(x, weight)
    assert torch.allclose(probs, ref, atol=1e-12)
    assert torch.allclose(probs.sum(-1), torch.ones(8, dtype=torch.float64))
    # the Y-basis distribution matches PennyLane's (diagonalising gates of PauliY) and gives the layer's output
    py = qdi_probabilities(x, weight, basis="y")
    assert torch.allclose(py, make_qnode(4, probs="y")(x, weight), atol=1e-12)
    signs = 1 - 2 * ((torch.arange(16)[:, None] >> torch.arange(3, -1, -1)) & 1).double()
    assert torch.allclose(py @ signs, qdi_expectations(x, weight), atol=1e-12)


def test_float32_follows_input_dtype() -> None:
    layer = _layer(6, 3, 2, seed=2)
    x = torch.randn(10, 6, dtype=torch.float64)
    out64 = layer(x)
    out32 = layer.float()(x.float())
    assert out32.dtype == torch.float32 and out64.dtype == torch.float64
    assert torch.allclose(out32.double(), out64, atol=1e-5)


def test_leading_dimensions_and_bad_input() -> None:
    layer = _layer(4, 4, 1, seed=0)
    x = torch.randn(2, 3, 4, dtype=torch.float64)
    assert torch.allclose(layer(x), layer(x.reshape(6, 4)).reshape(2, 3, 4))
    assert layer(torch.zeros(0, 4, dtype=torch.float64)).shape == (0, 4)
    with pytest.raises(ValueError, match="expected 4 input features"):
        layer(torch.randn(3, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="backend"):
        QDILayer(4, backend="qiskit")
    with pytest.raises(ValueError, match="in_features"):
        QDILayer(0)


def test_lightning_agrees_at_inference_and_refuses_gradients() -> None:
    layer = _layer(6, 3, 2, seed=4)
    x = torch.randn(5, 6, dtype=torch.float64)
    with torch.no_grad():
        ref = layer(x)
        layer.backend = "lightning"
        got = layer(x)
    assert torch.allclose(got, ref, atol=1e-10)
    with pytest.raises(RuntimeError, match="inference only"):
        layer(x)
    with torch.inference_mode():
        assert torch.allclose(layer(x.float()).double(), ref, atol=1e-5)


def test_backends_share_one_weight() -> None:
    layer = _layer(4, 4, 1, seed=9)
    state = layer.state_dict()
    assert list(state) == ["weight"]
    other = QDILayer(4, 4, 1, backend="pennylane").double()
    other.load_state_dict(state)
    x = torch.randn(3, 4, dtype=torch.float64)
    assert torch.allclose(other(x), layer(x), atol=TOL)


def test_layer_pickles_after_using_pennylane(tmp_path) -> None:
    layer = _layer(4, 4, 1, seed=11)
    layer.backend = "pennylane"
    x = torch.randn(3, 4, dtype=torch.float64)
    want = layer(x)
    torch.save(layer, tmp_path / "layer.pt")
    loaded = torch.load(tmp_path / "layer.pt", weights_only=False)
    assert loaded.backend == "pennylane" and torch.allclose(loaded(x), want)
