"""``qkv bench``: the speed suite at a quick size, printed as two tables.

The suite lives in the repository's ``benchmarks/`` folder — ``train_speed.py`` (qkv against
Hugging Face, ``torch.nn.Transformer`` and x-transformers, same shapes, same run) and
``attention_scaling.py`` (one attention layer, path by path, as the sequence grows). Each script
prints JSON; this entry runs both at their quick size (under two minutes on 2 CPU threads) and
prints the numbers a reader compares. Full sizes and their results: ``docs/benchmarks_speed.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def _benchmarks() -> tuple[ModuleType, ModuleType]:
    """Import ``benchmarks.train_speed`` and ``benchmarks.attention_scaling`` from the checkout."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "benchmarks" / "train_speed.py").is_file():
        raise RuntimeError(
            f"qkv bench runs the scripts in benchmarks/ of a source checkout (pip install -e .), "
            f"and there is none at {root / 'benchmarks'}"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from benchmarks import attention_scaling, train_speed

    return train_speed, attention_scaling


def run(quick: bool = True, *, size: str | None = None, device: str = "cpu", threads: int = 2) -> dict[str, Any]:
    """Run both benchmarks, print their tables, return ``{"train_speed": ..., "attention_scaling": ...}``.

    ``quick`` picks the quick size (False: the full size, many minutes); ``size`` names one
    directly (``"tiny"`` is the tests' smoke size).
    """
    size = size or ("quick" if quick else "full")
    train_speed, attention_scaling = _benchmarks()
    result = dict(
        train_speed=train_speed.run(size, device=device, threads=threads),
        attention_scaling=attention_scaling.run(size, device=device, threads=threads),
    )
    print(format_tables(result))
    return result


def format_tables(result: dict[str, Any]) -> str:
    return train_table(result["train_speed"]) + "\n\n" + attention_table(result["attention_scaling"])


def _fmt(x: Any, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _num(x: float | None) -> str:
    """Three significant digits without an exponent: 0.512, 51.2, 512, 5120."""
    return "-" if x is None else f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def train_table(r: dict[str, Any]) -> str:
    """One row per (task, peer): speed, qkv's speed ÷ the peer's (median of per-round ratios),
    FLOP rate, MFU, memory."""
    head = ("task", "peer", "params", "tokens/s", "qkv/peer", "GFLOP/s", "MFU", "peak MiB", "step MiB")
    rows = [head]
    for task, t in r["tasks"].items():
        for name, p in t["peers"].items():
            ratio = 1.0 if name == "qkv" else t["qkv_over_peer"][name].get("tokens_per_s_paired")
            rows.append((
                task, name, f"{p['params'] / 1e6:.2f}M", _num(p["tokens_per_s"]), _fmt(ratio, ".2f"),
                _num(p["gflops"]), _fmt(p["mfu"], ".1%"), _fmt(p.get("total_peak_mib"), ".1f"),
                _fmt(p.get("step_peak_mib"), ".1f"),
            ))
    title = (f"train_speed ({r['size']}, {r['device']}, {r['threads']} threads, fp32, dropout {r['dropout']}; "
             f"seq2seq tokens = target positions)")
    return title + "\n" + _grid(rows)


def attention_table(r: dict[str, Any]) -> str:
    """One row per length: each variant's ms per forward+backward and peak MiB."""
    variants = list(r["variants"])
    rows = [("T", *variants)]
    for T in map(str, r["lengths"]):
        cells = []
        for v in variants:
            e = r["variants"][v][T]
            cells.append("skipped" if "skipped" in e else f"{_num(e['ms'])} ms / {_num(e.get('peak_mib'))} MiB")
        rows.append((T, *cells))
    layer = r["layer"]
    title = (f"attention_scaling ({r['size']}, one layer d={layer['d']}, {layer['heads']} heads, "
             f"batch {layer['batch']}, causal; ms per forward+backward / peak MiB; cap {r['memory_cap_gib']} GiB)")
    return title + "\n" + _grid(rows)


def _grid(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
