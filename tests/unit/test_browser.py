# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML run report in a real browser (headless Chromium, tests/browser.py): every guest of a synthetic run is in
the DOM Chromium built, and its screenshot is a page, not a blank."""

from __future__ import annotations

import html.parser
import os
import re
import sys

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report, report_html
from ansible_collections.hostmaint.libvirt.tests.unit.plugins import report_samples

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import browser  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Cells(html.parser.HTMLParser):
    """The texts of the table cells of a document."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.cells, self._cell = [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def chromium():
    try:
        return browser.Browser(timeout=90)
    except browser.BrowserMissing as exc:
        if os.environ.get("CI"):  # .ci/run: scripts/setup installed it, so its absence is a failure there
            pytest.fail("%s: scripts/setup should have installed it from requirements-apt.txt" % exc)
        pytest.skip("%s (scripts/setup installs it from requirements-apt.txt)" % exc)


def test_every_guest_is_in_the_rendered_dom_and_the_screenshot_is_a_page(chromium, tmp_path):
    run = report_samples.evacuate_run()
    run["hosts"]["hv1"]["evacuate"]["outcomes"][0]["guest"] = "web 1 café <b>"
    built = report.build(run)
    page = tmp_path / "report.html"
    page.write_text(report_html.render(built), encoding="utf-8")
    dom = chromium.dom(str(page))
    cells = Cells(dom).cells
    guests = [move["guest"] for move in built["hosts"]["hv1"]["moves"]]
    assert len(guests) == 8 and "web 1 café <b>" in guests
    for guest in guests:
        assert guest in cells, guest
    assert "<b>" not in dom.replace("&lt;b&gt;", "")  # the name stayed text in the browser too
    assert dom.count("<svg") == len(re.findall("<svg", page.read_text(encoding="utf-8")))
    png = chromium.screenshot(str(page), str(tmp_path / "report.png"))
    width, height, lines = browser.png_figures(png)
    assert (width, height) == chromium.window
    assert lines > 200, "the screenshot has %d distinct rows of pixels: blank or broken" % lines
    os.makedirs(os.path.join(ROOT, ".build"), exist_ok=True)
    kept = os.path.join(ROOT, ".build", "report-html-unit.png")
    with open(png, "rb") as source, open(kept, "wb") as copy:
        copy.write(source.read())
    print("screenshot: %s (%d x %d, %d distinct rows)" % (kept, width, height, lines))


def test_a_blank_page_is_told_apart(chromium, tmp_path):
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    _width, _height, lines = browser.png_figures(chromium.screenshot(str(page), str(tmp_path / "blank.png")))
    assert lines < 10


def test_a_browser_that_overruns_is_stopped(tmp_path):
    slow = tmp_path / "slow-browser"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    with pytest.raises(browser.BrowserFailed, match="did not render .* within 1 s"):
        browser.Browser(executable=str(slow), timeout=1).dom(str(tmp_path / "x.html"))
