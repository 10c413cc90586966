"""Run graphs written by ``qkv.deploy.onnx_export`` with onnxruntime, and decode with them.

:class:`OnnxStepper` has the three methods qkv's search algorithms call — ``prefill``, ``step``
and ``reorder`` (see ``qkv.generate.stepper``) — so greedy decoding and beam search here are
qkv's own ``greedy`` and ``beam_search``, driven by onnxruntime instead of PyTorch.

The runner always passes masks (all True where nothing is padded); the PyTorch stepper drops an
all-True mask, so the two agree to float rounding (~1e-6), not bit for bit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import ModelConfig
from ..errors import CheckpointError, GenerationError
from ..generate import beam_search, greedy
from ..nn.ids import check_ids
from .onnx_export import MANIFEST, cache_names, graph_io


def _session(path: Path, threads: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """The graphs of an ONNX export folder, as onnxruntime sessions.

    ``int8=True`` loads the dynamically quantised graphs (exported with ``int8=True``).
    ``threads``: onnxruntime's intra-op threads (None = its default, every core).
    """

    def __init__(self, folder: str | Path, *, int8: bool = False, threads: int | None = None) -> None:
        folder = Path(folder)
        path = folder / MANIFEST
        if not path.is_file():
            raise CheckpointError(f"{folder} has no {MANIFEST}; it is not a qkv ONNX export",
                                  hint=f"write one with: qkv export CHECKPOINT --to onnx --out {folder}")
        manifest = json.loads(path.read_text())
        key = "int8_graphs" if int8 else "graphs"
        if key not in manifest:
            raise CheckpointError(f"{folder} holds no int8 graphs", hint="export again with --int8")
        self.config = ModelConfig.from_dict(manifest["model"])
        self.sessions = {g: _session(folder / name, threads) for g, name in manifest[key].items()}

    def run(self, graph: str, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run ``graph`` on its inputs in ``graph_io`` order; its outputs in that order."""
        names, _ = graph_io(self.config, graph)
        return self.sessions[graph].run(None, dict(zip(names, inputs)))

    def empty_cache(self, batch: int) -> list[np.ndarray]:
        """Self-attention keys/values with no position yet: ``(B, G, 0, D)`` each."""
        cfg = self.config
        n = cfg.decoder_layers if cfg.family == "seq2seq" else cfg.n_layers
        shape = (batch, cfg.kv_heads, 0, cfg.head_dim)
        return [np.zeros(shape, dtype=np.float32) for _ in cache_names("past", n)]


class OnnxStepper:
    """``qkv.generate.Stepper``'s interface over :class:`OnnxModel`.

    input_ids ``(B, S)``: sources (seq2seq, right-padded) or prompts (lm, left-padded); mask
    ``(B, S)`` bool, True = real (None = nothing padded).
    """

    def __init__(self, model: OnnxModel, input_ids: Tensor, mask: Tensor | None) -> None:
        cfg = model.config
        check_ids(input_ids, cfg.vocab_size, "src" if cfg.family == "seq2seq" else "input_ids")
        self.model, self.cfg = model, cfg
        self.input_ids = input_ids.numpy().astype(np.int64)
        self.mask = (mask.numpy() if mask is not None else np.ones(input_ids.shape)).astype(bool)
        self.past = model.empty_cache(input_ids.shape[0])
        self.cross: list[np.ndarray] = []

    def _advance(self, graph: str, inputs: list[np.ndarray]) -> Tensor:
        logits, *self.past = self.model.run(graph, inputs)
        return torch.from_numpy(logits if logits.ndim == 2 else logits[:, -1])  # (B, V)

    def prefill(self) -> Tensor:
        """Logits ``(B, V)`` for the first new token."""
        if self.cfg.family == "seq2seq":
            _, *self.cross = self.model.run("encoder", [self.input_ids, self.mask])
            start = np.full((self.input_ids.shape[0], 1), self.cfg.start_id, dtype=np.int64)
            return self._advance("decoder_step", [start, self.mask, *self.past, *self.cross])
        return self._advance("lm_step", [self.input_ids, self.mask, *self.past])

    def step(self, tokens: Tensor) -> Tensor:
        """Feed the newest tokens ``(B,)``; logits ``(B, V)`` for the next."""
        check_ids(tokens, self.cfg.vocab_size, "tokens")
        new = tokens.numpy().astype(np.int64)[:, None]  # (B, 1)
        if self.cfg.family == "seq2seq":
            return self._advance("decoder_step", [new, self.mask, *self.past, *self.cross])
        self.mask = np.concatenate([self.mask, np.ones_like(new, dtype=bool)], axis=1)  # (B, P + 1)
        return self._advance("lm_step", [new, self.mask, *self.past])

    def reorder(self, index: Tensor, same_source: bool = False) -> None:
        """Keep rows ``index`` ``(B',)``; with ``same_source`` the source-side state stays put."""
        rows = index.numpy()
        self.past = [t[rows] for t in self.past]
        if self.cfg.family == "lm":
            self.mask = self.mask[rows]  # each row's mask grows with its own tokens
        elif not same_source:
            self.mask, self.cross = self.mask[rows], [t[rows] for t in self.cross]


def _check_length(cfg: ModelConfig, source_len: int, max_new_tokens: int) -> None:
    """A learned position table ends at ``max_len``; the graphs cannot crop the context."""
    total = max_new_tokens + (1 if cfg.family == "seq2seq" else source_len)
    longest = max(total, source_len)
    if cfg.position == "learned" and longest > cfg.max_len:
        raise GenerationError(f"{longest} positions asked of a model with learned positions up to "
                              f"max_len={cfg.max_len}; shorten the input or max_new_tokens")


def onnx_generate(model: OnnxModel, input_ids: Tensor, mask: Tensor | None = None, *, max_new_tokens: int = 64,
                  beams: int = 1, length_alpha: float = 0.0, early_stopping: bool = False,
                  eos_id: int | None = -1) -> Tensor:
    """Greedy (``beams=1``) or beam search with the exported graphs; the same outputs as
    ``qkv.generate.generate`` with those settings: ``(B, L)`` new tokens for seq2seq,
    ``(B, S + L)`` prompt then new tokens for an lm. ``eos_id=-1`` means the config's."""
    cfg = model.config
    if max_new_tokens < 1 or beams < 1:
        raise GenerationError(f"max_new_tokens={max_new_tokens} and beams={beams} must both be >= 1")
    _check_length(cfg, input_ids.shape[1], max_new_tokens)
    eos = cfg.eos_id if eos_id == -1 else eos_id
    stepper = OnnxStepper(model, input_ids, mask)
    if beams > 1:
        new, _ = beam_search(stepper, max_new_tokens, eos, cfg.pad_id, beams=beams, alpha=length_alpha,
                             early_stopping=early_stopping)
    else:
        new = greedy(stepper, max_new_tokens, eos, cfg.pad_id)
    return new if cfg.family == "seq2seq" else torch.cat([input_ids, new], dim=1)


__all__ = ["OnnxModel", "OnnxStepper", "onnx_generate"]
