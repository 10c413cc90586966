"""The lab: each of the 35 questions answered by an experiment on qkv's own components.

``qkv ask N`` runs question N (module ``qNN_<name>.py``) and writes ``metrics.json`` and plots;
``verdict(metrics)`` turns the numbers into confirmed / refuted / depends / inconclusive;
``qkv report`` renders the committed results (``docs/lab/``) as Markdown and one HTML page.
The lab sits above models, generate, train and tasks; nothing below imports it.
"""

from .base import QUESTIONS, question
from .catalog import CATALOG

__all__ = ["QUESTIONS", "question", "CATALOG"]
