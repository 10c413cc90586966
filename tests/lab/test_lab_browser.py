"""The report opens in a real headless browser (Debian's chromium, installed by `make setup`):
no console messages, 35 sections, a verdict badge and a plot for each answered question, and a
screenshot that is not blank."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

from qkv.lab import base
from qkv.lab.report import build

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed; `make setup` installs Debian's chromium package"
    return found


def open_page(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def console_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def test_the_console_check_can_fail(tmp_path):
    page = tmp_path / "control.html"
    page.write_text('<p>x</p><script>console.error("marker-7")</script>')
    assert any("marker-7" in line for line in console_lines(open_page(page, tmp_path / "p", "--dump-dom").stderr))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    return build(ROOT / "docs" / "lab", out)[1]


def test_report_renders_every_section_without_console_messages(report, tmp_path):
    shown = open_page(report, tmp_path / "p", "--dump-dom")
    assert shown.returncode == 0 and not console_lines(shown.stderr), console_lines(shown.stderr)
    dom = shown.stdout
    assert len(re.findall(r"<section id=\"q\d\d\"", dom)) == 35
    for number in base.QUESTIONS:
        section = dom.split(f'<section id="q{number:02d}"', 1)[1].split("</section>", 1)[0]
        assert 'class="badge"' in section and "<img" in section and "data:image/png;base64," in section


def test_report_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "shot.png"
    done = open_page(report, tmp_path / "p", f"--screenshot={shot}", "--window-size=1200,2000")
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)  # (H, W, channels) floats in [0, 1]
    assert pixels.shape[:2] == (2000, 1200) and pixels[..., :3].std() > 0.05
