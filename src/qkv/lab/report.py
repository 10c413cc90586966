"""``qkv report``: the committed results under ``docs/lab/qNN/`` rendered as one page.

Two outputs from the same sections: ``README.md`` (Markdown that renders on a code host, plots
linked as files) and ``report.html`` (one self-contained file, plots embedded as data URIs, no
external URL or script, so it opens offline). Every verdict shown is recomputed from the stored
numbers by the question's own ``verdict``; a stored verdict that disagrees, a result file that is
broken, or a plot it names that is missing stops the build with an error naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import DataError
from . import base
from .catalog import CATALOG, NOT_MEASURED, Entry, heading
from .report_html import render_html
from .table import Table, markdown

@dataclass
class Section:
    """One question in the report: answered (module and metrics) or not yet measured."""

    entry: Entry
    module: ModuleType | None = None
    metrics: dict[str, Any] | None = None
    verdict: tuple[str, str] | None = None
    tables: list[Table] = field(default_factory=list)
    plots: list[Path] = field(default_factory=list)

    @property
    def answered(self) -> bool:
        return self.metrics is not None

    @property
    def anchor(self) -> str:
        return base.folder_name(self.entry.number)


def load_section(entry: Entry, results: Path) -> Section:
    """The section of one question; a question without code or a results folder is not measured."""
    folder = results / base.folder_name(entry.number)
    if entry.number not in base.QUESTIONS or not folder.exists():
        return Section(entry)
    module = base.question(entry.number)
    path = folder / base.METRICS_FILE
    metrics = base.read_metrics(path)
    if metrics["question"] != entry.number:
        raise DataError(f"result file {path} holds question {metrics['question']}, not {entry.number}")
    verdict = base.recomputed_verdict(module, metrics, path)
    plots = [folder / name for name in metrics["plots"]]
    for plot in plots:
        if not plot.is_file():
            raise DataError(f"plot {plot} named by {path} is missing", hint=f"rerun: {metrics['command']}")
    try:
        tables = module.tables(metrics)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise DataError(f"result file {path} lacks numbers its tables need ({type(err).__name__}: {err})") from None
    return Section(entry, module, metrics, verdict, tables, plots)


def load_sections(results: Path) -> list[Section]:
    if not results.is_dir():
        raise DataError(f"results folder {results} does not exist", hint="qkv ask N --size full --out DIR/qNN")
    return [load_section(entry, results) for entry in CATALOG]


def markdown_section(s: Section, out: Path) -> list[str]:
    lines = [f'<a id="{s.anchor}"></a>', f"## {heading(s.entry)}", ""]
    if not s.answered:
        return lines + [f"*{NOT_MEASURED}.*", ""]
    m, (label, reason) = s.metrics, s.verdict
    lines += [f"**Verdict: {label}** — {reason}", "", "**Claims under test**", ""]
    lines += [f"- {c}" for c in s.module.CLAIMS] + ["", "**Our answer**", "", s.module.ANSWER, ""]
    for t in s.tables:
        lines += [markdown(t), ""]
    lines += [f"![{p.stem}]({relative(p, out)})" for p in s.plots] + [""]
    lines += [f"Reproduce: `{m['command']}` — {base.describe_run(m)}.", ""]
    return lines


def relative(path: Path, out: Path) -> str:
    """The link from a page in ``out`` to ``path`` (the results may live elsewhere)."""
    return Path(os.path.relpath(path.resolve(), out.resolve())).as_posix()


def render_markdown(sections: list[Section], out: Path) -> str:
    answered = [s for s in sections if s.answered]
    lines = ["# The lab: 35 Transformer questions answered by measurement", "",
             f"{len(answered)} of {len(sections)} questions measured. Each verdict is computed from the numbers "
             f"in `qNN/metrics.json` by the question's `verdict` function (`src/qkv/lab/`); rebuild this page "
             f"with `qkv report`. A one-file version with the plots embedded is `report.html`.", "",
             "| # | Question | Verdict |", "|---|---|---|"]
    lines += [f"| {s.entry.number} | [{s.entry.title}](#{s.anchor}) | {s.verdict[0] if s.answered else NOT_MEASURED} |"
              for s in sections]
    lines.append("")
    for s in sections:
        lines += markdown_section(s, out)
    return "\n".join(lines)


def build(results: Path, out: Path) -> tuple[Path, Path]:
    """Write ``out/README.md`` and ``out/report.html`` from ``results``; returns both paths."""
    sections = load_sections(results)
    out.mkdir(parents=True, exist_ok=True)
    readme, page = out / "README.md", out / "report.html"
    readme.write_text(render_markdown(sections, out), encoding="utf-8")
    page.write_text(render_html(sections), encoding="utf-8")
    return readme, page


__all__ = ["build", "load_sections", "Section", "NOT_MEASURED", "render_markdown"]
