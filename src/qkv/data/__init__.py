"""Corpora (checksum-verified loaders and derived splits), batching, and collators.

    from qkv.data import load_multi30k, TokenBudgetBatchSampler, TranslationCollator
"""

from qkv.data.batching import TokenBudgetBatchSampler, lm_chunks, strided_lm_windows
from qkv.data.collate import (
    IGNORE_INDEX,
    ClassificationCollator,
    MLMCollator,
    TranslationCollator,
    causal_lm_batch,
    pad_batch,
    random_lm_batch,
    sequential_lm_batches,
)
from qkv.data.corpora import (
    CORPORA,
    corpus_texts,
    load_austen,
    load_multi30k,
    load_shakespeare,
    load_sst2,
    load_tatoeba,
)
from qkv.data.download import download
from qkv.data.files import DataError, data_file, data_root

__all__ = [
    "strided_lm_windows",
    "CORPORA", "IGNORE_INDEX", "ClassificationCollator", "DataError", "MLMCollator",
    "TokenBudgetBatchSampler", "TranslationCollator", "causal_lm_batch", "corpus_texts",
    "data_file", "data_root", "download", "lm_chunks", "load_austen", "load_multi30k",
    "load_shakespeare", "load_sst2", "load_tatoeba", "pad_batch", "random_lm_batch",
    "sequential_lm_batches",
]
