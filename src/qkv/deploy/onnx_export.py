"""Export a qkv Transformer to ONNX graphs that decode one token per call with a KV cache.

    seq2seq:  encoder.onnx       src (B, S), src_mask (B, S)
                                 → memory (B, S, d), cross_key.i / cross_value.i (B, G, S, D)
              decoder_step.onnx  tokens (B, 1), src_mask (B, S), past_key.i / past_value.i (B, G, P, D),
                                 cross_key.i / cross_value.i → logits (B, V), present_key.i / present_value.i
                                 (B, G, P + 1, D)
    lm:       lm_step.onnx       input_ids (B, T), mask (B, P + T), past_key.i / past_value.i
                                 → logits (B, T, V), present_key.i / present_value.i (B, G, P + T, D)

Every axis named above is dynamic (batch, lengths, cache), except the decoder step's one token.
The cross-attention keys and values are computed once, by the encoder graph, from each decoder
layer's own key/value projections; the self-attention cache grows by one position per step.
The graphs run the model's own modules: during export the model's ``KVCache`` is replaced by
:class:`TracedCache`, whose layers take the past keys/values as graph inputs and concatenate
the new ones (a preallocated buffer written in place, as ``LayerCache`` does, does not trace).

``quantize_int8`` adds onnxruntime's dynamic int8 quantisation of each graph (int8 weights of
every MatMul, activations quantised per call).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor, nn
from torch.export import Dim

from .. import __version__
from ..config import ModelConfig
from ..errors import CheckpointError, InputError
from ..nn import stack

OPSET = 18
MANIFEST = "qkv_onnx.json"
GRAPHS = {"seq2seq": ("encoder", "decoder_step"), "lm": ("lm_step",)}
INT8_SUFFIX = ".int8.onnx"


class TracedLayerCache:
    """One attention layer's cache as graph tensors: ``k``, ``v`` ``(B, G, P, D)``.

    Self-attention (``static=False``) concatenates the new step's keys/values; cross-attention
    (``static=True``) holds the encoder's keys/values, which ``MultiHeadAttention`` reads as they are.
    """

    def __init__(self, k: Tensor, v: Tensor, static: bool = False) -> None:
        self.k, self.v, self.static = k, v, static
        self.length = k.shape[2]  # traced: the past length is an input's dynamic axis

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        self.k = torch.cat([self.k, k], dim=2)  # (B, G, P + T, D)
        self.v = torch.cat([self.v, v], dim=2)
        return self.k, self.v


class TracedCache:
    """Stands in for ``KVCache`` (the same ``self_attn``, ``cross_attn`` and ``length``)."""

    def __init__(self, self_attn: list[TracedLayerCache], cross_attn: list[TracedLayerCache] | None) -> None:
        self.self_attn, self.cross_attn = self_attn, cross_attn

    @property
    def length(self):
        return self.self_attn[0].length

    def visible(self, T: int):
        """Keys the next ``T`` queries see: every cached one and the new ones (no rolling window;
        a windowed model's own mask keeps its queries inside the window)."""
        return self.length + T

    def presents(self) -> list[Tensor]:
        """``[k_0, v_0, k_1, v_1, ...]``: each layer's keys/values after this step."""
        return [t for c in self.self_attn for t in (c.k, c.v)]


def _pairs(flat: list[Tensor], static: bool = False) -> list[TracedLayerCache]:
    return [TracedLayerCache(flat[i], flat[i + 1], static) for i in range(0, len(flat), 2)]


class EncoderGraph(nn.Module):
    """src ``(B, S)``, src_mask ``(B, S)`` bool → memory ``(B, S, d)`` and every decoder layer's
    cross-attention keys and values ``(B, G, S, D)``, flattened ``k_0, v_0, k_1, v_1, ...``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, ...]:
        memory = self.model.encode(src, src_mask)  # (B, S, d)
        cross = [t for layer in self.model.decoder.layers for t in layer.cross_attn._project_memory(memory)]
        return (memory, *cross)


class DecoderStepGraph(nn.Module):
    """One decoder step: tokens ``(B, 1)`` and the caches → logits ``(B, V)`` and the grown cache."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.n = model, len(model.decoder.layers)

    def forward(self, tokens: Tensor, src_mask: Tensor, past: list[Tensor], cross: list[Tensor]) -> tuple[Tensor, ...]:
        cache = TracedCache(_pairs(past), _pairs(cross, static=True))
        logits = self.model.decode(tokens, None, src_mask, cache=cache)  # (B, 1, V)
        return (logits[:, -1], *cache.presents())


class LMStepGraph(nn.Module):
    """input_ids ``(B, T)`` after ``P`` cached positions, mask ``(B, P + T)`` → logits ``(B, T, V)``
    and the grown cache. One graph serves the prompt (P = 0) and each new token (T = 1)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, mask: Tensor, past: list[Tensor]) -> tuple[Tensor, ...]:
        cache = TracedCache(_pairs(past), None)
        # right_padded=False: the traced mask must be the general one (padding ∧ causal), never
        # the shortcut a full, unpadded example would pick.
        logits = self.model(input_ids, mask, cache=cache, right_padded=False)  # (B, T, V)
        return (logits, *cache.presents())


# ---------------------------------------------------------------------------------------------
# names, example inputs and dynamic axes of each graph


def cache_names(prefix: str, n_layers: int) -> list[str]:
    """``[prefix_key.0, prefix_value.0, prefix_key.1, ...]``, the order the graphs flatten caches in."""
    return [f"{prefix}_{kv}.{i}" for i in range(n_layers) for kv in ("key", "value")]


def graph_io(cfg: ModelConfig, graph: str) -> tuple[list[str], list[str]]:
    """The input and output names of ``graph``, in the order the graph takes and returns them."""
    n = cfg.decoder_layers if cfg.family == "seq2seq" else cfg.n_layers
    if graph == "encoder":
        return ["src", "src_mask"], ["memory", *cache_names("cross", n)]
    if graph == "decoder_step":
        return (["tokens", "src_mask", *cache_names("past", n), *cache_names("cross", n)],
                ["logits", *cache_names("present", n)])
    return ["input_ids", "mask", *cache_names("past", n)], ["logits", *cache_names("present", n)]


def _examples(cfg: ModelConfig, graph: str) -> tuple[tuple, tuple]:
    """Example inputs (B = 2, S = 5, P = 2 cached, T = 3 new) and their dynamic axes.

    P > 0 and T > 1 make the traced mask the general one (padding ∧ causal over cache and new
    tokens); the graph then serves P = 0 (a prompt) and T = 1 (a step) alike.
    """
    B, S, P, T = 2, 5, 2, 3
    G, D = cfg.kv_heads, cfg.head_dim
    n = cfg.decoder_layers if cfg.family == "seq2seq" else cfg.n_layers
    batch, src, past, new, total = Dim("batch"), Dim("src"), Dim("past"), Dim("new"), Dim("total")
    ids = lambda *shape: torch.randint(0, cfg.vocab_size, shape)  # noqa: E731
    real = lambda *shape: torch.ones(shape, dtype=torch.bool)  # noqa: E731
    kv = lambda length: [torch.randn(B, G, length, D) for _ in range(2 * n)]  # noqa: E731
    if graph == "encoder":
        return (ids(B, S), real(B, S)), ({0: batch, 1: src}, {0: batch, 1: src})
    if graph == "decoder_step":
        return ((ids(B, 1), real(B, S), kv(P), kv(S)),
                ({0: batch}, {0: batch, 1: src}, [{0: batch, 2: past}] * 2 * n, [{0: batch, 2: src}] * 2 * n))
    return (ids(B, T), real(B, P + T), kv(P)), ({0: batch, 1: new}, {0: batch, 1: total}, [{0: batch, 2: past}] * 2 * n)


def graph_module(model: nn.Module, graph: str) -> nn.Module:
    wrapper = {"encoder": EncoderGraph, "decoder_step": DecoderStepGraph, "lm_step": LMStepGraph}[graph]
    return wrapper(model).eval()


# ---------------------------------------------------------------------------------------------
# export


def check_exportable(cfg: ModelConfig) -> None:
    """Raise :class:`CheckpointError` unless ``cfg`` is a Transformer translator or language model."""
    if cfg.arch != "transformer" or cfg.family not in GRAPHS:
        raise CheckpointError(
            f"a {cfg.arch} {cfg.family} model cannot be exported: qkv export handles Transformer "
            f"seq2seq and lm checkpoints (arch='transformer', family='seq2seq' or 'lm')")


def check_out_dir(out_dir: str | Path) -> Path:
    """The output folder, created if absent; its parent must exist (a typo is not silently built)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file; give a folder for the exported model")
    if not out.exists() and not out.parent.is_dir():
        raise InputError(f"--out {out}: its parent folder {out.parent} does not exist",
                         hint=f"create it first (mkdir -p {out.parent}) or choose another --out")
    out.mkdir(exist_ok=True)
    return out


@contextlib.contextmanager
def _ids_unchecked() -> Iterator[None]:
    """Leave the stack's id range check out of the traced graph.

    The check reads the ids' min and max back to Python, which a graph cannot hold; the runner
    (``qkv.deploy.onnx_runtime``) checks the ids with the same function before every call.
    """
    original = stack.check_ids
    stack.check_ids = lambda *args, **kwargs: None
    try:
        yield
    finally:
        stack.check_ids = original


def export_graph(model: nn.Module, graph: str, path: Path, opset: int = OPSET) -> Path:
    """Trace one graph (``encoder``, ``decoder_step`` or ``lm_step``) of ``model`` to ``path``."""
    cfg = model.config
    args, dynamic = _examples(cfg, graph)
    inputs, outputs = graph_io(cfg, graph)
    # Not under no_grad: attention then keeps a stacked copy of its q/k/v weights, keyed by
    # their storage pointers, which the exporter's fake tensors do not have.
    with warnings.catch_warnings(), _ids_unchecked():
        warnings.simplefilter("ignore")  # the exporter's notes on axis names and deprecations
        program = torch.onnx.export(graph_module(model, graph), args, dynamo=True, dynamic_shapes=dynamic,
                                    input_names=inputs, output_names=outputs, opset_version=opset,
                                    external_data=False, verbose=False)
    program.save(str(path))
    return path


def quantize_int8(path: Path) -> Path:
    """onnxruntime's dynamic int8 quantisation of the graph at ``path``: int8 weights for every
    MatMul, activations quantised per call. Written beside it as ``NAME.int8.onnx``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = path.with_name(path.name.removesuffix(".onnx") + INT8_SUFFIX)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(path), str(target), weight_type=QuantType.QInt8)
    return target


def export_onnx(model: nn.Module, out_dir: str | Path, *, int8: bool = False) -> Path:
    """Write ``model``'s graphs (see the module docstring) and ``qkv_onnx.json`` into ``out_dir``.

    ``int8=True`` also writes each graph dynamically quantised (``*.int8.onnx``). Returns the
    manifest's path; :class:`qkv.deploy.onnx_runtime.OnnxModel` loads the folder.
    """
    cfg = model.config
    check_exportable(cfg)
    out = check_out_dir(out_dir)
    was_training = model.training
    model.eval()
    try:
        paths = {g: export_graph(model, g, out / f"{g}.onnx") for g in GRAPHS[cfg.family]}
    finally:
        model.train(was_training)
    manifest = {"qkv_version": __version__, "opset": OPSET, "model": cfg.to_dict(),
                "graphs": {g: p.name for g, p in paths.items()}}
    if int8:
        manifest["int8_graphs"] = {g: quantize_int8(p).name for g, p in paths.items()}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out / MANIFEST
