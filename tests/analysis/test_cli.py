"""``nas pareto`` and ``nas export`` end to end on a synthetic run, and their bad-input errors."""

from __future__ import annotations

import json

import pytest

from analysis.run import load_run
from nas.cli import main
from tests.analysis.conftest import brute_force_front

DEFAULT = {"psnr": "maximize", "runtime_ms": "minimize", "peak_memory_mb": "minimize"}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("objectives", [None, "psnr,params", "psnr,macs_g,runtime_ms"])
def test_pareto_json_is_exactly_the_nondominated_completed_rows(run_dir, capsys, objectives):
    argv = ["pareto", str(run_dir), "--json", "--no-png"]
    if objectives:
        argv += ["--objectives", objectives]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    rows = json.loads(out)
    df = load_run(run_dir).trials
    wanted = DEFAULT if objectives is None else {
        name: "maximize" if name == "psnr" else "minimize" for name in objectives.split(",")}
    expected = set(df.loc[list(brute_force_front(df, wanted)), "trial_id"])
    assert {r["trial_id"] for r in rows} == expected
    for r in rows:
        assert set(r) == {"trial_id", "is_anchor", "anchor", "arch_id", "knee", *wanted}
        row = df[df["trial_id"] == r["trial_id"]].iloc[0]
        assert r["arch_id"] == row["arch_id"] and r["is_anchor"] == bool(row["is_anchor"])
        for name in wanted:
            assert r[name] == pytest.approx(row[name])
    assert sum(r["knee"] for r in rows) == 1


def test_pareto_prints_the_front(run_dir, capsys):
    code, out, err = run_cli(capsys, "pareto", str(run_dir), "--no-png")
    assert code == 0 and err == ""
    df = load_run(run_dir).trials
    lines = out.splitlines()
    assert lines[0].startswith("Pareto front of psnr (max), runtime_ms (min), peak_memory_mb")
    printed = {line.split()[0] for line in lines[2:] if line[:1].isdigit()}
    assert printed == set(df.loc[list(brute_force_front(df, DEFAULT)), "trial_id"])
    assert (run_dir / "report.html").is_file()


@pytest.mark.parametrize("argv, message", [
    (["pareto", "{empty}"], "no trials.csv (no trial has been recorded in this run yet)"),
    (["pareto", "{missing}"], "not a run directory"),
    (["pareto", "{run}", "--objectives", "psnr,latency"], "'latency' is not a known metric"),
    (["export", "{run}", "--pick", "best-one"], "'best-one' is neither one of knee, max-psnr"),
    (["export", "{run}", "--pick", "00012"], "trial is failed (nan loss at iteration 37)"),
    (["export", "{run}", "--where", "runtime_ms<=0.1"],
     "no completed trial satisfies it (12 completed; runtime_ms ranges"),
    (["export", "{run}", "--where", "latency<3"], "'latency' is not a column"),
    (["export", "{run}", "--recipe", "srn"], "pass --iterations N"),
])
def test_bad_input_is_one_line_and_exit_2(run_dir, tmp_path, capsys, argv, message):
    paths = {"{empty}": str(tmp_path), "{missing}": str(tmp_path / "nope"), "{run}": str(run_dir)}
    code, out, err = run_cli(capsys, *[paths.get(a, a) for a in argv])
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"nas {argv[0]}: error: ")


def test_nas_knows_the_proxy_preset_of_a_run(run_dir):
    from analysis.run import protocol
    from nas.commands.pareto import load_run as load_with_preset

    presets = pytest.importorskip("trainers.presets")
    run = load_with_preset(run_dir)
    assert run.preset == "cpu"
    # the preset's values, with the run's proxy.train override (val: [Set5]) on top
    assert run.proxy_config["iterations"] == presets.PRESETS["cpu"]["iterations"]
    assert run.proxy_config["data"]["val"] == ["Set5"]
    assert protocol(run)["training data"] == presets.PRESETS["cpu"]["data"]["train"]
    assert protocol(run)["device"] == "cpu"
