"""The 35 questions the lab answers: number, short English title and the Chinese keyword.

The report lists every entry; a question without a module in :data:`qkv.lab.base.QUESTIONS`
(or without committed results) is shown as "not yet measured", never with an invented answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    number: int
    title: str
    keyword: str  # the keyword of the Chinese original ("" where the original gives none)


CATALOG: tuple[Entry, ...] = tuple(Entry(n, t, k) for n, t, k in [
    (1, "Why multi-head attention, not one head?", "多头"),
    (2, "Why different Wq and Wk; why not dot a vector with itself?", "QK权重"),
    (3, "Why dot-product rather than additive attention; cost and quality?", "点乘/加法"),
    (4, "Why scale by sqrt(d_k) before softmax; derive it", "缩放"),
    (5, "How is padding masked in attention scores?", "padding mask"),
    (6, "Why reduce each head's dimension?", "降维"),
    (7, "Describe the encoder", "Encoder"),
    (8, "Why multiply embeddings by sqrt(d_model)?", "embedding缩放"),
    (9, "Positional encoding: purpose, pros and cons", "位置编码"),
    (10, "Other positional encodings and their trade-offs", "位置编码"),
    (11, "Residual connections and why", "残差"),
    (12, "Why LayerNorm not BatchNorm; where does LN sit?", "LN/BN"),
    (13, "BatchNorm: how it works, pros and cons", "BatchNorm"),
    (14, "FFN activation and its trade-offs", "激活函数"),
    (15, "How do encoder and decoder interact?", "交互"),
    (16, "Decoder vs encoder self-attention; why the sequence mask?", "sequence mask"),
    (17, "Where is the parallelism; can the decoder be parallel?", "并行"),
    (18, "WordPiece vs byte-pair encoding", "分词"),
    (19, "Learning-rate schedule; dropout placement; dropout at test time", "学习率/Dropout"),
    (20, "Why does BERT use [MASK] tokens rather than attention masking?", "BERT mask"),
    (21, "Transformer vs RNN/LSTM: main differences", "RNN/LSTM"),
    (22, "How does scaled dot-product self-attention work?", "self-attention"),
    (23, "What does positional encoding do; why is it needed?", "位置编码"),
    (24, "How does multi-head attention use different subspaces?", "多头"),
    (25, "Purpose of LayerNorm and residual connections", "LN/残差"),
    (26, "Why is the Transformer more efficient than RNN/LSTM?", "效率"),
    (27, "Common optimisation and training tricks", "训练技巧"),
    (28, "Variants (BERT, GPT, ...) and their advantages", "变体"),
    (29, "How is the output sequence generated?", "生成"),
    (30, "How do you prevent overfitting?", "过拟合"),
    (31, "Memory and compute problems and fixes", "显存/计算"),
    (32, "Sequence-length limits; handling very long input", "长文本"),
    (33, "When is a Transformer not the best choice?", "局限"),
    (34, "How can its decisions be interpreted?", "可解释性"),
    (35, "Deploying on different hardware", "部署"),
])

BY_NUMBER: dict[int, Entry] = {e.number: e for e in CATALOG}
NOT_MEASURED = "not yet measured"


def heading(entry: Entry) -> str:
    """``4. Why scale by sqrt(d_k) before softmax; derive it (缩放)``"""
    keyword = f" ({entry.keyword})" if entry.keyword else ""
    return f"{entry.number}. {entry.title}{keyword}"

__all__ = ["Entry", "CATALOG", "BY_NUMBER", "NOT_MEASURED", "heading"]
