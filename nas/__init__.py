"""How a search runs: the ``nas`` CLI, search config, trials, the Ray Tune + Optuna launcher."""
