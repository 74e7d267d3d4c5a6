"""Calibration inside the search (issue 20): a proxy with no shipped predictor is calibrated by
``nas launch`` before it samples, once per proxy (the store), and the gpu preset's path runs end
to end on a CPU (calibration, search, pareto, export), so that none of it first runs on a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nas.config import SearchConfig
from nas.config_sections import SearchConfigError
from nas.references import DEFAULT_CALIBRATION_REFS, load_references, spanning_subset
from tests.nas.conftest import TINY_TRAIN, tiny_config

ROOT = Path(__file__).resolve().parents[2]


def _nas(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(cwd), "ESRNAS_CACHE_DIR": str(cwd / "cache"),
           "ESRNAS_LOCK_DIR": str(cwd / "locks"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "nas.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_gpu_preset_calibrates_searches_and_exports_on_a_cpu(tmp_path):
    cfg = tiny_config(objectives={"psnr": "max", "params": "min"})
    # the gpu preset (prepared data, its optimiser and schedule) at a tiny size, on the CPU
    cfg["proxy"] = {"preset": "gpu", "train": {**TINY_TRAIN, "device": "cpu"},
                    "calibrate": {"refs": 10}}
    cfg["resources"] = {"max_concurrent": 2}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(cfg))

    first = _nas(["launch", "--config", "search.yaml", "--budget", "2", "--out", "run1"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "calibrating 10/10" in first.stderr
    record = json.loads((tmp_path / "run1" / "calibration.json").read_text())
    assert record["calibrated"] and record["calibration"]["trained"] == 10
    assert record["model"]["meta"]["preset"] == "gpu" and record["model"]["meta"]["n"] == 10
    assert record["model"]["meta"]["device"] == "cpu"
    assert record["fidelity"]["n"] == 10 and "kendall_tau" in record["fidelity"]["scores"][
        "predictor"]
    trials = pd.read_csv(tmp_path / "run1" / "trials.csv")
    assert (trials["status"] == "completed").all() and len(trials) == 2
    assert (trials["psnr_sd"] > 0).all() and trials["extrapolated"].isin([True, False]).all()
    assert (trials["psnr"] != trials["psnr_proxy"]).all()  # calibrated, not the raw figure

    # the same proxy again: every reference comes from the store, the same predictor results
    again = _nas(["launch", "--config", "search.yaml", "--budget", "1", "--out", "run2"],
                 tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    second = json.loads((tmp_path / "run2" / "calibration.json").read_text())
    assert second["calibration"]["trained"] == 0 and second["calibration"]["reused"] == 10
    assert second["model"] == record["model"]

    pareto = _nas(["pareto", "run1", "--no-png"], tmp_path)
    assert pareto.returncode == 0, pareto.stderr[-3000:]
    export = _nas(["export", "run1", "--pick", "max-psnr", "--allow-extrapolated", "--no-onnx",
                   "--json"], tmp_path)
    assert export.returncode == 0, export.stderr[-3000:]
    assert json.loads(export.stdout)["metrics"]["psnr"] == pytest.approx(trials["psnr"].max())


def test_calibrate_setting_is_checked_and_its_default_spans_the_set():
    assert SearchConfig.defaults().proxy.calibration_refs == DEFAULT_CALIBRATION_REFS
    off = SearchConfig.from_dict({"proxy": {"calibrate": "off"}})
    assert off.proxy.calibration_refs is None
    assert SearchConfig.from_dict({"proxy": {"calibrate": {"refs": 12}}}).proxy \
        .calibration_refs == 12
    for bad in ({"refs": 3}, {"refs": "all"}, {"n": 12}, "sometimes", 7):
        with pytest.raises(SearchConfigError, match=r"proxy\.calibrate: expected auto, off or "
                                                    r"\{refs: N\} with N >= 10"):
            SearchConfig.from_dict({"proxy": {"calibrate": bad}})
    refs = load_references()
    params = list(range(1, len(refs) + 1))  # synthetic sizes: the list's order
    chosen = spanning_subset([r.psnr_ref for r in refs], params, DEFAULT_CALIBRATION_REFS)
    assert len(chosen) == DEFAULT_CALIBRATION_REFS == len(set(chosen))
    psnr = [r.psnr_ref for r in refs]
    assert psnr.index(min(psnr)) in chosen and psnr.index(max(psnr)) in chosen
    assert 0 in chosen and len(refs) - 1 in chosen  # the smallest and the largest network


def test_a_reference_marked_calibrate_false_is_measured_but_not_calibrated_on(tmp_path):
    """MemNet (x3) costs more cpu proxy than the other 19 together: `nas fidelity` and the
    shipped fit use it, a search's calibration does not."""
    from nas.calibration import calibration_references
    from nas.references import ReferenceListError

    x3 = load_references(scale=3)
    assert [r.name for r in x3 if not r.calibrate] == ["memnet"]
    chosen = calibration_references(SearchConfig.from_dict({"space": {"scale": 3}}))
    assert [r.name for r in chosen] == [r.name for r in x3 if r.calibrate]  # 19 of 19
    assert all(r.calibrate for r in load_references(scale=4) + load_references(scale=2))
    bad = tmp_path / "refs.yaml"
    bad.write_text(yaml.safe_dump([{"name": n, "spec": n, "psnr_ref": 32.0, "calibrate": "no"}
                                   for n in ("fsrcnn", "srcnn", "carn_m")]))
    with pytest.raises(ReferenceListError, match=r"entry 0 \(fsrcnn\)\.calibrate: expected"):
        load_references(bad)


def test_a_short_reference_list_is_not_calibrated_on_and_says_so(tmp_path, monkeypatch):
    """Fewer than 10 references (here the x3 list cut to its first 9): a search with a changed
    proxy keeps the raw proxy PSNR and says why."""
    import nas.calibration
    from analysis.rundir import RunDir
    from nas.calibration import calibrate
    from nas.proxy import proxy_train_base

    monkeypatch.setattr(nas.calibration, "load_references",
                        lambda scale: load_references(scale=scale)[:9])
    config = SearchConfig.from_dict({"space": {"scale": 3},
                                     "proxy": {"train": {"iterations": 300}}})
    predictor, record = calibrate(RunDir(tmp_path), config, proxy_train_base(config)[0], 1.0,
                                  0.0, "cpu", progress=False)
    assert predictor is None and record["calibrated"] is False
    assert "the x3 reference list has 9 networks" in record["predictor"]
    assert len(load_references(scale=3)) == 20 and len(load_references(scale=2)) == 28
