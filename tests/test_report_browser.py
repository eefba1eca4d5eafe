"""The pages in a real browser: headless Chromium at a phone's width (tests/browser.py drives it).

Skipped only where no Chromium is installed (Debian's `chromium` package; `.ci/run` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from browser import chromium, open_page
from test_report import HOSTILE, add_animation, copy_of

from beanstrain import report

pytestmark = pytest.mark.skipif(chromium() is None, reason="no Chromium installed (Debian's `chromium` package): "
                                                            "the report pages were not checked in a browser")
PHONE = 390


def real_video(path: Path) -> bool:
    """A one-second H.264 .mp4 made by ffmpeg, as the animation's video would be; False without ffmpeg."""
    if shutil.which("ffmpeg") is None:
        return False
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5",
                    "-t", "1", "-pix_fmt", "yuv420p", str(path)], check=True, timeout=120)
    return True


def assert_sound(check, tmp_path: Path, screenshot: Path) -> None:
    assert check.images and all(width > 0 for _, width in check.images), check.images
    assert check.console_errors == []
    assert check.scroll_width <= check.window_width == PHONE, "the page scrolls sideways on a phone"
    assert check.scripts == 0
    assert screenshot.stat().st_size > 0


def test_a_run_page_shows_every_picture_on_a_phone(trained_run, tmp_path):
    run_dir = copy_of(trained_run, tmp_path / "runs" / "beans7-neuron" / "20261124-101500-1", state="interrupted",
                      checkpoint_epoch=2, error=HOSTILE)
    add_animation(run_dir)
    has_video = real_video(run_dir / "training.mp4")
    if not has_video:
        (run_dir / "training.mp4").unlink()
    page = report.write_run_page(run_dir)
    screenshot = tmp_path / "report-phone.png"
    check = open_page(page, screenshot)
    assert_sound(check, tmp_path, screenshot)
    assert {Path(src).name for src, _ in check.images} >= {"training.gif", "boundary.png", "history.png"}
    if has_video:
        assert check.videos == [["training.mp4", None, check.videos[0][2]]] and check.videos[0][2] >= 1
    assert HOSTILE in check.text and "beanstrain fit --resume" in check.text


def test_the_index_fits_a_phone_and_every_thumbnail_decodes(trained_run, tmp_path):
    out = tmp_path / "runs"
    for stamp in ("20261124-090000-1", "20261124-100000-1"):
        copy_of(trained_run, out / "beans7-neuron" / stamp)
    copy_of(trained_run, out / "spiral-deep8" / "20261124-100000-1", state="diverged", diverged_epoch=3)
    (out / "spiral-deep8" / "20261124-080000-1").mkdir()
    screenshot = tmp_path / "index-phone.png"
    check = open_page(report.write_index(out), screenshot)
    assert_sound(check, tmp_path, screenshot)
    assert len(check.images) == 3 and "no config.json" in check.text


def test_a_wide_table_of_final_weights_scrolls_in_its_box_and_no_number_wraps(fit_json, tmp_path):
    run_dir = Path(fit_json("spiral-deep8", "--epochs", 3, "--animation", "none")["run_dir"])
    check = open_page(run_dir / report.PAGE, tmp_path / "weights-phone.png")
    assert check.number_cells > 100  # the weights of a 2-8-8-8-1 network are on the page
    assert check.wrapped_numbers == []
    assert check.scroll_width <= check.window_width == PHONE, "the page scrolls sideways on a phone"
