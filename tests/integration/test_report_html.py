# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML run report of a real evacuation, in a real browser: evacuate.yml empties hv1 of several guests (one with
a space and non-ASCII letters in its name), the page it writes beside the JSON opens in headless Chromium
(tests/browser.py), every guest of the run is in the DOM Chromium built (in the moves table and in the timeline's
tooltips), and a screenshot is written (its path printed, a copy kept as .build/report-html-lab.png)."""

from __future__ import annotations

import glob
import html.parser
import json
import os
import shutil
import sys

import pytest

from conftest import ROOT, ansible_playbook

sys.path.insert(0, os.path.join(ROOT, "tests"))
import browser  # noqa: E402  pylint: disable=wrong-import-position

GUESTS = sorted(["rh1", "rh2", "rh 3 café", "rh4", "rh5"])


class Dom(html.parser.HTMLParser):
    """The rendered document's table cells and SVG titles."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.cells, self.titles, self._open = [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag in ("td", "title"):
            self._open = (tag, [])

    def handle_endtag(self, tag):
        if self._open and tag == self._open[0]:
            (self.cells if tag == "td" else self.titles).append("".join(self._open[1]))
            self._open = None

    def handle_data(self, data):
        if self._open:
            self._open[1].append(data)


@pytest.fixture()
def evacuees(lab):
    for name in GUESTS:
        lab.add_guest(name, "hv1")
    yield GUESTS
    for name in GUESTS:
        lab.remove_guest(name)
    lab.clear_maintenance()


def test_the_html_report_of_an_evacuation_shows_every_guest_in_a_browser(lab, evacuees, tmp_path):
    try:
        chromium = browser.Browser(timeout=120)
    except browser.BrowserMissing as exc:
        pytest.fail("%s: scripts/setup installs it (requirements-apt.txt)" % exc)
    reports = tmp_path / "reports"
    run = ansible_playbook("playbooks/evacuate.yml", "-l", "hv1", "-e", "hostmaint_report_dir=%s" % reports)
    assert run.returncode == 0, run.stdout[-3000:]
    # the last line names the page
    flat = " ".join(run.stdout.split())
    assert "HTML %s/" % reports in flat, flat[-2000:]
    pages = sorted(glob.glob(str(reports / "*evacuate*.html")))
    assert len(pages) == 1, os.listdir(str(reports))
    with open(pages[0][:-len(".html")] + ".json") as handle:
        report = json.load(handle)
    moved = [m["guest"] for m in report["hosts"]["hv1"]["moves"]]
    assert sorted(moved) == GUESTS and report["status"] == "ok", report["next_steps"]

    dom = Dom(chromium.dom(pages[0]))
    for guest in GUESTS:
        assert guest in dom.cells, "%s is not in the moves table Chromium rendered" % guest
        assert any(title.startswith("%s: migrated" % guest) for title in dom.titles), \
            "%s has no bar in the timeline Chromium rendered" % guest

    png = chromium.screenshot(pages[0], str(tmp_path / "report.png"))
    width, height, lines = browser.png_figures(png)
    assert (width, height) == chromium.window and lines > 200, (width, height, lines)
    kept = os.path.join(ROOT, ".build", "report-html-lab.png")
    os.makedirs(os.path.dirname(kept), exist_ok=True)
    shutil.copyfile(png, kept)
    print("screenshot of %s: %s (copy: %s)" % (pages[0], png, kept))
