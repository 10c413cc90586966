"""qkv: a readable, switchable, tested Transformer library and lab."""

__version__ = "0.1.0"

from .checkpoint import load
from .config import ModelConfig
from .errors import ConfigError, QkvError
from .models import build_model

__all__ = ["ModelConfig", "ConfigError", "QkvError", "build_model", "load", "__version__"]
