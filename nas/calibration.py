"""Calibration inside the search (``proxy.calibrate``): when no shipped predictor fits the run's
proxy, ``nas launch`` first proxy-trains reference networks, fits the PSNR predictor on them and
only then samples.

The references are the shipped list of the run's scale (:func:`nas.references.spanning_subset`
of ``proxy.calibrate: {refs: N}`` of them), trained exactly as ``nas fidelity`` trains them
(:func:`nas.fidelity.reference_record`: a trial's config, the same loop), as Ray tasks with a
trial's resources, ``resources.max_concurrent`` at a time (fractional GPUs included).

Each finished reference is written at once to a calibration store keyed by the proxy
(fingerprint of the resolved proxy config and the scale), the device kind and the seed:
``$ESRNAS_CACHE_DIR/calibration/<key>/refs/<name>.json`` (inside the run when the cache is
off). kill -9 loses no finished reference, and the next search with the same proxy and seed
trains none (the store is read here, before any task starts). A reference that fails to train
is left out of the fit and named in the record; it is tried again by the next search.
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
from nas.proxy import proxy_fingerprint, proxy_preset
from nas.references import MIN_FIT_REFERENCES, Reference, load_references, spanning_subset
from nas.trial_settings import TrialSettings
from search_space.io import first_line
from trainers.environment import cache_dir

__all__ = ["calibrate", "calibration_store", "calibration_references"]


def calibration_store(run: RunDir, train_base: dict[str, Any], scale: int, device: str,
                      seed: int) -> Path:
    """The folder of this proxy's calibration records: one per proxy, kind of device and seed
    (the records of another seed are other measurements)."""
    text = f"{proxy_fingerprint(train_base, scale)} {device} seed {seed}"
    root = cache_dir()
    return ((root if root is not None else run.path) / "calibration"
            / hashlib.sha1(text.encode()).hexdigest()[:16])


def calibration_references(config: SearchConfig) -> list[Reference]:
    """The shipped references of the run's scale that a search calibrates on (those not marked
    ``calibrate: false``)."""
    from search_space.factory import build_model

    refs = [r for r in load_references(scale=config.scale) if r.calibrate]
    if len(refs) < MIN_FIT_REFERENCES:
        return refs
    params = [sum(p.numel() for p in build_model(r.spec).parameters()) for r in refs]
    chosen = spanning_subset([r.psnr_ref for r in refs], params, config.proxy.calibration_refs)
    return [refs[i] for i in chosen]


def calibrate(run: RunDir, config: SearchConfig, train_base: dict[str, Any], cpus: float,
              gpus: float, device: str, *, progress: bool = True
              ) -> tuple[Predictor | None, dict[str, Any]]:
    """Proxy-train the calibration references (reusing the store), fit the predictor and judge
    it leave-one-out; returns it and the run's calibration record. Without enough references
    (a short list, or too many that failed to train) no predictor, and the record says why."""
    from nas.fidelity import FIDELITY_KEYS, fidelity_report, fit_predictor

    t0 = time.monotonic()
    refs = calibration_references(config)
    if len(refs) < MIN_FIT_REFERENCES:
        return None, _uncalibrated(f"the x{config.scale} reference list has {len(refs)} networks")
    store = calibration_store(run, train_base, config.scale, device, config.seed)
    settings = TrialSettings(run_dir=str(store), scale=config.scale, train_base=train_base,
                             seed=config.seed, threads=max(1, int(cpus)))
    records, trained, failed = _records(refs, settings, store, cpus, gpus,
                                        config.resources.max_concurrent, progress)
    if len(records) < MIN_FIT_REFERENCES:
        return None, _uncalibrated(f"{len(failed)} of {len(refs)} references failed to train ("
                                   + "; ".join(f"{k}: {v}" for k, v in failed.items()) + ")")
    preset = proxy_preset(config, gpus)
    meta = {"preset": preset, "scale": config.scale, "device": device, "n": len(records),
            "fingerprint": proxy_fingerprint(train_base, config.scale), "seed": config.seed,
            "refs": [r["name"] for r in records], "arch_ids": [r[COL.arch_id] for r in records],
            "command": "nas launch (proxy.calibrate)"}
    predictor = fit_predictor(records, meta)
    doc = fidelity_report(records, preset=preset, scale=config.scale, seed=config.seed)
    wall = time.monotonic() - t0
    reused = len(records) - trained
    if progress:
        s = doc["scores"]["predictor"]
        print(f"[nas] calibrated on {len(records)} references ({trained} trained, {reused} from "
              f"the store, {len(failed)} failed) in {format_duration(wall)}: leave-one-out tau "
              f"{s['kendall_tau']:+.3f}, pairwise {s['pairwise_accuracy']:.3f}",
              file=sys.stderr, flush=True)
    return predictor, {
        "calibrated": True,
        "predictor": (f"calibrated by this search on {len(records)} x{config.scale} references "
                      f"({device})"),
        "fidelity": {k: doc[k] for k in FIDELITY_KEYS},
        "calibration": {"store": str(store), "device": device, "references": len(records),
                        "trained": trained, "reused": reused, "failed": failed,
                        "wall_s": round(wall, 1)},
    }


def _uncalibrated(why: str) -> dict[str, Any]:
    return {"calibrated": False, "predictor": (
        f"no predictor fits this proxy and {why}, fewer than the {MIN_FIT_REFERENCES} a fit is "
        "judged on: psnr is the raw proxy PSNR")}


def _records(refs: list[Reference], settings: TrialSettings, store: Path, cpus: float,
             gpus: float, concurrent: int, progress: bool
             ) -> tuple[list[dict[str, Any]], int, dict[str, str]]:
    """Every reference's record, in list order: the store's (read here), or trained now as Ray
    tasks with a trial's resources, ``concurrent`` at a time; how many were trained; and the
    references whose training failed (name -> why), which the fit goes without."""
    import ray

    from nas.fidelity import reference_record, stored_record

    records = {i: r for i, ref in enumerate(refs)
               if (r := stored_record(ref, settings, store)) is not None}
    queue = [i for i in range(len(refs)) if i not in records]
    if progress and records:
        print(f"[nas] calibrating: {len(records)}/{len(refs)} references from the store "
              f"({store})", file=sys.stderr, flush=True)
    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(reference_record)
    pending: dict[Any, int] = {}
    failed: dict[str, str] = {}
    trained, t0 = 0, time.monotonic()
    while queue or pending:
        while queue and len(pending) < max(1, concurrent):
            i = queue.pop(0)
            pending[task.remote(refs[i], settings, store)] = i
        [done], _ = ray.wait(list(pending), num_returns=1)
        i = pending.pop(done)
        try:
            records[i] = ray.get(done)[0]
            trained += 1
            what = f"proxy {records[i][COL.psnr_proxy]:.3f} dB"
        except Exception as e:  # noqa: BLE001  (a diverging reference: fit without it)
            failed[refs[i].name] = first_line(getattr(e, "cause", None) or e)
            what = f"failed ({failed[refs[i].name]})"
        if progress:
            finished = len(records) + len(failed)
            tried = trained + len(failed)
            eta = (time.monotonic() - t0) / tried * (len(refs) - finished)
            print(f"[nas] calibrating {finished}/{len(refs)}: {refs[i].name} {what}; "
                  f"ETA {format_duration(eta)}", file=sys.stderr, flush=True)
    return [records[i] for i in sorted(records)], trained, failed
