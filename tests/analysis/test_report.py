"""Reading a run directory, the report's content, and the proxy-trust figure."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import pareto, plots
from analysis.report import build_figures, front_records, proxy_trust, write_report
from analysis.run import default_objectives, load_run, protocol, status_counts
from search_space.errors import InputError
from tests.analysis.conftest import brute_force_front

OBJECTIVES = {"psnr": "maximize", "runtime_ms": "minimize", "peak_memory_mb": "minimize"}


def test_load_run_errors(tmp_path):
    with pytest.raises(InputError, match="not a run directory"):
        load_run(tmp_path / "missing")
    with pytest.raises(InputError, match="no trials.csv"):
        load_run(tmp_path)
    (tmp_path / "trials.csv").write_text("")
    with pytest.raises(InputError, match="has no trials"):
        load_run(tmp_path)
    (tmp_path / "trials.csv").write_text("trial_id,number,status,psnr\n")
    with pytest.raises(InputError, match="has no trials"):
        load_run(tmp_path)
    (tmp_path / "trials.csv").write_text("name,psnr\na,30\n")
    with pytest.raises(InputError, match="missing column.*trial_id, status"):
        load_run(tmp_path)


def test_load_run_types(run_dir):
    run = load_run(run_dir)
    df = run.trials
    assert df["trial_id"].iloc[0] == "00000"  # digits stay text
    assert df["is_anchor"].dtype == bool and df["is_anchor"].sum() == 2
    assert df["psnr"].dtype == float and df["params"].dtype == float
    assert run.search["proxy"]["preset"] == "cpu" and run.scale == 2 and run.name == "demo"


def test_protocol_from_search_yaml_and_state(run_dir):
    assert protocol(load_run(run_dir)) == {
        "preset": "cpu", "scale": 2, "training data": "preset default",
        "validation sets": "Set5", "proxy iterations": "preset default", "device": "cpu",
        "seed": 0, "anchors": "fmen_s, rlfn", "constraints": "runtime_ms <= 50",
        "budget": "16 trials"}


def test_status_counts_and_default_objectives(run_dir):
    run = load_run(run_dir)
    assert status_counts(run.trials) == {"completed": 12, "running": 1, "failed": 1,
                                         "infeasible": 1, "pruned": 1}
    objectives, notes = default_objectives(run)
    assert objectives == {"psnr": "max", "runtime_ms": "min", "peak_memory_mb": "min"}
    assert notes == []
    run.trials["peak_memory_mb"] = np.nan  # e.g. not measurable on this device
    objectives, notes = default_objectives(run)
    assert objectives == {"psnr": "max", "runtime_ms": "min"}
    assert notes == ["objective peak_memory_mb has no value in trials.csv; left out of the front"]


def test_proxy_trust_is_kendall_tau_of_the_anchors():
    df = pd.DataFrame({"trial_id": list("abcde"), "status": ["completed"] * 4 + ["failed"],
                       "is_anchor": [True, True, True, False, True],
                       "anchor": ["x", "y", "z", "", "w"],
                       "psnr": [30.0, 31.0, 32.0, 33.0, 34.0],
                       "psnr_official": [33.0, 32.9, 33.5, np.nan, 30.0]})
    # proxy order x < y < z; official y < x < z: pairs (x,y) discordant, (x,z), (y,z) concordant
    trust = proxy_trust(df)
    assert trust["n"] == 3 and trust["anchors"] == ["x", "y", "z"]
    assert trust["tau"] == pytest.approx(1 / 3)
    assert proxy_trust(df.iloc[:2]) is None  # two anchors: tau is always +-1
    assert proxy_trust(df.drop(columns="psnr_official")) is None


def test_report_content(run_dir):
    run = load_run(run_dir)
    result = write_report(run, OBJECTIVES, png=False)
    html = (run_dir / "report.html").read_text()
    df = run.trials
    assert set(result.front.index) == brute_force_front(df, OBJECTIVES)
    table = html[html.index("<h2>Pareto front"):html.index("<h2>Plots")]
    for trial_id in result.front["trial_id"]:
        assert f"<td>{trial_id}" in table
    knee_id = df.loc[result.knee, "trial_id"]
    assert f"Knee: <b>{knee_id}</b>" in html and f"<td>{knee_id} (knee)</td>" in table
    for decoy in df.loc[df["status"] != "completed", "trial_id"]:
        assert f"<td>{decoy}" not in table
    assert "completed <b>12</b>" in html and "running <b>1</b>" in html
    assert "nan loss at iteration 37" in html and "runtime_ms 95.0 &gt; 50" in html
    assert re.search(r"<td>preset</td><td>cpu</td>", html)
    assert re.search(r"<td>validation sets</td><td>Set5</td>", html)
    assert f"Hypervolume: {result.hypervolume:.4f}" in html
    assert "Anchors: fewer than 3" in html  # only two anchors carry psnr_official
    # no calibration.json: the report says psnr is the raw proxy figure
    assert "is the raw proxy PSNR" in html
    # self-contained: plotly.js inlined once, no external script
    assert html.count("* plotly.js v") == 1
    assert len(re.findall(r"<script[^>]*\ssrc=", html)) == 0
    # runtime, memory, macs, params, 3d, hypervolume, parallel
    assert html.count('class="plotly-graph-div"') == 7
    names = sorted(p.name for p in result.files)
    assert names == sorted(["report.html"] + [f"pareto_{v}.html" for v in
                                              ("runtime", "memory", "macs", "params", "3d",
                                               "hypervolume", "parallel")])


def test_report_of_a_run_in_progress(run_dir, tmp_path):
    run = load_run(run_dir)
    run.trials.loc[run.trials.index[5:], "status"] = "running"
    run.path = tmp_path
    result = write_report(run, {"psnr": "maximize", "params": "minimize"}, png=False)
    assert set(result.front.index) <= set(run.trials.index[:5])
    assert "running <b>11</b>" in (tmp_path / "report.html").read_text()
    records = front_records(result.front, {"psnr": "maximize", "params": "minimize"},
                            result.knee)
    assert [r["trial_id"] for r in records] == list(result.front["trial_id"])
    assert sum(r["knee"] for r in records) == 1
    assert set(records[0]) == {"trial_id", "is_anchor", "anchor", "arch_id", "knee", "psnr",
                               "params"}


def test_report_refuses_objectives_without_completed_values(run_dir):
    run = load_run(run_dir)
    with pytest.raises(InputError, match="has no such column"):
        write_report(run, {"latency": "minimize"}, png=False)
    with pytest.raises(InputError, match=r"no completed trial has values for all of "
                                         r"psnr_official, ssim"):
        write_report(run, pareto.resolve_objectives("psnr_official,ssim"), png=False)


def test_report_shows_the_calibration_and_warns_when_it_beats_no_baseline(run_dir, tmp_path):
    run = load_run(run_dir)
    run.path = tmp_path
    score = {"kendall_tau": 0.71, "spearman": 0.85, "pairwise_accuracy": 0.87,
             "kendall_tau_ci": [0.6, 0.8], "spearman_ci": [0.7, 0.9],
             "pairwise_accuracy_ci": [0.8, 0.93]}
    run.calibration = {"calibrated": True, "predictor": "shipped cpu predictor", "fidelity": {
        "preset": "cpu", "scale": 2, "n": 24, "pairs": 200, "min_gap_db": 0.1,
        "predictor_beats_baselines": True,
        "scores": {"predictor": score, "proxy": {**score, "kendall_tau": -0.1}}}}
    write_report(run, {"psnr": "maximize", "params": "minimize"}, png=False)
    html = (tmp_path / "report.html").read_text()
    assert "prediction of converged Set5 x2" in html and "over 24 reference networks" in html
    assert "<td>predictor</td><td>+0.710 [+0.60, +0.80]</td>" in html
    assert "does not beat every training-free baseline" not in html
    run.calibration["fidelity"]["predictor_beats_baselines"] = False
    write_report(run, {"psnr": "maximize", "params": "minimize"}, png=False)
    assert "does not beat every training-free baseline" in (tmp_path / "report.html").read_text()


def test_an_auto_input_size_is_read_from_what_the_trials_recorded(tmp_path):
    """search.yaml says ``input_hw: auto``; the trials profiled at 128x128 (a CPU run): every
    label says 128x128, and the anchors' published MACs (at 256x256) are not drawn."""
    from types import SimpleNamespace

    import yaml

    from tests.analysis.conftest import build_run

    run_dir = build_run(tmp_path, weights=False)
    search = yaml.safe_load((run_dir / "search.yaml").read_text())
    search["profile"] = {"input_hw": "auto"}
    (run_dir / "search.yaml").write_text(yaml.safe_dump(search))
    unknown = load_run(run_dir)
    assert unknown.input_hw is None  # an old run: no size is better than a guessed one
    df = pd.read_csv(run_dir / "trials.csv", dtype=str, keep_default_na=False)
    df["profile_hw"], df["device"] = "128x128", "cpu"
    df.to_csv(run_dir / "trials.csv", index=False)
    run = load_run(run_dir)
    assert run.input_hw == (128, 128)
    figures = build_figures(run, OBJECTIVES)
    titles = [figures[f"pareto_{stem}"].layout.xaxis.title.text
              for stem in ("runtime", "memory", "macs")]
    assert all("(3x128x128 input)" in t and "256" not in t for t in titles), titles
    fake = SimpleNamespace(reference={"params": {"x4": 1}, "torch_macs_g_256": 7.5},
                           published={})
    info = plots.scatter_info(run.trials, "macs_g", OBJECTIVES, scale=4, input_hw=run.input_hw,
                              anchor_lookup=lambda name: fake)
    assert all(layer.kind != "published" for layer in info.layers)
    unlabelled = plots.scatter_info(unknown.trials, "macs_g", OBJECTIVES, scale=4,
                                    input_hw=unknown.input_hw, anchor_lookup=lambda name: fake)
    assert "input size not recorded" in unlabelled.x_label
    assert all(layer.kind != "published" for layer in unlabelled.layers)


def test_the_report_draws_learning_curves_from_each_trials_history(tmp_path):
    import json

    from tests.analysis.conftest import build_run

    run_dir = build_run(tmp_path, weights=False)
    run = load_run(run_dir)
    tid = run.trials.loc[run.trials["status"] == "completed", "trial_id"].iloc[0]
    history = [{"iteration": 10, "loss": 0.1},
               {"iteration": 20, "metrics": {"Set5": {"psnr_y": 25.0}, "Set14": {"psnr_y": 23.0}}},
               {"iteration": 40, "metrics": {"Set5": {"psnr_y": 27.0}, "Set14": {"psnr_y": 25.0}}}]
    (run_dir / "trials" / tid).mkdir(parents=True, exist_ok=True)
    (run_dir / "trials" / tid / "metrics.json").write_text(json.dumps({"history": history}))
    fig = build_figures(run, OBJECTIVES)["learning_curves"]
    (trace,) = fig.data
    assert trace.name.startswith(tid) and list(trace.x) == [20, 40]
    assert list(trace.y) == [24.0, 26.0]
