"""A calibrated prediction of converged PSNR from what a short proxy training observed.

Short training favours small networks that converge fast, so raw proxy PSNR inverts the capacity
ranking. The predictor combines the proxy's end-of-schedule PSNR with cheap features of the
network (log params, log MACs, a zero-cost score at initialisation: synflow); features the proxy
saw on the way (how fast validation PSNR still rose, the final training loss) are available too.
It is the mean of ridge regressions on standardised features over a fixed grid of feature sets
and penalties (itself one linear model), fitted on a reference set of networks with known
converged PSNR (``nas fidelity --fit``), and judged leave-one-out only:
:func:`leave_one_out` never lets a network's own reference PSNR into the fit that scores it.

A fitted predictor is a small JSON document (features, their means and scales, coefficients),
shipped per proxy preset and scale in ``analysis/predictors/<preset>_x<scale>.json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from analysis.metrics import COL
from search_space.errors import InputError
from search_space.io import read_json_bounded

__all__ = ["FEATURES", "ALL_FEATURES", "SIZE_FEATURES", "IDENTITY_FEATURE", "Predictor",
           "features_of", "proxy_record", "MACS_INPUT_HW", "leave_one_out", "fit_averaged",
           "ridge", "shipped_predictor", "shipped_path", "PREDICTOR_DIR", "CANDIDATE_FEATURES",
           "with_identity_feature", "with_residual_sd", "leave_one_out_with_sd"]

PREDICTOR_DIR = Path(__file__).resolve().parent / "predictors"

# Features of one proxy-trained network (all computed by :func:`features_of`); FEATURES is the
# default of an explicit fit, while `nas fidelity` averages the CANDIDATE_FEATURES models.
ALL_FEATURES = ("psnr_proxy", "psnr_rise", "loss_tail", "log_params", "log_macs", "synflow")
FEATURES = ("psnr_proxy", "log_params", "log_macs")
# The (feature set, ridge penalty) models whose mean is the predictor: see :func:`fit_averaged`.
CANDIDATE_FEATURES = (
    ("psnr_proxy", "log_params"),
    ("psnr_proxy", "log_params", "log_macs"),
    ("psnr_proxy", "psnr_rise", "log_params", "log_macs"),
    ("psnr_proxy", "loss_tail", "log_params", "log_macs"),
    ("psnr_proxy", "log_params", "log_macs", "synflow"),
    ALL_FEATURES,
)
CANDIDATE_ALPHAS = (0.1, 0.3, 1.0, 3.0)
# 1 for a network without an identity path (no long residual and no input skip: the SPAN family,
# FSRCNN, CARN, the ERUM models), 0 otherwise. Such networks start below bicubic in a short
# proxy; whether the predictor should know it is measured leave-one-out (docs/proxy.md, 5).
IDENTITY_FEATURE = "no_identity"
# The "bigger is better" predictor that the calibrated one must beat.
SIZE_FEATURES = ("log_params", "log_macs")
DEFAULT_ALPHA = 1.0
# Beyond the references' range, a feature that would raise the prediction counts at this share
# of its slope. Measured on networks 4-27x larger than any reference (docs/proxy.md, section 8):
# 0 (a hard bound) under-predicted EDSR by 0.67 dB and the SRN teacher by 0.35, 1 (none)
# over-predicted them by 0.26 and 0.07; the half was chosen from those two, before RCAN's figure.
BEYOND_RANGE_SLOPE = 0.5
# The input the predictor's MACs are counted at (the NTIRE 256x256, as the references').
MACS_INPUT_HW = (256, 256)


def proxy_record(spec: Any, *, psnr_proxy: float | None, params: int | None,
                 macs_g: float | None, history: Sequence[Mapping[str, Any]],
                 input_hw: tuple[int, int] = MACS_INPUT_HW,
                 synflow: float | None = None) -> dict[str, Any]:
    """The record :func:`features_of` reads, for one proxy-trained network: the one builder of
    it, for a search's trials, ``nas fidelity``'s references and the tests, so that trials are
    scored on exactly the features the predictor was fitted on.

    Args:
        spec: The network's ArchSpec (input range, identity path).
        psnr_proxy: PSNR-Y at the end of the proxy schedule.
        params: Parameters of the deploy form.
        macs_g: MACs (G) counted at ``input_hw``; converted to :data:`MACS_INPUT_HW`.
        history: The training loop's history.
        input_hw: The input ``macs_g`` was counted at.
        synflow: log10 synflow score at initialisation (None where not computed).
    """
    h, w = input_hw
    macs_256 = macs_g * MACS_INPUT_HW[0] * MACS_INPUT_HW[1] / (h * w) if macs_g else None
    return {"psnr_proxy": psnr_proxy, "params": params, "macs_g": macs_256,
            "history": list(history), "input_range": spec.input_range,
            "identity_path": spec.has_identity_path(), "synflow": synflow}


def features_of(record: Mapping[str, Any]) -> dict[str, float | None]:
    """Predictor features of a proxy record.

    ``record`` holds ``psnr_proxy`` (end of schedule), ``params`` (deploy form), ``macs_g`` (per
    256x256 input), ``history`` (the training loop's history: loss per log step, validation
    summaries), ``synflow`` (log10, :mod:`trainers.zero_cost`) and ``identity_path`` (whether
    the spec has a long residual or an input skip). ``psnr_rise``: PSNR gained over the last
    validation interval (dB); ``loss_tail``: mean training loss over the last tenth of the
    schedule, in units of the input range; ``no_identity``: 1.0 without an identity path.
    """
    history = list(record.get("history") or [])
    psnr = _val_psnr(history)
    rise = psnr[-1] - psnr[-2] if len(psnr) >= 2 else None
    losses = [h["loss"] for h in history if h.get("loss") is not None]
    tail = losses[-max(1, len(losses) // 10):] if losses else []
    scale = float(record.get("input_range") or 1.0)
    params, macs = record.get("params"), record.get("macs_g")
    return {
        "psnr_proxy": _float(record.get("psnr_proxy")),
        "psnr_rise": rise,
        "loss_tail": float(np.mean(tail)) / scale if tail else None,
        "log_params": math.log10(params) if params else None,
        "log_macs": math.log10(macs) if macs else None,
        "synflow": _float(record.get("synflow")),
        IDENTITY_FEATURE: (None if record.get("identity_path") is None
                           else float(not record["identity_path"])),
    }


def _val_psnr(history: Sequence[Mapping[str, Any]]) -> list[float]:
    """Mean validation PSNR-Y over the val sets at each validation, in order."""
    out = []
    for h in history:
        metrics = h.get("metrics")
        if metrics:
            values = [m["psnr_y"] for m in metrics.values() if m.get("psnr_y") is not None]
            if values:
                out.append(float(np.mean(values)))
    return out


def _float(v: Any) -> float | None:
    return None if v is None else float(v)


@dataclass(frozen=True)
class Predictor:
    """Ridge regression on standardised features: ``psnr = intercept + coef . (x - mean) / std``.

    Args:
        features: Feature names (keys of :func:`features_of`).
        mean, std: Standardisation fitted on the training references.
        coef, intercept: The fitted model (intercept = mean target).
        alpha: Ridge penalty on the standardised coefficients.
        meta: Where it came from (preset, reference count, command).
        bounds: Each feature's range over the training references: outside it a feature raises
            the prediction at half its slope at most (:meth:`_z`), and the prediction is marked
            extrapolated.
        members: The coefficients of the averaged models (:meth:`average`), whose spread at a
            point is part of :meth:`sd`.
        residual_sd: RMS of the leave-one-out errors on the training references
            (:func:`with_residual_sd`); None when not measured.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    alpha: float = DEFAULT_ALPHA
    meta: Mapping[str, Any] | None = None
    bounds: tuple[tuple[float, float], ...] | None = None
    members: tuple[tuple[float, ...], ...] = ()
    residual_sd: float | None = None

    @classmethod
    def fit(cls, rows: Sequence[Mapping[str, float | None]], targets: Sequence[float], *,
            features: Sequence[str] = FEATURES, alpha: float = DEFAULT_ALPHA,
            meta: Mapping[str, Any] | None = None) -> Predictor:
        x = _matrix(rows, features)
        y = np.asarray(targets, float)
        mean, std = x.mean(0), x.std(0)
        std[std == 0] = 1.0
        z = (x - mean) / std
        coef = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean()))
        bounds = tuple(zip(x.min(0).tolist(), x.max(0).tolist(), strict=True))
        return cls(tuple(features), tuple(mean.tolist()), tuple(std.tolist()),
                   tuple(coef.tolist()), float(y.mean()), float(alpha), dict(meta or {}), bounds)

    def _z(self, row: Mapping[str, float | None]) -> np.ndarray | None:
        """Standardised features of ``row``; None if one is missing.

        Outside the references' range a feature that raises the prediction counts at
        :data:`BEYOND_RANGE_SLOPE` of its slope (a linear term in log params would promise
        1.3 dB to a 43M network), one that lowers it at its full slope (a network smaller than
        any reference keeps falling). The proxy PSNR follows the same rule, by the sign the fit
        gave it: the 42-reference fit weighs it at about zero (EGFMN, the lowest proxy PSNR at
        21.0 dB, converges to 32.03), so a trial below every reference's proxy PSNR is scored
        near ordinary, and flagged.
        """
        values = [row.get(f) for f in self.features]
        if any(v is None or not math.isfinite(float(v)) for v in values):
            return None
        x = np.asarray(values, float)
        if self.bounds is not None:
            edge = np.clip(x, *np.asarray(self.bounds).T)
            gain = np.asarray(self.coef) * (x - edge) / np.asarray(self.std)
            x = np.where(gain > 0, edge + BEYOND_RANGE_SLOPE * (x - edge), x)
        return (x - np.asarray(self.mean)) / np.asarray(self.std)

    def predict(self, row: Mapping[str, float | None]) -> float | None:
        """Predicted converged PSNR, or None when a feature is missing.

        Never below the trial's own proxy PSNR: a longer training does not end below where a
        short one got, while a linear model far outside its references (a diverged trial's
        loss of 1e11) says -1e12 dB.
        """
        linear = self._linear(row)
        return None if linear is None else max(linear, self._proxy(row))

    def _linear(self, row: Mapping[str, float | None]) -> float | None:
        z = self._z(row)
        return None if z is None else float(self.intercept + z @ np.asarray(self.coef))

    def _proxy(self, row: Mapping[str, float | None]) -> float:
        """The floor: the proxy PSNR (-inf for a model without it)."""
        proxy = row.get(COL.psnr_proxy) if COL.psnr_proxy in self.features else None
        return -math.inf if proxy is None else float(proxy)


    def sd(self, row: Mapping[str, float | None]) -> float | None:
        """The prediction's standard deviation: the leave-one-out residual RMS and the averaged
        models' disagreement at this point, in quadrature (None without a residual figure, or
        where the prediction is the proxy PSNR floor: the model says nothing there)."""
        z = self._z(row)
        if z is None or self.residual_sd is None or self._linear(row) < self._proxy(row):
            return None
        spread = float(np.std(np.asarray(self.members) @ z)) if self.members else 0.0
        return math.hypot(self.residual_sd, spread)

    def extrapolated(self, row: Mapping[str, float | None]) -> tuple[str, ...]:
        """The features of ``row`` outside the training references' range."""
        if self.bounds is None:
            return ()
        return tuple(f for f, (lo, hi) in zip(self.features, self.bounds, strict=True)
                     if row.get(f) is not None and not lo <= float(row[f]) <= hi)

    def to_dict(self) -> dict[str, Any]:
        out = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}
        out["bounds"] = None if self.bounds is None else [list(b) for b in self.bounds]
        out["members"] = [list(m) for m in self.members]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Predictor:
        bounds = d.get("bounds")
        return cls(tuple(d["features"]), tuple(d["mean"]), tuple(d["std"]), tuple(d["coef"]),
                   float(d["intercept"]), float(d.get("alpha", DEFAULT_ALPHA)), d.get("meta"),
                   None if bounds is None else tuple((float(lo), float(hi)) for lo, hi in bounds),
                   tuple(tuple(float(c) for c in m) for m in d.get("members") or ()),
                   None if d.get("residual_sd") is None else float(d["residual_sd"]))

    @classmethod
    def average(cls, models: Sequence[Predictor], *,
                meta: Mapping[str, Any] | None = None) -> Predictor:
        """The mean of ridge models fitted on the same rows: itself one linear model over the
        union of their features (each model's standardisation and range are the same per
        feature)."""
        features = tuple(dict.fromkeys(f for m in models for f in m.features))
        stats = {f: (m.mean[i], m.std[i], m.bounds and m.bounds[i])
                 for m in models for i, f in enumerate(m.features)}
        members = np.zeros((len(models), len(features)))
        for k, m in enumerate(models):
            for c, f in zip(m.coef, m.features, strict=True):
                members[k, features.index(f)] = c
        bounds = [stats[f][2] for f in features]
        return cls(features, tuple(stats[f][0] for f in features),
                   tuple(stats[f][1] for f in features), tuple(members.mean(0).tolist()),
                   float(np.mean([m.intercept for m in models])),
                   float(np.mean([m.alpha for m in models])), dict(meta or {}),
                   None if None in bounds else tuple(bounds),
                   tuple(tuple(row) for row in members.tolist()))

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        try:
            return cls.from_dict(read_json_bounded(path, "predictor file"))
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"{path}: not a predictor file ({type(e).__name__}: {e})") from None


def _matrix(rows: Sequence[Mapping[str, float | None]], features: Sequence[str]) -> np.ndarray:
    x = np.array([[_value(r.get(f)) for f in features] for r in rows])
    if np.isnan(x).any():
        bad = sorted({features[j] for j in np.where(np.isnan(x))[1]})
        raise ValueError(f"missing feature values: {', '.join(bad)}")
    return x


def _value(v: Any) -> float:
    """A feature value as a float; NaN where missing or not finite (a diverged zero-cost
    score), which a fit refuses and :func:`fit_averaged` avoids."""
    return float(v) if v is not None and math.isfinite(float(v)) else math.nan


Fit = Callable[[Sequence[Mapping[str, float | None]], Sequence[float]], "Predictor"]


def with_identity_feature(candidates: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Every candidate feature set with :data:`IDENTITY_FEATURE` added."""
    return tuple((*features, IDENTITY_FEATURE) for features in candidates)


def fit_averaged(rows: Sequence[Mapping[str, float | None]], targets: Sequence[float], *,
                 meta: Mapping[str, Any] | None = None,
                 candidates: Sequence[Sequence[str]] = CANDIDATE_FEATURES) -> Predictor:
    """The mean of the ridge models of every (feature set, penalty) candidate, fitted on these
    references: one linear model, chosen by no look at the data. A candidate needing a feature
    the proxy did not observe (``psnr_rise`` of a proxy that validates once) is left out.

    Picking the single best candidate by leave-one-out on 27 references was unstable (the
    folds chose four different models) and cost 0.03-0.04 Kendall tau against the candidates'
    own figures; averaging keeps what they share and needs no selection step to judge.
    """
    observed = [c for c in candidates
                if all(math.isfinite(_value(r.get(f))) for r in rows for f in c)]
    if not observed:
        _matrix(rows, candidates[0])  # raises, naming the missing features
    models = [Predictor.fit(rows, targets, features=features, alpha=alpha)
              for features in observed for alpha in CANDIDATE_ALPHAS]
    return Predictor.average(models, meta=meta)


def leave_one_out(rows: Sequence[Mapping[str, float | None]], targets: Sequence[float], *,
                  fit: Fit = fit_averaged) -> list[float | None]:
    """Prediction for each reference from ``fit`` on all the other references."""
    return [model.predict(rows[i]) for i, model in _folds(rows, targets, fit)]


def _folds(rows: Sequence[Mapping[str, float | None]], targets: Sequence[float], fit: Fit):
    """``(i, model)``: ``fit`` on every reference but the i-th, for each i."""
    for i in range(len(rows)):
        keep = [j for j in range(len(rows)) if j != i]
        yield i, fit([rows[j] for j in keep], [targets[j] for j in keep])


def with_residual_sd(predictor: Predictor, rows: Sequence[Mapping[str, float | None]],
                     targets: Sequence[float], *, fit: Fit = fit_averaged) -> Predictor:
    """``predictor`` (fitted by ``fit`` on these rows) with the RMS of ``fit``'s leave-one-out
    errors on them, the residual part of :meth:`Predictor.sd`."""
    errors = [p - t for p, t in zip(leave_one_out(rows, targets, fit=fit), targets, strict=True)
              if p is not None]
    return replace(predictor, residual_sd=float(np.sqrt(np.mean(np.square(errors)))))


def leave_one_out_with_sd(rows: Sequence[Mapping[str, float | None]], targets: Sequence[float],
                          *, fit: Fit = fit_averaged) -> list[tuple[float | None, float | None]]:
    """(prediction, sd) of each reference from ``fit`` on all the others, its sd's residual part
    measured leave-one-out inside those others (nothing of the reference itself reaches it)."""
    def fit_with_sd(sub_rows, sub_targets) -> Predictor:
        return with_residual_sd(fit(sub_rows, sub_targets), sub_rows, sub_targets, fit=fit)

    return [(model.predict(rows[i]), model.sd(rows[i]))
            for i, model in _folds(rows, targets, fit_with_sd)]


def ridge(features: Sequence[str], alpha: float = DEFAULT_ALPHA) -> Fit:
    """A fitting procedure for one fixed ridge model (for :func:`leave_one_out`)."""
    return lambda rows, targets: Predictor.fit(rows, targets, features=features, alpha=alpha)


def shipped_predictor(preset: str, scale: int = 4) -> Predictor | None:
    """The predictor shipped for a proxy preset at a scale (None if there is none)."""
    path = shipped_path(preset, scale)
    return Predictor.load(path) if path.exists() else None


def shipped_path(preset: str, scale: int, kind: str = "") -> Path:
    """``analysis/predictors/<preset>_x<scale>[.<kind>].json``: a shipped predictor (``kind``
    empty) or the fidelity document that fitted it (``kind`` ``fidelity``)."""
    return PREDICTOR_DIR / f"{preset}_x{scale}{'.' + kind if kind else ''}.json"
