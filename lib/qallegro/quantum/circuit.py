"""The QDI circuit defined with PennyLane: the reference for the torch state vector and the lightning backend.

`qdi_circuit(inputs, weights)` is the quantum function (PennyLane's `TorchLayer` signature):

    for b in 0..c:   (c = number of encodings = weights.shape[0] - 1)
        if b > 0:  RZ(inputs[..., (b-1) n + q]) on qubit q, for every qubit
        StronglyEntanglingLayers(weights[b], ranges=(1,) * depth)   # Rot per qubit + CNOT ring 0->1->...->0
    return [expval(PauliY(q)) for q in range(n)]

`inputs` must already be zero-padded to `n * c` features (`statevector.pad_inputs`); a leading batch dimension is
simulated by PennyLane's parameter broadcasting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["draw_circuit", "make_qnode", "qdi_circuit", "qdi_gates"]


def qdi_circuit(inputs: Tensor, weights: Tensor) -> list[Any]:
    """PennyLane quantum function of the QDI circuit (see the module docstring)."""
    import pennylane as qml

    qdi_gates(inputs, weights)
    return [qml.expval(qml.PauliY(q)) for q in range(weights.shape[2])]


def qdi_gates(inputs: Tensor, weights: Tensor) -> None:
    """Queue the gates of the QDI circuit (no measurement)."""
    import pennylane as qml

    n_blocks, depth, n, _ = weights.shape
    if inputs.shape[-1] != n * (n_blocks - 1):
        raise ValueError(f"qdi_circuit: {inputs.shape[-1]} inputs for {n_blocks - 1} encodings of {n} qubits")
    wires = list(range(n))
    ranges = (1,) * depth if n > 1 else None
    for b in range(n_blocks):
        if b > 0:
            for q in wires:
                qml.RZ(inputs[..., (b - 1) * n + q], wires=q)
        qml.StronglyEntanglingLayers(weights[b], wires=wires, ranges=ranges)


def _probs_z(inputs: Tensor, weights: Tensor) -> Any:
    """Same gates as `qdi_circuit`, returning the computational-basis probabilities."""
    import pennylane as qml

    qdi_gates(inputs, weights)
    return qml.probs(wires=range(weights.shape[2]))


def _probs_y(inputs: Tensor, weights: Tensor) -> Any:
    """Same gates, then PennyLane's diagonalising gates of PauliY on every qubit: the Y-measurement outcomes."""
    import pennylane as qml

    qdi_gates(inputs, weights)
    for q in range(weights.shape[2]):
        with qml.QueuingManager.stop_recording():
            gates = qml.PauliY(q).diagonalizing_gates()
        for gate in gates:
            qml.apply(gate)
    return qml.probs(wires=range(weights.shape[2]))


def make_qnode(
    n_qubits: int,
    device: str = "default.qubit",
    diff_method: str | None = "backprop",
    interface: str = "torch",
    probs: str | None = None,
) -> Callable[..., Any]:
    """QNode `f(inputs, weights)` of the QDI circuit on `device` (e.g. `default.qubit`, `lightning.qubit`).

    It returns the Pauli-Y expectations, or with `probs="z"` / `"y"` the outcome probabilities of measuring every
    qubit in the computational / Y basis.
    """
    import pennylane as qml

    dev = qml.device(device, wires=n_qubits)
    funcs = {None: qdi_circuit, "z": _probs_z, "y": _probs_y}
    if probs not in funcs:
        raise ValueError(f"probs must be None, 'z' or 'y', got {probs!r}")
    func = funcs[probs]
    return qml.QNode(func, dev, interface=interface, diff_method=diff_method)


def draw_circuit(
    n_qubits: int = 4, in_features: int = 4, depth: int = 1, expand: bool = True, style: str = "pennylane"
) -> tuple[Any, Any]:
    """Circuit drawing (Fig. 1) with `qml.draw_mpl`: returns `(figure, axes)`.

    Inputs and weights are symbolic-free placeholders (zeros); `expand=True` decomposes the
    StronglyEntanglingLayers into Rot and CNOT gates.
    """
    import pennylane as qml

    from .statevector import n_blocks_for

    n_blocks = n_blocks_for(in_features, n_qubits)
    qnode = make_qnode(n_qubits, diff_method=None)
    inputs = torch.zeros(n_qubits * (n_blocks - 1), dtype=torch.float64)
    weights = torch.zeros(n_blocks, depth, n_qubits, 3, dtype=torch.float64)
    level: Sequence[Any] | str | None = "device" if expand else "top"
    return qml.draw_mpl(qnode, level=level, style=style)(inputs, weights)
