"""Typed records: the committed results read into them and write back byte for byte the same JSON objects; a bad
file or preset is refused once, naming the file and the key; the HPO settings hold every default."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from qallegro import scales
from qallegro.errors import HpoError
from qallegro.hpo.records import Heartbeat, HpoSettings, SamplerComparison, Timing, hpo_settings
from qallegro.records import RecordError
from qallegro.training.result import TrainResult

ROOT = Path(__file__).resolve().parents[1]


def committed(pattern: str) -> list[Path]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", pattern], capture_output=True, text=True, check=True)
    return [ROOT / line for line in out.stdout.split()]


def test_every_committed_metrics_file_reads_as_a_train_result_and_writes_back_unchanged() -> None:
    paths = committed("results/**/metrics.json")
    assert len(paths) >= 50
    for path in paths:
        data = json.loads(path.read_text())
        rec = TrainResult.read(path)
        assert rec.to_json() == data, path
        assert dict(rec) == data and rec["test"] == rec.test and rec.get("val_f_mae") == data["val_f_mae"]


def test_a_bad_record_names_the_file_and_the_key(tmp_path: Path) -> None:
    good = json.loads(committed("results/**/metrics.json")[0].read_text())
    path = tmp_path / "metrics.json"
    for change, message in (({"epochs": "six"}, "metrics.json: epochs: expected int, got 'six'"),
                            ({"val_f_mae": True}, r"val_f_mae: expected float \| None, got True"),
                            ({"surprise": 1}, r"unknown key\(s\) \['surprise'\]")):
        path.write_text(json.dumps({**good, **change}))
        with pytest.raises(RecordError, match=message):
            TrainResult.read(path)
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "config_hash"}))
    with pytest.raises(RecordError, match=f"{path}: missing key 'config_hash'"):
        TrainResult.read(path)


@pytest.mark.parametrize("scale", scales.SCALES)
def test_hpo_settings_of_each_scale_fill_the_defaults_in_one_place(scale: str) -> None:
    raw = scales.settings("hpo", scale)
    rec = hpo_settings(raw, f"hpo[{scale}]")
    assert rec.n_trials == raw["n_trials"] and rec.max_consecutive_failures == raw.get("max_consecutive_failures", 3)
    assert rec.timing == Timing(**raw["timing"]) and rec.heartbeat == Heartbeat(**raw["heartbeat"])
    assert rec.extra == {"compare": raw["compare"]} and rec["compare"] == raw["compare"]
    for dataset in ("rmd17-aspirin", "qm9", "culi"):
        for final, key in ((False, "trial_overrides"), (True, "final_overrides")):
            expected = dict(raw.get(key) or {})
            expected.update((raw.get(f"{key}_by_dataset") or {}).get(dataset) or {})
            assert rec.budget(dataset, final) == expected


def test_hpo_settings_defaults_and_errors() -> None:
    rec = HpoSettings.from_json({"n_trials": 2}, "test")
    assert (rec.heartbeat.interval, rec.heartbeat.grace_period, rec.heartbeat.max_retry, rec.heartbeat.poll) == \
        (60, 180, 1, None)
    assert (rec.timing.max_structures, rec.timing.batch_size, rec.timing.repeats, rec.timing.warmup) == (None, 1, 3, 1)
    assert rec.max_consecutive_failures == 3 and rec.budget("qm9") == {} and rec["heartbeat"]["interval"] == 60
    with pytest.raises(RecordError, match="presets: missing key 'n_trials'"):
        hpo_settings({}, "presets")
    with pytest.raises(RecordError, match=r"presets: heartbeat: unknown key\(s\) \['intervall'\]"):
        hpo_settings({"n_trials": 1, "heartbeat": {"intervall": 5}}, "presets")
    with pytest.raises(RecordError, match=r"presets: timing: repeats: expected int, got 2\.5"):
        hpo_settings({"n_trials": 1, "timing": {"repeats": 2.5}}, "presets")
    with pytest.raises(AttributeError):
        rec.n_trials = 5  # type: ignore[misc]


@pytest.mark.parametrize("scale", scales.SCALES)
def test_sampler_comparison_of_each_scale(scale: str) -> None:
    raw = scales.settings("hpo", scale)
    cmp = SamplerComparison.of(hpo_settings(raw), scale)
    assert cmp.to_json() == {"variant": "allegro", **raw["compare"]}
    assert cmp.dataset == raw["compare"]["dataset"] and cmp.seeds == raw["compare"]["seeds"]


def test_sampler_comparison_defaults_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    bare = SamplerComparison.of(HpoSettings.from_json({"n_trials": 1}, "test"), "smoke")
    assert (bare.dataset, bare.variant, bare.samplers, bare.n_trials) == (None, "allegro", None, None)
    assert "timing" not in bare and "trial_overrides" not in bare
    with pytest.raises(RecordError, match=r"presets/hpo\.yaml\[smoke\]\.compare: unknown key\(s\) \['seed'\]"):
        SamplerComparison.of(HpoSettings.from_json({"n_trials": 1, "compare": {"seed": [0]}}, "test"), "smoke")
    from qallegro.hpo.experiment import compare_samplers

    monkeypatch.setattr(scales, "settings", lambda topic, scale: {"n_trials": 1, "compare": {"samplers": ["tpe"]}})
    with pytest.raises(HpoError, match=r"presets/hpo\.yaml\[smoke\]\.compare: no dataset"):
        compare_samplers("smoke", seeds=[0], n_trials=1, progress=False, plots=False)
