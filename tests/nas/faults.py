"""A trial function that injects failures by trial number (pickled by value into Ray workers).

number 1: the trainable raises (Ray's error path); number 2: a learning rate of 1e30 (a real
NaN/inf loss in the trainer); number 3: a cost constraint no model meets (``params <= 10``).
Every other trial runs normally.
"""

from __future__ import annotations

from dataclasses import replace


def faulty_trainable(config: dict, settings) -> None:
    from nas.objectives import parse_constraint
    from nas.trial import META_KEY, ray_trainable

    number = config[META_KEY]["number"]
    if number == 1:
        raise RuntimeError("injected failure in trial 1")
    if number == 2:
        config = {**config, "train.lr": 1e30}
    if number == 3:
        impossible = parse_constraint("constraints.params", "params", "<= 10", [])
        settings = replace(settings, constraints=(impossible,))
    ray_trainable(config, settings)
