"""How an architecture is trained and measured: data, degradation, losses, the training loop,
PSNR/SSIM and the profiler.

Submodules are imported explicitly (``from trainers.loop import train``); this package imports
nothing at load time, so ``import trainers`` stays cheap. ``trainers`` depends on
``search_space`` only, never on ``nas``, Optuna or Ray.
"""
