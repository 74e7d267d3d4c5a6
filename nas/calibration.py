"""Calibration inside the search (``proxy.calibrate``): when no shipped predictor fits the run's
proxy, ``nas launch`` first proxy-trains reference networks, fits the PSNR predictor on them and
only then samples.

The references are the shipped list of the run's scale (:func:`nas.references.spanning_subset`
of ``proxy.calibrate: {refs: N}`` of them), trained exactly as ``nas fidelity`` trains them
(:func:`nas.fidelity.reference_record`: a trial's config, the same loop), as Ray tasks with a
trial's resources, ``resources.max_concurrent`` at a time (fractional GPUs included).

Each finished reference is written at once to a calibration store keyed by the proxy
(fingerprint of the resolved proxy config and the scale) and the device kind:
``$ESRNAS_CACHE_DIR/calibration/<key>/refs/<name>.json`` (inside the run when the cache is
off). kill -9 loses no finished reference, and the next search with the same proxy trains none.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

from analysis.metrics import COL
from analysis.predictor import Predictor
from analysis.rundir import RunDir
from nas.config import SearchConfig
from nas.progress import format_duration
from nas.proxy import device_kind, proxy_fingerprint, proxy_preset
from nas.references import MIN_FIT_REFERENCES, Reference, load_references, spanning_subset
from nas.trial_settings import TrialSettings
from search_space.io import first_line
from trainers.environment import cache_dir

__all__ = ["calibrate", "calibration_store", "calibration_references"]

# the fidelity figures a run's calibration.json keeps (the whole document stays in the store)
FIDELITY_KEYS = ("preset", "scale", "n", "pairs", "min_gap_db", "predictor_beats_baselines",
                 "scores", "mae_db", "sd_coverage")


def calibration_store(run: RunDir, train_base: dict[str, Any], scale: int, device: str) -> Path:
    """The folder of this proxy's calibration records: one per proxy and kind of device."""
    key = hashlib.sha1(f"{proxy_fingerprint(train_base, scale)} {device}".encode()).hexdigest()
    root = cache_dir()
    return (root if root is not None else run.path) / "calibration" / key[:16]


def calibration_references(config: SearchConfig) -> list[Reference]:
    """The shipped references of the run's scale that a search calibrates on."""
    from search_space.factory import build_model

    refs = load_references(scale=config.scale)
    params = [sum(p.numel() for p in build_model(r.spec).parameters()) for r in refs]
    chosen = spanning_subset([r.psnr_ref for r in refs], params, config.proxy.calibration_refs)
    return [refs[i] for i in chosen]


def calibrate(run: RunDir, config: SearchConfig, train_base: dict[str, Any], cpus: float,
              gpus: float, *, progress: bool = True) -> tuple[Predictor | None, dict[str, Any]]:
    """Proxy-train the calibration references (reusing the store), fit the predictor and judge
    it leave-one-out; returns it and the run's calibration record (no predictor where the
    scale's reference list is too short to fit one)."""
    from nas.fidelity import fidelity_report, fit_predictor

    t0 = time.monotonic()
    device = device_kind(train_base, gpus)
    refs = calibration_references(config)
    if len(refs) < MIN_FIT_REFERENCES:
        return None, {"calibrated": False, "predictor": (
            f"no predictor fits this proxy and the x{config.scale} reference list has "
            f"{len(refs)} networks, fewer than the {MIN_FIT_REFERENCES} a fit is judged on "
            "(docs/proxy.md, section 3.2): psnr is the raw proxy PSNR")}
    store = calibration_store(run, train_base, config.scale, device)
    settings = TrialSettings(run_dir=str(store), scale=config.scale, train_base=train_base,
                             seed=config.seed, threads=max(1, int(cpus)))
    records, trained, failed = _records(refs, settings, store, cpus, gpus,
                                        config.resources.max_concurrent, progress)
    if len(records) < MIN_FIT_REFERENCES:
        raise RuntimeError(f"calibration: {len(failed)} of {len(refs)} references failed to "
                           f"train ({'; '.join(f'{k}: {v}' for k, v in failed.items())}); "
                           f"{len(records)} left, a fit needs {MIN_FIT_REFERENCES}")
    preset = proxy_preset(config, gpus)
    meta = {"preset": preset, "scale": config.scale, "device": device, "n": len(records),
            "fingerprint": proxy_fingerprint(train_base, config.scale),
            "refs": [r["name"] for r in records], "arch_ids": [r[COL.arch_id] for r in records],
            "command": "nas launch (proxy.calibrate)"}
    predictor = fit_predictor(records, meta)
    doc = fidelity_report(records, preset=preset, scale=config.scale, seed=config.seed)
    wall = time.monotonic() - t0
    record = {
        "calibrated": True,
        "predictor": (f"calibrated by this search on {len(records)} x{config.scale} references "
                      f"({device})"),
        "fidelity": {k: doc[k] for k in FIDELITY_KEYS},
        "calibration": {"store": str(store), "device": device, "references": len(records),
                        "trained": trained, "reused": len(refs) - trained, "failed": failed,
                        "wall_s": round(wall, 1)},
    }
    if progress:
        s = doc["scores"]["predictor"]
        print(f"[nas] calibrated on {len(records)} references ({trained} trained, "
              f"{len(refs) - trained} from the store, {len(failed)} failed) in "
              f"{format_duration(wall)}: "
              f"leave-one-out tau {s['kendall_tau']:+.3f}, pairwise "
              f"{s['pairwise_accuracy']:.3f}", file=sys.stderr, flush=True)
    return predictor, record


def _records(refs: list[Reference], settings: TrialSettings, store: Path, cpus: float,
             gpus: float, concurrent: int, progress: bool
             ) -> tuple[list[dict[str, Any]], int, dict[str, str]]:
    """Every reference's record, in list order: the store's, or trained now as Ray tasks with a
    trial's resources, ``concurrent`` at a time; how many were trained; and the references
    whose training failed (name -> why), which the fit goes without."""
    import ray

    from nas.fidelity import reference_record

    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(reference_record)
    pending: dict[Any, int] = {}
    records: dict[int, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    queue, trained, t0 = list(range(len(refs))), 0, time.monotonic()
    while queue or pending:
        while queue and len(pending) < max(1, concurrent):
            i = queue.pop(0)
            pending[task.remote(refs[i], settings, store)] = i
        [done], _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(done)
        try:
            records[i], was_trained = ray.get(done)
        except Exception as e:  # noqa: BLE001  (a diverging reference: fit without it)
            failed[refs[i].name] = first_line(getattr(e, "cause", None) or e)
            was_trained, what = True, f"failed ({failed[refs[i].name]})"
        else:
            what = f"proxy {records[i][COL.psnr_proxy]:.3f} dB"
        trained += was_trained
        if progress:
            finished = len(records) + len(failed)
            eta = (time.monotonic() - t0) / trained * (len(refs) - finished) if trained else 0.0
            print(f"[nas] calibrating {finished}/{len(refs)}: {refs[i].name} {what}"
                  f"{'' if was_trained else ' (store)'}; ETA {format_duration(eta)}",
                  file=sys.stderr, flush=True)
    return [records[i] for i in sorted(records)], trained, failed
