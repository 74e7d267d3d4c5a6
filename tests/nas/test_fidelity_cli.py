"""``nas fidelity`` end to end: a user's reference list, resumption, and bad reference files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from nas.cli import main

# A tiny proxy: the statistics, not their values, are under test here.
TINY = {"proxy": {"train": {"iterations": 6, "eval_every": 3}}}


def _spec(channels: int, repeat: int) -> dict:
    return {"scale": 4, "channels": channels,
            "body": [{"block": "conv", "repeat": repeat, "args": {"post_act": "lrelu0.1"}}]}


@pytest.fixture
def user_refs(tmp_path):
    """Three networks no shipped reference contains, as spec files beside the list."""
    (tmp_path / "specs").mkdir()
    entries = []
    for i, (c, r, psnr) in enumerate([(8, 1, 30.1), (12, 2, 30.9), (16, 3, 31.6)]):
        (tmp_path / "specs" / f"n{i}.yaml").write_text(yaml.safe_dump(_spec(c, r)))
        entries.append({"name": f"mine{i}", "spec": f"specs/n{i}.yaml", "psnr_ref": psnr,
                        "source": "trained by me"})
    (tmp_path / "refs.yaml").write_text(yaml.safe_dump(entries))
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    return tmp_path


def test_user_refs_report_every_statistic_and_resume(user_refs, capsys):
    argv = ["fidelity", "--config", str(user_refs / "tiny.yaml"), "--refs",
            str(user_refs / "refs.yaml"), "--out", str(user_refs / "out"), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n"] == 3 and doc["preset"] == "cpu" and doc["min_gap_db"] == 0.1
    # the tiny proxy is not the one the shipped predictor was fitted for, and three entries are
    # no fit: no prediction at all (never a fit over the user's entries alone)
    assert doc["predictor_mode"] == "none"
    assert {"proxy", "log_params", "macs"} <= set(doc["scores"])
    assert "predictor" not in doc["scores"]
    for score in doc["scores"].values():
        for key in ("kendall_tau", "spearman", "pairwise_accuracy"):
            assert -1.0 <= score[key] <= 1.0 and len(score[f"{key}_ci"]) == 2
    assert [r["name"] for r in doc["refs"]] == ["mine0", "mine1", "mine2"]
    for r in doc["refs"]:
        assert set(r) == {"name", "arch_id", "psnr_ref", "psnr_proxy", "psnr_pred", "psnr_sd",
                          "pred_mode", "params", "macs_g", "proxy_seconds", "features"}
        assert r["psnr_pred"] is None and r["psnr_sd"] is None and r["pred_mode"] == "none"
        assert 0 < r["psnr_proxy"] < 40 and r["params"] > 0 and r["proxy_seconds"] > 0
    assert (user_refs / "out" / "fidelity.json").is_file()
    assert (user_refs / "out" / "fidelity.html").is_file()
    # a second run reuses every finished reference (same key): identical proxy figures
    records = sorted((user_refs / "out" / "refs").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in records]
    assert main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert [r["psnr_proxy"] for r in again["refs"]] == [r["psnr_proxy"] for r in doc["refs"]]
    assert [p.stat().st_mtime_ns for p in records] == stamps


def test_a_fit_on_fewer_than_10_references_is_refused_before_training(user_refs, capsys):
    out = user_refs / "out"
    assert main(["fidelity", "--config", str(user_refs / "tiny.yaml"), "--refs",
                 str(user_refs / "refs.yaml"), "--out", str(out), "--fit"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--fit: 3 references; a predictor is fitted (and judged leave-one-out) "
                        "on at least 10") and "\n" not in err
    assert not out.exists()


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "nas.cli", "fidelity", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("entries, needle", [
    ([{"name": "a", "spec": "nowhere.yaml", "psnr_ref": 31.0},
      {"name": "b", "spec": "rlfn", "psnr_ref": 32.0},
      {"name": "c", "spec": "fmen_s", "psnr_ref": 32.1}], "entry 0 (a).spec: 'nowhere.yaml'"),
    ([{"name": "a", "spec": "rlfn", "psnr_ref": "high"},
      {"name": "b", "spec": "fmen_s", "psnr_ref": 32.0},
      {"name": "c", "spec": "e_rfdn", "psnr_ref": 32.1}],
     "entry 0 (a).psnr_ref: expected a number"),
    ([{"name": "a", "spec": "rlfn", "psnr_ref": 31.0},
      {"name": "a", "spec": "fmen_s", "psnr_ref": 32.0},
      {"name": "c", "spec": "e_rfdn", "psnr_ref": 32.1}], "name 'a' is used twice"),
])
def test_bad_reference_files_give_one_line_and_exit_2(tmp_path, entries, needle):
    refs = tmp_path / "refs.yaml"
    refs.write_text(yaml.safe_dump(entries))
    out = tmp_path / "out"
    r = _run(["--refs", str(refs), "--out", str(out)], tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and str(refs) in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_a_reference_list_with_several_problems_names_every_one(tmp_path):
    refs = tmp_path / "refs.yaml"
    refs.write_text(yaml.safe_dump([
        {"name": "a", "spec": "nowhere.yaml", "psnr_ref": 31.0},
        {"name": "a", "spec": "rlfn", "psnr_ref": "high", "extra": 1},
        5,
        {"spec": "fmen_s"},
    ]))
    r = _run(["--refs", str(refs), "--out", str(tmp_path / "out")], tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    head, *problems = r.stderr.strip().splitlines()
    assert head == f"nas fidelity: error: invalid reference list {refs} (7 problems):"
    assert [p.split(":")[0].strip() for p in problems] == [
        "entry 0 (a).spec", "entry 1 (a).extra", "entry 1 (a).psnr_ref", "entry 2",
        "entry 3.name", "entry 3.psnr_ref", "entry 1"]
    assert "name 'a' is used twice" in problems[-1]
