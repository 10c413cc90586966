"""Table rendering: cells with pipes survive Markdown, HTML escapes, numbers stay short."""

from __future__ import annotations

from qkv.lab.table import fmt, markdown, plain, to_html

TABLE = (["name", "max |Δ|"], [["a<b", "1"], ["c", "2.5"]])


def test_markdown_escapes_pipes_so_columns_stay_put():
    lines = markdown(TABLE).splitlines()
    assert lines[0] == "| name | max \\|Δ\\| |"
    assert all(line.count(" | ") == 1 for line in (lines[0], lines[2], lines[3]))


def test_html_escapes_cells_and_plain_aligns_columns():
    assert "<td>a&lt;b</td>" in to_html(TABLE)
    rows = plain(TABLE).splitlines()
    assert rows[2].index("1") == rows[0].index("max")


def test_numbers_are_short():
    assert (fmt(0), fmt(3.14159265), fmt(1.234e-7), fmt(123456.0), fmt(True)) == (
        "0", "3.142", "1.234e-07", "1.235e+05", "True")
