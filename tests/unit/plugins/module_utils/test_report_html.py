# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTML run report as a reader gets it: parsed (html.parser for the page, xml.etree for each SVG), its tables
read back and compared with the report's data, its texts escaped, its size bounded at 5,000 moves."""

from __future__ import annotations

import copy
import html.parser
import re
from xml.etree import ElementTree

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report, report_html
from ansible_collections.hostmaint.libvirt.tests.unit.plugins import report_samples

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr"}
SVG_NS = "{http://www.w3.org/2000/svg}"


class Page(html.parser.HTMLParser):
    """The page as a reader sees it: its tables (rows of cell texts, with each row's class), its text, and its
    SVG elements' sources; fails on a closing tag that does not match the open one."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.tables, self.texts, self.svgs, self.tags = [], [], [], [], []
        self._cell = None
        self.feed(text)
        self.close()
        assert not self.stack, "unclosed elements: %s" % self.stack
        self.svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "table":
            self.tables.append(dict(head=[], rows=[], classes=[], attrs=dict(attrs)))
        elif tag == "tr" and self.stack[-2:-1] == ["tbody"]:
            self.tables[-1]["rows"].append([])
            self.tables[-1]["classes"].append(dict(attrs).get("class"))
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, "</%s> closes %s" % (tag, self.stack[-1:])
        self.stack.pop()
        if tag in ("td", "th"):
            text = "".join(self._cell)
            table = self.tables[-1]
            (table["head"] if tag == "th" else table["rows"][-1]).append(text)
            self._cell = None

    def handle_data(self, data):
        self.texts.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, head):
        """The first table whose header starts with ``head``."""
        for table in self.tables:
            if table["head"][:len(head)] == list(head):
                return table
        raise AssertionError("no table with the header %s in %s" % (head, [t["head"] for t in self.tables]))


def page_of(run):
    built = report.build(run)
    text = report_html.render(built)
    return built, text, Page(text)


def svg_trees(page):
    return [ElementTree.fromstring(source) for source in page.svgs]


def titles(trees):
    return [element.text or "" for tree in trees for element in tree.iter(SVG_NS + "title")]


def test_the_page_is_well_formed_and_every_svg_parses_as_xml():
    for make in report_samples.SAMPLES.values():
        _built, text, page = page_of(make())
        assert text.startswith("<!DOCTYPE html>") and page.tags[0][0] == "html"
        for tree in svg_trees(page):
            assert tree.tag == SVG_NS + "svg"


def test_one_file_nothing_loaded_and_no_script():
    _built, text, page = page_of(report_samples.maintain_run())
    assert not [tag for tag, _attrs in page.tags if tag in ("script", "link", "img", "iframe", "object")]
    assert not [attrs for _tag, attrs in page.tags if "src" in attrs or "href" in attrs]
    assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", text)
    assert "@import" not in text and "url(" not in text


def test_every_guest_is_in_the_moves_table_with_its_figures():
    built, _text, page = page_of(report_samples.evacuate_run())
    table = page.table(("guest", "from", "to", "outcome"))
    moves = built["hosts"]["hv1"]["moves"]
    assert len(table["rows"]) == len(moves) == 8
    for row, move in zip(table["rows"], moves):
        assert row[:4] == [move["guest"], move["source"], move["destination"], move["outcome"]]
        pause = "-" if move["downtime_ms"] is None else str(move["downtime_ms"])
        assert row[table["head"].index("pause ms")] == pause
        assert row[table["head"].index("pre-copy s")] == "%.1f" % move["duration_s"]
        assert row[table["head"].index("rungs")] == str(len(move["ladder_steps"]))


def test_the_header_gives_the_worst_pause_the_percentiles_and_the_next_steps():
    built, _text, page = page_of(report_samples.evacuate_run())
    words = " ".join(" ".join(page.texts).split())
    worst = built["totals"]["worst_pause"]
    assert "Worst pause %d ms %s, hv1 \u2192 hv3" % (worst["downtime_ms"], worst["guest"]) in words
    pauses = [m["downtime_ms"] for m in built["hosts"]["hv1"]["moves"] if m["downtime_ms"] is not None]
    assert "Pause p50 / p95 %d / %d ms" % (sorted(pauses)[3], max(pauses)) in words
    assert "Longest move 14.3 s db1" in words and "Guests moved 7 of 8 moves" in words and "Failed 1" in words
    for sentence in built["next_steps"]:
        assert " ".join(sentence.split()) in words


def test_a_failed_move_shows_its_reason_in_the_table_and_on_its_bar():
    _built, _text, page = page_of(report_samples.evacuate_run())
    table = page.table(("guest", "from", "to", "outcome"))
    failed = [(row, cls) for row, cls in zip(table["rows"], table["classes"]) if row[0] == "db2"]
    reason = "cannot live-migrate db2 to hv3: operation failed: migration out job: unexpectedly failed"
    assert failed == [(failed[0][0], "failed")] and failed[0][0][3] == "failed" and failed[0][0][-1] == reason
    assert any(title.startswith("db2: failed hv1 \u2192 hv3") and title.endswith(reason)
               for title in titles(svg_trees(page)))
    assert page.table(("host", "what", "name"))["rows"] == [["hv1", "move", "db2", "failed", "hv1 \u2192 hv3", reason]]


def test_each_bar_has_a_tooltip_and_the_rungs_are_ticks_at_their_time():
    _built, _text, page = page_of(report_samples.evacuate_run())
    trees = svg_trees(page)
    for tree in trees:
        for element in tree.iter():
            if element.tag in (SVG_NS + "rect", SVG_NS + "line", SVG_NS + "path") and element.get("class") != "grid":
                assert element.find(SVG_NS + "title") is not None, ElementTree.tostring(element)
    rungs = [t for t in titles(trees) if "downtime limit" in t or "auto_converge" in t]
    assert len(rungs) == 8  # the ladder_steps of the sample: cache1 2, db1 4, db2 1, build1 1
    assert "db1: downtime limit 300 ms at 8.5 s: at 8.5 s: the dirty set did not shrink in 2 passes" in rungs
    pauses = [t for t in titles(trees) if t.startswith("db1 paused")]
    assert pauses and pauses[0] == "db1 paused 212 ms at the switchover"


def test_the_in_flight_strip_counts_the_copies_and_sums_their_rates():
    moves = [dict(timeline=dict(queued=0, started=0.0, switchover=4.0), bytes_transferred=400, duration_s=4.0),
             dict(timeline=dict(queued=0, started=2.0, switchover=6.0), bytes_transferred=800, duration_s=4.0),
             dict(timeline=dict(queued=0, started=None, switchover=None))]
    assert report_html.in_flight(moves) == [(0.0, 2.0, 1, 100.0), (2.0, 4.0, 2, 300.0), (4.0, 6.0, 1, 200.0)]
    assert report_html.in_flight([]) == []


@pytest.mark.parametrize("values, share, expected", [
    ([], 0.5, None), ([7], 0.95, 7), ([1, 2, 3, 4], 0.5, 2), (list(range(1, 101)), 0.95, 95),
    (list(range(1, 21)), 0.95, 19), ([30, 10, 20], 0.5, 20),
])
def test_percentile_is_the_nearest_rank(values, share, expected):
    assert report_html.percentile(values, share) == expected


def test_a_maintain_run_has_a_lane_per_host_with_each_step_and_its_table():
    built, _text, page = page_of(report_samples.maintain_run())
    table = page.table(("host", "step", "status", "started", "ended"))
    expected = [[name, s["name"], s["status"], s["started"], s["ended"]] for name in sorted(built["hosts"])
                for s in built["hosts"][name]["steps"]]
    assert [row[:5] for row in table["rows"]] == expected
    assert [row[1] for row in table["rows"][:7]] == ["preflight", "gate_before", "evacuate", "patch", "reboot",
                                                     "gate_after", "restore"]
    lanes = [t for t in titles(svg_trees(page)) if " on hv" in t and "UTC" in t]
    assert len(lanes) == 14 and "reboot on hv1: ok, 02:02:15 to 02:03:25 UTC (70.0 s)" in lanes
    # the restore of hv2: its failed move and its move never run are both in its table
    words = " ".join(page.texts)
    assert "hv2 \u00b7 restore" in words and "app2" in words
    assert "app1 was reset on hv2 within its settle period" in words


def test_a_check_mode_report_renders_the_plan():
    built, _text, page = page_of(report_samples.check_run())
    plan = page.table(("guest", "action", "from", "to", "wave"))
    assert plan["rows"] == [["web0", "migrate", "hv1", "hv2", "1"], ["web1", "migrate", "hv1", "hv3", "1"],
                            ["web2", "migrate", "hv1", "hv2", "2"]]
    assert page.table(("host", "guest", "list"))["rows"][0][:3] == ["hv1", "gpu1", "blocked"]
    words = " ".join(page.texts)
    assert "check mode" in words and "Planned moves 3" in " ".join(words.split())
    assert not page.svgs  # no move ran: nothing on a time axis
    assert built["check_mode"] is True


def test_disk_moves_are_a_table_and_a_bar_each():
    built, _text, page = page_of(report_samples.storage_run())
    table = page.table(("host", "guest", "disk", "to pool", "outcome"))
    disks = built["hosts"]["hv1"]["disk_moves"]
    assert [row[:5] for row in table["rows"]] == [[d["host"], d["guest"], d["target"], d["to_pool"], d["outcome"]]
                                                  for d in disks]
    assert table["classes"] == [None, None, "failed"]
    bars = [t for t in titles(svg_trees(page)) if " on hv1: " in t]
    assert len(bars) == 3 and bars[2].endswith("block copy of web1 vda failed: no space left on spare")
    assert page.table(("host", "guest", "disk", "code"))["rows"] == [
        ["hv1", "cd1", "hdc", "readonly", "hdc of cd1 is a read-only cdrom"]]


def test_every_text_is_escaped():
    run = report_samples.evacuate_run()
    evil = "<script>alert(1)</script>"
    outcomes = run["hosts"]["hv1"]["evacuate"]["outcomes"]
    outcomes[0]["guest"] = evil
    outcomes[5]["reason"] = "</title></svg><img src=x onerror=alert(2)> & \"quoted\""
    run["hosts"]["hv1"]["evacuate"]["outcomes"][1]["destination"] = "hv3\" onmouseover=\"alert(3)"
    run["hosts"]["<b>hv9</b>"] = dict(steps=[dict(name="<i>step</i>", status="ok", started="2026-12-03T02:00:01Z",
                                                  ended="2026-12-03T02:00:09Z")])
    run["run_id"] = "run<1>"
    _built, text, page = page_of(run)
    assert "<script" not in text and "<img" not in text and "<b>" not in text and "<i>" not in text
    assert "onmouseover=\"" not in text
    assert not [tag for tag, _attrs in page.tags if tag in ("script", "img", "b")]
    assert not [tag for tag, attrs in page.tags if tag == "i" and "style" not in attrs]  # the legend's swatches
    cells = [cell for table in page.tables for row in table["rows"] for cell in row]
    assert evil in cells and "<b>hv9</b>" in cells and "<i>step</i>" in cells
    assert any(t.startswith(evil + ": migrated") for t in titles(svg_trees(page)))


def test_the_same_report_gives_the_same_bytes():
    run = report_samples.maintain_run()
    first = report_html.render(report.build(copy.deepcopy(run)))
    assert report_html.render(report.build(copy.deepcopy(run))) == first


def test_five_thousand_moves_stay_under_two_megabytes_and_every_guest_is_in_the_table():
    built, text, page = page_of(report_samples.big_run(5000))
    assert len(text.encode("utf-8")) < 2 * 1024 * 1024
    table = page.table(("guest", "from", "to", "outcome"))
    assert [row[0] for row in table["rows"]] == ["guest-%05d" % n for n in range(5000)]
    trees = svg_trees(page)
    timeline = [tree for tree in trees if "timeline" in (tree.get("aria-label") or "")][0]
    rows = set(t.split(":")[0] for t in titles([timeline]) if re.match(r"guest-\d+: (migrated|aborted) ", t))
    assert 0 < len(rows) <= 2 * report_html.SLOWEST
    bands = [t for t in titles([timeline]) if t.startswith("wave ")]
    assert len(bands) == 10 and bands[0].startswith("wave 1: 500 moves, 6 failed")
    waves = page.table(("wave", "moves", "failed"))
    assert [row[:3] for row in waves["rows"]] == [[str(n), "500", bands[n - 1].split(", ")[1].split()[0]]
                                                  for n in range(1, 11)]
    words = " ".join(page.texts)
    assert "5000 moves: the timeline shows one band per wave" in words
    failed = [row for row, cls in zip(table["rows"], table["classes"]) if cls == "failed"]
    assert len(failed) == built["totals"]["failed"] == 52


def test_a_report_with_nothing_in_it_renders():
    _built, _text, page = page_of(dict(run_id="empty"))
    words = " ".join(" ".join(page.texts).split())
    assert "Nothing left to do." in words and "Guests moved 0 of 0 moves" in words


def test_a_short_run_s_axis_labels_each_tick_once():  # pylint: disable=protected-access
    labels = re.findall(r'class="muted"[^>]*>([^<]+)</text>', "".join(report_html._Axis(0.0, 4.5).draw(0, 10)))
    assert labels[:3] == ["0.0 s", "0.5 s", "1.0 s"] and len(labels) == len(set(labels))


def test_a_roll_draws_each_host_s_time_in_maintenance_under_its_lane():  # pylint: disable=protected-access
    turns = [dict(host="hv1", what="entered", at="2026-12-07T10:00:00Z"),
             dict(host="hv2", what="entered", at="2026-12-07T10:00:00Z", note="marked by hv1"),
             dict(host="hv1", what="done", at="2026-12-07T10:00:40Z"),
             dict(host="hv2", what="done", at="2026-12-07T10:01:00Z"),
             dict(host="hv3", what="entered", at="2026-12-07T10:00:50Z")]
    found = report_html._maintenance_windows(dict(roll=dict(turns=turns), ended="2026-12-07T10:01:30Z"))
    assert [(round(b - a), note) for a, b, note in found["hv2"]] == [(60, " (marked by hv1)")]
    assert [round(b - a) for a, b, _n in found["hv1"]] == [40]
    assert found["hv3"][0][2] == " (still at the run's end)"
    built = report.build(dict(report_samples.maintain_run(), roll=dict(state=dict(history=[
        dict(host="hv1", what="entered", at="2026-12-03T02:00:00Z"), dict(host="hv1", what="done",
                                                                          at="2026-12-03T02:02:00Z")]))))
    page = report_html.render(built)
    assert "in maintenance (the roll&#x27;s turns)" in page or "in maintenance (the roll's turns)" in page
    assert "hv1 in maintenance, 02:00:00 to 02:02:00 UTC (120.0 s)" in page
