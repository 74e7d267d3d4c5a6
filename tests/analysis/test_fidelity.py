"""Rank statistics, the PSNR predictor and the leave-one-out protocol (no training)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from analysis.fidelity import (
    count_pairs,
    fidelity_scores,
    kendall_tau,
    pairwise_accuracy,
    spearman,
)
from analysis.predictor import (
    ALL_FEATURES,
    CANDIDATE_ALPHAS,
    CANDIDATE_FEATURES,
    IDENTITY_FEATURE,
    Predictor,
    features_of,
    fit_averaged,
    leave_one_out,
    ridge,
)
from nas.fidelity import fidelity_report


def test_rank_statistics_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(3)
    for _ in range(20):
        x = rng.integers(0, 6, 15).astype(float)  # with ties
        y = x + rng.normal(0, 2, 15)
        assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


def test_pairwise_accuracy_counts_only_separated_pairs():
    ref = [30.0, 30.05, 31.0, 32.0]  # (0, 1) is closer than 0.10 dB: not a pair
    assert count_pairs(ref) == 5
    assert pairwise_accuracy([1, 2, 3, 4], ref) == 1.0
    assert pairwise_accuracy([2, 1, 3, 4], ref) == 1.0  # only the noise pair is swapped
    assert pairwise_accuracy([4, 3, 2, 1], ref) == 0.0
    assert pairwise_accuracy([1, 1, 1, 1], ref) == 0.5  # ties count half
    assert pairwise_accuracy([1, 3, 2, 4], ref) == pytest.approx(4 / 5)


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    ref = np.linspace(30, 32, 25)
    score = ref + rng.normal(0, 0.4, 25)
    a = fidelity_scores(score, ref, seed=1)
    assert a == fidelity_scores(score, ref, seed=1)
    for key in ("kendall_tau", "spearman", "pairwise_accuracy"):
        lo, hi = a[f"{key}_ci"]
        assert lo <= a[key] <= hi and hi - lo > 0.01


def _records(n=12, seed=0):
    """Synthetic proxy records whose reference PSNR depends on size and proxy PSNR."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        params = float(10 ** rng.uniform(4, 6.3))
        proxy = 28.5 + rng.normal(0, 0.3)
        history = [{"iteration": 100 * k, "loss": 10.0 - k + rng.normal(0, 0.1), "lr": 1e-3}
                   for k in range(1, 11)]
        history[4]["metrics"] = {"Set5": {"psnr_y": proxy - rng.uniform(0.1, 0.6)}}
        history[9]["metrics"] = {"Set5": {"psnr_y": proxy}}
        out.append({"name": f"net{i}", "psnr_proxy": proxy, "params": int(params),
                    "macs_g": params / 15000, "input_range": 255.0, "history": history,
                    "psnr_ref": 30 + 0.5 * math.log10(params) + 0.8 * (proxy - 28.5)
                    + rng.normal(0, 0.05), "proxy_seconds": 1.0, "grad_norm": rng.uniform(),
                    "synflow": rng.uniform(), "identity_path": i % 3 != 0})
    return out


def test_features_read_history_and_normalise_the_loss():
    rec = {k: v for k, v in _records(1)[0].items() if k != "identity_path"}
    f = features_of(rec)
    assert set(f) == {*ALL_FEATURES, IDENTITY_FEATURE}
    assert f[IDENTITY_FEATURE] is None  # a record made before the flag existed
    assert features_of({**rec, "identity_path": False})[IDENTITY_FEATURE] == 1.0
    assert features_of({**rec, "identity_path": True})[IDENTITY_FEATURE] == 0.0
    assert f["psnr_rise"] == pytest.approx(rec["history"][9]["metrics"]["Set5"]["psnr_y"]
                                           - rec["history"][4]["metrics"]["Set5"]["psnr_y"])
    assert f["loss_tail"] == pytest.approx(rec["history"][-1]["loss"] / 255.0)
    assert f["log_params"] == pytest.approx(math.log10(rec["params"]))


def test_predictor_fits_a_linear_law_and_round_trips():
    recs = _records(30)
    feats = [features_of(r) for r in recs]
    model = Predictor.fit(feats, [r["psnr_ref"] for r in recs], alpha=1e-3)
    errors = [abs(model.predict(f) - r["psnr_ref"]) for f, r in zip(feats, recs, strict=True)]
    assert max(errors) < 0.3
    again = Predictor.from_dict(copy.deepcopy(model.to_dict()))
    assert again.predict(feats[0]) == pytest.approx(model.predict(feats[0]), abs=1e-12)
    assert model.predict({**feats[0], "log_params": None}) is None


def test_leave_one_out_prediction_ignores_the_own_reference():
    """The protocol test: changing reference i's psnr_ref never changes its prediction."""
    recs = _records(12)
    before = fidelity_report(recs, preset="cpu", n_boot=50)
    for i in (0, 5, 11):
        changed = copy.deepcopy(recs)
        changed[i]["psnr_ref"] += 3.0
        after = fidelity_report(changed, preset="cpu", n_boot=50)
        assert after["refs"][i]["psnr_pred"] == before["refs"][i]["psnr_pred"]
        # ... while every other reference's prediction does move (the fit saw the change)
        others = [j for j in range(12) if j != i]
        assert any(after["refs"][j]["psnr_pred"] != before["refs"][j]["psnr_pred"]
                   for j in others)


def test_leave_one_out_equals_explicit_refits():
    recs = _records(10)
    feats = [features_of(r) for r in recs]
    ref = [r["psnr_ref"] for r in recs]
    loo = leave_one_out(feats, ref)
    for i in (0, 9):
        fit = fit_averaged(feats[:i] + feats[i + 1:], ref[:i] + ref[i + 1:])
        assert loo[i] == pytest.approx(fit.predict(feats[i]), abs=1e-12)
    one = leave_one_out(feats, ref, fit=ridge(("psnr_proxy", "log_params"), alpha=0.3))
    fit = Predictor.fit(feats[1:], ref[1:], features=("psnr_proxy", "log_params"), alpha=0.3)
    assert one[0] == pytest.approx(fit.predict(feats[0]), abs=1e-12)


def test_averaged_predictor_is_the_mean_of_its_members():
    """The shipped model is one linear model equal to the mean of every candidate's prediction."""
    recs = _records(15)
    feats = [features_of(r) for r in recs]
    ref = [r["psnr_ref"] for r in recs]
    members = [Predictor.fit(feats, ref, features=f, alpha=a)
               for f in CANDIDATE_FEATURES for a in CANDIDATE_ALPHAS]
    model = fit_averaged(feats, ref)
    assert set(model.features) == set(ALL_FEATURES)
    for row in feats[:5]:
        mean = float(np.mean([m.predict(row) for m in members]))
        assert model.predict(row) == pytest.approx(mean, abs=1e-9)
    again = Predictor.from_dict(copy.deepcopy(model.to_dict()))
    assert again.predict(feats[0]) == pytest.approx(model.predict(feats[0]), abs=1e-12)


def test_report_scores_every_baseline_and_says_if_the_predictor_wins():
    doc = fidelity_report(_records(20), preset="cpu", n_boot=200)
    assert set(doc["scores"]) == {"predictor", "proxy", "log_params", "macs", "size_model",
                                  "grad_norm", "synflow"}
    for s in doc["scores"].values():
        assert set(s) >= {"kendall_tau", "spearman", "pairwise_accuracy", "kendall_tau_ci"}
    assert doc["predictor_mode"] == "leave_one_out" and doc["n"] == 20
    # the synthetic law is linear in the features: the predictor must beat size alone
    assert doc["scores"]["predictor"]["kendall_tau"] > doc["scores"]["size_model"]["kendall_tau"]
    assert isinstance(doc["predictor_beats_baselines"], bool)


def test_a_seen_network_is_predicted_by_the_shipped_records_refitted_without_it(monkeypatch):
    """`nas fidelity --refs` never applies a predictor to a network it was fitted on, and never
    fits on a user's entries alone: a shipped network is predicted by the shipped records less
    it (exactly the shipped leave-one-out figure), an unseen one by the shipped predictor."""
    from analysis.predictor import shipped_predictor
    from nas import fidelity
    from nas.fidelity import _predict_unfitted, _without, shipped_fidelity

    shipped, refs = shipped_predictor("cpu"), shipped_fidelity("cpu")["refs"]
    for r in (refs[0], refs[15], refs[-1]):  # fmen_s, fsrcnn, fmdn
        assert _without(refs, r["arch_id"]).predict(r["features"]) == pytest.approx(
            r["psnr_pred"], abs=1e-4)
    monkeypatch.setattr(fidelity, "features_of", lambda record: record["features"])
    seen = refs[15]
    unseen = {**seen, "arch_id": "0" * 12}
    pairs, modes = _predict_unfitted([seen, unseen], shipped, True, "cpu")
    assert modes == ["shipped_without_it", "shipped"]
    assert pairs[0][0] == pytest.approx(seen["psnr_pred"], abs=1e-4)
    assert pairs[0][1] == pytest.approx(seen["psnr_sd"], abs=1e-4)  # the leave-one-out sd too
    assert pairs[1] == (shipped.predict(seen["features"]), shipped.sd(seen["features"]))
    assert pairs[1][0] != pairs[0][0]
    assert _predict_unfitted([seen], shipped, False, "cpu")[1] == ["given"]
    assert _predict_unfitted([seen], None, True, "cpu") == ([(None, None)], ["none"])


def test_report_gives_errors_and_the_figures_below_130k_params():
    recs = _records(20)
    doc = fidelity_report(recs, preset="cpu", n_boot=50)
    small = [i for i, r in enumerate(recs) if r["params"] < 130_000]
    assert doc["small"]["n"] == len(small) >= 3
    ref = [r["psnr_ref"] for r in recs]
    pred = [r["psnr_pred"] for r in doc["refs"]]
    mae = sum(abs(pred[i] - ref[i]) for i in small) / len(small)
    assert doc["small"]["mae_db"]["predictor"] == pytest.approx(mae, abs=1e-4)
    assert doc["mae_db"]["predictor"] == pytest.approx(
        sum(abs(p - r) for p, r in zip(pred, ref, strict=True)) / len(ref), abs=1e-4)
    sub = [ref[i] for i in small]
    assert doc["small"]["pairs"] == count_pairs(sub)
    assert doc["small"]["scores"]["predictor"]["kendall_tau"] == pytest.approx(
        kendall_tau([pred[i] for i in small], sub), abs=1e-3)


def test_identity_feature_joins_every_candidate_set():
    from analysis.predictor import with_identity_feature

    recs = [{**r, "identity_path": i % 2 == 0} for i, r in enumerate(_records(15))]
    feats = [features_of(r) for r in recs]
    model = fit_averaged(feats, [r["psnr_ref"] for r in recs],
                         candidates=with_identity_feature(CANDIDATE_FEATURES))
    assert IDENTITY_FEATURE in model.features
    assert all(IDENTITY_FEATURE in f for f in with_identity_feature(CANDIDATE_FEATURES))


def test_the_one_record_builder_scales_macs_to_256_and_reads_the_identity_path():
    """A trial (profiled at 128x128 on a CPU) and a reference (counted at 256x256) give the
    predictor the same features for the same network."""
    from analysis.predictor import proxy_record
    from search_space.anchors import get_anchor

    history = _records(1)[0]["history"]
    for name, identity in (("span_ch28", False), ("rlfn", True)):
        spec = get_anchor(name).spec
        trial = proxy_record(spec, psnr_proxy=27.0, params=1000, macs_g=2.5, history=history,
                             input_hw=(128, 128))
        ref = proxy_record(spec, psnr_proxy=27.0, params=1000, macs_g=10.0, history=history)
        assert trial["macs_g"] == ref["macs_g"] == 10.0
        assert trial["identity_path"] is ref["identity_path"] is identity
        assert features_of(trial) == features_of(ref)
        assert features_of(trial)[IDENTITY_FEATURE] == float(not identity)
