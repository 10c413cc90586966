"""Tables as (columns, rows) of strings, rendered as plain text (terminal) or Markdown / HTML."""

from __future__ import annotations

import html

Table = tuple[list[str], list[list[str]]]


def fmt(x: float, digits: int = 4) -> str:
    """A number short enough for a table cell: 4 significant digits, scientific when tiny or huge."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e5:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def plain(table: Table) -> str:
    columns, rows = table
    widths = [max(len(str(r[i])) for r in [columns, *rows]) for i in range(len(columns))]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown(table: Table) -> str:
    columns, rows = table
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(esc(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(out + ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows])


def to_html(table: Table) -> str:
    columns, rows = table
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


__all__ = ["Table", "fmt", "plain", "markdown", "to_html"]
