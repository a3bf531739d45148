"""qallegro.timing.inference_time: what it measures, not how fast (no absolute-time assertions)."""

from __future__ import annotations

import pytest
import torch
from qallegro.data import load_dataset
from qallegro.data.graph import atoms_to_graph
from qallegro.models import build_model
from qallegro.timing import inference_time

CFG = {"r_max": 4.0, "l_max": 1, "num_layers": 1, "env_embed_multiplicity": 4,
       "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8],
       "edge_eng_mlp_latent_dimensions": [4], "avg_num_neighbors": 10.0}


@pytest.fixture(scope="module")
def setup():
    frames = load_dataset("rmd17-aspirin", "test", max_frames=6)
    return build_model(CFG, [1, 6, 8]), frames


class CountingModel(torch.nn.Module):
    """Wraps a model and counts structures seen with forces requested."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.inner, self.r_max, self.seen, self.forces_asked = model, model.r_max, 0, True

    def forward(self, g, compute_forces=True, compute_stress=False):
        self.seen += int(g["ptr"].numel() - 1)
        self.forces_asked &= compute_forces
        return self.inner(g, compute_forces=compute_forces)


def test_inference_time_counts_and_fields(setup) -> None:
    model, frames = setup
    counting = CountingModel(model)
    counting.train()
    out = inference_time(counting, frames, batch_size=4, repeats=3, warmup=2, threads=1)
    assert counting.seen == 6 * (3 + 2) and counting.forces_asked      # every structure, every pass, with forces
    assert counting.training                                            # mode restored
    assert out["n_structures"] == 6 and out["n_atoms"] == 6 * 21 and len(out["times_s"]) == 3
    assert out["total_s"] == pytest.approx(sorted(out["times_s"])[1])  # the median pass
    assert out["per_structure_s"] == pytest.approx(out["total_s"] / 6)
    assert out["per_atom_s"] == pytest.approx(out["total_s"] / 126)
    assert out["graph_s"] > 0 and not out["includes_graphs"] and out["threads"] == 1
    assert out["hardware"]["torch_threads"] == 1 and out["dtype"] == "float32"
    with_graphs = inference_time(model, frames, batch_size=6, repeats=1, warmup=0, include_graphs=True)
    assert with_graphs["includes_graphs"]
    assert with_graphs["total_s"] == pytest.approx(with_graphs["times_s"][0] + with_graphs["graph_s"])


def test_graphs_input_and_thread_restore(setup) -> None:
    model, frames = setup
    graphs = [atoms_to_graph(a, model.r_max, labels=False) for a in frames]
    before = torch.get_num_threads()
    out = inference_time(model, graphs, batch_size=2, repeats=1, warmup=0, threads=2)
    assert out["graph_s"] is None and out["threads"] == 2 and torch.get_num_threads() == before
    assert out["n_edges"] == sum(int(g["edge_index"].shape[1]) for g in graphs)
    with pytest.raises(ValueError, match="at least one"):
        inference_time(model, [], batch_size=1)


class SleepyModel(CountingModel):
    """Sleeps 20 ms per call: wall time passes, the process's CPU time hardly does."""

    def forward(self, g, compute_forces=True, compute_stress=False):
        import time

        time.sleep(0.02)
        return super().forward(g, compute_forces, compute_stress)


def test_process_clock_ignores_time_the_process_does_not_run(setup) -> None:
    model, frames = setup
    sleepy = SleepyModel(model)
    wall = inference_time(sleepy, frames, batch_size=2, repeats=3, warmup=1, threads=1, clock="wall")
    cpu = inference_time(sleepy, frames, batch_size=2, repeats=3, warmup=1, threads=1, clock="process")
    assert wall["total_s"] >= 3 * 0.02 and cpu["clock"] == "process"
    assert cpu["total_s"] < wall["total_s"] - 0.04
    with pytest.raises(ValueError, match="clock"):
        inference_time(model, frames, clock="sundial")


def test_matmul_flops_of_a_linear_layer_and_of_the_model_are_deterministic(setup) -> None:
    from qallegro.timing import matmul_flops

    lin = torch.nn.Linear(16, 8)
    x = torch.randn(5, 16)
    assert matmul_flops(lambda: lin(x)) == 2 * 5 * 16 * 8
    model, frames = setup
    a = inference_time(model, frames, batch_size=3, repeats=1, warmup=0, threads=1, flops=True)
    b = inference_time(model, frames, batch_size=3, repeats=1, warmup=0, threads=1, flops=True)
    assert a["matmul_flops"] == b["matmul_flops"] > 0
    assert a["matmul_flops_per_structure"] == pytest.approx(a["matmul_flops"] / len(frames))


def test_interleaved_retiming_times_every_model_every_round(setup) -> None:
    from qallegro.timing import retime_interleaved

    model, frames = setup
    small, sleepy = CountingModel(model), SleepyModel(model)
    out = retime_interleaved({"a": small, "b": sleepy}, frames, batch_size=3, rounds=4, warmup=1, clock="wall")
    assert set(out) == {"a", "b"} and all(len(v["times_s"]) == 4 for v in out.values())
    assert out["b"]["total_s"] > out["a"]["total_s"]          # 2 sleeps of 20 ms per pass
    assert small.seen == (1 + 4 + 1) * len(frames)           # warm-up, rounds, one FLOP-counting pass
    assert out["a"]["matmul_flops_per_structure"] == out["b"]["matmul_flops_per_structure"] > 0
