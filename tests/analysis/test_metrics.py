"""The metric catalogue: one entry makes a metric a trials.csv column, a search objective and
constraint, a `nas pareto --objectives` choice, a plot axis and an export field; and every field
the profiler, the trainer and a trial produce is in it."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pandas as pd
import pytest

from analysis import export, metrics, pareto, plots
from analysis.rundir import RunDir, TrialsTable, read_trials
from nas.cli import main
from nas.objectives import OBJECTIVES, parse_constraint

DUMMY = metrics.Field("dummy_cost", "float", "min", "u", "dummy cost", "cheap", searchable=True)


@pytest.fixture
def dummy(monkeypatch):
    monkeypatch.setitem(metrics.FIELDS, DUMMY.name, DUMMY)
    return DUMMY


def test_a_catalogue_entry_is_a_column_an_objective_an_axis_and_an_export_field(
        dummy, run_dir, tmp_path, capsys):
    run = RunDir(tmp_path / "fresh")
    run.path.mkdir()
    table = TrialsTable(run)
    table.upsert({"trial_id": "t0", "number": 0, "status": "completed", "dummy_cost": 1.5})
    table.write()
    assert run.trials_csv.read_text().splitlines()[0].split(",")[-1] == "dummy_cost"
    assert TrialsTable.load(run).rows["t0"]["dummy_cost"] == 1.5

    assert pareto.resolve_objectives("psnr,dummy_cost") == {"psnr": "max", "dummy_cost": "min"}
    assert OBJECTIVES["dummy_cost"].stage == "cheap"
    assert parse_constraint("constraints.dummy_cost", "dummy_cost", "<= 2", []).cheap
    assert "dummy_cost: 1.5" in plots.hover_text({"trial_id": "t0", "dummy_cost": 1.5})
    assert export._picked_metrics({"dummy_cost": 2.0, "psnr": 30.25}) == {
        "dummy_cost": 2, "psnr": 30.25}

    # a finished run whose trials recorded the new metric: nas pareto ranks and plots it
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    df = pd.read_csv(copy / "trials.csv", dtype=str, keep_default_na=False)
    params = pd.to_numeric(df["params"], errors="coerce")
    df["dummy_cost"] = (params / 1000).map(lambda v: "" if pd.isna(v) else repr(float(v)))
    df.to_csv(copy / "trials.csv", index=False)
    assert main(["pareto", str(copy), "--objectives", "psnr,dummy_cost,runtime_ms", "--json",
                 "--no-png"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all("dummy_cost" in r for r in rows)
    assert "dummy cost [u]" in (copy / "report.html").read_text()
    info = plots.scatter_info(read_trials(copy), "dummy_cost", {"psnr": "max", "dummy_cost": "min"})
    assert info.x_label.startswith("dummy cost [u]")


def test_every_profiler_trainer_and_trial_field_is_in_the_catalogue(tmp_path):
    from nas.trial import mean_metrics, run_trial
    from nas.trial_settings import TrialSettings
    from trainers.profiling import Profile

    context = {"device", "input_hw", "threads"}  # how it was measured: profile_hw, device
    profiled = {f.name for f in dataclasses.fields(Profile)} - context
    trained = set(mean_metrics({"Set5": {"psnr_y": 30.0, "ssim_y": 0.9},
                                "Set14": {"psnr_y": 28.0, "ssim_y": 0.8}}))
    # a trial whose parameters cannot make a spec: it still reports its bookkeeping row
    reported = []
    settings = TrialSettings(run_dir=str(tmp_path), scale=2, train_base={})
    row = run_trial({"_meta": {"number": 0}, "channels": "many"}, settings, trial_id="t0",
                    report=reported.append)
    assert row["status"] == "failed"
    fields = set(metrics.FIELDS)
    assert profiled <= fields, profiled - fields
    assert trained <= fields, trained - fields
    assert set(row) <= fields, set(row) - fields
    assert set(reported[-1]) - {"final", "eval_round"} <= fields


def test_reading_gives_honest_dtypes_and_keeps_the_columns_of_an_old_run(run_dir):
    df = read_trials(run_dir)
    header = (run_dir / "trials.csv").read_text().splitlines()[0].split(",")
    assert list(df.columns) == header
    assert pd.api.types.is_string_dtype(df["reason"]) and set(map(type, df["reason"])) == {str}
    if "optuna_number" in df:
        assert str(df["optuna_number"].dtype) == "Int64"
    assert df["is_anchor"].dtype == bool
    assert df["psnr"].dtype == float
