"""timeline.html in a real browser: headless Chromium (Debian's package; .ci/run installs it)
renders the synthetic 30-minute run; the screenshot shows the lanes and the legend."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from client.timeline import HEALTH_COLOURS, MDS_COLOURS, render
from tests.unit.timeline_data import synthetic

Image = pytest.importorskip("PIL.Image", reason="Pillow (a test dependency) is not installed")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is not installed: `apt-get install -y chromium` (.ci/run does it)")


def _rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.mark.timeout(120)
def test_headless_chromium_renders_the_30_minute_timeline(tmp_path):
    page, shot = tmp_path / "timeline.html", tmp_path / "timeline.png"
    page.write_text(render(synthetic(minutes=30)), encoding="utf-8")
    res = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-color-profile=srgb", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1400,600", page.as_uri()],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    assert shot.stat().st_size > 20_000  # a picture, not a blank page
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 600)
    colours = {c: n for n, c in img.getcolors(maxcolors=1 << 20)}
    for colour in (MDS_COLOURS["up:active"], MDS_COLOURS["up:standby-replay"],
                   HEALTH_COLOURS["HEALTH_OK"], HEALTH_COLOURS["HEALTH_WARN"]):
        assert _rgb(colour) in colours, colour
    # the lanes are drawn: the active green fills a good share of the plot, not just a swatch
    assert colours[_rgb(MDS_COLOURS["up:active"])] > 5_000
