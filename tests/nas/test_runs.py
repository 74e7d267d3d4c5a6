"""Run directory and trials.csv: round trip, recovery of rows from metrics.json, atomic writes;
progress figures (front size, Kendall tau)."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest

from analysis.fidelity import kendall_tau
from analysis.rundir import COLUMNS, RunDir, TrialsTable, write_json
from nas.progress import Progress, pareto_front_size
from search_space.errors import InputError


def _row(tid: str, number: int, **kw) -> dict:
    base = {"trial_id": tid, "number": number, "status": "completed", "reason": "",
            "is_anchor": False, "anchor": "", "arch_id": "0123456789ab",
            "spec": json.dumps({"a": 1}),
            "hparams": "{}", "psnr": 27.5 + number, "runtime_ms": 10.0 - number,
            "peak_memory_mb": 50.0, "params": 1000 * (number + 1), "seed": 0}
    return {**base, **kw}


def test_table_round_trip_is_readable_by_pandas(tmp_path):
    run = RunDir.create(tmp_path / "r", config_yaml="seed: 0\n", state={"budget": {"trials": 2}})
    table = TrialsTable(run)
    table.upsert(_row("b", 1, psnr=float("nan")))
    table.upsert(_row("a", 0, is_anchor=True, anchor="rlfn", psnr_official=30.3))
    table.upsert({"trial_id": "c", "number": 2, "status": "running"})
    table.write()
    df = pd.read_csv(run.trials_csv)
    assert list(df.columns) == list(COLUMNS)
    assert list(df["trial_id"]) == ["a", "b", "c"]  # ordered by number
    assert df["is_anchor"].tolist() == [True, False, False]
    assert pd.isna(df.loc[1, "psnr"])  # NaN written as an empty cell
    assert json.loads(df.loc[0, "spec"]) == {"a": 1}
    again = TrialsTable.load(run)
    assert again.rows["a"]["psnr_official"] == 30.3 and again.rows["a"]["anchor"] == "rlfn"
    assert again.rows["a"]["params"] == 1000 and isinstance(again.rows["a"]["params"], int)
    assert again.count() == 2 and again.count(anchors=False) == 1 and again.next_number() == 3
    assert again.drop_unfinished() == ["c"]


def test_rows_missing_from_the_table_are_recovered_from_metrics_json(tmp_path):
    run = RunDir.create(tmp_path / "r", config_yaml="", state={})
    table = TrialsTable(run)
    table.upsert({"trial_id": "x", "number": 0, "status": "running"})
    table.write()
    # the trial finished and wrote its record, but the driver died before rewriting the table
    write_json(run.trial_dir("x") / "metrics.json", {"row": _row("x", 0, psnr=28.1)})
    write_json(run.trial_dir("y") / "metrics.json", {"row": {"trial_id": "y", "number": 1,
                                                             "status": "running"}})
    loaded = TrialsTable.load(run)
    assert loaded.rows["x"]["status"] == "completed" and loaded.rows["x"]["psnr"] == 28.1
    assert "y" not in loaded.rows  # unfinished and unknown to the table: not a result


def test_run_directory_guards(tmp_path):
    run = RunDir.create(tmp_path / "r", config_yaml="a: 1\n", state={"budget": {"trials": 1}})
    assert RunDir.open(run.path).read_state()["version"] == 1
    with pytest.raises(InputError, match=r"already holds a run; continue it with `nas launch "
                                         r"--resume"):
        RunDir.create(run.path, config_yaml="", state={})
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match=r"--resume: .*plain is not a run directory"):
        RunDir.open(tmp_path / "plain")
    with pytest.raises(InputError, match=r"--resume: .*nothing is not a directory"):
        RunDir.open(tmp_path / "nothing")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    for i in range(3):
        write_json(tmp_path / "m.json", {"i": i})
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    with pytest.raises(ValueError):  # NaN is refused, the old file stays intact
        write_json(tmp_path / "m.json", {"i": float("nan")})
    assert json.loads((tmp_path / "m.json").read_text()) == {"i": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_kendall_tau_matches_scipy():
    from scipy.stats import kendalltau

    proxy = [27.74, 27.65, 27.41, 27.69, 27.34]  # proxy_pilot.md, 3-seed means at 600 it
    official = [30.453, 30.387, 30.332, 30.286, 30.280]
    assert kendall_tau(proxy, official) == pytest.approx(0.6)
    ties = [1.0, 1.0, 2.0, 3.0]
    assert kendall_tau(ties, [1, 2, 3, 4]) == pytest.approx(kendalltau(ties, [1, 2, 3, 4])[0])
    assert math.isnan(kendall_tau([1.0, 2.0], [3.0, 3.0]))  # a constant sample: undefined


def test_front_size_and_progress_line():
    objectives = {"psnr": "max", "runtime_ms": "min"}
    rows = [_row("a", 0), _row("b", 1), _row("c", 2, psnr=20.0, runtime_ms=50.0),
            _row("d", 3, status="failed", psnr=None), {"trial_id": "e", "status": "running"}]
    # a: (27.5, 10), b: (28.5, 9) dominates a; c dominated; so the front is {b}
    assert pareto_front_size(rows, objectives) == 1
    stream = io.StringIO()
    prog = Progress(total=8, deadline=None, concurrency=1, objectives=objectives, stream=stream)
    prog.trial_done(30.0)
    prog.update(rows)
    assert stream.getvalue() == ("[nas] 4/8 done | 1 running | 1 failed | best psnr 28.50 dB | "
                                 "front 1 | ETA 2m00s\n")


def test_a_resumed_run_keeps_the_predictor_its_first_trials_were_scored_with(tmp_path):
    """calibration.json stores the model: a predictor shipped (or pointed to) after the run
    started must not score the rest of its trials; a damaged record is one line."""
    from analysis.predictor import Predictor
    from nas.config import SearchConfig
    from nas.proxy import proxy_train_base
    from nas.session import _calibration

    rows = [{"psnr_proxy": 27.0 + i / 10, "log_params": 5.0 + i / 7} for i in range(6)]
    paths = []
    for shift in (0.0, 0.5):
        path = tmp_path / f"p{shift}.json"
        write_json(path, Predictor.fit(rows, [31.0 + shift + i / 20 for i in range(6)],
                                       features=("psnr_proxy", "log_params")).to_dict())
        paths.append(path)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    configs = [SearchConfig.from_dict({"proxy": {"predictor": str(p)}}) for p in paths]
    base = proxy_train_base(configs[0])[0]
    first = _calibration(run, configs[0], base, 1.0, 0.0, False)
    # the config now names another file
    resumed = _calibration(run, configs[1], base, 1.0, 0.0, False)
    assert resumed.predict(rows[0]) == first.predict(rows[0])
    assert resumed.predict(rows[0]) != Predictor.load(paths[1]).predict(rows[0])
    write_json(run.calibration_json, {"model": {"features": ["psnr_proxy"]}})
    with pytest.raises(InputError, match=r"calibration.json: model: not a predictor"):
        _calibration(run, configs[0], base, 1.0, 0.0, False)
