"""A tiny proxy and a tiny space, so that search tests run real trials in seconds."""

from __future__ import annotations

import pytest

# Trains a few iterations on 16x16 LR patches of Set5, validates on Set5 (ESA needs >= 15x15).
TINY_TRAIN = {
    "data": {"train": "Set5", "val": ["Set5"], "lr_patch": 16, "batch_size": 2, "workers": 0},
    "iterations": 4, "eval_every": 2, "checkpoint_every": 0, "device": "cpu",
    "schedule": {"type": "cosine"},
}
TINY_SPACE = {
    "channels": {"low": 8, "high": 16, "step": 8}, "depth": {"low": 1, "high": 2},
    "blocks": {"rlfb": {}, "nrb": {}, "rb": {}, "erb": {}},
    # CCA's reduction 16 needs >= 16 channels (spec validation): narrowed for 8-channel samples
    "attention": {"type": ["none", "cca"], "every": {"low": 1, "high": 2},
                  "cca": {"reduction": [4, 8]}},
    "upsampler": ["pixelshuffle"],
}
TINY_PROFILE = {"input_hw": [32, 32], "warmup": 1, "repeats": 3}


def tiny_config(**overrides) -> dict:
    """A search config mapping with the tiny proxy (merge ``overrides`` over it)."""
    # calibrate: off: the tiny proxy has no shipped predictor, and calibrating it (its own test)
    # would train references before every search of the suite
    cfg = {"anchors": [], "proxy": {"preset": "cpu", "train": TINY_TRAIN, "calibrate": "off"},
           "profile": TINY_PROFILE, "space": TINY_SPACE,
           "sampler": {"type": "tpe", "n_startup_trials": 2}}
    cfg.update(overrides)
    return cfg


@pytest.fixture(autouse=True)
def private_lock_dir(tmp_path, monkeypatch):
    """Timing locks of this test only (other processes' profiling must not make it wait)."""
    monkeypatch.setenv("ESRNAS_LOCK_DIR", str(tmp_path / "locks"))
    return tmp_path / "locks"
