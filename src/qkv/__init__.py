"""qkv: a readable, switchable, tested Transformer library and lab."""

__version__ = "0.1.0"

from .config import ConfigError, ModelConfig
from .models import build_model
from .train.checkpoint import load

__all__ = ["ModelConfig", "ConfigError", "build_model", "load", "__version__"]
