"""Record attention while a model runs: ``with capture(model) as cap: model(...)``.

Only the attention modules asked for switch to the reference path (the one that computes the
weights); every other module keeps its fused kernel, and a model outside ``capture`` is exactly
the model it was (no hook, no flag left behind). Each forward of a captured module appends one
record, so a ``generate`` call leaves one record per decoding step (the prefill first).

    with qkv.interpret.capture(model, layers=[0, 1], kinds=("self", "cross")) as cap:
        model(src, tgt_in)
    cap.weights("decoder", 1, "cross")[0]   # (B, H, T, S) of the first forward

Stacks are named ``encoder`` and ``decoder`` (an LM has only a decoder, an encoder model only an
encoder). ``scores=True`` also keeps the pre-softmax scores; ``residual=True`` keeps each
layer's output (the residual stream) ``(B, T, d)``.
"""

from __future__ import annotations

from collections import defaultdict
from contextlib import contextmanager
from typing import Iterator, Sequence

from torch import Tensor, nn

from ..errors import InputError

KINDS = ("self", "cross")
Key = tuple[str, int, str]  # (stack, layer, kind)


class Captured:
    """What a ``capture`` block recorded: per (stack, layer, kind), one tensor per forward."""

    def __init__(self) -> None:
        self.attention: dict[Key, list[Tensor]] = defaultdict(list)
        self.pre_softmax: dict[Key, list[Tensor]] = defaultdict(list)
        self.stream: dict[tuple[str, int], list[Tensor]] = defaultdict(list)

    def weights(self, stack: str, layer: int, kind: str = "self") -> list[Tensor]:
        """The ``(B, H, T, S)`` attention weights of each forward of that module."""
        key = (stack, layer, kind)
        if key not in self.attention:
            raise InputError(f"nothing captured for {stack} layer {layer} {kind}-attention; "
                             f"captured: {sorted(self.attention)}")
        return self.attention[key]

    def scores(self, stack: str, layer: int, kind: str = "self") -> list[Tensor]:
        return self.pre_softmax[(stack, layer, kind)]

    def residual(self, stack: str, layer: int) -> list[Tensor]:
        return self.stream[(stack, layer)]

    def layers(self, stack: str, kind: str = "self") -> list[int]:
        return sorted(i for s, i, k in self.attention if s == stack and k == kind)


def attention_modules(model: nn.Module) -> dict[Key, nn.Module]:
    """Every attention module of a qkv Transformer, by (stack, layer, kind)."""
    found = {}
    for stack_name in ("encoder", "decoder"):
        stack = getattr(model, stack_name, None)
        for i, layer in enumerate(getattr(stack, "layers", [])):
            for kind, attr in (("self", "self_attn"), ("cross", "cross_attn")):
                module = getattr(layer, attr, None)
                if module is not None and hasattr(module, "capture"):
                    found[(stack_name, i, kind)] = module
    if not found:
        raise InputError(f"{type(model).__name__} has no attention layers to capture (an LSTM baseline?)")
    return found


def _selected(model: nn.Module, layers: Sequence[int] | None, kinds: Sequence[str]) -> dict[Key, nn.Module]:
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise InputError(f"kinds {bad} are not among {KINDS}")
    modules = attention_modules(model)
    chosen = {key: m for key, m in modules.items() if key[2] in kinds and (layers is None or key[1] in layers)}
    if not chosen:
        raise InputError(f"no attention module matches layers={list(layers) if layers else None}, kinds={list(kinds)}")
    return chosen


@contextmanager
def capture(model: nn.Module, layers: Sequence[int] | None = None, kinds: Sequence[str] = KINDS, *,
            scores: bool = False, residual: bool = False) -> Iterator[Captured]:
    """Record the attention (and optionally scores and residual stream) of the chosen modules."""
    cap, handles, before = Captured(), [], {}
    chosen = _selected(model, layers, kinds)
    try:
        for key, module in chosen.items():
            before[key] = module.capture
            module.capture = "scores" if scores else True
            handles.append(module.register_forward_hook(_recorder(cap, key)))
        if residual:
            for stack_name, i in sorted({(k[0], k[1]) for k in chosen}):
                layer = getattr(model, stack_name).layers[i]
                handles.append(layer.register_forward_hook(_stream_recorder(cap, (stack_name, i))))
        yield cap
    finally:
        for handle in handles:
            handle.remove()
        for key, flag in before.items():
            chosen[key].capture = flag
            chosen[key].weights = chosen[key].scores = None


def _recorder(cap: Captured, key: Key):
    def hook(module: nn.Module, args, output) -> None:
        cap.attention[key].append(module.weights.detach())
        if module.scores is not None:
            cap.pre_softmax[key].append(module.scores.detach())
    return hook


def _stream_recorder(cap: Captured, key: tuple[str, int]):
    def hook(module: nn.Module, args, output: Tensor) -> None:
        cap.stream[key].append(output.detach())
    return hook


__all__ = ["capture", "Captured", "attention_modules", "KINDS"]
