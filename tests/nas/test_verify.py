"""``nas verify``: the verification rung retrains a run's front and its baseline, resumes, and
says whether the proxy's ranking holds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from nas.cli import main
from nas.config import SearchConfig
from nas.proxy import proxy_train_base
from nas.verify import (
    PSNR_RUN,
    PSNR_RUNG,
    VERIFY_FACTOR,
    flipped_pairs,
    rung_train_base,
    summarise,
)
from tests.analysis.conftest import build_run

ROOT = Path(__file__).resolve().parents[2]


def _tiny_images(folder: Path) -> str:
    """Three 64x64 crops of Set5: a fast training and validation set."""
    from PIL import Image

    from trainers.data import BUNDLED

    folder.mkdir()
    for path in sorted(BUNDLED["Set5"].iterdir())[:3]:
        Image.open(path).convert("RGB").crop((0, 0, 64, 64)).save(folder / path.name)
    return str(folder)


@pytest.fixture
def run(tmp_path) -> Path:
    """The synthetic run of tests/analysis (anchors fmen_s and rlfn at x2, tiny sampled convs),
    with a tiny proxy (16x16 patches of three 64x64 images, batch 2, validated on them) and rlfn
    as its runtime baseline."""
    path = build_run(tmp_path, n_searched=6, weights=False)
    images = _tiny_images(tmp_path / "images")
    search = yaml.safe_load((path / "search.yaml").read_text())
    search["proxy"]["train"] = {
        "data": {"train": images, "val": [images], "lr_patch": 16, "batch_size": 2,
                 "prepare": False}, "iterations": 4, "eval_every": 0}
    search["constraints"] = {"runtime_ms": "<= 2 * rlfn"}
    (path / "search.yaml").write_text(yaml.safe_dump(search))
    return path


def _verify(capsys, *argv) -> tuple[int, dict | str, str]:
    rc = main(["verify", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 and "--json" in argv else out), err


def test_the_rung_trains_the_top_k_and_the_baseline_then_never_again(run, capsys, monkeypatch):
    rc, doc, err = _verify(capsys, run, "--top", "2", "--iterations", "3", "--json")
    assert rc == 0, err
    names = [r["name"] for r in doc["rows"]]
    assert names[0] == "rlfn" and len(names) == 3 and doc["baseline"] == "rlfn"
    assert doc["iterations"] == 3
    base = doc["rows"][0]
    assert base["diff_rung"] == 0.0 and base["diff_run"] == 0.0
    for r in doc["rows"]:
        assert 0 < r[PSNR_RUNG] < 60
        assert r["diff_rung"] == pytest.approx(r[PSNR_RUNG] - base[PSNR_RUNG])
    assert -1 <= doc["kendall_tau"] <= 1
    lines = (run / "verify.csv").read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("name,trial_id,anchor,is_baseline")
    assert all((run / "verify" / n / "row.json").is_file() for n in names)
    # the same rung again: nothing is retrained, the same figures come back
    monkeypatch.setattr("trainers.loop.train", _no_training)
    rc, again, err = _verify(capsys, run, "--top", "2", "--iterations", "3", "--json")
    assert rc == 0, err
    assert again["rows"] == doc["rows"]


def test_rows_survive_a_lost_table_and_a_half_trained_network_is_trained_again(run, capsys):
    rc, doc, _ = _verify(capsys, run, "--top", "1", "--iterations", "2", "--json")
    assert rc == 0
    trained = doc["rows"][1]["name"]
    # as after kill -9: the table was never rewritten, and another network was cut short
    (run / "verify.csv").unlink()
    (run / "verify" / "rlfn" / "row.json").unlink()
    rc, _, err = _verify(capsys, run, "--top", "1", "--iterations", "2")
    assert rc == 0
    assert "[1/2] rlfn: training 2 iterations" in err
    assert f"[2/2] {trained}: done before" in err
    assert len((run / "verify.csv").read_text().splitlines()) == 3


def _no_training(*_args, **_kwargs):
    raise AssertionError("a finished network was trained again")


@pytest.mark.parametrize("argv, match", [
    (["--top", "0"], r"^nas verify: error: --top: expected an integer >= 1"),
    (["--iterations", "0"], r"^nas verify: error: --iterations: expected an integer >= 1"),
    (["--baseline", "rlfm"], r"^nas verify: error: --baseline: 'rlfm' is not an anchor.*rlfn"),
    (["--pick", "nope"], r"^nas verify: error: --pick: 'nope' is neither"),
])
def test_bad_arguments_are_one_line_and_exit_2(run, capsys, argv, match):
    rc, _, err = _verify(capsys, run, *argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert __import__("re").search(match, err), err
    assert not (run / "verify.csv").exists()


def test_an_oversized_spec_is_refused_by_size_before_it_is_built(run, capsys):
    import pandas as pd

    df = pd.read_csv(run / "trials.csv", dtype=str, keep_default_na=False)
    label = df.index[df["anchor"] == ""][0]
    trial_id = df.loc[label, "trial_id"]
    spec = yaml.safe_load((run / "trials" / trial_id / "spec.yaml").read_text())
    spec.update(channels=1024, body=[{"block": "conv", "repeat": 200}])
    (run / "trials" / trial_id / "spec.yaml").write_text(yaml.safe_dump(spec))
    from search_space.spec import ArchSpec

    df.loc[label, "arch_id"] = ArchSpec.from_dict(spec).arch_id()
    df.to_csv(run / "trials.csv", index=False)
    rc, _, err = _verify(capsys, run, "--pick", trial_id, "--iterations", "2")
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert f"trials/{trial_id}/spec.yaml" in err and "parameters; the limit is" in err


def test_a_trial_id_that_is_a_path_is_refused(run, capsys):
    text = (run / "trials.csv").read_text().replace("\n00004,", "\n../../x,")
    (run / "trials.csv").write_text(text)
    rc, _, err = _verify(capsys, run, "--pick", "../../x", "--iterations", "2")
    assert rc == 2 and "trials.csv: line 6: trial_id: expected a folder name" in err, err


@pytest.mark.parametrize("damage, match", [
    (lambda run: (run / "trials.csv").write_text(""), r"trials.csv: has no trials"),
    (lambda run: (run / "search.yaml").unlink(), r"search.yaml: missing"),
    (lambda run: (run / "search.yaml").write_text("seed: [1"), r"search.yaml"),
    (lambda run: (run / "verify.csv").write_text("name,key,psnr_rung\nx,k,abc\n"),
     r"verify.csv: psnr_rung 'abc' is not a number"),
])
def test_a_damaged_run_folder_is_one_line_naming_the_file(run, capsys, damage, match):
    damage(run)
    rc, _, err = _verify(capsys, run, "--iterations", "2")
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert __import__("re").search(match, err), err


def test_the_default_rung_is_8x_the_proxy_and_the_fidelity_study_measures_exactly_it():
    cpu, _, _ = proxy_train_base(SearchConfig.defaults())
    rung = rung_train_base(cpu, None)
    assert (rung["iterations"], rung["eval_every"]) == (VERIFY_FACTOR * 750, VERIFY_FACTOR * 375)
    study, _, _ = proxy_train_base(SearchConfig.from_file(
        ROOT / "benchmarks" / "verify_rung" / "rung2.yaml"))
    assert study == rung
    assert rung_train_base(cpu, 100)["eval_every"] == 50


def _row(name, run, rung, base=False):
    return {"name": name, "anchor": "", "is_baseline": base, "arch_id": name, "iterations": 8,
            PSNR_RUN: run, PSNR_RUNG: rung, "psnr_proxy": None}


def test_the_verdict_pairs_with_the_baseline_and_names_the_flips():
    rows = [_row("base", 31.0, 28.0, base=True), _row("a", 31.5, 28.5), _row("b", 31.3, 28.6),
            _row("c", 30.0, 27.0)]
    doc = summarise(rows)
    assert [r["diff_rung"] for r in doc["rows"]] == pytest.approx([0.0, 0.5, 0.6, -1.0])
    assert [r["diff_run"] for r in doc["rows"]] == pytest.approx([0.0, 0.5, 0.3, -1.0])
    # 6 pairs, one discordant (a over b at the proxy, b over a at the rung): tau = 4/6
    assert doc["kendall_tau"] == pytest.approx(4 / 6)
    assert doc["kendall_tau_raw"] is None
    assert doc["flips"] == [{"proxy_prefers": "a", "over": "b", "gap_run": pytest.approx(0.2),
                             "gap_rung": pytest.approx(-0.1), "within_noise": False}]
    assert flipped_pairs(rows, min_gap_db=0.2)[0]["within_noise"] is True
    assert not math.isnan(doc["kendall_tau"])


def test_the_eta_scales_the_proxys_seconds_by_how_the_rung_has_gone_so_far():
    from nas.verify import Candidate, _Eta

    def net(per_iteration):
        return Candidate("n", "n", "", None, False, None, None, per_iteration)

    eta = _Eta([(net(0.1), 100), (net(0.2), 100), (net(None), 100)])
    assert eta.left() == pytest.approx(10 + 20 + 15)  # the unknown one: the mean rate
    eta.done(20.0)  # twice as slow as the proxy said
    assert eta.left() == pytest.approx(2 * (20 + 15))
    assert _Eta([(net(None), 10)] * 2).left() is None


@pytest.mark.slow  # 2 min on a loaded 2-core machine (two processes, four trainings)
def test_kill_9_loses_no_finished_network(run):
    """A real ``kill -9`` of a running ``nas verify``: the rows written before it keep their
    figures and timestamps, and the rerun trains only what is missing."""
    import csv
    import os
    import subprocess
    import sys
    import time

    argv = [sys.executable, "-m", "nas.cli", "verify", str(run), "--top", "3", "--iterations",
            "40", "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    table = run / "verify.csv"
    deadline = time.time() + 300
    while not (table.is_file() and len(table.read_text().splitlines()) >= 2):
        assert proc.poll() is None and time.time() < deadline, "no row before the kill"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = {r["name"]: r for r in csv.DictReader(table.open())}
    assert 1 <= len(before) < 4
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = {r["name"]: r for r in csv.DictReader(table.open())}
    assert len(after) == 4
    for name, row in before.items():
        assert after[name] == row  # same PSNR, same finished_at: never retrained
