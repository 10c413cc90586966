"""Building blocks: masks, attention, positions, norms, feed-forward, residual wiring, stacks."""

from .attention import ATTENTION, KVCache, LayerCache, MultiHeadAttention, fused_attention, reference_attention
from .block import DecoderLayer, EncoderLayer, Residual
from .ffn import ACTIVATION, FFN
from .norm import NORM
from .position import POSITION
from .stack import Stack

__all__ = ["ATTENTION", "POSITION", "NORM", "FFN", "ACTIVATION", "MultiHeadAttention", "KVCache",
           "LayerCache", "reference_attention", "fused_attention", "EncoderLayer", "DecoderLayer",
           "Residual", "Stack"]
