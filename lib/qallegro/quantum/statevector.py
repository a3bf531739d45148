"""Exact batched state-vector simulation of the QDI circuit in plain torch (double-backward safe).

The circuit (see `qallegro.quantum.circuit` for the PennyLane definition it must equal) on `n` qubits, with
`n_blocks = c + 1` trainable blocks for `c` input chunks of `n` features each:

    |0...0> -> T_0 -> E(x_0) -> T_1 -> E(x_1) -> ... -> E(x_{c-1}) -> T_c -> <Y_q> for every qubit q

* `T_b` (trainable block) = `depth` strongly entangling layers: per qubit `Rot(a, b, c) = RZ(c) RY(b) RZ(a)`,
  then the CNOT ring 0->1, 1->2, ..., (n-1)->0 (PennyLane's `StronglyEntanglingLayers` with range 1);
* `E(x_k)` = `RZ(x_{k, q})` on qubit `q`, a diagonal phase `exp(-i/2 sum_q z_q(s) x_{k,q})` on basis state `s`
  (`z_q(s) = +1` when qubit `q` is 0 in `s`, else -1).

Fast path (all edges at once): each block unitary is built once per call from the weights (it does not depend on
the input); `T_0 |0...0>` is a constant state; every encoding is an elementwise phase; the last block and the
Pauli-Y read-out are folded into one matrix `G = W T_c`, with `W` the per-qubit basis change `H S^dagger`
(`W^dagger Z_q W = Y_q`), so `<Y_q> = sum_s z_q(s) |(G psi)_s|^2`. The batch work is done in real arithmetic on
`[real | imag]` vectors of length `2 * 2**n`. Wire 0 is the most significant bit of the basis index (PennyLane's
convention).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "block_unitaries",
    "n_blocks_for",
    "pad_inputs",
    "qdi_expectations",
    "qdi_probabilities",
]


def n_blocks_for(in_features: int, n_qubits: int) -> int:
    """Number of trainable blocks: one more than the number of `n_qubits`-sized input chunks (zero-padded)."""
    if in_features < 1 or n_qubits < 1:
        raise ValueError(
            f"QDI circuit needs in_features >= 1 and n_qubits >= 1, got {in_features}, {n_qubits}"
        )
    return math.ceil(in_features / n_qubits) + 1


def pad_inputs(x: Tensor, n_qubits: int) -> Tensor:
    """`[..., in] -> [..., n_qubits * c]`: append zeros up to a multiple of `n_qubits` (RZ(0) is the identity)."""
    rest = (-x.shape[-1]) % n_qubits
    return torch.nn.functional.pad(x, (0, rest)) if rest else x


@cache
def _ring_inverse_permutation(n: int) -> tuple[int, ...]:
    """Row permutation `perm` with `(P A) = A[perm]` for the CNOT ring 0->1, ..., (n-1)->0 (applied in order)."""
    dim = 1 << n
    image = []
    for s in range(dim):
        bits = [(s >> (n - 1 - q)) & 1 for q in range(n)]
        if n > 1:
            for q in range(n):
                t = (q + 1) % n
                bits[t] ^= bits[q]
        image.append(sum(b << (n - 1 - q) for q, b in enumerate(bits)))
    inverse = [0] * dim
    for s, fs in enumerate(image):
        inverse[fs] = s
    return tuple(inverse)


def _z_signs(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """`[2**n, n]` matrix of `z_q(s) = 1 - 2 * bit_q(s)`."""
    s = torch.arange(1 << n, device=device)
    shifts = torch.arange(n - 1, -1, -1, device=device)
    return (1 - 2 * ((s[:, None] >> shifts) & 1)).to(dtype)


def _rot(w: Tensor) -> Tensor:
    """`[..., 3]` angles (a, b, c) -> `[..., 2, 2]` complex `RZ(c) RY(b) RZ(a)` (PennyLane `qml.Rot`)."""
    a, b, c = w.unbind(-1)
    cos, sin = torch.cos(b / 2), torch.sin(b / 2)
    plus, minus = (a + c) / 2, (a - c) / 2
    m00 = torch.complex(cos * torch.cos(plus), -cos * torch.sin(plus))
    m01 = torch.complex(-sin * torch.cos(minus), -sin * torch.sin(minus))
    m10 = torch.complex(sin * torch.cos(minus), -sin * torch.sin(minus))
    m11 = torch.complex(cos * torch.cos(plus), cos * torch.sin(plus))
    return torch.stack([torch.stack([m00, m01], -1), torch.stack([m10, m11], -1)], -2)


def _kron(mats: Tensor) -> Tensor:
    """`[..., n, 2, 2] -> [..., 2**n, 2**n]`: Kronecker product over the qubit axis (qubit 0 most significant)."""
    out = mats[..., 0, :, :]
    for q in range(1, mats.shape[-3]):
        m = mats[..., q, :, :]
        d = out.shape[-1]
        out = (out[..., :, None, :, None] * m[..., None, :, None, :]).reshape(*out.shape[:-2], 2 * d, 2 * d)
    return out


def block_unitaries(weights: Tensor) -> Tensor:
    """Trainable blocks as matrices.

    weights: `[..., n_blocks, depth, n, 3]` real -> `[..., n_blocks, 2**n, 2**n]` complex, where each block is
    `L_{depth-1} ... L_0` with `L = ring @ (Rot_0 x ... x Rot_{n-1})`.
    """
    n = int(weights.shape[-2])  # a Python int also when traced with symbolic sizes (it keys a cache)
    perm = torch.tensor(_ring_inverse_permutation(n), device=weights.device)
    layers = _kron(_rot(weights))[..., perm, :]  # [..., n_blocks, depth, D, D]
    out = layers[..., 0, :, :]
    for layer in range(1, layers.shape[-3]):
        out = layers[..., layer, :, :] @ out
    return out


def _y_basis_change(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """`W = (H S^dagger)^{x n}`, so that `W^dagger Z_q W = Y_q`."""
    v = torch.tensor([[1, -1j], [1, 1j]], dtype=dtype, device=device) / math.sqrt(2)
    return _kron(v.expand(n, 2, 2))


def _real_form(m: Tensor) -> Tensor:
    """Complex `[..., D, D]` -> real `[..., 2D, 2D]` acting on `[real | imag]` column vectors."""
    re, im = m.real, m.imag
    return torch.cat([torch.cat([re, -im], -1), torch.cat([im, re], -1)], -2)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype == torch.float64:
        return torch.complex128
    if dtype == torch.float32:
        return torch.complex64
    raise TypeError(f"QDI circuit supports float32 and float64 inputs, got {dtype}")


def _half_phase_terms(xk: Tensor, n: int) -> Tensor:
    """`[B, n] -> [B, 2**n]`: `cos(theta_s)` then `sin(theta_s)` for the states `s < 2**(n-1)` only.

    The complement `s' = 2**n - 1 - s` has `theta_s' = -theta_s`, so the other half follows with signs
    (`_unfold`), folded into the next matrix: half the trigonometric work per sample.
    """
    half = 1 << (n - 1)
    signs = (_z_signs(n, xk.dtype, xk.device)[:half].T * -0.5).repeat(1, 2)  # [n, D]
    shift = torch.zeros(2 * half, dtype=xk.dtype, device=xk.device)
    shift[half:] = -math.pi / 2
    return torch.cos(torch.addmm(shift, xk, signs))


@cache
def _unfold_matrix(n: int) -> np.ndarray:
    """`_unfold(n)` as a read-only array: cached as an array, never as a tensor (a tensor made while tracing the
    compiled model would be a fake one)."""
    dim, half = 1 << n, 1 << (n - 1)
    out = np.zeros((dim, 2 * dim))
    for s in range(dim):
        row, sign = (s, 1.0) if s < half else (dim - 1 - s, -1.0)
        out[row, s] = 1.0
        out[half + row, dim + s] = sign
    out.flags.writeable = False
    return out


def _unfold(n: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """`[D, 2D]` map from `_half_phase_terms` to `[cos(theta_s) | sin(theta_s)]` for every state `s`."""
    return torch.tensor(_unfold_matrix(n), dtype=dtype, device=device)


def _final_amplitudes(x: Tensor, weights: Tensor, basis: str) -> Tensor:
    """Amplitudes `[B, 2 * 2**n]` (real | imag) of the state before measurement, in the Z or Y basis.

    x: `[B, n * c]` padded inputs; weights: `[c + 1, depth, n, 3]` (shared by the batch).
    With `psi = a + ib`, an encoding maps `(a, b) -> (a cos - b sin, a sin + b cos)`. The first one acts on the
    constant `T_0 |0>`, so it is the matrix `K` applied to `[cos | sin]`; later ones take `[v | J v]` (with
    `J (a, b) = (-b, a)`, folded into the previous block's matrix) times `[cos, cos | sin, sin]`. The cosines and
    sines are computed for half of the states only (`_half_phase_terms`).
    """
    n, chunks = int(weights.shape[-2]), int(weights.shape[0]) - 1  # circuit sizes: static when traced
    if x.shape[-1] != n * chunks:
        raise ValueError(f"QDI circuit: {x.shape[-1]} padded inputs for {chunks} encodings of {n} qubits")
    cdtype = _complex_dtype(x.dtype)
    dim = 1 << n
    blocks = block_unitaries(weights.to(x.dtype)).to(cdtype)  # [c+1, D, D]
    if basis == "y":
        blocks = torch.cat([blocks[:-1], (_y_basis_change(n, cdtype, x.device) @ blocks[-1])[None]])
    elif basis != "z":
        raise ValueError(f"basis must be 'z' or 'y', got {basis!r}")
    mats = [_real_form(u).T for u in blocks[1:]]  # row-vector form: v -> v @ mat
    eye = torch.eye(dim, dtype=x.dtype, device=x.device)
    zero = torch.zeros_like(eye)
    rotate = torch.cat([torch.cat([zero, eye], -1), torch.cat([-eye, zero], -1)], -2)  # v @ rotate = J v
    psi0 = blocks[0][:, 0]
    a0, b0 = torch.diag(psi0.real), torch.diag(psi0.imag)
    first = torch.cat([torch.cat([a0, b0], -1), torch.cat([-b0, a0], -1)], -2)  # [cos | sin] @ first = psi
    unfold = _unfold(n, x.dtype, x.device)  # half-state cos|sin -> [cos | sin] of every state
    unfold_twice = torch.cat([unfold[:, :dim], unfold[:, :dim], unfold[:, dim:], unfold[:, dim:]], -1)
    v = x.new_zeros(0)
    for k in range(chunks):
        mat = mats[k] if k + 1 == chunks else torch.cat([mats[k], mats[k] @ rotate], -1)
        terms = _half_phase_terms(x[:, k * n : (k + 1) * n], n)
        if k == 0:
            v = terms @ (unfold @ first @ mat)
        else:
            v = (v * (terms @ unfold_twice)).view(-1, 2, 2 * dim).sum(1) @ mat
    return v


def qdi_probabilities(x: Tensor, weights: Tensor, basis: str = "z") -> Tensor:
    """Outcome probabilities `[B, 2**n]` of measuring every qubit in the Z (computational) or Y basis.

    x: `[B, n * c]` padded inputs; weights: `[c + 1, depth, n, 3]`.
    """
    v = _final_amplitudes(x, weights, basis)
    dim = v.shape[-1] // 2
    return v[:, :dim] ** 2 + v[:, dim:] ** 2


def qdi_expectations(x: Tensor, weights: Tensor) -> Tensor:
    """`<Y_q>` for every qubit: `[B, n * c]` padded inputs, `[c + 1, depth, n, 3]` weights -> `[B, n]`."""
    n = weights.shape[-2]
    v = _final_amplitudes(x, weights, basis="y")
    return v.square() @ _z_signs(n, x.dtype, x.device).repeat(2, 1)
