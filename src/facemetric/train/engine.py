"""The training loop: P x K batches, augmentation, loss, validation, checkpoints, resume.

Everything a step does is determined by (seed, epoch, step): the sampler's batches for an
epoch and the augmentation's random numbers for a step are re-derived from them, so a run
resumed from a mid-epoch checkpoint replays exactly the batches it had not yet seen.
"""

from __future__ import annotations

import json
import logging
import math
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from facemetric import __version__
from facemetric.config import Config
from facemetric.data.loader import RunBatches, TrainBatch, batch_loader
from facemetric.data.cache import PackedImages
from facemetric.data.sampler import PKSampler
from facemetric.eval.embed import embed_array
from facemetric.eval.pairs import cosine_scores, sample_pairs
from facemetric.eval.verification import verification_report
from facemetric.losses import build_loss, loss_needs_classes
from facemetric.losses.registry import rebuild_loss
from facemetric.mining.monitor import CollapseError, CollapseMonitor
from facemetric.models import build_embedding_model
from facemetric.models.budget import check_budget
from facemetric.train.checkpoint import CheckpointError, load_checkpoint, model_fingerprint, save_checkpoint
from facemetric.train.data import PreparedData, image_spec, prepare_data
from facemetric.train.precision import use_bf16
from facemetric.train.logging import RunLogger

log = logging.getLogger("facemetric")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available; use train.device=cpu")
    return torch.device(name)


def learning_rate(cfg: Config, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Linear warm-up over ``optim.warmup_epochs``, then cosine decay to ``lr * min_lr_ratio``."""
    base, warm = cfg.optim.lr, int(cfg.optim.warmup_epochs * steps_per_epoch)
    if step < warm:
        return base * (step + 1) / warm
    progress = (step - warm) / max(1, total_steps - warm)
    floor = base * cfg.optim.min_lr_ratio
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def validate(
    model: nn.Module, val: PackedImages, pairs: tuple, device: torch.device, normalization: tuple
) -> dict[str, Any]:
    """Verification metrics on held-out identities (threshold chosen by k-fold, never on the fold scored);
    ``normalization`` is the (mean, std) the model's inputs get (``ImageSpec.normalization``)."""
    emb = embed_array(model, val.images, device=device, normalization=normalization)
    i, j, same = pairs
    return verification_report(cosine_scores(emb, i, j), same)


@dataclass
class RunResult:
    out_dir: Path
    epochs: int
    global_step: int
    val: dict[str, Any] | None  # last validation report
    best_accuracy: float | None


class Trainer:
    """Owns the model, loss, optimizer and run folder of one training run."""

    def __init__(self, cfg: Config, data: PreparedData | None = None, resume: bool = False) -> None:
        self.cfg = cfg
        self.out = Path(cfg.train.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(cfg.train.device)
        if cfg.train.threads > 0:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        if cfg.model.max_params is not None:  # refuse an over-budget model before any data is decoded
            with torch.random.fork_rng():
                check_budget(build_embedding_model(cfg.model, data.spec if data else image_spec(cfg.data)),
                             cfg.model.max_params, cfg.model.name)
        self.data = data or prepare_data(cfg.data, cfg.train.seed, cfg.train.progress, self.out)
        train = self.data.train
        self.sampler = PKSampler(
            train.labels, cfg.sampler.p, cfg.sampler.k, cfg.sampler.short_policy, cfg.sampler.min_images,
            cfg.train.seed, cfg.sampler.batches_per_epoch,
        )
        log.info("sampler: %s", self.sampler.report.describe(cfg.sampler.k))
        spec = self.data.spec
        self.model = build_embedding_model(cfg.model, spec).to(self.device)
        self.bf16, why = use_bf16(cfg.train.amp, cfg.model.name, self.device)
        log.info("precision: %s (%s)", "bf16 autocast" if self.bf16 else "fp32", why)
        if cfg.train.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.loss_options = self.scheduled_loss_options(0)
        self.loss_fn = build_loss(cfg.loss.name, **self.loss_options).to(self.device)
        self.monitor = CollapseMonitor(cfg.monitor) if cfg.monitor.enabled else None
        self.data_wait: list[float] = []  # per epoch, the fraction of the step loop spent waiting for a batch
        params = list(self.model.parameters()) + list(self.loss_fn.parameters())
        if cfg.optim.name == "sgd":
            self.optimizer: torch.optim.Optimizer = torch.optim.SGD(
                params, lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay, nesterov=True
            )
        else:
            self.optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay)
        self.val_pairs = (
            sample_pairs(self.data.val.labels, cfg.data.val_pairs, cfg.data.split_seed) if self.data.val else None
        )
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best_accuracy: float | None = None
        self.last_val: dict[str, Any] | None = None
        if resume:
            self._resume()
        cfg.save(self.out / "config.yaml")
        self._write_environment()
        self.logger = RunLogger(self.out)

    def scheduled_loss_options(self, epoch: int) -> dict[str, Any]:
        """Loss settings for 0-based ``epoch``: ``loss.options`` updated by every schedule entry reached."""
        cfg = self.cfg
        options = dict(cfg.loss.options)
        for start in sorted(cfg.loss.schedule):
            if epoch + 1 >= start:
                options.update(cfg.loss.schedule[start])
        if loss_needs_classes(cfg.loss.name):
            options.update(num_classes=len(self.data.train.identity_names), embedding_dim=cfg.model.embedding_dim)
        return options

    def _apply_loss_schedule(self) -> None:
        options = self.scheduled_loss_options(self.epoch)
        if options != self.loss_options:
            self.loss_fn = rebuild_loss(self.loss_fn, self.cfg.loss.name, **options)
            self.loss_options = options
            log.info("epoch %d: loss %s now runs with %s", self.epoch + 1, self.cfg.loss.name, options)

    def validate_untrained(self) -> dict[str, Any]:
        """Held-out verification of a freshly initialised network of the same architecture (seeded by
        ``train.seed``): the baseline that shows how much training adds. Leaves the RNG state alone."""
        with torch.random.fork_rng():
            torch.manual_seed(self.cfg.train.seed)
            untrained = build_embedding_model(self.cfg.model, self.data.spec).to(self.device)
        return validate(untrained, self.data.val, self.val_pairs, self.device, self.data.spec.normalization)

    # ----------------------------------------------------------------- checkpoints
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "loss": self.loss_fn.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "best_accuracy": self.best_accuracy,
            "last_val": self.last_val,
            "config": self.cfg.to_dict(),
            "image_spec": self.data.spec.to_dict(),
            "model_fingerprint": model_fingerprint(self.model),
            "identity_names": self.data.train.identity_names,
            "torch_rng": torch.get_rng_state(),
            "facemetric_version": __version__,
        }

    def save(self, name: str = "last.pt") -> Path:
        path = self.out / name
        save_checkpoint(path, self._state())
        # mid-epoch checkpoints are announced (a watcher may act on them); epoch-end ones are routine
        level = logging.INFO if self.step_in_epoch else logging.DEBUG
        log.log(level, "checkpoint %s: epoch %d step %d global_step %d", path, self.epoch, self.step_in_epoch, self.global_step)
        return path

    def _resume(self) -> None:
        path = self.out / "last.pt"
        if not path.exists():
            raise CheckpointError(f"--resume: no checkpoint at {path}; start without --resume")
        state = load_checkpoint(path, map_location=self.device)
        if state["model_fingerprint"] != model_fingerprint(self.model):
            raise CheckpointError(f"{path}: was trained with a different model; it cannot resume this config")
        if state["identity_names"] != self.data.train.identity_names:
            raise CheckpointError(f"{path}: was trained on different identities (data or split changed)")
        self.model.load_state_dict(state["model"])
        self.loss_fn.load_state_dict(state["loss"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.best_accuracy, self.last_val = state["best_accuracy"], state["last_val"]
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed from %s at epoch %d, step %d (global step %d)", path, self.epoch + 1, self.step_in_epoch, self.global_step)

    def _write_environment(self) -> None:
        env = {
            "facemetric": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
            "numpy": np.__version__, "platform": platform.platform(), "device": str(self.device),
            "threads": torch.get_num_threads(), "command": sys.argv,
        }
        (self.out / "environment.json").write_text(json.dumps(env, indent=1))

    # ----------------------------------------------------------------- training
    def _train_step(self, x: torch.Tensor, y: torch.Tensor, lr: float) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = x.to(self.device, non_blocking=True)  # the loader's batches are channels-last already
        if not self.cfg.train.channels_last:
            x = x.contiguous()
        y = y.to(self.device, non_blocking=True)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            emb = self.model(x)
        if self.monitor is not None:
            self.monitor.update(emb, y, self.global_step)
        loss = self.loss_fn(emb.float(), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} at step {self.global_step}; lower optim.lr or check the loss settings"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def fit(self) -> RunResult:
        """Train to ``train.epochs``, validating and checkpointing along the way."""
        cfg, steps = self.cfg, self.sampler.batches_per_epoch
        total = cfg.train.epochs * steps
        stream = RunBatches(
            self.data.train, self.sampler.epoch, steps, self.global_step, total, cfg.augment,
            self.data.spec.normalization, cfg.train.seed,
        )
        batches = iter(batch_loader(stream, cfg.data.workers, cfg.sampler.p * cfg.sampler.k))
        try:
            while self.epoch < cfg.train.epochs:
                self._run_epoch(steps, total, batches)
        except KeyboardInterrupt:
            self.save()
            log.warning("interrupted: checkpoint saved to %s; continue with --resume", self.out / "last.pt")
            raise
        except CollapseError:
            self.save()
            log.error("stopped on collapse; the last state is in %s", self.out / "last.pt")
            raise
        finally:
            batches.close()  # stops the loader's worker processes
            self.logger.close()
        summary = {"epochs": self.epoch, "global_step": self.global_step, "best_accuracy": self.best_accuracy,
                   "val": self.last_val, "data_wait_fraction": self.data_wait}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1))
        return RunResult(self.out, self.epoch, self.global_step, self.last_val, self.best_accuracy)

    def _run_epoch(self, steps: int, total: int, batches: Iterator[TrainBatch]) -> None:
        cfg = self.cfg
        self._apply_loss_schedule()
        self.model.train()
        self.loss_fn.train()
        losses, started = [], time.time()
        lr = learning_rate(cfg, self.global_step, total, steps)
        bar = tqdm(
            total=steps, initial=self.step_in_epoch, desc=f"epoch {self.epoch + 1}/{cfg.train.epochs}",
            disable=not cfg.train.progress, leave=False, unit="batch",
        )
        waited, loop_start = 0.0, time.perf_counter()
        with bar:
            while self.step_in_epoch < steps:
                lr = learning_rate(cfg, self.global_step, total, steps)
                t = time.perf_counter()
                batch = next(batches)
                waited += time.perf_counter() - t
                loss = self._train_step(batch.images, batch.labels, lr)
                losses.append(loss)
                self.step_in_epoch += 1
                self.global_step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}")
                self.logger.scalar("train/step_loss", loss, self.global_step)
                every = cfg.train.checkpoint_every_steps
                if every and self.global_step % every == 0 and self.step_in_epoch < steps:
                    self.save()
        self.epoch += 1
        self.step_in_epoch = 0
        loop_time = time.perf_counter() - loop_start
        record: dict[str, Any] = {"epoch": self.epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                                  "lr": lr, "seconds": round(time.time() - started, 2),
                                  "data_wait_fraction": round(waited / loop_time, 4) if loop_time > 0 else 0.0}
        self.data_wait.append(record["data_wait_fraction"])
        if self.monitor is not None:
            record.update({f"spread/{k}": round(v, 5) for k, v in self.monitor.summary().items()})
        self.logger.log("train", self.global_step, record)
        if self.val_pairs is not None and (self.epoch % cfg.train.val_every == 0 or self.epoch == cfg.train.epochs):
            self.last_val = validate(self.model, self.data.val, self.val_pairs, self.device, self.data.spec.normalization)
            flat = {k: v for k, v in self.last_val.items() if isinstance(v, (int, float))}
            flat.update({f"tar@far={k}": v for k, v in self.last_val.get("tar_at_far", {}).items()})
            self.logger.log("val", self.global_step, {"epoch": self.epoch, **flat})
            improved = self.best_accuracy is None or self.last_val["accuracy"] > self.best_accuracy
            if improved:
                self.best_accuracy = self.last_val["accuracy"]
            msg = f"epoch {self.epoch}: loss {record['loss']:.4f}, val accuracy {self.last_val['accuracy']:.4f}, EER {self.last_val['eer']:.4f}"
            (tqdm.write if cfg.train.progress else log.info)(msg)
            self.save()
            if improved:
                self.save("best.pt")
        else:
            self.save()
            (tqdm.write if cfg.train.progress else log.info)(f"epoch {self.epoch}: loss {record['loss']:.4f}")


def train(cfg: Config, resume: bool = False) -> RunResult:
    """Train the model a config describes; the one-call library entry point."""
    return Trainer(cfg, resume=resume).fit()
