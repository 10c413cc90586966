"""Training: ``TrainConfig``, AdamW groups, schedules, label smoothing, checkpoints, ``Trainer``.

    from qkv.train import Trainer, TrainConfig
    trainer = Trainer(model, TrainConfig(lr=1e-3, max_steps=1000), batches, "runs/x", evaluate=dev)
    trainer.fit()                        # or trainer.resume().fit() to continue a stopped run
    model = qkv.load("runs/x/checkpoint-00001000")
"""

from .checkpoint import (CheckpointError, TrainerState, average_checkpoints, latest_checkpoint, list_checkpoints,
                         load)
from .config import TrainConfig
from .loop import FitResult, Trainer, TrainingError
from .losses import IGNORE_INDEX, per_position_loss, smoothed_cross_entropy
from .optim import build_optimizer, param_groups
from .schedules import build_schedule, noam_peak_lr

__all__ = ["TrainConfig", "Trainer", "FitResult", "TrainingError", "CheckpointError", "TrainerState", "load",
           "average_checkpoints", "latest_checkpoint", "list_checkpoints", "smoothed_cross_entropy",
           "per_position_loss", "IGNORE_INDEX", "build_optimizer", "param_groups", "build_schedule", "noam_peak_lr"]
