"""``Trainer``: one readable training loop, no framework.

    for epoch:                                  batches(epoch), skipping those a resumed run consumed
      for each group of `accumulation_steps` batches:
        forward (autocast) → label-smoothed loss sum → backward of sum × world / step tokens
        stop if the loss is not finite          (nothing is saved: the last good checkpoint stays)
        unscale → clip the global norm → AdamW step → schedule step
        log a metrics line; evaluate / early-stop; checkpoint; check budget, Ctrl-C, limits

The batch source is a callable ``batches(epoch) -> iterable of dicts`` (the dicts the model's
``forward_batch`` reads, with ``labels``; -100 = no loss). It must be a deterministic function
of ``epoch`` that does not draw from the global RNGs — shuffle with a generator seeded by the
epoch — because a resumed run calls it again and skips the batches already used; that, with the
saved weights, optimizer, schedule and RNG states, is what makes a resumed run continue exactly.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError, TrainingError  # TrainingError re-exported
from . import distributed, runtime
from .checkpoint import (METRICS, CheckpointError, TrainerState, average_checkpoints, check_model_config,
                         checkpoint_name, latest_checkpoint, list_checkpoints, load_weights, prune_checkpoints,
                         read_optimizer_state, read_trainer_state, remove_temporaries, write_checkpoint)
from .config import TrainConfig
from .log import MetricsLog, Progress
from .losses import count_tokens, smoothed_cross_entropy
from .optim import build_optimizer
from .rng import capture_rng, restore_rng, seed_everything
from .schedules import build_schedule

Batches = Callable[[int], Iterable[dict[str, Any]]]
Evaluate = Callable[[nn.Module], dict[str, float]]
# Ordered so that ranks agree on one reason by taking the maximum of their indices.
STOP_REASONS = (None, "max_steps", "max_epochs", "time_budget", "early_stopping", "interrupted")


@dataclass(frozen=True)
class FitResult:
    stop_reason: str
    step: int
    checkpoint: Path  # the checkpoint written when training stopped
    best_metric: float | None
    averaged: Path | None  # the averaged checkpoint, when average_last is set


class Trainer:
    """Train ``model`` with ``config`` on ``batches(epoch)``, writing checkpoints to ``output_dir``.

    ``evaluate(model) -> {"name": value}`` is called every ``eval_every`` steps (or each epoch
    end) in eval mode without gradients; ``config.early_stopping_metric`` of its result drives
    early stopping and the ``best/`` checkpoint. Under ``torchrun`` the same code runs DDP.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        batches: Batches,
        output_dir: str | Path,
        *,
        evaluate: Evaluate | None = None,
        progress: bool = True,
    ) -> None:
        self.config, self.batches, self.evaluate = config, batches, evaluate
        self.output_dir = Path(output_dir)
        kind = runtime.device_type(config.device)
        self.dist = distributed.setup(kind)
        self.device = distributed.device_for(self.dist, kind)
        # The resolved precision ("auto" → bf16 or fp32 for this machine); the config keeps
        # what was asked for, so a resumed run on other hardware resolves it anew.
        self.precision = runtime.resolve_precision(config.precision, self.device)
        seed_everything(config.seed + self.dist.rank)  # ranks differ only in their dropout masks
        self.model = model.to(self.device).train()
        runtime.set_gradient_checkpointing(self.model, config.gradient_checkpointing)
        self._ddp = distributed.wrap(self.model, self.dist)  # None in a single process
        if config.early_stopping_patience is not None and evaluate is None:
            raise ConfigError(f"early_stopping_patience={config.early_stopping_patience} needs an evaluate "
                             f"callable to watch {config.early_stopping_metric!r}; pass evaluate=...")
        self.optimizer = build_optimizer(self.model, config)
        self.total_steps = self._total_steps()
        self.scheduler = build_schedule(self.optimizer, config, self.total_steps)
        self.scaler = runtime.grad_scaler(self.precision, self.device)
        self.state = TrainerState()
        self._saved_step: int | None = None
        self.log = MetricsLog(self.output_dir / METRICS, enabled=self.dist.is_main)
        self.progress = progress and self.dist.is_main

    # -- public API ------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        """Train until a limit, the time budget, early stopping or Ctrl-C; always end saved."""
        self._prepare_output()
        start = time.monotonic()
        stop = self._limit_reached()
        progress = Progress(self.total_steps, self.state.step, self.progress)
        with runtime.stop_requests() as interrupted, progress:
            while stop is None:
                stepped = False
                for group, last_of_epoch in _with_last(self._step_groups()):
                    stepped = True
                    progress.update(self.train_step(group))
                    stop = self._after_step(last_of_epoch, start, interrupted())
                    if stop:
                        break
                if not stepped:
                    self._roll_empty_epoch()
                    stop = self._limit_reached()
            result = self._finish(stop)
            progress.write(f"stopped ({stop}) at step {result.step}; checkpoint {result.checkpoint}")
        return result

    def resume(self, checkpoint_dir: str | Path | None = None) -> "Trainer":
        """Restore model, optimizer, schedule, scaler, step, epoch position and RNG states.

        ``checkpoint_dir`` defaults to the newest checkpoint in ``output_dir``. The metrics log
        is reset to the checkpoint's copy, so lines written after it by the lost run disappear.
        """
        path = Path(checkpoint_dir) if checkpoint_dir is not None else latest_checkpoint(self.output_dir)
        if path is None:
            raise CheckpointError(f"no checkpoint to resume from in {self.output_dir}")
        check_model_config(path, self.model.config)
        load_weights(self.model, path)
        saved = read_optimizer_state(path)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved.get("scaler", {}))
        self.state = read_trainer_state(path)
        self._restore_rng()
        if self.dist.is_main:
            self.log.reset_to(path / METRICS)
            remove_temporaries(self.output_dir)  # left by a run killed mid-write
        distributed.barrier(self.dist)
        self._saved_step = self.state.step
        return self

    def save(self, directory: str | Path | None = None) -> Path:
        """Write a checkpoint of the current state (default ``output_dir/checkpoint-<step>``).

        Every rank must call it (the RNG states are gathered); only rank 0 writes.
        """
        self.state.rng = distributed.gather_objects(capture_rng(), self.dist)
        path = Path(directory) if directory is not None else self.output_dir / checkpoint_name(self.state.step)
        if self.dist.is_main:
            write_checkpoint(path, self.model, self.config, self._optimizer_state(), self.state,
                             self.log.path)
            if directory is None and self.config.keep_last is not None:
                prune_checkpoints(self.output_dir, self.config.keep_last)
        distributed.barrier(self.dist)
        if directory is None:
            self._saved_step = self.state.step
        return path

    def accumulate_gradients(self, batches: list[dict[str, Any]]) -> tuple[float, int]:
        """Forward and backward over the batches of one step; returns (loss sum, token count).

        Afterwards ``p.grad`` is the gradient of the mean loss over *all* labelled tokens of the
        step (and of every rank), whatever the split into batches: each batch's summed loss is
        scaled by world size / total tokens, and DDP averages over ranks.
        """
        self.optimizer.zero_grad(set_to_none=True)
        local = [self._to_device(distributed.shard(b, self.dist)) for b in batches]
        tokens = torch.tensor(sum(count_tokens(b["labels"]) for b in local), device=self.device)
        total_tokens = int(distributed.all_reduce_sum(tokens, self.dist))
        if total_tokens == 0:
            raise TrainingError(f"step {self.state.step + 1}: its batches hold no labelled tokens "
                                f"(every label is -100)")
        scale = self.dist.world_size / total_tokens
        loss_sum = torch.zeros((), device=self.device)
        for i, batch in enumerate(local):
            last = i == len(local) - 1
            with self._ddp.no_sync() if self._ddp is not None and not last else nullcontext():
                with runtime.autocast(self.precision, self.device):
                    logits = self._ddp(batch) if self._ddp is not None else self.model.forward_batch(batch)
                summed, _ = smoothed_cross_entropy(logits, batch["labels"], self.config.label_smoothing)
                self.scaler.scale(summed * scale).backward()
            loss_sum += summed.detach()
        return float(distributed.all_reduce_sum(loss_sum, self.dist)), total_tokens

    def train_step(self, batches: list[dict[str, Any]]) -> dict[str, Any]:
        """One optimizer update from ``batches``; returns (and logs) its metrics line."""
        loss_sum, tokens = self.accumulate_gradients(batches)
        loss = loss_sum / tokens
        self._require_finite("loss", loss)
        grad_norm = self._clip_and_step()
        record = {"step": self.state.step + 1, "epoch": self.state.epoch, "loss": loss,
                  "lr": self.optimizer.param_groups[0]["lr"], "grad_norm": grad_norm, "tokens": tokens}
        self.scheduler.step()
        self.state.step += 1
        self.state.batch_in_epoch += len(batches)
        self.state.tokens_seen += tokens
        if self.state.step % self.config.log_every == 0:
            self.log.append(record)
        return record

    # -- the step --------------------------------------------------------------------------------
    def _clip_and_step(self) -> float:
        """Clip the global gradient norm (Pascanu et al., 2013), then step; returns the norm."""
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the fp16-scaled ones
        max_norm = self.config.grad_clip if self.config.grad_clip is not None else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        if not self.scaler.is_enabled():  # with fp16 an inf norm only makes the scaler skip
            self._require_finite("gradient norm", norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return norm

    def _require_finite(self, what: str, value: float) -> None:
        if math.isfinite(value):
            return
        good = latest_checkpoint(self.output_dir)
        raise TrainingError(
            f"{what} is {value} at step {self.state.step + 1} (epoch {self.state.epoch}, batch "
            f"{self.state.batch_in_epoch} of the epoch); training stopped without saving, so the "
            f"last good checkpoint is {good or 'none (none was written yet)'}. Usual causes: lr too "
            f"high, no warm-up, fp16 overflow (try precision='bf16'), or bad data in that batch"
        )

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}

    # -- between steps ---------------------------------------------------------------------------
    def _step_groups(self) -> Iterator[list[dict[str, Any]]]:
        """This epoch's batches in groups of ``accumulation_steps``, after those already used."""
        it = itertools.islice(iter(self.batches(self.state.epoch)), self.state.batch_in_epoch, None)
        while group := list(itertools.islice(it, self.config.accumulation_steps)):
            yield group

    def _roll_empty_epoch(self) -> None:
        """An epoch that yielded no step: the data is empty, or a resume landed at its very end."""
        if self.state.batch_in_epoch == 0:
            raise TrainingError(f"batches({self.state.epoch}) yielded no batches")
        self.state.epoch, self.state.batch_in_epoch = self.state.epoch + 1, 0

    def _after_step(self, last_of_epoch: bool, start: float, interrupted: bool) -> str | None:
        """Epoch roll-over, evaluation, checkpoint, then the stop decision all ranks share."""
        s, c = self.state, self.config
        if last_of_epoch:  # roll over now, so a checkpoint saved here resumes at the next epoch
            s.epoch, s.batch_in_epoch = s.epoch + 1, 0
        stop = None
        due = (c.eval_every is not None and s.step % c.eval_every == 0) or (c.eval_every is None and last_of_epoch)
        if self.evaluate is not None and due:
            stop = self._evaluate()
        if stop is None and c.max_minutes is not None and time.monotonic() - start >= 60 * c.max_minutes:
            stop = "time_budget"
        stop = "interrupted" if interrupted else stop or self._limit_reached()
        stop = self._agree(stop)
        if stop is None and c.save_every is not None and s.step % c.save_every == 0:
            self.save()
        return stop

    def _limit_reached(self) -> str | None:
        if self.config.max_steps is not None and self.state.step >= self.config.max_steps:
            return "max_steps"
        if self.config.max_epochs is not None and self.state.epoch >= self.config.max_epochs:
            return "max_epochs"
        return None

    def _agree(self, stop: str | None) -> str | None:
        """The same stop reason on every rank (the most urgent any rank has)."""
        if not self.dist.enabled:
            return stop
        code = torch.tensor([STOP_REASONS.index(stop)], device=self.device)
        return STOP_REASONS[int(distributed.all_reduce_max(code, self.dist))]

    def _evaluate(self) -> str | None:
        """Run ``evaluate`` on rank 0, log it, track the best metric; "early_stopping" or None."""
        if not self.dist.is_main:
            return None
        self.model.eval()
        with torch.no_grad():
            metrics = dict(self.evaluate(self.model))
        self.model.train()
        self.log.append({"step": self.state.step, "epoch": self.state.epoch, "eval": metrics})
        name, patience = self.config.early_stopping_metric, self.config.early_stopping_patience
        if name not in metrics:
            if patience is not None:
                raise TrainingError(f"early_stopping_metric={name!r} is not among the metrics "
                                    f"evaluate() returned: {sorted(metrics)}")
            return None
        return self._track_best(float(metrics[name]), patience)

    def _track_best(self, value: float, patience: int | None) -> str | None:
        s = self.state
        better = s.best_metric is None or (value < s.best_metric if self.config.early_stopping_mode == "min"
                                           else value > s.best_metric)
        if better:
            s.best_metric, s.evals_without_improvement = value, 0
            write_checkpoint(self.output_dir / "best", self.model, self.config, self._optimizer_state(),
                             s, self.log.path)
            return None
        s.evals_without_improvement += 1
        return "early_stopping" if patience is not None and s.evals_without_improvement >= patience else None

    def _finish(self, stop: str) -> FitResult:
        path = self.output_dir / checkpoint_name(self.state.step)
        if self._saved_step != self.state.step:
            path = self.save()
        averaged = None
        n = self.config.average_last
        if n is not None and self.dist.is_main and len(list_checkpoints(self.output_dir)) >= 2:
            averaged = average_checkpoints(list_checkpoints(self.output_dir)[-n:], self.output_dir / "averaged")
        distributed.barrier(self.dist)
        return FitResult(stop, self.state.step, path, self.state.best_metric, averaged)

    # -- bookkeeping -----------------------------------------------------------------------------
    def _total_steps(self) -> int | None:
        """The run's length in steps when it can be known (for linear/cosine decay and the ETA)."""
        c = self.config
        per_epoch = None
        if c.max_epochs is not None:
            try:
                per_epoch = math.ceil(len(self.batches(0)) / c.accumulation_steps)  # type: ignore[arg-type]
            except TypeError:  # a generator: no len(), so the length stays unknown
                per_epoch = None
        candidates = [n for n in (c.max_steps, per_epoch and c.max_epochs * per_epoch) if n]
        return min(candidates) if candidates else None

    def _optimizer_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict()}

    def _prepare_output(self) -> None:
        """A fresh run starts an empty log, and refuses to mix with an earlier run's checkpoints."""
        if not self.dist.is_main or self.state.step > 0 or self._saved_step is not None:
            return
        if list_checkpoints(self.output_dir):
            raise CheckpointError(f"{self.output_dir} already holds checkpoints of another run; continue it "
                                  f"(`qkv train PRESET --resume {self.output_dir}`, or Trainer.resume() before "
                                  f"fit() in Python) or write this run to another folder")
        self.log.start()

    def _restore_rng(self) -> None:
        states = self.state.rng
        if len(states) == self.dist.world_size:
            restore_rng(states[self.dist.rank])
        else:  # another number of ranks: the data order still resumes exactly, dropout cannot
            seed_everything(self.config.seed + self.dist.rank + self.state.step)


def _with_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """Each item with a flag telling whether it is the last (one item of look-ahead)."""
    it = iter(items)
    current = next(it, _END)
    while current is not _END:
        following = next(it, _END)
        yield current, following is _END
        current = following


_END = object()

__all__ = ["Trainer", "FitResult", "TrainingError", "Batches", "Evaluate"]
