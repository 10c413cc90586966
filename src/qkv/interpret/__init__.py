"""Looking inside qkv's models: attention capture, rollout (question 34, 15, 24)."""

from .capture import Captured, attention_modules, capture
from .rollout import layer_flow, rollout

__all__ = ["capture", "Captured", "attention_modules", "rollout", "layer_flow"]
