"""Supplementary A of the paper: Fisher information, Fourier spectrum and ZX reduction of the QDI circuit.

Every function is seeded and returns plain numbers and numpy arrays (and PyZX graphs), from which the book draws
Figs. 1, 3 and 4. The analysed circuit is the paper's: 4 qubits, 4 inputs (one RZ encoding), depth 1, i.e.
`SEL -> RZ(x) -> SEL -> <Y_q>` with 24 weights (`qallegro.quantum.circuit`).

Choices the paper leaves open, fixed here (see each docstring):

* Fisher information: the classical Fisher matrix of the circuit's outcome distribution over the 16 basis states
  (Abbas et al. 2021, Nat. Comput. Sci. 1, 403: `F = sum_k (d p_k)(d p_k)^T / p_k`), one matrix per sample (input
  `x ~ N(0, 1)`, weights `theta ~ U[0, 2pi)`), rank and spectrum taken per sample (the paper's mean rank 15.0 can
  only come from per-sample matrices: input-averaged ones reach rank 20). The outcomes are those of the layer's
  own measurement, every qubit in the Pauli-Y basis (= the computational basis after PennyLane's diagonalising
  gates of Y); `basis="z"` gives the plain computational basis, where the last block's final RZs cannot act.
  "Relative eigenvalues" are divided by the largest eigenvalue of the whole ensemble and histogrammed in 10 equal
  bins on [0, 1]; "near-zero" = below 0.1, the first bin (the paper's figure shows the bar, its text the share).
  "1, 2, 3 trainable layers" = the QDI depth (strongly entangling layers per trainable block), i.e. 24, 48 and 72
  weights; the circuit keeps one encoding of 4 inputs.
* Fourier spectrum: one output (default: qubit 0) as a function of the 4 inputs; 81 complex coefficients of the
  frequencies {-1, 0, 1}^4, counted as 81 real parts + 80 imaginary parts (the zero frequency's is always 0) = 161;
  "non-zero" means above a stated threshold (default 1e-10, i.e. structurally non-zero); counts at larger
  thresholds are returned too, since the paper's threshold is not given.
* ZX: PyZX with symbolic phases (one variable per weight and per input), simplified by `full_reduce`; a weight is
  preserved when it still appears in a phase of the simplified graph.
"""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .circuit import draw_circuit, make_qnode
from .statevector import n_blocks_for, pad_inputs, qdi_expectations, qdi_probabilities

__all__ = [
    "classical_fisher",
    "draw_circuit",
    "draw_zx",
    "fisher_information",
    "fisher_mean_ranks",
    "fourier_spectrum",
    "zx_circuit",
    "zx_reduction",
]


def _random_weights(n_qubits: int, in_features: int, depth: int, gen: torch.Generator) -> Tensor:
    shape = (n_blocks_for(in_features, n_qubits), depth, n_qubits, 3)
    return torch.rand(shape, generator=gen, dtype=torch.float64) * (2 * math.pi)


# ---------------------------------------------------------------------------------------------------- Fisher


def classical_fisher(x: Tensor, weights: Tensor, basis: str = "y", eps: float = 1e-14) -> Tensor:
    """Per-input classical Fisher matrices `[B, d, d]` of the outcome distribution, `d = weights.numel()`.

    `F_ij = sum_k (dp_k/dtheta_i)(dp_k/dtheta_j) / p_k` over the `2**n` outcomes of measuring every qubit in
    `basis` ("y": the layer's own Pauli-Y read-out; "z": the computational basis); outcomes with `p_k < eps` are
    dropped (their gradient vanishes too). x: `[B, in]` (zero-padded here), weights: `[n_blocks, depth, n, 3]`,
    float64.
    """
    xp = pad_inputs(x, weights.shape[-2])
    probs = qdi_probabilities(xp, weights, basis)
    # torch 2.13's forward-AD set-up warns about its own use of torch.jit.script
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        jac = torch.func.jacfwd(lambda w: qdi_probabilities(xp, w, basis))(weights)
    jac = jac.reshape(probs.shape[0], probs.shape[1], -1)
    inv = torch.where(probs > eps, 1.0 / probs.clamp_min(eps), torch.zeros_like(probs))
    return torch.einsum("bki,bkj,bk->bij", jac, jac, inv)


def fisher_information(
    depth: int = 1,
    n_qubits: int = 4,
    in_features: int = 4,
    n_weight_samples: int = 100,
    n_inputs: int = 100,
    seed: int = 0,
    basis: str = "y",
    bins: int = 10,
    near_zero: float = 0.1,
    rank_rtol: float = 1e-10,
) -> dict[str, Any]:
    """Fisher information of the QDI circuit over `n_weight_samples` weight draws x `n_inputs` Gaussian inputs.

    Returns (numpy arrays, plain numbers):

    * `mean_fisher` `[d, d]`: the average per-sample Fisher matrix (Fig. 4b heat map);
      `mean_fisher_normalised`: the same scaled as in Abbas et al. (`d * F / E[tr F]`, so its trace is `d`);
    * `eigenvalues` `[samples, d]`: eigenvalues of every per-sample matrix, divided by the largest eigenvalue of the
      whole ensemble ("relative eigenvalues", in [0, 1]); `histogram` (percent per bin) and `bin_edges`: `bins`
      equal bins on [0, 1] (Fig. 4a);
    * `near_zero_fraction`: share of relative eigenvalues below `near_zero` (= the first bin for 10 bins; the paper's
      "near-zero eigenvalues", about 78%); `zero_fraction`: share below `rank_rtol` (exact rank deficiency);
    * `ranks` `[samples]` and `mean_rank`: numerical rank of each per-sample matrix (singular values above
      `rank_rtol` times the largest; the spectrum has a gap of many orders of magnitude there), bounded by
      `2**n - 1` (`max_rank`) since the 2**n probabilities sum to one (Fig. 4c);
      `mean_rank_input_averaged`: rank of `E_x F(x, theta)` per weight draw (not bounded by 2**n - 1).

    The `basis` is the measurement the layer performs (`"y"`, default) or the computational basis (`"z"`): in the Z
    basis the final RZ of every Rot in the last block cannot matter (a diagonal phase before a Z measurement).
    """
    gen = torch.Generator().manual_seed(seed)
    traces, evs, ranks, ranks_avg = [], [], [], []
    total = None
    for _ in range(n_weight_samples):
        weights = _random_weights(n_qubits, in_features, depth, gen)
        x = torch.randn(n_inputs, in_features, generator=gen, dtype=torch.float64)
        fisher = classical_fisher(x, weights, basis)
        total = fisher.sum(0) if total is None else total + fisher.sum(0)
        ev = torch.linalg.eigvalsh(fisher).clamp_min(0.0)
        evs.append(ev)
        ranks.append(torch.linalg.matrix_rank(fisher, rtol=rank_rtol))
        ranks_avg.append(torch.linalg.matrix_rank(fisher.mean(0), rtol=rank_rtol))
        traces.append(fisher.diagonal(dim1=-2, dim2=-1).sum(-1))
    count = n_weight_samples * n_inputs
    mean = (total / count).numpy()
    d = mean.shape[0]
    rel = torch.cat(evs)
    rel = (rel / rel.max()).numpy()
    hist, edges = np.histogram(rel, bins=bins, range=(0.0, 1.0))
    rank_arr = torch.cat(ranks).numpy()
    return {
        "n_parameters": d,
        "depth": depth,
        "basis": basis,
        "samples": count,
        "mean_fisher": mean,
        "mean_fisher_normalised": d * mean / float(torch.cat(traces).mean()),
        "eigenvalues": rel,
        "histogram": 100.0 * hist / hist.sum(),
        "bin_edges": edges,
        "near_zero_threshold": near_zero,
        "near_zero_fraction": float((rel < near_zero).mean()),
        "zero_fraction": float((rel < rank_rtol).mean()),
        "ranks": rank_arr,
        "mean_rank": float(rank_arr.mean()),
        "max_rank": 2**n_qubits - 1,
        "mean_rank_input_averaged": float(torch.stack(ranks_avg).double().mean()),
    }


def fisher_mean_ranks(depths: tuple[int, ...] = (1, 2, 3), **kwargs: Any) -> dict[int, float]:
    """Mean per-sample Fisher rank for each QDI depth (Fig. 4c; the paper: 15.0 for 1, 2 and 3 layers)."""
    return {d: fisher_information(depth=d, **kwargs)["mean_rank"] for d in depths}


# ---------------------------------------------------------------------------------------------------- Fourier


def _output_function(weights: Tensor, output: int | str, simulator: str) -> Any:
    """`f(x) -> float or array` for `qml.fourier.coefficients` (x: list of scalars or broadcastable arrays)."""
    n = weights.shape[-2]
    qnode = make_qnode(n, diff_method=None) if simulator == "pennylane" else None
    if simulator not in ("torch", "pennylane"):
        raise ValueError(f"simulator must be 'torch' or 'pennylane', got {simulator!r}")

    def f(x: Any) -> Any:
        arrays = np.broadcast_arrays(*[np.asarray(v, dtype=np.float64) for v in x])
        inputs = torch.from_numpy(np.stack(arrays, -1).reshape(-1, len(arrays)))
        if qnode is None:
            out = qdi_expectations(pad_inputs(inputs, n), weights)
        else:
            out = torch.stack(list(qnode(pad_inputs(inputs, n), weights)), -1).reshape(-1, n)
        values = out.sum(-1) if output == "sum" else out[:, int(output)]
        return values.reshape(arrays[0].shape).numpy()

    return f


def _fourier_coefficients(weights: Tensor, output: int | str, simulator: str) -> np.ndarray:
    import pennylane as qml

    f = _output_function(weights, output, simulator)
    in_features = weights.shape[-2] * (weights.shape[0] - 1)
    return qml.fourier.coefficients(f, in_features, 1, use_broadcasting=True)


def _terms(coeffs: np.ndarray) -> np.ndarray:
    """The 161 counted terms: real parts of all 81 coefficients, imaginary parts of the 80 non-zero frequencies."""
    flat = np.fft.fftshift(coeffs).reshape(-1)  # lexicographic frequencies (-1,...,-1) ... (1,...,1)
    zero = flat.size // 2
    return np.concatenate([flat.real, np.delete(flat.imag, zero)])


def fourier_spectrum(
    output: int | str = 0,
    seed: int = 0,
    threshold: float = 1e-10,
    n_draws: int = 200,
    thresholds: tuple[float, ...] = (1e-10, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2),
    simulator: str = "torch",
    n_qubits: int = 4,
    depth: int = 1,
) -> dict[str, Any]:
    """Fourier spectrum of one circuit output as a function of its `n_qubits` inputs (one encoding, degree 1).

    Weights are uniform in [0, 2pi) (seeded). Uses `qml.fourier.coefficients` (degree 1) on the circuit (`simulator`:
    the torch state vector, equal to PennyLane's QNode to rounding, or the QNode itself). With one RZ per input
    the frequencies are {-1, 0, 1}^n: 3**n complex coefficients, counted as 3**n real + (3**n - 1) imaginary terms
    (161 for 4 inputs). A term is "non-zero" when its magnitude exceeds `threshold` (default 1e-10: exact zeros
    come out at ~1e-17, so this counts the structurally non-zero terms).

    Returns `frequencies` `[3**n, n]` (lexicographic), `real` / `imag` `[3**n]` (Fig. 4d stems), `terms` `[161]`,
    `n_terms`, `n_nonzero`, `nonzero_vs_threshold` (count per threshold for this draw), and over `n_draws` further
    seeded draws: `draw_nonzero` `[n_draws]` at `threshold` and `draw_mean_nonzero_vs_threshold`. `output` is a qubit
    index or `"sum"`; `per_output` gives the count for every qubit (light cone: an output whose backward light cone
    misses some qubit has no frequency in that qubit's input).
    """
    rng = np.random.default_rng(seed)
    shape = (2, depth, n_qubits, 3)

    def draw() -> Tensor:
        return torch.from_numpy(rng.uniform(0.0, 2 * math.pi, shape))

    weights = draw()
    coeffs = _fourier_coefficients(weights, output, simulator)
    terms = _terms(coeffs)
    flat = np.fft.fftshift(coeffs).reshape(-1)
    counts = {t: int((np.abs(terms) > t).sum()) for t in thresholds}
    per_output = {
        q: int((np.abs(_terms(_fourier_coefficients(weights, q, simulator))) > threshold).sum())
        for q in range(n_qubits)
    }
    draws = np.array([np.abs(_terms(_fourier_coefficients(draw(), output, "torch"))) for _ in range(n_draws)])
    return {
        "output": output,
        "weights": weights.numpy(),
        "coefficients": coeffs,
        "frequencies": np.array(list(itertools.product((-1, 0, 1), repeat=n_qubits))),
        "real": flat.real,
        "imag": flat.imag,
        "terms": terms,
        "n_terms": int(terms.size),
        "threshold": threshold,
        "n_nonzero": int((np.abs(terms) > threshold).sum()),
        "nonzero_vs_threshold": counts,
        "per_output": per_output,
        "draw_nonzero": (draws > threshold).sum(1) if n_draws else np.zeros(0, dtype=int),
        "draw_mean_nonzero_vs_threshold": {t: float((draws > t).sum(1).mean()) for t in thresholds}
        if n_draws
        else {},
    }


# ---------------------------------------------------------------------------------------------------- ZX


def zx_circuit(
    weights: Tensor | None = None, inputs: Tensor | None = None, n_qubits: int = 4, depth: int = 1
) -> Any:
    """The one-encoding QDI circuit as a PyZX `Circuit` (phases in units of pi).

    Without `weights`/`inputs` the phases are symbolic PyZX variables `w1..w{24}` (in the order of the flattened
    weight tensor: block, layer, qubit, (a, b, c)) and `x1..x{n}`. `Rot(a, b, c) = RZ(c) RY(b) RZ(a)` is written
    `Z(a), Z(-1/2), X(b), Z(1/2), Z(c)` (`RY(b) = RZ(pi/2) RX(b) RZ(-pi/2)`); CNOT ring; `RZ(x_q)`. Equal to the
    PennyLane circuit's unitary up to a global phase (tested numerically).
    """
    import pyzx as zx
    from pyzx.symbolic import new_var

    n = n_qubits
    if weights is None:
        w_phase: list[Any] = [new_var(f"w{i + 1}", False) for i in range(2 * depth * n * 3)]
    else:
        w_phase = [Fraction(float(v) / math.pi) for v in weights.reshape(-1)]
    if inputs is None:
        x_phase: list[Any] = [new_var(f"x{i + 1}", False) for i in range(n)]
    else:
        x_phase = [Fraction(float(v) / math.pi) for v in inputs.reshape(-1)]
    if len(w_phase) != 2 * depth * n * 3 or len(x_phase) != n:
        raise ValueError(f"zx_circuit: need {2 * depth * n * 3} weights and {n} inputs")
    circ = zx.Circuit(n)
    half = Fraction(1, 2)
    k = 0
    for block in range(2):
        if block == 1:
            for q in range(n):
                circ.add_gate("ZPhase", q, x_phase[q])
        for _ in range(depth):
            for q in range(n):
                a, b, c = w_phase[k : k + 3]
                k += 3
                circ.add_gate("ZPhase", q, a)
                circ.add_gate("ZPhase", q, -half)
                circ.add_gate("XPhase", q, b)
                circ.add_gate("ZPhase", q, half)
                circ.add_gate("ZPhase", q, c)
            if n > 1:
                for q in range(n):
                    circ.add_gate("CNOT", q, (q + 1) % n)
    return circ


def _surviving(graph: Any, n_weights: int) -> tuple[list[str], int]:
    """Weight variables still present in the graph's phases and the rank of their coefficient matrix."""
    from pyzx.symbolic import Poly

    names = [f"w{i + 1}" for i in range(n_weights)]
    index = {name: i for i, name in enumerate(names)}
    rows = []
    for v in graph.vertices():
        phase = graph.phase(v)
        if not isinstance(phase, Poly):
            continue
        row = np.zeros(n_weights)
        for coeff, term in phase.terms:
            for var, power in term.vars:
                if var.name in index:
                    if power != 1 or len(term.vars) != 1:
                        raise ValueError(f"non-linear phase {phase} after ZX simplification")
                    row[index[var.name]] += float(coeff)
        rows.append(row)
    matrix = np.array(rows) if rows else np.zeros((0, n_weights))
    present = [name for name, col in zip(names, matrix.T) if np.any(col != 0)]
    return present, int(np.linalg.matrix_rank(matrix)) if rows else 0


def zx_reduction(n_qubits: int = 4, depth: int = 1, plug_zero_state: bool = False) -> dict[str, Any]:
    """ZX-calculus reduction of the symbolic circuit: how many weights survive `pyzx.simplify.full_reduce`.

    Returns the original graph (`graph`, Fig. 3a) and the simplified one (`simplified`, Fig. 3b), `n_parameters`,
    `preserved` (weights that still appear in some phase), `independent` (rank of the linear map from the weights
    to the surviving phases, i.e. how many independent weight combinations remain; phases that merge two weights
    count once), `preserved_names`, and vertex/edge counts. The paper treats the circuit as an open unitary (24 of
    24 preserved); with `plug_zero_state=True` the `|0...0>` input is plugged in first, so that weights acting only
    as a global phase on it (the first RZ of every Rot in the first block) are removed too.
    """
    import pyzx as zx

    circ = zx_circuit(n_qubits=n_qubits, depth=depth)
    graph = circ.to_graph()
    if plug_zero_state:
        graph.apply_state("0" * n_qubits)
    simplified = graph.copy()
    zx.simplify.full_reduce(simplified)
    n_weights = 2 * depth * n_qubits * 3
    present, rank = _surviving(simplified, n_weights)
    return {
        "graph": graph,
        "simplified": simplified,
        "n_parameters": n_weights,
        "preserved": len(present),
        "independent": rank,
        "preserved_names": present,
        "vertices": (graph.num_vertices(), simplified.num_vertices()),
        "edges": (graph.num_edges(), simplified.num_edges()),
    }


def draw_zx(graph: Any, labels: bool = False, figsize: tuple[float, float] = (14, 5)) -> Any:
    """Matplotlib figure of a PyZX graph (phases in units of pi), e.g. `zx_reduction()["graph"]`."""
    import pyzx as zx

    return zx.draw_matplotlib(graph, labels=labels, figsize=figsize)
