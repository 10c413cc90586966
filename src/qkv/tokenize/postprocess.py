"""Post-processing: the special tokens wrapped around an encoded text (`post_processor`).

We write HF's `TemplateProcessing`, e.g. `<s> $A </s>` or `[CLS] $A [SEP]`, so that
`tokenizers.Tokenizer.encode(text).ids` adds exactly the ids our `encode` adds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qkv.tokenize.errors import TokenizerError


@dataclass(frozen=True)
class Template:
    """Special tokens placed before and after the text's ids (`$A` in HF's template syntax)."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    def apply(self, ids: list[int], vocab: dict[str, int]) -> list[int]:
        return [vocab[t] for t in self.before] + ids + [vocab[t] for t in self.after]

    def to_json(self, vocab: dict[str, int]) -> dict[str, Any] | None:
        if not self.before and not self.after:
            return None

        def special(t: str, type_id: int = 0) -> dict[str, Any]:
            return {"SpecialToken": {"id": t, "type_id": type_id}}

        def seq(name: str, type_id: int) -> dict[str, Any]:
            return {"Sequence": {"id": name, "type_id": type_id}}

        single = [*map(special, self.before), seq("A", 0), *map(special, self.after)]
        # Pairs (HF only; qkv encodes one text at a time): A wrapped as above, then B + closing.
        pair = single + [seq("B", 1)] + [special(t, 1) for t in self.after]
        tokens = sorted(set(self.before + self.after))
        return {
            "type": "TemplateProcessing",
            "single": single,
            "pair": pair,
            "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in tokens},
        }


def template_from_json(d: dict[str, Any] | None) -> Template:
    """Read HF's `TemplateProcessing` / `BertProcessing` / `RobertaProcessing` / `ByteLevel`."""
    if d is None or d.get("type") == "ByteLevel":  # ByteLevel only trims offsets: ids unchanged
        return Template()
    kind = d.get("type")
    if kind in ("BertProcessing", "RobertaProcessing"):
        return Template(before=(d["cls"][0],), after=(d["sep"][0],))
    if kind != "TemplateProcessing":
        raise TokenizerError(f"unsupported post_processor type {kind!r}; supported: "
                             "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel")
    items = d["single"]
    names = [next(iter(item.values()))["id"] for item in items]
    if [k for item in items for k in item].count("Sequence") != 1:
        raise TokenizerError("TemplateProcessing: the single template must hold exactly one $A")
    where = [i for i, item in enumerate(items) if "Sequence" in item][0]
    for t in names[:where] + names[where + 1:]:
        if len(d["special_tokens"][t]["ids"]) != 1:
            raise TokenizerError(f"TemplateProcessing: special {t!r} must map to one id")
    return Template(before=tuple(names[:where]), after=tuple(names[where + 1:]))
