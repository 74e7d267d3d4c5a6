"""The search adapter without Ray: anchors first, then Optuna's asks; what Optuna is told; the
study a dashboard user sees (metric names, measurement settings, intermediate values)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from ray.tune.search import Searcher

from nas.config import SearchConfig
from nas.searcher import AnchorsFirst, make_sampler, open_storage, open_study
from nas.trial import META_KEY
from search_space.space import suggest_arch
from tests.nas.conftest import tiny_config

MEASURED = {"run": "r", "profile_hw": "128x128", "device": "cpu", "threads": 1, "preset": "cpu"}


def _searcher(tmp_path, *, anchors=("rlfn",), sampled=2):
    config = SearchConfig.from_dict(tiny_config())
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = open_study(config, storage, "s", sampler=make_sampler(config, config.seed),
                       attrs=MEASURED)
    return config, study, AnchorsFirst(study, storage, config, anchors=list(anchors),
                                       sampled_left=sampled, first_number=5)


def _final(config, **values):
    return {"final": True, "status": "completed", "arch_id": "a", "iterations": 20,
            "psnr_proxy": 26.0, **{m: 1.0 for m in config.objectives}, **values}


def test_anchors_first_then_the_seeded_samples_then_finished(tmp_path):
    config, study, searcher = _searcher(tmp_path)
    anchor = searcher.suggest("t-anchor")
    assert anchor == {META_KEY: {"number": 5, "anchor": "rlfn", "optuna_number": None}}
    first, second = searcher.suggest("t1"), searcher.suggest("t2")
    assert searcher.suggest("t3") == Searcher.FINISHED
    assert [first[META_KEY]["number"], second[META_KEY]["number"]] == [6, 7]
    assert [first[META_KEY]["optuna_number"], second[META_KEY]["optuna_number"]] == [0, 1]
    # the same sampler seed draws the same parameters as a plain ask-and-tell study
    plain = optuna.create_study(directions=["maximize"] * len(config.objectives),
                                sampler=make_sampler(config, config.seed))
    reference = plain.ask()
    suggest_arch(reference, dict(config.space))
    assert {k: v for k, v in first.items() if k != META_KEY} == reference.params


def test_what_optuna_is_told_and_what_a_dashboard_shows(tmp_path):
    config, study, searcher = _searcher(tmp_path, sampled=3)
    searcher.suggest("anchor")
    for tid in ("done", "broken", "stopped"):
        searcher.suggest(tid)
    searcher.on_trial_result("done", {"final": False, "psnr_proxy": 24.5, "iterations": 10})
    searcher.on_trial_complete("done", _final(config, psnr=27.0))
    searcher.on_trial_complete("broken", {"final": True, "status": "failed"})
    searcher.on_trial_result("stopped", {"final": False, "psnr_proxy": 20.0, "iterations": 10})
    searcher.on_trial_complete("stopped", {"final": False, "iterations": 10})
    searcher.on_trial_complete("anchor", _final(config))  # anchors never enter the study

    loaded = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 'study.db'}")
    done, broken, stopped = loaded.trials
    assert [t.state for t in loaded.trials] == [TrialState.COMPLETE, TrialState.FAIL,
                                                TrialState.PRUNED]
    assert done.values[0] == 27.0 and done.user_attrs["trial_id"] == "done"
    assert done.intermediate_values == {10: 24.5, 20: 26.0}
    # a pruned trial keeps its curve as an attribute: TPE would rank pruned trials by their
    # last intermediate value with study.direction, which a multi-objective study lacks
    assert stopped.intermediate_values == {} and stopped.user_attrs["val_psnr"] == [[10, 20.0]]
    # past its start-up trials, TPE samples with the pruned trial in the study
    more = AnchorsFirst(study, searcher.storage, config, anchors=[], sampled_left=1,
                        first_number=9)
    assert more.suggest("after")[META_KEY]["optuna_number"] == 3
    assert loaded.metric_names == list(config.metric_names)
    assert loaded.user_attrs == MEASURED


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_optuna_dashboard_lists_the_objective_names(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="optuna-dashboard (test extra) not installed")
    config, study, searcher = _searcher(tmp_path, anchors=(), sampled=1)
    searcher.suggest("done")
    searcher.on_trial_complete("done", _final(config))
    port = _free_port()
    exe = shutil.which("optuna-dashboard", path=str(Path(sys.executable).parent)) \
        or shutil.which("optuna-dashboard")
    cmd = [exe] if exe else [sys.executable, "-m", "optuna_dashboard"]
    server = subprocess.Popen([*cmd, f"sqlite:///{tmp_path / 'study.db'}", "--host",
                               "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/studies"
        deadline = time.monotonic() + 120
        while True:
            try:
                studies = json.loads(urllib.request.urlopen(base, timeout=5).read())
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
        study_id = studies["study_summaries"][0]["study_id"]
        detail = json.loads(urllib.request.urlopen(f"{base}/{study_id}", timeout=30).read())
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert detail["objective_names"] == list(config.metric_names)  # not "Objective 0/1/2"
    assert detail["has_intermediate_values"] is True
    assert '"128x128"' in json.dumps(detail["user_attrs"])  # what it measured with
