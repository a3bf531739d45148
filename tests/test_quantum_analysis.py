"""Supplementary A: Fisher information, Fourier spectrum and ZX reduction, checked by independent computations."""

from __future__ import annotations

import itertools
import math

import matplotlib
import numpy as np
import pytest
import torch
from qallegro.paper import values
from qallegro.quantum import analysis
from qallegro.quantum.circuit import make_qnode
from qallegro.quantum.statevector import qdi_expectations, qdi_probabilities

matplotlib.use("Agg")
PAPER = values()["supplementary_a"]
FIRST_RZ = [0, 3, 6, 9]  # Rot(a, b, c) of the first block: RZ(a) acts on |0> and is a global phase
LAST_RZ = [14, 17, 20, 23]  # the last block's RZ(c): a diagonal phase before the read-out


def _weights(seed: int, depth: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(2, depth, 4, 3, generator=gen, dtype=torch.float64) * 2 * math.pi


@pytest.mark.parametrize("basis", ["y", "z"])
def test_classical_fisher_matches_finite_differences_and_pennylane(basis: str) -> None:
    weights = _weights(1)
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    fisher = analysis.classical_fisher(x, weights, basis)
    assert fisher.shape == (3, 24, 24)
    # central finite differences of the probabilities
    h, flat = 1e-6, weights.reshape(-1)
    jac = torch.zeros(3, 16, 24, dtype=torch.float64)
    for i in range(24):
        step = torch.zeros(24, dtype=torch.float64)
        step[i] = h
        plus = qdi_probabilities(x, (flat + step).reshape(weights.shape), basis)
        minus = qdi_probabilities(x, (flat - step).reshape(weights.shape), basis)
        jac[:, :, i] = (plus - minus) / (2 * h)
    probs = qdi_probabilities(x, weights, basis)
    fd = torch.einsum("bki,bkj,bk->bij", jac, jac, 1 / probs)
    assert torch.allclose(fisher, fd, atol=1e-6)
    # PennyLane's classical Fisher on the reference QNode
    import pennylane as qml

    w = weights.clone().requires_grad_()
    ref = qml.gradients.classical_fisher(make_qnode(4, probs=basis))(x[0], w)[1].reshape(24, 24)
    assert torch.allclose(fisher[0], ref.detach(), atol=1e-10)


def test_fisher_structure_rank_and_histogram() -> None:
    res = analysis.fisher_information(n_weight_samples=6, n_inputs=8, seed=3)
    d = res["n_parameters"]
    assert d == PAPER["zx_parameters_total"] == 24
    # rank <= 2**4 - 1 = 15 (probabilities sum to one); generic samples reach it, as in the paper (15.0)
    assert res["max_rank"] == 15 and res["ranks"].max() <= 15
    assert res["mean_rank"] == PAPER["fisher_mean_rank"][1] == 15.0
    assert res["zero_fraction"] == pytest.approx(9 / 24)  # 24 - 15 exact zeros per sample
    assert res["histogram"].sum() == pytest.approx(100.0) and res["histogram"].shape == (10,)
    assert res["near_zero_fraction"] == pytest.approx(res["histogram"][0] / 100)
    assert res["eigenvalues"].shape == (48, 24) and res["eigenvalues"].max() == pytest.approx(1.0)
    mean = res["mean_fisher"]
    assert np.allclose(mean, mean.T) and np.linalg.eigvalsh(mean).min() > -1e-12
    assert np.trace(res["mean_fisher_normalised"]) == pytest.approx(d)
    # weights that cannot change the outcome distribution have a zero row (checked against the circuit's structure)
    assert np.abs(mean[FIRST_RZ]).max() < 1e-12 and np.abs(np.delete(np.diag(mean), FIRST_RZ)).min() > 1e-3
    zres = analysis.fisher_information(n_weight_samples=3, n_inputs=4, seed=3, basis="z")
    assert np.abs(zres["mean_fisher"][FIRST_RZ + LAST_RZ]).max() < 1e-12
    # averaging over inputs lifts the 2**n - 1 bound: rank 24 - 4 (the four first-RZ weights never matter)
    assert res["mean_rank_input_averaged"] == 20.0


def test_fisher_mean_rank_for_one_two_three_layers() -> None:
    ranks = analysis.fisher_mean_ranks(n_weight_samples=3, n_inputs=4, seed=0)
    assert ranks == {1: 15.0, 2: 15.0, 3: 15.0}
    assert ranks == {int(k): v for k, v in PAPER["fisher_mean_rank"].items()}


def test_fisher_near_zero_share_at_default_sizes() -> None:
    res = analysis.fisher_information()  # 100 weight draws x 100 inputs
    assert res["samples"] == 10_000
    assert abs(res["near_zero_fraction"] - PAPER["fisher_near_zero_fraction"]) < 0.03


def _grid_fft(weights: torch.Tensor, output: int, points: int) -> np.ndarray:
    """Fourier coefficients from the FFT of the circuit sampled on a `points^4` grid (no degree assumed)."""
    axes = np.arange(points) * 2 * math.pi / points
    grid = torch.tensor(list(itertools.product(axes, repeat=4)), dtype=torch.float64)
    values_ = qdi_expectations(grid, weights)[:, output].reshape((points,) * 4).numpy()
    return np.fft.fftn(values_) / values_.size


def test_fourier_coefficients_against_fine_fft_and_direct_evaluation() -> None:
    res = analysis.fourier_spectrum(seed=4, n_draws=0)
    assert res["n_terms"] == PAPER["fourier_terms"] == 161
    assert res["coefficients"].shape == (3, 3, 3, 3) and res["frequencies"].shape == (81, 4)
    weights = torch.from_numpy(res["weights"])
    fine = _grid_fft(weights, 0, 5)
    idx = np.array([0, 1, -1])  # qml.fourier's order of the frequencies 0, 1, -1
    assert np.allclose(fine[np.ix_(idx, idx, idx, idx)], res["coefficients"], atol=1e-12)
    mask = np.ones(fine.shape, bool)
    mask[np.ix_(idx, idx, idx, idx)] = False
    assert np.abs(fine[mask]).max() < 1e-12  # nothing beyond frequency 1
    # the series reproduces the circuit at random inputs: f(x) = sum_w c_w exp(i w.x)
    x = torch.randn(5, 4, dtype=torch.float64)
    c = res["real"] + 1j * res["imag"]
    series = (np.exp(1j * x.numpy() @ res["frequencies"].T) @ c).real
    assert np.allclose(series, qdi_expectations(x, weights)[:, 0].numpy(), atol=1e-12)
    # real parts are even and imaginary parts odd in the frequency (a real function); imag(0) = 0
    assert np.allclose(res["real"], res["real"][::-1]) and np.allclose(res["imag"], -res["imag"][::-1])
    assert res["n_nonzero"] == 161 and res["nonzero_vs_threshold"][1e-2] < 161


def test_fourier_light_cone_and_pennylane_simulator() -> None:
    res = analysis.fourier_spectrum(seed=0, n_draws=3)
    # <Y_1> pulled back through the last CNOT ring acts on qubits 0-2 only, so x_4 drops out: 2 * 27 - 1 terms
    assert res["per_output"] == {0: 161, 1: 53, 2: 161, 3: 161}
    x = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    weights = torch.from_numpy(res["weights"])
    for point in torch.randn(4, 4, dtype=torch.float64):
        x = point[None].clone().requires_grad_()
        (grad,) = torch.autograd.grad(qdi_expectations(x, weights)[0, 1], x)
        assert abs(grad[0, 3]) < 1e-12 and grad[0, :3].abs().max() > 1e-6
    ref = analysis.fourier_spectrum(seed=0, n_draws=0, simulator="pennylane")
    assert np.allclose(ref["coefficients"], res["coefficients"], atol=1e-12)
    assert res["draw_nonzero"].shape == (3,) and (res["draw_nonzero"] <= 161).all()


def test_zx_reduction_preserves_all_24_weights() -> None:
    res = analysis.zx_reduction()
    assert res["n_parameters"] == PAPER["zx_parameters_total"]
    assert res["preserved"] == res["independent"] == PAPER["zx_parameters_preserved"] == 24
    assert res["vertices"][1] < res["vertices"][0]
    plugged = analysis.zx_reduction(plug_zero_state=True)
    missing = {f"w{i + 1}" for i in range(24)} - set(plugged["preserved_names"])
    assert missing == {f"w{i + 1}" for i in FIRST_RZ}  # the same weights as the Fisher matrix's zero rows
    assert plugged["preserved"] == plugged["independent"] == 20


def test_zx_circuit_is_the_pennylane_unitary() -> None:
    import pennylane as qml
    from qallegro.quantum.circuit import qdi_gates

    weights, x = _weights(6), torch.randn(4, dtype=torch.float64)
    mat_zx = analysis.zx_circuit(weights, x).to_matrix()
    mat_pl = qml.matrix(qdi_gates, wire_order=range(4))(x, weights).numpy()
    phase = mat_pl.flat[np.abs(mat_pl).argmax()] / mat_zx.flat[np.abs(mat_pl).argmax()]
    assert abs(abs(phase) - 1) < 1e-10
    assert np.allclose(mat_zx * phase, mat_pl, atol=1e-10)


def test_drawings() -> None:
    _fig, ax = analysis.draw_circuit(4, 4, 1)
    assert len(ax.patches) > 20  # boxes for 8 Rot, 4 RZ, 4 measurements and the CNOT targets
    zx_fig = analysis.draw_zx(analysis.zx_reduction()["simplified"])
    assert zx_fig.axes and zx_fig.axes[0].has_data()
    matplotlib.pyplot.close("all")
