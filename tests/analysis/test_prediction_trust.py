"""How far a predicted psnr can be trusted: its sd, the extrapolation flag, the one-sided bound
outside the references, and the picks that skip extrapolated trials (issue 20, item 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.export import select_trial
from analysis.predictor import Predictor, leave_one_out_with_sd, shipped_predictor
from nas.fidelity import PREDICTOR_CANDIDATES, fit_predictor, sd_coverage, shipped_fidelity
from search_space.errors import InputError

OBJECTIVES = {"psnr": "maximize", "runtime_ms": "minimize"}


def _rows(n=15, seed=0):
    """Synthetic references: converged PSNR rises with log params and with the proxy PSNR."""
    rng = np.random.default_rng(seed)
    rows, targets = [], []
    for _ in range(n):
        log_params = rng.uniform(4.2, 6.2)
        proxy = rng.uniform(28.0, 31.0)
        rows.append({"psnr_proxy": proxy, "log_params": log_params})
        targets.append(30 + 0.3 * log_params + 0.2 * proxy + rng.normal(0, 0.05))
    return rows, targets


def test_outside_the_references_a_raising_feature_counts_at_half_its_slope():
    from analysis.predictor import BEYOND_RANGE_SLOPE

    rows, targets = _rows()
    model = Predictor.fit(rows, targets, features=("psnr_proxy", "log_params"))
    top = max(r["log_params"] for r in rows)
    low = min(r["log_params"] for r in rows)
    base = {"psnr_proxy": 30.0}
    at_top = model.predict({**base, "log_params": top})
    slope = model.coef[1] / model.std[1]  # dB per decade of parameters, inside the range
    assert slope > 0
    # 43M parameters promise half of what the straight line would beyond the largest reference
    big = math.log10(43e6)
    assert model.predict({**base, "log_params": big}) == pytest.approx(
        at_top + BEYOND_RANGE_SLOPE * slope * (big - top))
    # ... while a network smaller than any reference keeps falling, as does a dead proxy
    assert model.predict({**base, "log_params": low - 1}) < model.predict(
        {**base, "log_params": low}) - 0.1
    lowest_proxy = min(r["psnr_proxy"] for r in rows)
    assert model.predict({"psnr_proxy": 10.0, "log_params": 5.0}) < model.predict(
        {"psnr_proxy": lowest_proxy, "log_params": 5.0}) - 2.0
    assert model.extrapolated({**base, "log_params": math.log10(43e6)}) == ("log_params",)
    assert model.extrapolated({"psnr_proxy": rows[0]["psnr_proxy"],
                               "log_params": rows[0]["log_params"]}) == ()


def test_a_diverged_trial_is_predicted_at_its_proxy_psnr_not_minus_a_trillion():
    """The case study's diverged trial: proxy PSNR 9.3 dB, final training loss ~1e11 (in input
    units). The linear model says about -1e12 dB there; a converged network cannot end below
    where its short training got, so the prediction is the proxy PSNR, without an sd."""
    shipped, doc = shipped_predictor("cpu"), shipped_fidelity("cpu")
    dead = {**doc["refs"][0]["features"], "psnr_proxy": 9.3, "loss_tail": 1.3e11}
    assert shipped._linear(dead) < -1e9
    assert shipped.predict(dead) == 9.3 and shipped.sd(dead) is None
    assert {"psnr_proxy", "loss_tail"} <= set(shipped.extrapolated(dead))


def test_sd_is_the_residual_and_the_members_spread_and_round_trips():
    rows, targets = _rows()
    records = [{"psnr_ref": t, "features": r} for r, t in zip(rows, targets, strict=True)]
    with pytest.MonkeyPatch.context() as mp:
        from nas import fidelity

        mp.setattr(fidelity, "features_of", lambda record: {
            **record["features"], **dict.fromkeys(("psnr_rise", "loss_tail", "log_macs",
                                                   "synflow", "no_identity"), 0.0)})
        model = fit_predictor(records, {"n": len(rows)})
    row = {**rows[0], **dict.fromkeys(("psnr_rise", "loss_tail", "log_macs", "synflow",
                                       "no_identity"), 0.0)}
    assert len(model.members) == 24 and model.residual_sd > 0
    assert model.sd(row) >= model.residual_sd
    again = Predictor.from_dict(model.to_dict())
    assert again.sd(row) == pytest.approx(model.sd(row), abs=1e-12)
    assert again.extrapolated(row) == model.extrapolated(row) == ()
    assert Predictor.fit(rows, targets, features=("log_params",)).sd(rows[0]) is None


def test_leave_one_out_sd_never_sees_the_reference_and_coverage_counts():
    rows, targets = _rows(12)
    pairs = leave_one_out_with_sd(rows, targets, fit=lambda r, t: Predictor.fit(
        r, t, features=("psnr_proxy", "log_params")))
    changed = list(targets)
    changed[3] += 5.0  # a reference's own target cannot move its prediction or sd
    again = leave_one_out_with_sd(rows, changed, fit=lambda r, t: Predictor.fit(
        r, t, features=("psnr_proxy", "log_params")))
    assert again[3] == pytest.approx(pairs[3])
    cover = sd_coverage([31.0, 31.0, 31.0], [0.1, 0.1, None], [31.05, 31.15, 30.0])
    assert cover == {"n": 2, "within_1sd": 0.5, "within_2sd": 1.0, "mean_sd": 0.1}


def test_shipped_predictor_carries_its_uncertainty_and_range():
    shipped, doc = shipped_predictor("cpu"), shipped_fidelity("cpu")
    assert shipped.residual_sd is not None and shipped.bounds is not None
    assert len(shipped.members) == 4 * len(PREDICTOR_CANDIDATES)
    coverage = doc["sd_coverage"]["all"]
    assert coverage["n"] == doc["n"] and 0 < coverage["within_1sd"] <= coverage["within_2sd"]
    # every reference lies inside the range the shipped predictor was fitted on
    assert all(shipped.extrapolated(r["features"]) == () for r in doc["refs"])


def test_knee_and_max_psnr_skip_extrapolated_trials_unless_asked():
    import pandas as pd

    df = pd.DataFrame({"trial_id": ["a", "b", "c"], "status": "completed",
                       "is_anchor": False, "psnr": [32.5, 31.9, 31.5],
                       "runtime_ms": [5.0, 8.0, 12.0], "extrapolated": [True, False, False]})
    assert df.loc[select_trial(df, "max-psnr", OBJECTIVES)[0], "trial_id"] == "b"
    assert df.loc[select_trial(df, "knee", OBJECTIVES)[0], "trial_id"] != "a"
    assert df.loc[select_trial(df, "max-psnr", OBJECTIVES, extrapolated=True)[0],
                  "trial_id"] == "a"
    assert select_trial(df, "a", OBJECTIVES)[0] == 0  # an explicit id is never refused
    with pytest.raises(InputError, match="--allow-extrapolated"):
        select_trial(df.iloc[:1], "knee", OBJECTIVES)


def test_a_proxy_that_validates_once_is_fitted_without_the_rise_it_cannot_observe():
    """``proxy.train: {iterations: 300}`` under a preset validating every 375 iterations sees
    one validation: no ``psnr_rise``. The candidates needing it are left out, not the fit."""
    from analysis.predictor import fit_averaged

    doc = shipped_fidelity("cpu")
    rows = [{**r["features"], "psnr_rise": None} for r in doc["refs"]]
    model = fit_averaged(rows, [r["psnr_ref"] for r in doc["refs"]],
                         candidates=PREDICTOR_CANDIDATES)
    assert "psnr_rise" not in model.features
    assert len(model.members) == 4 * (len(PREDICTOR_CANDIDATES) - 2)  # two sets need the rise
    assert model.predict(rows[0]) is not None
    with pytest.raises(ValueError, match="missing feature values: psnr_proxy"):
        fit_averaged([{"log_params": 5.0}] * 3, [31.0, 31.5, 32.0])
