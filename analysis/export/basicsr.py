"""``basicsr.yml`` of an export: the same recipe as BasicSR (1.4.2) options.

The training set is train.yaml's, in the layout ``nas data prepare`` writes (BasicSR's);
``network_g`` builds the deploy form (the form of the weights) through ``analysis.basicsr_plugin``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from search_space.spec import ArchSpec

__all__ = ["basicsr_options", "loader_workers"]


def loader_workers(limit: int = 4) -> int:
    """Loader processes for this machine: ``limit``, or fewer on a machine with fewer cores."""
    return max(1, min(limit, os.cpu_count() or 1))


def basicsr_options(config: Mapping[str, Any], spec: ArchSpec, name: str) -> dict[str, Any]:
    """BasicSR-style options for the same recipe (SRModel, PairedImageDataset).

    The training set is train.yaml's, in the layout ``nas data prepare`` writes; ``num_gpu:
    auto`` uses the GPUs BasicSR finds (none: the CPU) and ``num_worker_per_gpu`` is sized for
    this machine (:func:`loader_workers`).
    """
    schedule, total = config["schedule"], config["iterations"]
    if schedule["type"] == "step":
        milestones = list(range(schedule["step_iters"], total, schedule["step_iters"]))
        scheduler = {"type": "MultiStepLR", "milestones": milestones, "gamma": schedule["gamma"]}
    elif schedule["type"] == "cosine":
        scheduler = {"type": "CosineAnnealingRestartLR", "periods": [total],
                     "restart_weights": [1], "eta_min": schedule["eta_min"]}
    else:
        scheduler = {"type": "MultiStepLR", "milestones": [total], "gamma": 1.0}
    s = spec.scale
    loss = "L1Loss" if config["loss"] == "l1" else "MSELoss"
    root = Path(config["data"]["train"])
    return {
        "name": name,
        "model_type": "SRModel",
        "scale": s,
        "num_gpu": "auto",
        "manual_seed": config["seed"],
        "datasets": {
            "train": {"name": root.name, "type": "PairedImageDataset",
                      # the layout of nas data prepare (trainers.prepare), which is BasicSR's
                      "dataroot_gt": str(root / "HR_sub"),
                      "dataroot_lq": str(root / "LR_bicubic" / f"X{s}_sub"),
                      "io_backend": {"type": "disk"}, "gt_size": config["data"]["lr_patch"] * s,
                      "use_hflip": True, "use_rot": True, "use_shuffle": True,
                      "num_worker_per_gpu": loader_workers(6),
                      "batch_size_per_gpu": config["data"]["batch_size"],
                      "dataset_enlarge_ratio": 1, "prefetch_mode": None},
            "val": {"name": "Set5", "type": "PairedImageDataset",
                    "dataroot_gt": "datasets/Set5/GTmod12",
                    "dataroot_lq": f"datasets/Set5/LRbicx{s}", "io_backend": {"type": "disk"}},
        },
        "network_g": {"type": "ESRNASNet", "deploy": True, **spec.to_dict()},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0,
            "optim_g": {"type": "Adam", "lr": config["optim"]["lr"],
                        "weight_decay": config["optim"]["weight_decay"],
                        "betas": list(config["optim"]["betas"])},
            "scheduler": scheduler,
            "total_iter": total,
            "warmup_iter": -1,
            "pixel_opt": {"type": loss, "loss_weight": 1.0, "reduction": "mean"},
        },
        "val": {"val_freq": config["eval_every"], "save_img": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": s,
                                     "test_y_channel": True},
                            "ssim": {"type": "calculate_ssim", "crop_border": s,
                                     "test_y_channel": True}}},
        "logger": {"print_freq": 100, "save_checkpoint_freq": config["checkpoint_every"],
                   "use_tb_logger": False, "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


_BASICSR_HEADER = """\
# BasicSR (1.4.2) options for an esrnas architecture ({arch_id}), recipe: {recipe}.
# Train with BasicSR's train pipeline and the ESRNASNet arch registered (esrnas installed):
#
#   python -m analysis.basicsr_plugin -opt basicsr.yml
#
# network_g builds the deploy form, the form of model_deploy.pth (key params): set
# path.pretrain_network_g to it to start from the proxy weights. deploy: false builds the
# re-parameterisable training form instead (its weights do not load into the deploy form).
# Training data: {train}, as nas data prepare lays it out (HR_sub, LR_bicubic/X{scale}_sub).
# datasets.val is Set5 in BasicSR's layout (GTmod12, LRbicx{scale}): point it at yours, or
# remove it and the val section.
# Keys that follow the machine: num_gpu (auto: the GPUs found, none -> CPU) and
# datasets.train.num_worker_per_gpu (set to this machine's cores, at most 6).
"""
