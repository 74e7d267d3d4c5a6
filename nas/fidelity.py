"""``nas fidelity``: how far a search's proxy can be trusted, measured on reference networks.

Every reference (a network with a known converged Set5 PSNR-Y at the config's scale) is
proxy-trained exactly as a trial of the search config would be
(:func:`nas.trial.trial_train_config` and the same training loop), and scored by rank
statistics against its reference PSNR (:mod:`analysis.fidelity`): the
raw proxy PSNR, the calibrated predictor (:mod:`analysis.predictor`, leave-one-out), and
training-free baselines (log params, MACs, a size-only regression, two zero-cost proxies).

Results per reference are written to ``<out>/refs/<name>.json`` under a key of the proxy
configuration, spec and seed, so an interrupted run resumes where it stopped and a finished one
is re-scored for free; the summary goes to ``<out>/fidelity.json`` and ``fidelity.html/png``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from analysis.fidelity import MIN_GAP_DB, count_pairs, score_table
from analysis.metrics import COL
from analysis.predictor import (
    CANDIDATE_FEATURES,
    MACS_INPUT_HW,
    PREDICTOR_DIR,
    SIZE_FEATURES,
    Predictor,
    features_of,
    fit_averaged,
    leave_one_out,
    leave_one_out_with_sd,
    proxy_record,
    ridge,
    shipped_path,
    with_identity_feature,
    with_residual_sd,
)
from analysis.rundir import read_json, write_json
from nas.config import SearchConfig
from nas.progress import format_duration
from nas.proxy import (
    local_device_kind,
    proxy_fingerprint,
    proxy_preset,
    proxy_train_base,
    resolve_predictor,
)
from nas.references import MIN_FIT_REFERENCES, Reference
from nas.trial_settings import TrialSettings, trial_train_config
from search_space.errors import InputError
from trainers.config import TrainConfig

__all__ = ["run_fidelity", "fidelity_report", "proxy_key", "shipped_fidelity", "BASELINES",
           "SMALL_PARAMS", "fit_predictor", "sd_coverage",
           "reference_record", "stored_record", "FIDELITY_KEYS"]

# The training-free baselines the predictor and the proxy must beat (higher score = better).
BASELINES = ("log_params", "macs", "size_model", "grad_norm", "synflow")
# Networks below this many parameters are scored on their own too: the region a constrained
# search spends its time in, where the reference set was thinnest.
SMALL_PARAMS = 130_000
# The feature sets whose averaged ridge models form the predictor (`nas fidelity --fit`), each
# with the no-identity-path flag: over the 42 references it raised leave-one-out tau from +0.514
# to +0.572, pairwise accuracy from 0.838 to 0.876 and cut MAE below 130K params from 0.33 to
# 0.26 dB (benchmarks/identity_feature.py; docs/proxy.md, section 5.1).
PREDICTOR_CANDIDATES = with_identity_feature(CANDIDATE_FEATURES)


# The fidelity figures a run's calibration.json keeps (shipped or calibrated predictor).
FIDELITY_KEYS = ("preset", "scale", "n", "pairs", "min_gap_db", "predictor_beats_baselines",
                 "scores", "mae_db", "sd_coverage")
# (prediction, sd) per reference, and how each was predicted (``pred_mode``)
Predicted = tuple[Sequence[tuple[float | None, float | None]], Sequence[str]]


# ---------------------------------------------------------------------------- proxy runs
def proxy_key(train_config: Mapping[str, Any]) -> str:
    """Identity of one proxy training: the resolved config (spec and seed included), minus where
    it writes and the CPU thread count (which changes only the rounding of the results; each
    record keeps the count it was trained with)."""
    cfg = {k: v for k, v in train_config.items() if k not in ("out_dir", "threads")}
    text = json.dumps(cfg, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _train_reference(ref: Reference, settings: TrialSettings, folder: Path,
                     train_config: Mapping[str, Any]) -> dict[str, Any]:
    """Proxy-train one reference like a trial; its costs and zero-cost scores."""
    import torch

    from search_space.factory import build_model
    from trainers.loop import train
    from trainers.profiling import profile_model
    from trainers.zero_cost import zero_cost_scores

    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    cfg = TrainConfig.from_dict(dict(train_config), source=f"reference {ref.name}")
    t0 = time.perf_counter()
    zero = zero_cost_scores(ref.spec, seed=settings.seed, lr_patch=cfg.data.lr_patch,
                            batch=cfg.data.batch_size, train=str(cfg.data.train))
    zero_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = train(cfg)
    proxy_seconds = time.perf_counter() - t0
    if result.stopped:
        raise RuntimeError(f"reference {ref.name}: training stopped ({result.stopped})")
    counted = profile_model(build_model(ref.spec, deploy=True), input_hw=MACS_INPUT_HW,
                            runtime=False, memory=False).to_dict()
    psnr = [m["psnr_y"] for m in result.metrics.values()]
    (folder / "checkpoint.pth").unlink(missing_ok=True)
    return {
        "name": ref.name, COL.arch_id: ref.spec.arch_id(), "psnr_ref": ref.psnr_ref,
        "psnr_sets": {k: m["psnr_y"] for k, m in result.metrics.items()},
        COL.params_train: sum(p.numel() for p in build_model(ref.spec).parameters()),
        "proxy_seconds": round(proxy_seconds, 2), "zero_cost_seconds": round(zero_seconds, 2),
        **zero,
        **proxy_record(ref.spec, psnr_proxy=sum(psnr) / len(psnr), params=counted[COL.params],
                       macs_g=counted[COL.macs_g], history=result.history,
                       synflow=zero.get("synflow")),
    }


def stored_record(ref: Reference, settings: TrialSettings, out: Path) -> dict[str, Any] | None:
    """The finished proxy record of ``ref`` under ``out/refs/`` for exactly this proxy (same
    key: config, spec and seed), or None."""
    path = out / "refs" / f"{ref.name}.json"
    if not path.exists():
        return None
    cached = read_json(path)
    key = proxy_key(trial_train_config(ref.spec, {}, settings, out / "refs" / ref.name))
    return _as_listed(cached, ref) if cached.get("key") == key else None


def reference_record(ref: Reference, settings: TrialSettings,
                     out: Path) -> tuple[dict[str, Any], bool]:
    """The proxy record of one reference under ``out/refs/``: the stored one
    (:func:`stored_record`), else trained now and written atomically (an interrupted
    calibration or fidelity run loses no finished reference); and whether it was trained."""
    stored = stored_record(ref, settings, out)
    if stored is not None:
        return stored, False
    folder = out / "refs" / ref.name
    train_config = trial_train_config(ref.spec, {}, settings, folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"key": proxy_key(train_config), "threads": settings.threads,
              **_train_reference(ref, settings, folder, train_config)}
    write_json(out / "refs" / f"{ref.name}.json", record)
    return _as_listed(record, ref), True


def _as_listed(record: Mapping[str, Any], ref: Reference) -> dict[str, Any]:
    """The list's figure, not the stored one; the identity path from the spec (records made
    before the feature existed lack it)."""
    return {**record, "psnr_ref": ref.psnr_ref, "identity_path": ref.spec.has_identity_path()}


def run_fidelity(config: SearchConfig, refs: Sequence[Reference], out: str | Path, *,
                 fit: bool = False, threads: int | None = None, progress: bool = True,
                 shipped_refs: bool = False) -> dict[str, Any]:
    """Proxy-train every reference (resuming finished ones), score, write ``fidelity.json``.

    Args:
        config: The search config whose proxy is measured.
        refs: The references.
        out: Output folder (created; finished references in it are reused).
        fit: Fit the predictor on these references and write ``<out>/predictor.json``.
        threads: CPU threads per proxy training (None: every CPU, as a trial's).
        progress: Print a line per reference (done/total, ETA) to stderr.
        shipped_refs: ``refs`` are the shipped set (the shipped predictor saw them: leave one
            out instead of applying it).

    A user's list is never fitted on unless ``fit`` asks (and then only with at least
    :data:`MIN_FIT_REFERENCES` entries): each entry is predicted by the run's predictor as is, or,
    where the shipped predictor saw that network, by the shipped records refitted without it;
    every row says which (``pred_mode``).
    """
    if fit and len(refs) < MIN_FIT_REFERENCES:
        raise InputError(f"--fit: {len(refs)} references; a predictor is fitted (and judged "
                         f"leave-one-out) on at least {MIN_FIT_REFERENCES}")
    out = Path(out)
    threads = threads or os.cpu_count()  # a trial's default: every CPU
    base, _, _ = proxy_train_base(config)
    device = local_device_kind(base)
    settings = TrialSettings(run_dir=str(out), scale=config.scale, train_base=base,
                             seed=config.seed, threads=threads)
    records, spent = [], []
    for i, ref in enumerate(refs, 1):
        record, trained = reference_record(ref, settings, out)
        if trained:
            spent.append(record["proxy_seconds"] + record["zero_cost_seconds"])
        records.append(record)
        if progress:
            eta = (sum(spent) / len(spent) * (len(refs) - i)) if spent else 0.0
            print(f"[{i}/{len(refs)}] {ref.name}: proxy {record[COL.psnr_proxy]:.3f} dB "
                  f"(ref {ref.psnr_ref:.2f}), {record['proxy_seconds']:.0f} s"
                  f"{'' if trained else ' (cached)'}; "
                  f"ETA {format_duration(eta)}", file=sys.stderr, flush=True)
    preset = proxy_preset(config)
    predicted = None if (fit or shipped_refs) else _predict_unfitted(
        records, resolve_predictor(config, base, device)[0], config.proxy.predictor == "auto",
        preset, config.scale)
    doc = fidelity_report(records, preset=preset, scale=config.scale, predicted=predicted,
                          seed=config.seed)
    if fit:
        meta = {"preset": preset, "n": len(records), "scale": config.scale, "device": device,
                "fingerprint": proxy_fingerprint(base, config.scale),
                "refs": [r["name"] for r in records],
                "arch_ids": [r[COL.arch_id] for r in records], "command": "nas fidelity --fit"}
        write_json(out / "predictor.json", fit_predictor(records, meta).to_dict())
    write_json(out / "fidelity.json", doc)
    _write_plot(doc, out)
    return doc


def fit_predictor(records: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> Predictor:
    """The predictor shipped or calibrated from proxy records: the averaged candidates, with
    their leave-one-out residual RMS (the residual part of its sd)."""
    rows, targets = [features_of(r) for r in records], [r["psnr_ref"] for r in records]
    return with_residual_sd(_fit_shipped_form(rows, targets, meta), rows, targets,
                            fit=_fit_shipped_form)


def _predict_unfitted(records: Sequence[Mapping[str, Any]], predictor: Predictor | None,
                      shipped: bool, preset: str, scale: int = 4) -> Predicted:
    """Predictions and their modes for references nothing is fitted on here: ``shipped`` (the
    predictor as is: it never saw the network), ``shipped_without_it`` (it saw the network:
    the shipped records refitted without it), ``given`` (a predictor file, as is) or ``none``
    (no predictor for this proxy: ``--fit`` makes one)."""
    if predictor is None:
        return [(None, None)] * len(records), ["none"] * len(records)
    seen = set((predictor.meta or {}).get("arch_ids") or ())
    shipped_refs = shipped_fidelity(preset, scale)["refs"] if shipped and seen else []
    pred, modes = [], []
    for record in records:
        features = features_of(record)
        if shipped and record.get(COL.arch_id) in seen:
            model = _without(shipped_refs, record[COL.arch_id])
            modes.append("shipped_without_it")
        else:
            model = predictor
            modes.append("shipped" if shipped else "given")
        pred.append((model.predict(features), model.sd(features)))
    return pred, modes


def _without(shipped_refs: Sequence[Mapping[str, Any]], arch_id: str) -> Predictor:
    """The shipped predictor refitted on its own records, less the network ``arch_id``."""
    kept = [r for r in shipped_refs if r[COL.arch_id] != arch_id]
    rows, targets = [r["features"] for r in kept], [r["psnr_ref"] for r in kept]
    return with_residual_sd(_fit_shipped_form(rows, targets), rows, targets,
                            fit=_fit_shipped_form)


def shipped_fidelity(preset: str, scale: int = 4) -> dict[str, Any]:
    """The fidelity document shipped with the predictor of ``preset`` at ``scale`` (what
    fitted it)."""
    path = shipped_path(preset, scale, "fidelity")
    if not path.exists():
        shipped = sorted(p.name.split(".")[0] for p in PREDICTOR_DIR.glob("*.fidelity.json"))
        raise InputError(f"proxy preset {preset!r} at x{scale}: no shipped fidelity figures "
                         f"(shipped: {', '.join(shipped) or 'none'}); measure them with "
                         "`nas fidelity --fit`")
    return read_json(path)


# ---------------------------------------------------------------------------- scoring
def fidelity_report(records: Sequence[Mapping[str, Any]], *, preset: str, scale: int = 4,
                    predicted: Predicted | None = None,
                    min_gap_db: float = MIN_GAP_DB, seed: int = 0,
                    n_boot: int = 2000) -> dict[str, Any]:
    """The fidelity document of proxy records (pure: no training).

    ``psnr_pred`` of a reference never depends on its own ``psnr_ref``: ``predicted`` gives the
    (prediction, sd) pairs and their modes made without it; without, each reference is
    predicted by a predictor fitted on all the other references (leave one out), its sd's
    residual part measured leave-one-out inside those.
    """
    feats = [features_of(r) for r in records]
    ref = [float(r["psnr_ref"]) for r in records]
    if predicted is None:
        pairs = leave_one_out_with_sd(feats, ref, fit=_fit_shipped_form)
        modes = ["leave_one_out"] * len(records)
    else:
        pairs, modes = list(predicted[0]), list(predicted[1])
    pred, sds = [p for p, _ in pairs], [sd for _, sd in pairs]
    mode = "+".join(dict.fromkeys(modes))
    size = leave_one_out(feats, ref, fit=ridge(SIZE_FEATURES))
    scores = {
        "predictor": pred,
        "proxy": [r[COL.psnr_proxy] for r in records],
        "log_params": [f["log_params"] for f in feats],
        "macs": [r[COL.macs_g] for r in records],
        "size_model": size,
        "grad_norm": [r.get("grad_norm") for r in records],
        "synflow": [r.get(COL.synflow) for r in records],
    }
    usable = {k: v for k, v in scores.items() if all(_finite(x) for x in v)}
    table = score_table(usable, ref, min_gap_db=min_gap_db, seed=seed, n_boot=n_boot)
    baselines = [b for b in BASELINES if b in table]
    small = [i for i, r in enumerate(records) if r[COL.params] < SMALL_PARAMS]
    return {
        "preset": preset, "scale": scale, "n": len(records), "min_gap_db": min_gap_db,
        "pairs": count_pairs(ref, min_gap_db), "predictor_mode": mode,
        "predictor_beats_baselines": _beats(table, "predictor", baselines),
        "proxy_beats_baselines": _beats(table, "proxy", baselines),
        "mean_proxy_seconds": round(sum(r["proxy_seconds"] for r in records) / len(records), 1),
        "scores": table,
        "mae_db": _mae(usable, ref),
        "small": _subset_report(usable, ref, small, min_gap_db=min_gap_db, seed=seed,
                                n_boot=n_boot),
        "sd_coverage": {"all": sd_coverage(pred, sds, ref),
                        "small": sd_coverage(*([v[i] for i in small] for v in (pred, sds, ref)))},
        "refs": [{"name": r["name"], COL.arch_id: r.get(COL.arch_id), "psnr_ref": r["psnr_ref"],
                  COL.psnr_proxy: round(r[COL.psnr_proxy], 4),
                  "psnr_pred": None if p is None else round(p, 4),
                  COL.psnr_sd: None if sd is None else round(sd, 4), "pred_mode": m,
                  COL.params: r[COL.params], COL.macs_g: round(r[COL.macs_g], 4),
                  "proxy_seconds": r["proxy_seconds"], "features": f}
                 for r, p, sd, m, f in zip(records, pred, sds, modes, feats, strict=True)],
    }


def sd_coverage(pred: Sequence[float | None], sd: Sequence[float | None],
                ref: Sequence[float]) -> dict[str, Any]:
    """How often the real error falls within 1 and 2 sd (a Gaussian sd: 0.68 and 0.95)."""
    ok = [(p, s, r) for p, s, r in zip(pred, sd, ref, strict=True)
          if _finite(p) and _finite(s)]
    if not ok:
        return {"n": 0}
    return {"n": len(ok),
            "within_1sd": round(sum(abs(p - r) <= s for p, s, r in ok) / len(ok), 3),
            "within_2sd": round(sum(abs(p - r) <= 2 * s for p, s, r in ok) / len(ok), 3),
            "mean_sd": round(sum(s for _, s, _ in ok) / len(ok), 4)}


def _fit_shipped_form(rows: Sequence[Mapping[str, float | None]], targets: Sequence[float],
                      meta: Mapping[str, Any] | None = None) -> Predictor:
    """What ``--fit`` ships, for the leave-one-out figures (the same candidate models)."""
    return fit_averaged(rows, targets, candidates=PREDICTOR_CANDIDATES, meta=meta)


# Scores that are PSNR predictions (dB), whose mean absolute error means something.
_PREDICTIONS = ("predictor", "size_model")


def _mae(scores: Mapping[str, Sequence[float]], ref: Sequence[float],
         index: Sequence[int] | None = None) -> dict[str, float]:
    """Mean absolute error (dB) of the PSNR-valued scores, over ``index`` (default: all)."""
    index = range(len(ref)) if index is None else index
    return {name: round(sum(abs(scores[name][i] - ref[i]) for i in index) / len(index), 4)
            for name in _PREDICTIONS if name in scores and len(index)}


def _subset_report(scores: Mapping[str, Sequence[float]], ref: Sequence[float],
                   index: Sequence[int], *, min_gap_db: float, seed: int,
                   n_boot: int) -> dict[str, Any]:
    """The scores restricted to the references ``index`` (each still predicted leave-one-out
    from all the others): below ``SMALL_PARAMS`` parameters."""
    sub_ref = [ref[i] for i in index]
    out: dict[str, Any] = {"max_params": SMALL_PARAMS, "n": len(index),
                           "pairs": count_pairs(sub_ref, min_gap_db) if index else 0}
    if len(index) >= 3 and out["pairs"]:
        out["scores"] = score_table({k: [v[i] for i in index] for k, v in scores.items()},
                                    sub_ref, min_gap_db=min_gap_db, seed=seed, n_boot=n_boot)
    out["mae_db"] = _mae(scores, ref, index)
    return out


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(float(x))


def _beats(table: Mapping[str, Mapping[str, Any]], name: str, baselines: Sequence[str]) -> bool:
    """Strictly above every baseline on pairwise accuracy and Kendall tau."""
    if name not in table:
        return False
    def value(score: str, key: str) -> float:
        v = table[score][key]
        return -math.inf if v is None else v

    return all(value(name, k) > value(b, k) for b in baselines
               for k in ("pairwise_accuracy", "kendall_tau"))


# ---------------------------------------------------------------------------- plot
def _write_plot(doc: Mapping[str, Any], out: Path) -> None:
    from analysis.plots import fidelity_figure, write_figures

    for warning in write_figures({out / "fidelity.html": fidelity_figure(doc)}):
        print(f"nas fidelity: {warning}", file=sys.stderr)
