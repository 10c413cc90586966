"""Looking inside qkv's models: attention capture, rollout, Integrated Gradients (questions 34, 15, 24).

``attribution`` imports captum only when called, so ``import qkv.interpret`` needs no extra.
"""

from .attribution import classifier_ig, integrated_gradients, rank_correlation, translation_ig
from .capture import Captured, attention_modules, capture
from .heads import ablation_importance, gradient_importance, prune_heads, prune_least_important
from .rollout import layer_flow, rollout

__all__ = ["capture", "Captured", "attention_modules", "rollout", "layer_flow", "integrated_gradients",
           "classifier_ig", "translation_ig", "rank_correlation", "ablation_importance", "gradient_importance",
           "prune_heads", "prune_least_important"]
