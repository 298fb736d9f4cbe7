"""The training loop: built objects in, optimisation steps out; everything else is a callback.

The :class:`Trainer` receives a model, a loss (which holds its miner), an optimizer, a per-step
learning-rate scheduler, a :class:`~facemetric.data.loader.BatchSource` and a list of
:class:`~facemetric.train.callbacks.base.Callback`. It owns only the step (forward, loss,
backward, update) and the counters; validation, checkpoints, logs, progress, the collapse
monitor, schedules and early stopping are callbacks. ``facemetric.train.build`` turns a config
into these objects; a Python user may pass their own instead.

Everything a step does is determined by (seed, epoch, step): the sampler's batches for an
epoch and the augmentation's random numbers for a step are re-derived from them, so a run
resumed from a mid-epoch checkpoint (:meth:`Trainer.state_dict`) replays exactly the batches it
had not yet seen.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from facemetric.core.errors import FacemetricError
from facemetric.data.loader import BatchSource, TrainBatch
from facemetric.train.callbacks.base import Callback, StepOutput
from facemetric.train.distributed import Strategy


class TrainingDivergedError(FacemetricError, FloatingPointError):
    """The loss became NaN or infinite."""


class Trainer:
    """Runs the optimisation steps of one training run and calls its callbacks around them.

    Args:
        model: the embedding network (called on a batch, returns (N, D) embeddings).
        loss: called as ``loss(embeddings, labels)``; its parameters (class weights) must be in
            ``optimizer`` too.
        optimizer: over the model's and the loss's parameters.
        data: where the batches come from (:class:`BatchSource`: P x K sampling, augmentation).
        epochs: how many epochs :meth:`fit` runs to.
        scheduler: stepped once after every optimizer step (None: a constant learning rate).
        callbacks: called in order at each hook.
        device: where the model and the batches go.
        bf16: bfloat16 autocast of the forward pass (the loss always runs in float32).
        channels_last: keep the batches in channels-last memory (faster CPU convolutions).
        strategy: how the run uses its processes (default: one; :class:`DDPStrategy` under torchrun).
        frozen: parts of the model that do not learn (``model.freeze``): kept in eval mode, so their
            batch-norm statistics do not move either.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        optimizer: torch.optim.Optimizer,
        data: BatchSource,
        epochs: int,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        callbacks: Sequence[Callback] = (),
        device: str | torch.device = "cpu",
        bf16: bool = False,
        channels_last: bool = True,
        strategy: Strategy | None = None,
        frozen: Sequence[nn.Module] = (),
    ) -> None:
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.strategy = strategy or Strategy()
        # what each step calls: under DDP the wrapped model and the global-batch loss
        self._step_model, self._step_loss = self.strategy.wrap_model(model), self.strategy.wrap_loss(loss)
        self.data, self.epochs, self.callbacks = data, epochs, list(callbacks)
        self.device, self.bf16, self.channels_last = torch.device(device), bf16, channels_last
        self.frozen = list(frozen)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.should_stop = False  # a callback (early stopping) may end the run after the current epoch
        self.metrics: dict[str, Any] = {}  # results callbacks publish for each other (e.g. "val")
        self.history: list[dict[str, Any]] = []  # the epoch records of this fit() call

    @property
    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch

    def release_step_wrappers(self) -> None:
        """Drop the DDP wrapper and the global-batch loss: DDP's reducer holds the process group, so leaving the
        group after this frees it (and gloo's threads) now; left to interpreter exit, gloo can abort a finished
        run's process (SIGABRT, "terminate called without an active exception")."""
        self._step_model, self._step_loss = self.model, self.loss
        gc.collect()

    def callback(self, kind: type[Callback]) -> Any:
        """The first callback of class ``kind``, or None."""
        return next((c for c in self.callbacks if isinstance(c, kind)), None)

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

    # ----------------------------------------------------------------- state (resume)
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: weights, optimizer and scheduler state, counters, the RNG,
        and each callback's state (keyed by position and class).

        When the ranks hold different loss weights (Partial FC), every rank's loss and optimiser state
        is gathered under ``shards`` instead of ``loss`` and ``optimizer`` (rank 0's copy; a collective
        call: every rank must make it)."""
        own = {"loss": self.loss.state_dict(), "optimizer": self.optimizer.state_dict()}
        shards = self.strategy.gather(own) if self.strategy.sharded(self.loss) else None
        return {
            "model": self.model.state_dict(),
            "shards": shards,
            "world_size": self.strategy.world_size,
            **({"loss": None, "optimizer": None} if shards is not None else own),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "torch_rng": torch.get_rng_state(),
            "callbacks": {self._key(i, c): c.state_dict() for i, c in enumerate(self.callbacks)},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output; a Partial FC run takes this rank's shard."""
        self.model.load_state_dict(state["model"])
        own = state.get("shards") or [{"loss": state["loss"], "optimizer": state["optimizer"]}]
        if self.strategy.sharded(self.loss) or state.get("shards"):
            if len(own) != self.strategy.world_size:
                raise FacemetricError(
                    f"this checkpoint's loss is split over {len(own)} processes (Partial FC) and this run has "
                    f"{self.strategy.world_size}; resume with --nproc_per_node={len(own)}, or start a new run "
                    "with model.init=<checkpoint> to keep the network's weights"
                )
            own = [own[self.strategy.rank]]
        self.loss.load_state_dict(own[0]["loss"])
        self.optimizer.load_state_dict(own[0]["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        torch.set_rng_state(state["torch_rng"])
        saved = state.get("callbacks", {})
        for i, callback in enumerate(self.callbacks):
            if self._key(i, callback) in saved:
                callback.load_state_dict(saved[self._key(i, callback)])

    @staticmethod
    def _key(index: int, callback: Callback) -> str:
        return f"{index}:{type(callback).__name__}"

    # ----------------------------------------------------------------- training
    def fit(self) -> list[dict[str, Any]]:
        """Train to ``epochs`` (or until a callback stops it); returns this call's epoch records."""
        steps = self.steps_per_epoch
        total = self.epochs * steps
        stream = iter(self.data.stream(self.global_step, total))
        self.history = []
        try:
            self._call("on_fit_start")
            while self.epoch < self.epochs and not self.should_stop:
                self._run_epoch(steps, stream)
        except BaseException as exc:  # Ctrl-C included: callbacks save what can be saved
            self._call("on_exception", exc)
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # stops the loader's worker processes
        self._call("on_fit_end")
        return self.history

    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor, float]:
        """One optimisation step; returns (loss, detached embeddings, learning rate used)."""
        x = images.to(self.device, non_blocking=True)  # the loader's batches are channels-last already
        if not self.channels_last:
            x = x.contiguous()
        y = labels.to(self.device, non_blocking=True)
        lr = float(self.optimizer.param_groups[0]["lr"])
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            emb = self._step_model(x)
        loss = self._step_loss(emb.float(), y)
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"loss became {loss.item()} at step {self.global_step}; lower optim.lr or check the loss settings"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return float(loss.detach()), emb.detach(), lr

    def _run_epoch(self, steps: int, batches: Iterator[TrainBatch]) -> None:
        self._call("on_epoch_start")
        self.model.train()
        for part in self.frozen:
            part.eval()
        self.loss.train()
        losses: list[float] = []
        lr = float(self.optimizer.param_groups[0]["lr"])
        started, waited, loop_start = time.time(), 0.0, time.perf_counter()
        while self.step_in_epoch < steps:
            t = time.perf_counter()
            batch = next(batches)
            waited += time.perf_counter() - t
            self._call("on_batch_start", batch)
            loss, embeddings, lr = self.train_step(batch.images, batch.labels)
            losses.append(loss)
            self.step_in_epoch += 1
            self.global_step += 1
            self._call("on_batch_end", StepOutput(self.global_step - 1, loss, lr, embeddings, batch.labels))
        self.epoch += 1
        self.step_in_epoch = 0
        loop_time = time.perf_counter() - loop_start
        logs: dict[str, Any] = {
            "epoch": self.epoch,
            "loss": float(np.mean(losses)) if losses else float("nan"),
            "lr": lr,
            "seconds": round(time.time() - started, 2),
            "data_wait_fraction": round(waited / loop_time, 4) if loop_time > 0 else 0.0,
        }
        self._call("on_epoch_end", logs)
        self.should_stop = self.strategy.agree(self.should_stop)  # rank 0 validates and decides for all
        self.history.append(logs)
