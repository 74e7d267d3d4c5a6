"""The training loop: iteration-based, seeded, resumable, with periodic validation.

One loop serves both the search's proxy training (a few hundred iterations, driven by a preset of
:mod:`trainers.presets`) and the full training of ``nas train``. Per iteration: a batch of aligned
patches (:class:`trainers.data.PatchDataset`), forward in the model's pixel range, pixel loss
(+ distillation), Adam step, learning rate from the schedule. Every ``eval_every`` iterations and
at the end the deploy form is validated (:func:`trainers.evaluate.evaluate`); every
``checkpoint_every`` iterations and at the end ``out_dir/checkpoint.pth`` is written atomically
(train and deploy form, optimizer, iteration, history, config), and at the end
``out_dir/model_deploy.pth``; ``out_dir/config.yaml`` records the resolved config of a fresh run.

Reproducibility: the seed fixes the initialisation and the data stream (item ``i`` depends only on
``(seed, i)``), the learning rate is a pure function of the iteration, so a run resumed from a
checkpoint continues bit for bit on the CPU (same thread count).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from search_space.checkpoint import (
    load_weights,
    read_checkpoint,
    spec_of_checkpoint,
    write_checkpoint,
)
from search_space.errors import InputError
from search_space.factory import build_model
from search_space.io import write_atomic
from search_space.reparam import is_deploy_form, reparameterize_model
from trainers.config import ScheduleConfig, TrainConfig
from trainers.data import patch_dataset
from trainers.device import resolve_device
from trainers.evaluate import evaluate
from trainers.losses import TrainingLoss, load_teacher

__all__ = ["train", "TrainResult", "NonFiniteLossError", "lr_at", "use_channels_last",
           "CHECKPOINT_NAME", "DEPLOY_NAME", "CONFIG_NAME"]

CHECKPOINT_NAME = "checkpoint.pth"
DEPLOY_NAME = "model_deploy.pth"
CONFIG_NAME = "config.yaml"
# Loss values are fetched from an accelerator only every this many iterations (a sync each).
_CUDA_SYNC_EVERY = 25


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; ``iteration`` is the first such iteration (1-based)."""

    def __init__(self, iteration: int, value: float = math.nan) -> None:
        self.iteration = iteration
        super().__init__(f"{value} loss at iteration {iteration}")


@dataclass
class TrainResult:
    """What a run produced.

    Args:
        iterations: Iterations completed (including those before a resume).
        metrics: The last :func:`trainers.evaluate.evaluate` result ({} without validation).
        history: ``{"iteration", "loss", "lr"}`` entries (loss averaged since the previous
            entry), with ``"metrics"`` (summaries, no per-image values) after validations.
        train_seconds: Wall time of the training steps (data loading included).
        eval_seconds: Wall time of the validations.
        checkpoint: ``out_dir/checkpoint.pth`` (None if none was written).
        stopped: None when the run finished, else why it stopped early (``"pruned"``).
    """

    iterations: int
    metrics: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    checkpoint: Path | None = None
    stopped: str | None = None


def train(config: TrainConfig, *, on_eval: Callable[[int, dict], bool | None] | None = None,
          progress: bool = False, resume: bool = False) -> TrainResult:
    """Train ``config.spec`` as configured.

    Args:
        config: The run (architecture, data, optimiser, schedule, budget, output folder).
        on_eval: Called as ``on_eval(iteration, metrics)`` after each validation; returning
            False stops the run (``stopped="pruned"``) after writing a checkpoint.
        progress: Print a progress line (iteration, loss, lr, it/s, ETA, last PSNR) to stderr.
        resume: Continue from ``out_dir/checkpoint.pth`` (same config; bit-exact on CPU).

    Raises:
        NonFiniteLossError: The loss became NaN/inf; the last good checkpoint is kept.
        InputError: Bad data, weights, teacher or checkpoint (nothing is written then).
    """
    previous = torch.get_num_threads(), torch.backends.cudnn.benchmark
    if config.threads:
        torch.set_num_threads(config.threads)
    # Fixed patch sizes: let cuDNN pick its fastest kernels (restored after: the profiler's
    # runtime protocol wants benchmark mode off).
    torch.backends.cudnn.benchmark = resolve_device(config.device).startswith("cuda")
    try:
        return _Run(config, resume=resume, progress=progress).run(on_eval)
    finally:
        torch.set_num_threads(previous[0])
        torch.backends.cudnn.benchmark = previous[1]


def lr_at(schedule: ScheduleConfig, base_lr: float, iteration: int, total: int) -> float:
    """Learning rate of 1-based ``iteration`` out of ``total``.

    Linear warm-up over ``warmup_iters``; then ``cosine`` goes from ``base_lr`` at the first
    iteration after warm-up to ``eta_min`` at the last, ``step`` multiplies by ``gamma`` every
    ``step_iters`` iterations, ``constant`` stays.
    """
    warmup = schedule.warmup_iters
    if iteration <= warmup:
        return base_lr * iteration / warmup
    if schedule.type == "constant":
        return base_lr
    if schedule.type == "step":
        return base_lr * schedule.gamma ** ((iteration - 1) // schedule.step_iters)
    progress = (iteration - 1 - warmup) / max(1, total - 1 - warmup)
    progress = min(progress, 1.0)  # a resumed run extended beyond its schedule stays at eta_min
    eta_min = min(schedule.eta_min, base_lr)
    return eta_min + (base_lr - eta_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def use_channels_last(model: nn.Module, device: str) -> bool:
    """The ``channels_last: auto`` decision for a training-form model on ``device``: NHWC.

    CUDA: cuDNN's NHWC kernels (tensor cores under AMP). CPU: NHWC trained faster for every
    architecture measured (``benchmarks/train_throughput.py``; the figures are in
    ``docs/measurement.md``). ``model`` is the hook for an exception a future measurement finds.
    """
    del model, device  # every measured case prefers NHWC
    return True


# ---------------------------------------------------------------------------- the run
class _Run:
    """State of one training run: model, optimiser, data, counters, output files."""

    def __init__(self, config: TrainConfig, *, resume: bool, progress: bool) -> None:
        self.config = config
        self.spec = config.spec
        self.device = resolve_device(config.device)
        self.out_dir = Path(config.out_dir)
        self.ckpt_path = self.out_dir / CHECKPOINT_NAME
        self.amp_dtype = _amp_dtype(config.amp, self.device)
        self.iteration = 0
        self.history: list[dict] = []
        self.metrics: dict = {}
        self.train_seconds = self.eval_seconds = 0.0
        self.wrote_checkpoint = False
        self._deploy_cache: tuple[int, nn.Module] | None = None

        torch.manual_seed(config.seed)
        if self.device.startswith("cuda"):
            torch.cuda.manual_seed_all(config.seed)
        self.model = build_model(self.spec).to(self.device)
        if config.init:
            _load_init(self.model, config.init)
        self.channels_last = (use_channels_last(self.model, self.device)
                              if config.channels_last == "auto" else bool(config.channels_last))
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.optim.lr, betas=config.optim.betas,
            eps=config.optim.eps, weight_decay=config.optim.weight_decay)
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp_dtype == torch.float16)
        if resume:
            self._restore()
        self._set_memory_format()
        self.loss = self._build_loss()
        self.dataset = patch_dataset(
            config.data.train, scale=self.spec.scale, lr_patch=config.data.lr_patch,
            seed=config.seed, augment=config.data.augment, lr_dir=config.data.lr_dir,
            prepare=config.data.prepare)
        self.progress = _Progress(config.iterations, enabled=progress)
        if not resume:  # only once everything above validated: bad input writes nothing
            write_atomic(self.out_dir / CONFIG_NAME, config.to_yaml())

    # ------------------------------------------------------------------------ main loop
    def run(self, on_eval: Callable[[int, dict], bool | None] | None) -> TrainResult:
        cfg = self.config
        stopped = None
        losses = _LossWindow(sync_every=1 if self.device == "cpu" else _CUDA_SYNC_EVERY)
        log_every = max(1, cfg.iterations // 100)
        self.model.train()
        self.progress.begin(self.iteration, self.train_seconds)
        tick = time.perf_counter()
        for lr_batch, hr_batch in self._batches():
            self.iteration += 1
            lr_value = self._step(lr_batch, hr_batch, losses)
            last = self.iteration >= cfg.iterations
            due_eval = bool(cfg.data.val) and (last or _due(self.iteration, cfg.eval_every))
            due_ckpt = last or _due(self.iteration, cfg.checkpoint_every)
            due_log = due_eval or _due(self.iteration, log_every)
            if not (due_eval or due_ckpt or due_log or losses.sync_due()):
                continue
            losses.check(self.iteration)
            self.train_seconds += time.perf_counter() - tick
            if due_log:
                self.history.append({"iteration": self.iteration, "loss": losses.mean(),
                                     "lr": lr_value})
            if due_eval and _stops(on_eval, self.iteration, self._validate(final=last)):
                stopped = "pruned"
            if due_ckpt or stopped:
                self._save_checkpoint()
            self.progress.update(self.iteration, losses.recent, lr_value, self.train_seconds,
                                 self.metrics)
            if due_log:
                losses.reset()
            tick = time.perf_counter()
            if stopped:
                break
        if stopped is None:
            self._finish()
        self.progress.close()
        return TrainResult(iterations=self.iteration, metrics=self.metrics, history=self.history,
                           train_seconds=self.train_seconds, eval_seconds=self.eval_seconds,
                           checkpoint=self.ckpt_path if self.wrote_checkpoint else None,
                           stopped=stopped)

    def _batches(self):
        cfg = self.config
        if self.iteration >= cfg.iterations:
            return iter(())
        bs = cfg.data.batch_size
        loader = torch.utils.data.DataLoader(
            self.dataset, batch_size=bs, sampler=range(self.iteration * bs, cfg.iterations * bs),
            num_workers=cfg.data.workers, pin_memory=self.device.startswith("cuda"),
            prefetch_factor=4 if cfg.data.workers else None)
        return _reraise_input_errors(loader)

    def _step(self, lr_batch: torch.Tensor, hr_batch: torch.Tensor,
              losses: _LossWindow) -> float:
        cfg = self.config
        lr_value = lr_at(cfg.schedule, cfg.optim.lr, self.iteration, cfg.iterations)
        for group in self.optimizer.param_groups:
            group["lr"] = lr_value
        scale = self.spec.input_range
        lr_batch = self._to_device(lr_batch) * scale
        hr_batch = self._to_device(hr_batch) * scale
        with self._autocast():
            sr = self.model(lr_batch)
            loss = self.loss(sr.float(), hr_batch, lr_batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        losses.add(loss.detach())
        return lr_value

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if x.dtype == torch.uint8:  # prepared datasets send uint8: scaled here, on the device
            x = x.float().div_(255.0)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    # ------------------------------------------------------------------------ validation
    def _validate(self, *, final: bool) -> dict:
        """Validate the deploy form; SSIM only at the end (it costs more than PSNR)."""
        start = time.perf_counter()
        deploy = self._deploy_model()
        self.metrics = evaluate(deploy, self.config.data.val, scale=self.spec.scale,
                                device=self.device, ssim=final)
        self.eval_seconds += time.perf_counter() - start
        summary = {name: {k: v for k, v in m.items() if k != "per_image"}
                   for name, m in self.metrics.items()}
        if self.history and self.history[-1]["iteration"] == self.iteration:
            self.history[-1]["metrics"] = summary
        else:
            self.history.append({"iteration": self.iteration, "metrics": summary})
        return self.metrics

    def _deploy_model(self) -> nn.Module:
        """Fused copy of the current weights (the training model is untouched), cached per
        iteration: validation, checkpoint and the final file share it."""
        if self._deploy_cache is None or self._deploy_cache[0] != self.iteration:
            deploy = reparameterize_model(self.model).to(memory_format=torch.contiguous_format)
            self._deploy_cache = (self.iteration, deploy)
        return self._deploy_cache[1]

    # ------------------------------------------------------------------------ files
    def _trainer_state(self, deploy_state: dict) -> dict[str, Any]:
        return {
            "model": _cpu_state(self.model.state_dict()), "model_deploy": deploy_state,
            "iteration": self.iteration,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"type": self.config.schedule.type,
                          "lr": self.optimizer.param_groups[0]["lr"]},
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "channels_last": self.channels_last,
            "config": self.config.to_dict(),
            "history": self.history, "metrics": _summaries(self.metrics),
            "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
        }

    def _save_checkpoint(self) -> None:
        deploy_state = _cpu_state(self._deploy_model().state_dict())
        write_checkpoint(self.ckpt_path, self.spec, **self._trainer_state(deploy_state))
        self.wrote_checkpoint = True

    def _finish(self) -> None:
        write_checkpoint(self.out_dir / DEPLOY_NAME, self.spec,
                         model_deploy=_cpu_state(self._deploy_model().state_dict()),
                         iteration=self.iteration, config=self.config.to_dict(),
                         metrics=_summaries(self.metrics))

    def _restore(self) -> None:
        if not self.ckpt_path.is_file():
            raise InputError(f"{self.ckpt_path}: no checkpoint to resume from")
        ckpt = read_checkpoint(self.ckpt_path)
        spec = spec_of_checkpoint(ckpt, self.ckpt_path)
        if spec is None or spec.arch_id() != self.spec.arch_id():
            raise InputError(f"{self.ckpt_path}: checkpoint is of another architecture "
                             f"({spec.arch_id() if spec else 'unknown'}), not "
                             f"{self.spec.arch_id()}; resume with the config it was made with")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt.get("scaler") or {})
        torch.set_rng_state(ckpt["rng"])
        self.channels_last = bool(ckpt.get("channels_last", self.channels_last))
        self.iteration = int(ckpt["iteration"])
        self.history = list(ckpt.get("history") or [])
        self.metrics = dict(ckpt.get("metrics") or {})
        self.train_seconds = float(ckpt.get("train_seconds", 0.0))
        self.eval_seconds = float(ckpt.get("eval_seconds", 0.0))
        self.wrote_checkpoint = True

    # ------------------------------------------------------------------------ setup
    def _set_memory_format(self) -> None:
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _build_loss(self) -> TrainingLoss:
        distill = self.config.distill
        if distill is None:
            return TrainingLoss(self.config.loss)
        teacher = load_teacher(distill.teacher, scale=self.spec.scale,
                               student_range=self.spec.input_range).to(self.device)
        if use_channels_last(teacher.model, self.device):
            teacher.to(memory_format=torch.channels_last)
        return TrainingLoss(self.config.loss, teacher=teacher, weight=distill.weight,
                            pixel_weight=distill.pixel_weight)


# ---------------------------------------------------------------------------- helpers
def _stops(on_eval: Callable[[int, dict], bool | None] | None, iteration: int,
           metrics: dict) -> bool:
    """True when the callback asks to stop (returns exactly False)."""
    return on_eval is not None and on_eval(iteration, metrics) is False


class _LossWindow:
    """Losses since the last history entry; read back from the device only every
    ``sync_every`` iterations (each read is a device sync), checked for NaN/inf on reading."""

    def __init__(self, *, sync_every: int) -> None:
        self.sync_every = sync_every
        self.pending: list[torch.Tensor] = []
        self.total, self.count = 0.0, 0
        self.recent: float | None = None

    def add(self, loss: torch.Tensor) -> None:
        self.pending.append(loss)

    def sync_due(self) -> bool:
        return len(self.pending) >= self.sync_every

    def check(self, iteration: int) -> None:
        """Read the pending losses; raise at the first non-finite one (``iteration`` = the
        iteration of the last pending loss)."""
        if not self.pending:
            return
        values = torch.stack(self.pending).float().cpu().tolist()
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                raise NonFiniteLossError(iteration - len(values) + 1 + offset, value)
        self.pending.clear()
        self.total += sum(values)
        self.count += len(values)
        self.recent = values[-1]

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def reset(self) -> None:
        self.total, self.count = 0.0, 0


def _due(iteration: int, every: int) -> bool:
    return every > 0 and iteration % every == 0


def _amp_dtype(amp: bool, device: str) -> torch.dtype | None:
    if not amp:
        return None
    if not device.startswith("cuda"):
        warnings.warn("amp: true is for CUDA only; training in float32 on the CPU", stacklevel=3)
        return None
    # bf16 needs no loss scaling; fp16 (older GPUs) goes with a GradScaler.
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _load_init(model: nn.Module, path: str) -> None:
    """Initialise the training form from a checkpoint (its training-form weights, or its deploy
    form when the architecture has no re-parameterisable parts)."""
    ckpt = read_checkpoint(path)
    has_train = spec_of_checkpoint(ckpt, path) is None or ckpt.get("model") is not None
    if has_train:
        load_weights(model, path, deploy=False)
    elif is_deploy_form(model):
        load_weights(model, path, deploy=True)
    else:
        raise InputError(f"init: {path} holds only deploy-form weights, which cannot initialise "
                         "the training form of this (re-parameterisable) architecture")


def _reraise_input_errors(loader):
    """A DataLoader worker wraps an InputError in a traceback text: keep its one-line message."""
    try:
        yield from loader
    except InputError as e:
        text = str(e).strip().splitlines()
        if len(text) > 1 and "DataLoader worker" in text[0]:
            raise InputError(text[-1].split(": ", 1)[-1]) from None
        raise


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", memory_format=torch.contiguous_format)
            for k, v in state.items()}


def _summaries(metrics: dict) -> dict:
    return {name: {k: v for k, v in m.items() if k != "per_image"} | {
        "per_image": dict(m.get("per_image", {}))} for name, m in metrics.items()}


class _Progress:
    """One status line on stderr: rewritten in place on a terminal, else every ~10 s."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total, self.enabled = total, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.last_print = 0.0
        self.start = (0, 0.0)

    def begin(self, iteration: int, seconds: float) -> None:
        """Rates and ETA count from here (a resumed run's earlier time is not this session's)."""
        self.start = (iteration, seconds)

    def update(self, iteration: int, loss: float | None, lr: float, seconds: float,
               metrics: dict) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if iteration < self.total and now - self.last_print < (0.5 if self.tty else 10.0):
            return
        self.last_print = now
        done, spent = iteration - self.start[0], seconds - self.start[1]
        rate = done / spent if spent > 0 else 0.0
        eta = (self.total - iteration) / rate if rate > 0 else 0.0
        parts = [f"it {iteration}/{self.total}",
                 f"loss {loss:.4g}" if loss is not None else "loss -",
                 f"lr {lr:.2e}", f"{rate:.2f} it/s", f"ETA {_clock(eta)}"]
        psnr = [m["psnr_y"] for m in metrics.values() if m.get("psnr_y") is not None]
        if psnr:
            parts.append(f"val PSNR {sum(psnr) / len(psnr):.2f} dB")
        line = " | ".join(parts)
        print(f"\r{line}\033[K" if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
