"""Learning-curve table benchmark: a fixed set of configurations trained once, every epoch recorded; samplers and
multi-fidelity schedules are then compared on the table in seconds (the tabular-benchmark method of HPO research).

`build_table` trains `n_configs` configurations drawn from the search space (seeded, scrambled Halton) for a fixed
number of epochs each, at a scale's per-trial settings without wall-clock cap or early stopping, and writes one row per
(configuration, epoch): the validation error and the configuration's inference time (measured once: it does not
depend on the epoch), `table.csv`. Every configuration is saved as it finishes, so a killed build resumes.

`compare_on_table` replays search methods on a table: a full-fidelity sampler's proposal takes the nearest
configuration of the table not used yet (in the sampler's [-1, 1] scaling) and costs all epochs; MO-ASHA
(`multifidelity`) runs configurations rung by rung and pays only the epochs it trains. Result: the hypervolume of
the full-fidelity (last-epoch) values found so far against the epochs consumed, per method and seed, on objectives
normalised by the table's last-epoch minimum and maximum with the reference point (1.1, 1.1).
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qallegro.hpo.multifidelity import promoted, rungs, survivors
from qallegro.hpo.optuna_api import storage_of, trial_id
from qallegro.hpo.pareto import hypervolume_2d, pareto_mask
from qallegro.utils import atomic_write_json, atomic_write_text

REFERENCE = (1.1, 1.1)
FULL_FIDELITY = ("random", "nsga2", "tpe", "gp", "samo-cobra")


# ---------------------------------------------------------------------------------------------------- build
def table_configs(variant: str, scale: str, n_configs: int, seed: int = 0, dataset: str | None = None
                  ) -> list[dict[str, Any]]:
    """`n_configs` raw parameter sets (Optuna names) of the search space of `variant` at `scale` (for `dataset`), from a
    scrambled Halton sequence over its [-1, 1] scaling."""
    from scipy.stats import qmc

    from qallegro.hpo.samo_cobra import Codec
    from qallegro.hpo.space import load_space

    codec = Codec(load_space(variant, scale, dataset=dataset).distributions())
    z = codec.snap(qmc.Halton(codec.dim, scramble=True, seed=seed).random(n_configs) * 2 - 1)
    return [codec.decode(row) for row in z]


def build_table(dataset: str, variant: str, out: Path, *, n_configs: int, epochs: int, scale: str = "quick",
                seed: int = 0, threads: int = 1, limit: int | None = None, runs: Path | None = None,
                progress: bool = True) -> pd.DataFrame:
    """Train `n_configs` configurations for `epochs` epochs each (`limit`: only the first `limit` of them now)
    into `runs/NNNN/` (default `results/<scale>/lctable/<dataset>-<variant>-s<seed>-e<epochs>/`: checkpoints and
    models stay out of `out`) and write `out/table.csv` and `out/spec.json` from those finished. Resumes what a
    killed build left."""
    from tqdm.auto import tqdm

    from qallegro import scales
    from qallegro.hpo.objective import measure_inference, objective_names, trial_config
    from qallegro.hpo.records import hpo_settings
    from qallegro.hpo.space import load_space, space_to_dict
    from qallegro.hpo.study import results_root
    from qallegro.training import load_run, train

    out = Path(out)
    runs = Path(runs) if runs else results_root() / scale / "lctable" / f"{dataset}-{variant}-s{seed}-e{epochs}"
    space = load_space(variant, scale, dataset=dataset)
    preset = hpo_settings(scales.settings("hpo", scale), f"presets/hpo.yaml[{scale}]")
    # every configuration trains exactly `epochs` epochs: no wall-clock cap, no early stopping
    settings = replace(preset, trial_overrides={
        **preset.trial_overrides, "max_epochs": int(epochs), "max_wall_s": 1e12,
        "early_stopping_patience": int(epochs) + 1, "early_stopping_lr_floor": 0.0})
    configs = table_configs(variant, scale, n_configs, seed, dataset)
    atomic_write_json(out / "spec.json", {"dataset": dataset, "variant": variant, "scale": scale, "seed": seed,
                                          "n_configs": n_configs, "epochs": epochs, "configs": configs,
                                          "space": space_to_dict(space), "runs": str(runs)})
    for i, raw in enumerate(tqdm(configs[:limit], desc="table", unit="config", disable=not progress)):
        folder = runs / f"{i:04d}"
        if (folder / "row.json").exists():
            continue
        cfg = trial_config(dataset, variant, scale, space.overrides(raw), settings, threads)
        start = time.perf_counter()
        result = train(cfg, run_dir=folder / "run", resume=True, progress=False)
        curve = pd.read_csv(Path(result.run_dir) / "epochs.csv")
        metric = objective_names(dataset)[0]
        timing = measure_inference(load_run(result.run_dir), dataset, settings, threads, cfg["dataset_options"])
        atomic_write_json(folder / "row.json", {
            "config": i, "params": raw, "errors": curve[metric].tolist(), "epoch_s": curve["epoch_s"].tolist(),
            "inference_s": float(timing["total_s"]), "train_s": time.perf_counter() - start, "metric": metric})
    return write_table(out, runs)


def write_table(out: Path, runs: Path) -> pd.DataFrame:
    """Collect `runs/*/row.json` into `out/table.csv` (long format: config, epoch, error, inference_s,
    epoch_s, params as JSON)."""
    rows = []
    for path in sorted(Path(runs).glob("*/row.json")):
        r = json.loads(path.read_text())
        for e, (err, secs) in enumerate(zip(r["errors"], r["epoch_s"], strict=True), start=1):
            rows.append({"config": r["config"], "epoch": e, "error": err, "inference_s": r["inference_s"],
                         "epoch_s": secs, "params": json.dumps(r["params"], sort_keys=True)})
    df = pd.DataFrame(rows, columns=["config", "epoch", "error", "inference_s", "epoch_s", "params"])
    atomic_write_text(Path(out) / "table.csv", df.to_csv(index=False))
    return df


# ------------------------------------------------------------------------------------------------- replay
@dataclass
class Table:
    """A learning-curve table: `params` [n] raw parameter dicts, `errors` [n, E] per epoch, `inference` [n]."""

    params: list[dict[str, Any]]
    errors: np.ndarray
    inference: np.ndarray
    space: dict[str, Any] | None = None  # the Optuna distributions searched (from spec.json beside the table)

    @classmethod
    def read(cls, path: str | Path) -> Table:
        """Read a `table.csv`; every configuration must have the same epochs 1..E."""
        df = pd.read_csv(path)
        missing = {"config", "epoch", "error", "inference_s", "params"} - set(df.columns)
        if missing:
            raise ValueError(f"{path}: not a learning-curve table (missing columns {sorted(missing)})")
        wide = df.pivot(index="config", columns="epoch", values="error")
        if wide.isna().any().any():
            raise ValueError(f"{path}: configurations have different numbers of epochs")
        first = df.drop_duplicates("config").set_index("config").loc[wide.index]
        spec_path = Path(path).with_name("spec.json")
        space = None
        if spec_path.exists():
            from qallegro.hpo.space import load_space, space_from_dict

            spec = json.loads(spec_path.read_text())
            # the space the configurations were drawn from, as stored with the table (a later preset may differ)
            space = (space_from_dict(spec["variant"], spec["space"]) if "space" in spec else
                     load_space(spec["variant"], spec["scale"], dataset=spec["dataset"])).distributions()
        return cls([json.loads(p) for p in first["params"]], wide.to_numpy(float), first["inference_s"].to_numpy(),
                   space)

    @property
    def epochs(self) -> int:
        return self.errors.shape[1]

    def final(self) -> np.ndarray:
        """Last-epoch objective values [n, 2]."""
        return np.stack([self.errors[:, -1], self.inference], axis=1)


def _normaliser(table: Table):
    final = table.final()
    lo, hi = final.min(axis=0), final.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lambda v: (np.asarray(v, float).reshape(-1, 2) - lo) / span


def front_hypervolume(table: Table) -> float:
    """The hypervolume of the table's whole last-epoch front (every configuration trained to the end) on the
    normalised objectives the replays use: the most a search that trains to the last epoch can find."""
    return float(hypervolume_2d(_normaliser(table)(table.final()), REFERENCE))


def replay_sampler(table: Table, sampler: str, seed: int, budget: int, options: dict | None = None,
                   space: dict | None = None) -> list[tuple[int, float]]:
    """(epochs consumed, hypervolume) after each full-fidelity evaluation of `sampler` on `table`, until
    `budget` epochs or the table is used up. `space`: the Optuna distributions (default: the table's, else
    spanning the table's parameter values)."""
    import optuna

    from qallegro.hpo.samo_cobra import Codec
    from qallegro.hpo.samplers import make_sampler

    space = space or table.space or _space_of(table)
    codec = Codec(space)
    coords = np.array([codec.encode(p) for p in table.params])
    norm = _normaliser(table)
    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler(sampler, seed, space, options))
    used: list[int] = []
    out, spent = [], 0
    while spent + table.epochs <= budget and len(used) < len(table.params):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = study.ask(space)
        z = codec.encode(trial.params)
        d = np.linalg.norm(coords - z, axis=1)
        d[used] = np.inf
        i = int(np.argmin(d))
        used.append(i)
        values = table.final()[i]
        attrs = storage_of(study).get_trial_system_attrs(trial_id(trial))  # the sampler's slot and predictions
        study.tell(trial, state=optuna.trial.TrialState.FAIL)  # the proposal; the table's point is added:
        study.add_trial(optuna.trial.create_trial(params=table.params[i], distributions=space,
                                                  values=values.tolist(), system_attrs=attrs))
        spent += table.epochs
        out.append((spent, hypervolume_2d(norm(table.final()[used]), REFERENCE)))
    return out


def replay_asha(table: Table, seed: int, budget: int, min_epochs: int = 1, eta: int = 3,
                front: str = "full") -> tuple[list[tuple[int, float]], list[int]]:
    """(epochs consumed, hypervolume) after each rung of MO-ASHA with random proposals (one worker), until
    `budget` epochs or the table is used up; and the configurations it trained to the last epoch. `front`:
    "full": the hypervolume of the configurations trained to the last epoch (comparable with full-fidelity
    search); "reached": of every configuration at the last epoch it reached (the models a study has)."""
    if front not in ("full", "reached"):
        raise ValueError(f"front must be 'full' or 'reached', not {front!r}")
    rng = np.random.default_rng(seed)
    ladder = rungs(min_epochs, table.epochs, eta)
    norm = _normaliser(table)
    recorded: dict[int, list[np.ndarray]] = {r: [] for r in ladder}
    full: list[int] = []
    reached: list[np.ndarray] = []
    out, spent = [], 0
    for i in rng.permutation(len(table.params)):
        done = 0
        for r in ladder:
            if spent + r - done > budget:
                return out, full
            spent += r - done
            done = r
            values = np.array([table.errors[i, r - 1], table.inference[i]])
            recorded[r].append(values)
            reached.append(values)  # (a configuration's earlier values are dominated by its later ones)
            if r == table.epochs:
                full.append(int(i))
            points = table.final()[full] if front == "full" else np.array(reached)
            out.append((spent, hypervolume_2d(norm(points), REFERENCE) if len(points) else 0.0))
            if r != table.epochs and not promoted(np.array(recorded[r]), len(recorded[r]) - 1, eta):
                break
    return out, full


def _space_of(table: Table) -> dict:
    """Optuna distributions spanning the table's parameters (ints for integer values, log for wide positive
    ranges), for replays of a table whose search space is not given."""
    from optuna.distributions import FloatDistribution, IntDistribution

    out = {}
    for name in sorted(table.params[0]):
        v = np.array([p[name] for p in table.params])
        if all(isinstance(p[name], int) for p in table.params):
            out[name] = IntDistribution(int(v.min()), int(v.max()))
        else:
            log = bool(v.min() > 0 and v.max() / v.min() > 20)
            out[name] = FloatDistribution(float(v.min()), float(v.max()), log=log)
    return out


def front_indices(table: Table) -> list[int]:
    """The configurations on the table's last-epoch front (none of the others is at least as good in both
    objectives and better in one)."""
    return np.flatnonzero(pareto_mask(table.final())).tolist()


def oracle_epochs(table: Table, target: float) -> dict[str, Any]:
    """A lower bound for any search on `table`: the fewest configurations that, trained to the last epoch,
    reach hypervolume `target` (exhaustive over subsets of the front), and their epochs. `configs`/`epochs` are
    None when even the whole front stays below `target`."""
    import itertools

    final, front = _normaliser(table)(table.final()), front_indices(table)
    for k in range(1, len(front) + 1):
        best = max(hypervolume_2d(final[list(s)], REFERENCE) for s in itertools.combinations(front, k))
        if best >= target - 1e-12:
            return {"configs": k, "epochs": k * table.epochs, "hypervolume": float(best)}
    return {"configs": None, "epochs": None, "hypervolume": float(hypervolume_2d(final[front], REFERENCE))}


def successive_halving(table: Table, min_epochs: int, eta: int) -> dict[str, Any]:
    """Synchronous successive halving on `table`, the hindsight form of MO-ASHA's schedule: every configuration
    trains to the first rung of `rungs(min_epochs, E, eta)`, then the best max(1, n // eta) of the n at each rung
    (non-dominated rank, then crowding distance) train on. Returns the rungs, the epochs spent, the hypervolume of
    the configurations trained to the last epoch, and how many there are."""
    ladder = rungs(min_epochs, table.epochs, eta)
    alive, spent, done = np.arange(len(table.params)), 0, 0
    for r in ladder:
        spent += len(alive) * (r - done)
        done = r
        if r == table.epochs:
            break
        values = np.stack([table.errors[alive, r - 1], table.inference[alive]], axis=1)
        alive = alive[survivors(values, eta)]
    hv = hypervolume_2d(_normaliser(table)(table.final()[alive]), REFERENCE)
    return {"rungs": ladder, "eta": eta, "epochs": int(spent), "hypervolume": float(hv), "trained": len(alive)}


def compare_on_table(table: Table, *, methods: list[str], seeds: int, budget: int,
                     sampler_options: dict[str, dict] | None = None, min_epochs: int = 1,
                     eta: int = 3) -> pd.DataFrame:
    """Every method ("mo-asha", "mo-asha-reached" (`replay_asha`'s two fronts) or a sampler of
    `FULL_FIDELITY`) on `table` for `seeds` seeds: one row per (method, seed, event) with the epochs consumed
    and the hypervolume."""
    rows = []
    for method in methods:
        for seed in range(seeds):
            if method in ("mo-asha", "mo-asha-reached"):
                front = "reached" if method == "mo-asha-reached" else "full"
                curve = replay_asha(table, seed, budget, min_epochs, eta, front)[0]
            elif method in FULL_FIDELITY:
                curve = replay_sampler(table, method, seed, budget, (sampler_options or {}).get(method))
            else:
                raise ValueError(f"unknown method {method!r}; choose mo-asha, mo-asha-reached or one of "
                                 f"{', '.join(FULL_FIDELITY)}")
            rows += [{"method": method, "seed": seed, "epochs": e, "hypervolume": h} for e, h in curve]
    return pd.DataFrame(rows, columns=["method", "seed", "epochs", "hypervolume"])


def summarise(df: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """Median and quartiles over seeds of each method's hypervolume at the epoch budgets `grid` (a seed's
    value at budget b: its last hypervolume with at most b epochs consumed; 0 before its first)."""
    rows = []
    for method, g in df.groupby("method", sort=False):
        for b in grid:
            hv = [float(s.loc[s["epochs"] <= b, "hypervolume"].max()) if (s["epochs"] <= b).any() else 0.0
                  for _, s in g.groupby("seed")]
            q = np.percentile(hv, [25, 50, 75])
            rows.append({"method": method, "epochs": int(b), "q25": q[0], "median": q[1], "q75": q[2]})
    return pd.DataFrame(rows)


def compute_to_reach(summary: pd.DataFrame, method: str, target: float) -> int | None:
    """The smallest epoch budget of the grid at which `method`'s median hypervolume reaches `target`."""
    s = summary[(summary["method"] == method) & (summary["median"] >= target - 1e-12)]
    return int(s["epochs"].min()) if len(s) else None


def plot_table_comparison(summary: pd.DataFrame, title: str | None = None, front: float | None = None):
    """Median hypervolume (line) and interquartile range (band) against epochs consumed, one colour per method;
    divided by `front` (the table's whole last-epoch front, `front_hypervolume`, as the book shows it) if given."""
    import matplotlib.pyplot as plt

    k = 1.0 / front if front else 1.0
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for method, g in summary.groupby("method", sort=False):
        line, = ax.plot(g["epochs"], k * g["median"], label=method, lw=2 if method == "mo-asha" else 1.5)
        ax.fill_between(g["epochs"], k * g["q25"], k * g["q75"], color=line.get_color(), alpha=0.15, lw=0)
    ax.set_xlabel("epochs consumed (compute)")
    ax.set_ylabel("hypervolume / that of the table's front" if front else "hypervolume (normalised objectives)")
    ax.set_title(title or "learning-curve table")
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig
