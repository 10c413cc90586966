"""Training presets: a corpus, a tokenizer, a model and a training recipe under one name.

``qkv train translate-de-en`` looks its preset up here. Every preset is a :class:`Task`
(``tasks/base.py``) whose defaults ARE the recipe behind its documented result in
docs/benchmarks.md, so the documented command is what a user types; the model architectures
come from :mod:`qkv.presets`. ``precision="auto"`` (TrainConfig's default) trains in bf16 where
the hardware runs it fast and fp32 elsewhere.
"""

from __future__ import annotations

from typing import Callable

from ..errors import ConfigError
from ..presets import austen_lm, lstm_translator, shakespeare_char, sst2_encoder, translator
from ..train.config import TrainConfig
from .base import Task, option_names
from .language_model import LanguageModelTask
from .sst2 import SST2Task
from .translation import TranslationTask


def _translation_train(**changes) -> TrainConfig:
    """Noam to 1e-3 after 400 steps, label smoothing 0.1, a checkpoint every 170 steps and the
    last 5 averaged: the Multi30k recipe (its result: docs/benchmarks.md)."""
    base = dict(lr=1e-3, schedule="noam", warmup_steps=400, max_steps=None, max_epochs=30, label_smoothing=0.1,
                weight_decay=1e-4, grad_clip=1.0, save_every=170, keep_last=5, average_last=5, eval_every=None)
    return TrainConfig(**{**base, **changes})


def translate_de_en() -> TranslationTask:
    return TranslationTask(name="translate-de-en", corpus="multi30k", source=0, bleu_tokenize="13a",
                           model=translator(), train=_translation_train(),
                           description="Multi30k German→English, joint byte-level BPE 8k")


def translate_zh_en() -> TranslationTask:
    # Tatoeba is as large as Multi30k but its 30-minute runs make fewer steps: save more often.
    return TranslationTask(name="translate-zh-en", corpus="tatoeba", source=1, bleu_tokenize="13a",
                           model=translator(), train=_translation_train(save_every=100),
                           description="Tatoeba Chinese→English")


def translate_en_zh() -> TranslationTask:
    return TranslationTask(name="translate-en-zh", corpus="tatoeba", source=0, bleu_tokenize="zh",
                           model=translator(), train=_translation_train(save_every=100),
                           description="Tatoeba English→Chinese, BLEU with sacreBLEU's zh tokenizer")


def translate_de_en_lstm() -> TranslationTask:
    """Linear decay over 25 epochs, set so that it ends at the 45-minute mark on 2 cores."""
    train = _translation_train(lr=2e-3, schedule="linear", warmup_steps=200, max_epochs=25, save_every=250)
    return TranslationTask(name="translate-de-en-lstm", corpus="multi30k", source=0, bleu_tokenize="13a",
                           model=lstm_translator(), train=train,
                           description="LSTM with attention on Multi30k de→en, the RNN baseline")


def lm_shakespeare() -> LanguageModelTask:
    """nanoGPT's CPU recipe for Tiny Shakespeare: 4 layers, 4 heads, d=128, context 64, batch 12,
    2,000 iterations, no dropout, AdamW (β2 0.99, wd 0.1), lr 1e-3 cosine to 1e-4, 100 warm-up
    steps. fp32: a d=128 model's products are too small for bf16 autocast to pay for its casts."""
    train = TrainConfig(lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1, schedule="cosine",
                        warmup_steps=100, min_lr_ratio=0.1, max_steps=2000, max_epochs=None,
                        label_smoothing=0.0, grad_clip=1.0, eval_every=500, save_every=500, keep_last=2,
                        average_last=None, precision="fp32")
    return LanguageModelTask(name="lm-shakespeare", corpus="shakespeare", model=shakespeare_char(), train=train,
                             batch_size=12, steps_per_epoch=500,
                             description="Tiny Shakespeare, characters (bytes); nanoGPT's CPU recipe")


def lm_austen() -> LanguageModelTask:
    train = TrainConfig(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1, schedule="cosine", warmup_steps=200,
                        min_lr_ratio=0.1, max_steps=6000, max_epochs=None, label_smoothing=0.0,
                        eval_every=1000, save_every=1000, keep_last=2)
    return LanguageModelTask(name="lm-austen", corpus="austen", model=austen_lm(), train=train, batch_size=32,
                             steps_per_epoch=1000, vocab_size=8000,
                             description="Jane Austen's novels, byte-level BPE 8k subwords")


def mlm_sst2() -> SST2Task:
    """6,000 steps (≈ 23 epochs of the 67k training phrases). The held-out MLM loss bottoms out
    early and then rises as the model memorises the text, yet later encoders fine-tune better
    (docs/benchmarks.md, SST-2)."""
    train = TrainConfig(lr=1e-3, betas=(0.9, 0.98), weight_decay=0.01, schedule="linear", warmup_steps=300,
                        max_epochs=None, max_steps=6000, label_smoothing=0.0, save_every=500, keep_last=3)
    return SST2Task(name="mlm-sst2", objective="mlm", model=sst2_encoder(head="mlm"), train=train,
                    description="BERT-style MLM pretraining on SST-2's training sentences (the encoder for classify-sst2)")


def classify_sst2() -> SST2Task:
    """From scratch by default. ``init_from=MLM_RUN/checkpoint-00006000 lr=1e-4 max_epochs=3``
    fine-tunes an ``mlm-sst2`` encoder instead (docs/benchmarks.md). The result is the average
    of the last three checkpoints, not the best one on dev."""
    train = TrainConfig(lr=5e-4, betas=(0.9, 0.98), weight_decay=0.01, schedule="linear", warmup_steps=100,
                        max_epochs=2, max_steps=None, label_smoothing=0.1, eval_every=100, save_every=100,
                        keep_last=3, average_last=3)
    model = sst2_encoder(head="classify", pooling="mean", dropout_embed=0.2, dropout_residual=0.2,
                         dropout_attention=0.2)
    return SST2Task(name="classify-sst2", objective="classify", model=model, train=train, max_tokens=4000,
                    description="SST-2 sentiment, from scratch or fine-tuned from an mlm-sst2 encoder (init_from=...)")


TASKS: dict[str, Callable[[], Task]] = {
    "translate-de-en": translate_de_en,
    "translate-zh-en": translate_zh_en,
    "translate-en-zh": translate_en_zh,
    "translate-de-en-lstm": translate_de_en_lstm,
    "lm-shakespeare": lm_shakespeare,
    "lm-austen": lm_austen,
    "mlm-sst2": mlm_sst2,
    "classify-sst2": classify_sst2,
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        import difflib

        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ConfigError(f"unknown preset {name!r}; {hint}available: {', '.join(TASKS)}")
    return TASKS[name]()


__all__ = ["TASKS", "get_task", "Task", "option_names", "TranslationTask", "LanguageModelTask", "SST2Task"]
