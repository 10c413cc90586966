"""Figures for the lab: matplotlib on the file-only Agg backend, small PNGs fit to commit."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the lab runs in terminals and CI
import matplotlib.pyplot as plt  # noqa: E402

DPI = 80  # a 10 × 4 inch figure is then 800 × 320 pixels: readable, and tens of kilobytes


def figure(n_panels: int, width: float = 4.2, height: float = 3.4):
    """A row of ``n_panels`` axes; returns (figure, list of axes)."""
    fig, axes = plt.subplots(1, n_panels, figsize=(width * n_panels, height), squeeze=False)
    return fig, list(axes[0])


def save(fig, out: Path, name: str) -> str:
    """Write ``out/name`` and close the figure; returns the file name recorded in metrics."""
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    return name


def seed_points(ax, x: float, values: list[float], color: str, label: str | None = None,
                width: float = 0.0) -> None:
    """Each seed as a point (spread by ``width`` so they do not hide one another) plus the mean as a bar."""
    n = len(values)
    xs = [x + width * (i - (n - 1) / 2) / max(n - 1, 1) for i in range(n)]
    ax.scatter(xs, values, s=14, color=color, alpha=0.7, label=label, zorder=3)
    if values:
        m = sum(values) / n
        ax.hlines(m, x - 0.2, x + 0.2, color=color, linewidth=2, zorder=4)




def log_ticks(ax, values: list[int]) -> None:
    """A log x axis ticked at exactly ``values`` (16, 32, …), written as plain numbers."""
    ax.set_xscale("log")
    ax.set_xticks(values)
    ax.set_xticklabels([str(v) for v in values])
    ax.minorticks_off()


__all__ = ["figure", "save", "seed_points", "log_ticks", "DPI"]
