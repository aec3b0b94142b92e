# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's demo (scripts/demo: the evacuate playbook on hv1), then the restore and preflight playbooks; the HTML
reports of the demo's evacuation and of the restore open in headless Chromium (tests/browser.py) with every guest of
the run in the DOM Chromium built (the moves table and the timeline's tooltips), and a screenshot of the evacuation's
is kept as .build/report-html-lab.png (the README's picture comes from it)."""

from __future__ import annotations

import glob
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tests"))
import browser  # noqa: E402  pylint: disable=wrong-import-position

DEMO_GUESTS = ["db1", "web1", "web2", "web3"]
ODD = "web 4 ünï"  # a name with spaces and non-ASCII letters, added to hv1 before the demo: it goes along


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


def newest_report(kind):
    """(the newest HTML report of a ``kind`` run, evacuate or restore, in the demo's hostmaint-reports; its JSON)."""
    pages = sorted(glob.glob(os.path.join(ROOT, "hostmaint-reports", "*-%s-*.html" % kind)), key=os.path.getmtime)
    assert pages, "no HTML report of a %s run in %s/hostmaint-reports" % (kind, ROOT)
    with open(pages[-1][:-len(".html")] + ".json") as handle:
        return pages[-1], json.load(handle)


def assert_every_guest_in_the_browser(chromium, page, guests, outcome="migrated"):
    dom = Dom(chromium.dom(page))
    for guest in guests:
        assert guest in dom.cells, "%s is not in the moves table Chromium rendered from %s" % (guest, page)
        assert any(title.startswith("%s: %s" % (guest, outcome)) for title in dom.titles), \
            "%s has no bar in the timeline Chromium rendered from %s" % (guest, page)


def run(*cmd):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    return subprocess.run(list(cmd), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=900, check=False)


def test_demo_evacuates_hv1_and_the_restore_playbook_brings_it_back(lab, tmp_path):
    try:
        chromium = browser.Browser(timeout=120)
    except browser.BrowserMissing as exc:
        pytest.fail("%s: scripts/setup installs it (requirements-apt.txt)" % exc)
    try:
        lab.add_guest(ODD, "hv1")
        demo = run(os.path.join(ROOT, "scripts", "demo"))
        assert demo.returncode == 0, demo.stdout[-3000:]
        placement = lab.placement()
        assert " %s " % ODD in demo.stdout  # the lab's status, printed by the demo
        for guest in DEMO_GUESTS + [ODD]:
            assert placement[guest] in ("hv2", "hv3"), (guest, placement)
            assert len(lab.defined_on(guest)) == 1
        assert lab.in_maintenance("hv1")
        assert "failed=0" in demo.stdout
        away, report = newest_report("evacuate")
        assert "HTML %s" % away in " ".join(demo.stdout.split())  # the last line names the page
        assert sorted(m["guest"] for m in report["hosts"]["hv1"]["moves"]) == sorted(DEMO_GUESTS + [ODD])
        assert_every_guest_in_the_browser(chromium, away, DEMO_GUESTS + [ODD])
        png = chromium.screenshot(away, str(tmp_path / "report.png"))
        width, height, lines = browser.png_figures(png)
        assert (width, height) == chromium.window and lines > 200, (width, height, lines)
        kept = os.path.join(ROOT, ".build", "report-html-lab.png")
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        shutil.copyfile(png, kept)
        print("screenshot of %s: %s" % (away, kept))

        restore = run("ansible-playbook", "playbooks/restore.yml", "-l", "hv1")
        assert restore.returncode == 0, restore.stdout[-3000:]
        # the operator sees every guest that came home, the worst pause and where the report is (the output's
        # YAML may wrap long lines)
        flat = " ".join(restore.stdout.split())
        # its progress while it ran: a start and a switchover line for every guest that came home
        for guest in DEMO_GUESTS + [ODD]:
            for what in ("started", "switched over"):
                assert re.search(r"^\[hv1\] %s hv[23]->hv1: %s \(at \S+\)$" % (re.escape(guest), what),
                                 restore.stdout, re.M), (guest, what, restore.stdout[-3000:])
        for guest in DEMO_GUESTS + [ODD]:
            assert re.search(r"%s hv[23] -> hv1: migrated in [0-9.]+ s, pause [0-9]+ ms" % re.escape(guest), flat), guest
        assert re.search(r"ok: %d guest\(s\) moved, 0 failed, worst pause [0-9]+ ms" % (len(DEMO_GUESTS) + 1), flat), \
            flat[-2000:]
        assert re.search(r"report \S+/hostmaint-reports/\S+-restore-\w+\.md", flat), flat[-2000:]
        for guest in DEMO_GUESTS + [ODD]:
            assert lab.defined_on(guest) == ["hv1"] and lab.running_on(guest) == ["hv1"]
            assert lab.record("hv1", guest) is None
        assert not lab.in_maintenance("hv1")
        home, report = newest_report("restore")
        assert report["status"] == "ok" and report["totals"]["moved"] == len(DEMO_GUESTS) + 1
        assert_every_guest_in_the_browser(chromium, home, DEMO_GUESTS + [ODD])

        # preflight changes nothing and passes while every guest can be placed
        preflight = run("ansible-playbook", "playbooks/preflight.yml", "-l", "hv1")
        assert preflight.returncode == 0, preflight.stdout[-3000:]
        assert "changed=0" in preflight.stdout and "failed=0" in preflight.stdout
        for guest in DEMO_GUESTS:
            assert lab.defined_on(guest) == ["hv1"]
        assert not lab.in_maintenance("hv1")
    finally:
        for guest in DEMO_GUESTS + [ODD]:
            lab.remove_guest(guest)
        lab.clear_maintenance()
