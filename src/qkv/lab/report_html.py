"""The self-contained HTML page of ``qkv report``: inline CSS, plots as base64 data URIs.

Nothing on the page loads from elsewhere (no external URL, no script), so the single file can be
mailed, archived or opened offline and shows the same thing.
"""

from __future__ import annotations

import base64
import html
import re
from typing import TYPE_CHECKING

from . import base
from .catalog import NOT_MEASURED, heading
from .table import to_html

if TYPE_CHECKING:  # only for the annotation: report imports this module
    from .report import Section

COLOURS = {"confirmed": "#1a7f37", "refuted": "#cf222e", "depends": "#bf8700", "inconclusive": "#6e7781",
           "not yet measured": "#afb8c1"}
CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #1f2328; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; color: white; font-size: .85rem; }
nav ol { padding-left: 1.5rem; } nav li { margin: .15rem 0; }
section { border-top: 1px solid #d0d7de; margin-top: 2rem; padding-top: .5rem; }
table { border-collapse: collapse; font-size: .8rem; margin: 1rem 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .2rem .4rem; text-align: left; vertical-align: top; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; }
code { background: #f6f8fa; padding: 0 .2rem; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
.pending { color: #6e7781; font-style: italic; }
"""


def badge(label: str) -> str:
    return f'<span class="badge" style="background:{COLOURS[label]}">{html.escape(label)}</span>'


def prose(text: str) -> str:
    """Paragraphs separated by blank lines; a paragraph indented by 4 spaces is shown as is."""
    out = []
    for block in text.strip("\n").split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("    ") for line in lines if line.strip()):
            out.append("<pre>" + html.escape("\n".join(line[4:] for line in lines)) + "</pre>")
        else:
            out.append("<p>" + html.escape(" ".join(line.strip() for line in lines)) + "</p>")
    return "\n".join(out)


def inline(text: str) -> str:
    """Escaped text with `backticked` commands shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def image(path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def section_html(s: "Section") -> str:
    title = f'<h2>{html.escape(heading(s.entry))}</h2>'
    if not s.answered:
        return f'<section id="{s.anchor}">{title}<p class="pending">{NOT_MEASURED}</p></section>'
    label, reason = s.verdict
    m = s.metrics
    claims = "".join(f"<li>{html.escape(c)}</li>" for c in s.module.CLAIMS)
    return "\n".join([
        f'<section id="{s.anchor}">', title,
        f"<p>{badge(label)} {inline(reason)}</p>",
        f"<h3>Claims under test</h3><ul>{claims}</ul>",
        f"<h3>Our answer</h3>{prose(s.module.ANSWER)}",
        "<h3>Measurements</h3>", *(to_html(t) for t in s.tables), *(image(p) for p in s.plots),
        f"<p>Reproduce: <code>{html.escape(m['command'])}</code> — {html.escape(base.describe_run(m))}.</p>",
        "</section>"])


def render_html(sections: list["Section"]) -> str:
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.entry.title)}</a> '
                  f'{badge(s.verdict[0] if s.answered else NOT_MEASURED)}</li>' for s in sections)
    answered = sum(s.answered for s in sections)
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>qkv lab report</title>", f"<style>{CSS}</style></head><body>",
        "<h1>The lab: 35 Transformer questions answered by measurement</h1>",
        f"<p>{answered} of {len(sections)} questions measured. Every verdict is computed from the stored "
        f"numbers by the question's own verdict function.</p>",
        f"<nav><h2>Contents</h2><ol>{toc}</ol></nav>",
        *(section_html(s) for s in sections), "</body></html>", ""])


__all__ = ["render_html", "badge", "prose", "inline", "COLOURS"]
