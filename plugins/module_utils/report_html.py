# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report as one self-contained HTML page: what ``report.build`` gives, drawn and tabled.

Why string building with the standard library (``html.escape``) and no template engine: this module is imported by
the run_report module, which runs wherever the task is delegated (any Python the host has, no Jinja2 there), and by
its action plugin on the controller; ansible-test's import sanity test checks module_utils with the standard library
alone. Every text that comes from the run goes through ``_e`` (``html.escape`` with quotes), in elements and in
attributes alike, so a guest named ``<script>`` is text.

The page is one file with inline CSS and inline SVG: no JavaScript, no font, image or style from the network, so it
opens from disk, as a mail attachment and in ARA's file view the same way. Each bar carries an SVG ``<title>``
(the browser's own tooltip) with its figures, and every figure drawn is also in a table, for a reader (or a screen
reader, or a text-only mail client) that sees no picture.

What it shows, top to bottom:

1. header: status, hosts, guests moved, blocked and failed, the worst pause with its guest and route, the p50 and
   p95 pause (nearest rank over the moves that paused a guest), the longest move, bytes, and the next steps;
2. host lanes (runs whose hosts recorded steps with times: maintain, rolling upgrade): each step on the run's
   clock (UTC), one lane per host;
3. per engine result (a host's evacuation or restore): the migrations in flight and their aggregate rate over the
   engine's own clock (seconds since that evacuation or restore began: the engine's timeline has no wall-clock
   anchor, so each result gets its own axis instead of a guessed one), then one row per move: waiting for a slot
   (queued to started), pre-copy (started to switchover) with a tick per convergence-ladder rung, the pause at the
   switchover with its length, the settle check (switchover to checked); a failed or aborted move is red with its
   reason. Past ROW_LIMIT moves, the rows become one band per wave plus the SLOWEST slowest moves and the failed
   ones (at most SLOWEST of them), and the table below keeps every move: 5,000 moves stay well under 2 MB;
4. disk moves (storage_evacuate.yml): a table and a bar per disk with its copy time;
5. failures, guests not moved, gates and steps, as tables.

Deterministic: the page holds nothing but the report (no clock, no random id), so the same report renders to the
same bytes and the writer leaves an unchanged file alone.
"""

from __future__ import annotations

import datetime
import html
import re

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report

# Above this many moves in one engine result, its timeline is aggregated (the table keeps every move).
ROW_LIMIT = 300

# How many of the slowest moves (and of the failed ones) an aggregated timeline still draws one row each.
SLOWEST = 40

# How many next steps the header lists before the rest fold away (a run with many failed moves has one each).
NEXT_STEPS = 8

# How many buckets the in-flight strip draws when there are more than ROW_LIMIT changes.
STRIP_BUCKETS = 240

# Geometry of the charts, in SVG user units (the SVG scales to the page's width).
WIDTH = 1160
LABEL = 190
RIGHT = 150
ROW = 18
AXIS = 26

# Colours: one meaning each, named in the legend.
COLOURS = dict(
    waiting="#c9d1d9", precopy="#4f8fd6", pause="#d4570b", settle="#8fd19e", failed="#cf222e", aborted="#b62324",
    rung="#1f2328", planned="#a371f7", inflight="#4f8fd6", rate="#d4570b", step_ok="#2da44e", step_failed="#cf222e",
    step_skipped="#c9d1d9", step_other="#7d8590", disk="#8250df", maintenance="#57606a",
)
STATUS_COLOURS = dict(ok="#1a7f37", partial="#9a6700", failed="#cf222e")

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#1f2328;
background:#f6f8fa;margin:0;padding:24px}
main{max-width:1240px;margin:0 auto;background:#fff;border:1px solid #d0d7de;border-top-width:8px;border-radius:8px;
padding:24px 32px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:32px 0 8px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}h3{font-size:16px;margin:20px 0 6px}
.status{display:inline-block;color:#fff;border-radius:6px;padding:2px 12px;font-weight:700;
text-transform:uppercase;letter-spacing:.04em;vertical-align:middle;font-size:18px}
.sub{color:#59636e;margin:0 0 16px}
.figures{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:10px;margin:16px 0}
.figure{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px}
.figure dt{font-size:12px;color:#59636e;text-transform:uppercase;letter-spacing:.04em}
.figure dd{margin:0;font-size:19px;font-weight:600}.figure dd small{font-size:13px;font-weight:400;color:#59636e}
.bad{color:#cf222e}.warn{color:#9a6700}
ol.next{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:10px 10px 10px 36px}
ol.next.clear{background:#dafbe1;border-color:#4ac26b}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;font-size:13px;margin:8px 0 12px}
.legend span{display:inline-flex;align-items:center;gap:6px}
.legend i{display:inline-block;width:22px;height:11px;border-radius:2px}
svg{display:block;width:100%;height:auto;margin:6px 0 4px}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;fill:#1f2328}
svg .muted{fill:#59636e}svg .grid{stroke:#eaeef2}svg .reason{fill:#cf222e}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 12px}
th,td{border-bottom:1px solid #eaeef2;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600;position:sticky;top:0;white-space:nowrap}
NUMERIC_PLACEHOLDER{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td{background:#ffebe9}
.note{color:#59636e;font-size:13px}
details summary{cursor:pointer;font-weight:600;margin:6px 0}
footer{color:#59636e;font-size:12px;margin-top:28px}
"""
# right-aligned columns: table class rN aligns its column N (0-based), see _table
CSS = CSS.replace("NUMERIC_PLACEHOLDER", ",".join("table.r%d td:nth-child(%d)" % (n, n + 1) for n in range(1, 12)))


# ---------------------------------------------------------------------------------------------
# Small helpers: escaping and figures.
# ---------------------------------------------------------------------------------------------

def _e(value):
    """Text for HTML or SVG, in an element or in a quoted attribute: None is an empty string."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _f(value, digits=1):
    """A number with a fixed number of decimals, or '-'."""
    value = _num(value)
    return "-" if value is None else "%.*f" % (digits, value)


def _bytes(count):
    size = float(_num(count) or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1024.0
    return "-"  # not reached


def _rate(bytes_per_s):
    return _bytes(bytes_per_s) + "/s"


def _short(text, length):
    text = "" if text is None else " ".join(str(text).split())
    return text if len(text) <= length else text[:length - 1] + "\u2026"


def percentile(values, share):
    """The nearest-rank percentile (share 0.5 for the median, 0.95 for p95) of values; None for no value."""
    values = sorted(v for v in values if _num(v) is not None)
    if not values:
        return None
    rank = max(1, -(-int(round(share * 1000)) * len(values) // 1000))  # ceil(share * n), in integers
    return values[min(rank, len(values)) - 1]


def _clock(seconds):
    """0 s, 45 s, 1:30, 1:02:03 for an axis label."""
    seconds = int(round(seconds))
    if seconds < 60:
        return "%d s" % seconds
    minutes, second = divmod(seconds, 60)
    if minutes < 60:
        return "%d:%02d" % (minutes, second)
    hours, minute = divmod(minutes, 60)
    return "%d:%02d:%02d" % (hours, minute, second)


def _tick_step(span):
    """A round tick step giving 5 to 12 ticks over span seconds."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400):
        if span / step <= 12:
            return step
    return 86400 * max(1, int(span / 86400 / 12) + 1)


def _route(entry):
    entry = entry or {}
    return "%s \u2192 %s" % (entry.get("source") or "?", entry.get("destination") or "?")


def _svg(height, body, label):
    return ('<svg viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">%s</svg>'
            % (WIDTH, height, _e(label), "".join(body)))


def _rect(x, y, width, height, colour, title, extra=""):
    return '<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"%s><title>%s</title></rect>' % (
        x, y, max(width, 0.0), height, colour, extra, _e(title))


def _text(x, y, text, anchor="start", cls=None):
    return '<text x="%.1f" y="%.1f"%s%s>%s</text>' % (
        x, y, ' text-anchor="%s"' % anchor if anchor != "start" else "", ' class="%s"' % cls if cls else "", _e(text))


class _Axis(object):
    """A linear time axis from ``first`` to ``last`` (seconds) over the plot area; ``label`` names a tick."""

    def __init__(self, first, last, label=_clock):
        self.first = float(first)
        self.last = float(last) if last > first else float(first) + 1.0
        self.label = label
        self.left, self.right = LABEL, WIDTH - RIGHT

    def x(self, at):
        share = (float(at) - self.first) / (self.last - self.first)
        return self.left + max(0.0, min(1.0, share)) * (self.right - self.left)

    def width(self, first, last):
        return max(self.x(last) - self.x(first), 0.0)

    def draw(self, top, bottom):
        """Grid lines from top to bottom and the tick labels under them."""
        step = _tick_step(self.last - self.first)
        parts = []
        tick = (int(self.first // step) + (0 if self.first % step == 0 else 1)) * step
        while tick <= self.last + 1e-9:
            x = self.x(tick)
            parts.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>' % (x, top, x, bottom))
            # half-second ticks of a short run's clock would print twice the same whole second
            label = ("%.1f s" % tick) if step < 1 and self.label is _clock else self.label(tick)
            parts.append(_text(x, bottom + 14, label, anchor="middle", cls="muted"))
            tick += step
        return parts


def _legend(items):
    return '<div class="legend">%s</div>' % "".join(
        '<span><i style="background:%s"></i>%s</span>' % (COLOURS[key], _e(text)) for key, text in items)


def _table(head, rows, numeric=(), row_class=None):
    """A table; ``numeric`` are the indexes of its right-aligned columns (classes r1 to r11 of the table, so that
    5,000 rows do not each repeat a cell class); row_class(row index) gives a row's class."""
    classes = " ".join("r%d" % index for index in numeric)
    out = ['<table class="%s"><thead><tr>' % classes if classes else "<table><thead><tr>",
           "".join("<th>%s</th>" % _e(cell) for cell in head), "</tr></thead><tbody>"]
    for index, row in enumerate(rows):
        cls = row_class(index) if row_class else None
        out.append('<tr class="%s">' % cls if cls else "<tr>")
        out.append("".join("<td>%s</td>" % _e(cell) for cell in row))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# The moves of one engine result: intervals, in-flight count and rate.
# ---------------------------------------------------------------------------------------------

def _phases(move):
    """(queued, started, switchover, checked, end) of a move, seconds on its engine's clock; None when unknown.
    ``end`` is where its bar stops: the settle check, else the switchover, else its start plus its duration, else
    done."""
    timeline = move.get("timeline") or {}
    queued, started, switchover = _num(timeline.get("queued")), _num(timeline.get("started")), _num(
        timeline.get("switchover"))
    checked, done = _num(timeline.get("checked")), _num(timeline.get("done"))
    end = checked if checked is not None else switchover
    if end is None and started is not None:
        duration = _num(move.get("duration_s"))
        end = started + duration if duration is not None else done
    return queued, started, switchover, checked, end


def _copy_interval(move):
    """(first, last) of a move's copy (started to switchover, or to its end when it never switched over)."""
    _queued, started, switchover, _checked, end = _phases(move)
    if started is None:
        return None
    last = switchover
    if last is None:
        duration = _num(move.get("duration_s"))
        last = started + duration if duration is not None else end
    if last is None or last < started:
        return None
    return started, last


def in_flight(moves):
    """The migrations in flight over time, from the moves' copy intervals: a list of (from, to, count, rate) with
    rate the bytes per second of the moves copying then (each move's bytes spread evenly over its copy). Sorted by
    time; empty when no move has an interval."""
    changes = {}
    for move in moves:
        interval = _copy_interval(move)
        if interval is None:
            continue
        first, last = interval
        rate = (_num(move.get("bytes_transferred")) or 0) / (last - first) if last > first else 0.0
        for at, count, flow in ((first, 1, rate), (last, -1, -rate)):
            old = changes.get(at, (0, 0.0))
            changes[at] = (old[0] + count, old[1] + flow)
    segments, count, flow = [], 0, 0.0
    times = sorted(changes)
    for index, at in enumerate(times[:-1]):
        count += changes[at][0]
        flow += changes[at][1]
        segments.append((at, times[index + 1], count, max(flow, 0.0)))
    return segments


def _buckets(segments, count=24):
    """The in-flight segments summed into at most ``count`` equal time buckets: (from, to, peak in flight, mean
    rate), for the table beside the strip."""
    if not segments:
        return []
    first, last = segments[0][0], segments[-1][1]
    width = (last - first) / float(count) if last > first else 1.0
    rows = []
    for index in range(count):
        low, high = first + index * width, first + (index + 1) * width
        peak, volume = 0, 0.0
        for start, end, flying, rate in segments:
            overlap = min(end, high) - max(start, low)
            if overlap > 0:
                peak = max(peak, flying)
                volume += rate * overlap
        rows.append((low, high, peak, volume / width if width else 0.0))
        if last <= first:
            break
    return rows


# ---------------------------------------------------------------------------------------------
# Sections.
# ---------------------------------------------------------------------------------------------

def _pauses(moves):
    return [m["downtime_ms"] for m in moves if _num(m.get("downtime_ms")) is not None and m.get("outcome") != "planned"]


def _header(report, moves):
    totals = report.get("totals") or {}
    status = report.get("status") or "unknown"
    colour = STATUS_COLOURS.get(status, "#59636e")
    title = "%s run %s" % (report.get("playbook") or "maintenance", report.get("run_id"))
    out = ['<header><h1>%s <span class="status" style="background:%s">%s</span></h1>' % (
        _e(title), colour, _e(status + (" \u00b7 check mode" if report.get("check_mode") else "")))]
    when = []
    if report.get("started") or report.get("ended"):
        when.append("started %s, ended %s" % (report.get("started") or "?", report.get("ended") or "?"))
    if report.get("duration_s") is not None:
        when.append("took %s" % _clock(report["duration_s"]))
    hosts = sorted(report.get("hosts") or {})
    when.append("hosts: %s" % (", ".join(hosts) if hosts else "none"))
    out.append('<p class="sub">%s</p>' % _e("; ".join(when)))
    rolled = report.get("roll")
    if rolled:
        options = rolled.get("options") or {}
        said = ["roll: %s host(s) of a cluster at once" % options.get("parallel_hosts", 1),
                "guests stay where they land" if options.get("return_mode") == "stay" else "guests return home"]
        if options.get("overlap"):
            said.append("a restore overlaps the next drain")
        if rolled.get("forecast_s") is not None:
            low, high = (list(rolled.get("forecast_range_s") or []) + [None, None])[:2]
            said.append("forecast %s (%s to %s)" % (_clock(rolled["forecast_s"]), _clock(low) if low is not None
                                                    else "?", _clock(high) if high is not None else "?"))
        if rolled.get("measured_s") is not None:
            said.append("took %s" % _clock(rolled["measured_s"]))
        if rolled.get("empty_at_end"):
            said.append("empty at the end: %s" % ", ".join(rolled["empty_at_end"]))
        out.append('<p class="sub">%s</p>' % _e("; ".join(said)))

    pauses = _pauses(moves)
    worst, longest = totals.get("worst_pause"), totals.get("longest_move")
    hosts_data = report.get("hosts") or {}
    disks = any((h or {}).get("disk_moves") or (h or {}).get("disks_refused") for h in hosts_data.values())
    figures = []
    if totals.get("planned"):
        figures.append(("Planned moves", "%d" % totals["planned"], "check mode: nothing changed", None))
    if totals.get("moves") or not (disks or totals.get("planned")):
        figures += [
            ("Guests moved", "%d" % (totals.get("moved") or 0), "of %d moves" % (totals.get("moves") or 0), None),
            ("Failed", "%d" % (totals.get("failed") or 0), "failed or aborted",
             "bad" if totals.get("failed") else None),
        ]
    figures.append(("Blocked", "%d" % (totals.get("blocked") or 0), "%d not run, %d skipped" % (
        totals.get("not_run") or 0, totals.get("skipped") or 0), "warn" if totals.get("blocked") else None))
    if totals.get("moves") or not (disks or totals.get("planned")):
        figures += [
            ("Worst pause", "%s ms" % worst["downtime_ms"] if worst else "none",
             "%s, %s" % (worst["guest"], _route(worst)) if worst else "", None),
            ("Pause p50 / p95", "%s / %s ms" % (_f(percentile(pauses, 0.5), 0), _f(percentile(pauses, 0.95), 0))
             if pauses else "none", "over %d paused moves" % len(pauses) if pauses else "", None),
            ("Longest move", "%s s" % _f(longest["duration_s"]) if longest else "none",
             "%s, %s" % (longest["guest"], _route(longest)) if longest else "", None),
            ("Transferred", _bytes(totals.get("bytes_transferred")), "by the migrations", None),
        ]
    if disks:
        figures += [
            ("Disks moved", "%d" % (totals.get("disks_moved") or 0), "%s copied" % _bytes(totals.get("disk_bytes")),
             None),
            ("Disks failed", "%d" % (totals.get("disks_failed") or 0), "failed or aborted",
             "bad" if totals.get("disks_failed") else None),
            ("Disks refused", "%d" % (totals.get("disks_refused") or 0), "left where they are",
             "warn" if totals.get("disks_refused") else None),
        ]
    out.append('<dl class="figures">')
    for name, value, note, cls in figures:
        out.append('<div class="figure"><dt>%s</dt><dd%s>%s <small>%s</small></dd></div>' % (
            _e(name), ' class="%s"' % cls if cls else "", _e(value), _e(note)))
    out.append("</dl>")
    steps = report.get("next_steps") or []
    out.append("<h2>Next steps</h2>")
    if steps:
        out.append('<ol class="next">%s</ol>' % "".join("<li>%s</li>" % _e(step) for step in steps[:NEXT_STEPS]))
        if len(steps) > NEXT_STEPS:
            out.append('<details><summary>%d more next steps</summary><ol class="next" start="%d">%s</ol></details>'
                       % (len(steps) - NEXT_STEPS, NEXT_STEPS + 1,
                          "".join("<li>%s</li>" % _e(step) for step in steps[NEXT_STEPS:])))
    else:
        out.append('<ol class="next clear"><li>Nothing left to do.</li></ol>')
    out.append("</header>")
    return "".join(out)


# The maintenance cycle's steps (roles/maintain, roles/hypervisor_patch), each its own colour in the host lanes;
# any other step is grey, and a failed one red whatever its name.
STEP_COLOURS = (("preflight", "#8c959f"), ("gate", "#1b7c83"), ("evacuate", "#4f8fd6"), ("patch", "#8250df"),
                ("reboot", "#bf8700"), ("restore", "#1a7f37"))


def _step_colour(step):
    if step.get("status") in ("failed", "unreachable"):
        return COLOURS["step_failed"]
    if step.get("status") == "skipped":
        return COLOURS["step_skipped"]
    name = str(step.get("name") or "")
    for prefix, colour in STEP_COLOURS:
        if name.startswith(prefix):
            return colour
    return COLOURS["step_other"]


def _moment(value):
    """Seconds since the epoch of an ISO-8601 time (report.parse_time's rules), or None."""
    moment = report.parse_time(value)
    return None if moment is None else moment.timestamp()


def _utc(seconds):
    """HH:MM:SS, UTC, of seconds since the epoch (an axis label)."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%H:%M:%S")


def _maintenance_windows(report):
    """{host: [(first, last, note)]}: when each host of a rolling upgrade was in maintenance, from its turns (entered,
    then done, skipped or failed; a window still open ends with the run)."""
    windows, opened = {}, {}
    end = _moment(report.get("ended"))
    for turn in ((report.get("roll") or {}).get("turns") or []):
        at = _moment(turn.get("at"))
        host = turn.get("host")
        if at is None or not host:
            continue
        if turn.get("what") == "entered":
            opened[host] = (at, " (%s)" % turn["note"] if turn.get("note") else "")
        elif turn.get("what") in ("done", "skipped", "failed") and host in opened:
            first, note = opened.pop(host)
            windows.setdefault(host, []).append((first, at, note))
    for host, (first, note) in opened.items():
        if end is not None and end >= first:
            windows.setdefault(host, []).append((first, end, note + " (still at the run's end)"))
    return windows


def _host_lanes(report):
    """The steps of every host on the run's clock; '' when no step has both times."""
    lanes = []
    for name in sorted(report.get("hosts") or {}):
        steps = []
        for step in (report["hosts"][name] or {}).get("steps") or []:
            first, last = _moment(step.get("started")), _moment(step.get("ended"))
            if first is not None and last is not None and last >= first:
                steps.append((first, last, step))
        if steps:
            lanes.append((name, steps))
    if not lanes:
        return ""
    windows = _maintenance_windows(report)
    times = [t for _name, steps in lanes for first, last, _s in steps for t in (first, last)]
    times += [t for spans in windows.values() for first, last, _w in spans for t in (first, last)]
    for key in ("started", "ended"):
        if _moment(report.get(key)) is not None:
            times.append(_moment(report.get(key)))
    axis = _Axis(min(times), max(times), label=_utc)
    lane = 40 if windows else 34
    height = len(lanes) * lane + AXIS + 8
    body = axis.draw(4, height - AXIS)
    for index, (name, steps) in enumerate(lanes):
        y = 6 + index * lane
        body.append(_text(LABEL - 8, y + 16, _short(name, 26), anchor="end"))
        for first, last, what in windows.get(name, []):  # a rolling upgrade: the host's time in maintenance
            body.append(_rect(axis.x(first), y + 28, max(axis.width(first, last), 2.0), 5, COLOURS["maintenance"],
                              "%s in maintenance, %s to %s UTC (%s s)%s" % (
                                  name, _utc(first), _utc(last), _f(last - first), what)))
        for first, last, step in steps:
            width = max(axis.width(first, last), 2.0)
            title = "%s on %s: %s, %s to %s UTC (%s s)%s" % (
                step["name"], name, step["status"], _utc(first), _utc(last), _f(last - first),
                ": " + step["msg"] if step.get("msg") else "")
            body.append(_rect(axis.x(first), y, width, lane - 8, _step_colour(step), title,
                              ' stroke="#fff" stroke-width="1"'))
            if width > 7.0 * len(step["name"]) + 6:
                body.append('<text x="%.1f" y="%.1f" fill="#fff" style="fill:#fff">%s</text>' % (
                    axis.x(first) + 4, y + 15, _e(step["name"])))
    rows = [(name, step["name"], step["status"], step.get("started") or "-", step.get("ended") or "-",
             _f(step.get("duration_s")), step.get("msg") or "")
            for name, steps in lanes for _first, _last, step in steps]
    maintenance = ('<span><i style="background:%s"></i>in maintenance (the roll\'s turns)</span>'
                   % COLOURS["maintenance"]) if windows else ""
    return "".join([
        "<h2>Host lanes</h2>",
        '<p class="note">Each host\'s steps on the run\'s clock (UTC); hover a step for its figures.</p>',
        '<div class="legend">%s<span><i style="background:%s"></i>failed (any step)</span>%s</div>' % (
            "".join('<span><i style="background:%s"></i>%s</span>' % (colour, name) for name, colour in STEP_COLOURS),
            COLOURS["step_failed"], maintenance),
        _svg(height, body, "steps per host over the run"),
        _table(("host", "step", "status", "started", "ended", "took s", "message"), rows, numeric=(5,),
               row_class=lambda i: "failed" if rows[i][2] in ("failed", "unreachable") else None),
    ])


def _rung_time(step, started):
    """When a ladder rung was taken, on the engine's clock: its ``at_s`` (seconds since the copy started), else
    the 'at 4.0 s:' its reason begins with (reports from before at_s)."""
    at = _num(step.get("at_s"))
    if at is None:
        found = re.match(r"at ([0-9.]+) s", str(step.get("reason") or ""))
        at = float(found.group(1)) if found else None
    return None if at is None else started + at


def _rung_label(step):
    value = step.get("value")
    if step.get("kind") == "set_downtime" and value is not None:
        return "downtime limit %s ms" % value
    return "%s%s" % (step.get("kind") or "step", " %s" % value if value is not None else "")


def _move_title(move):
    queued, started, switchover, checked, _end = _phases(move)
    parts = ["%s: %s %s" % (move["guest"], move.get("outcome"), _route(move))]
    if started is not None and queued is not None:
        parts.append("waited %s s for a slot" % _f(started - queued))
    if move.get("duration_s") is not None:
        parts.append("pre-copy %s s" % _f(move["duration_s"]))
    if move.get("downtime_ms") is not None:
        parts.append("pause %s ms" % move["downtime_ms"])
    if checked is not None and switchover is not None:
        parts.append("settle %s s" % _f(checked - switchover))
    if move.get("bytes_transferred"):
        parts.append(_bytes(move["bytes_transferred"]))
    if move.get("iterations") is not None:
        parts.append("%s passes" % move["iterations"])
    if move.get("reason"):
        parts.append(move["reason"])
    return "; ".join(parts)


def _move_row(body, axis, y, move):
    """One move's bars at height y."""
    queued, started, switchover, checked, end = _phases(move)
    failed = move.get("outcome") in ("failed", "aborted")
    title = _move_title(move)
    label = _short(move["guest"], 28)
    body.append('<text x="%.1f" y="%.1f" text-anchor="end"%s>%s<title>%s</title></text>' % (
        LABEL - 8, y + 12, ' class="reason"' if failed else "", _e(label), _e(title)))
    bar_height = ROW - 6
    if queued is not None and started is not None and started > queued:
        body.append(_rect(axis.x(queued), y + 4, axis.width(queued, started), bar_height - 6, COLOURS["waiting"],
                          "%s waited %s s for a slot (queued at %s s, started at %s s)" % (
                              move["guest"], _f(started - queued), _f(queued), _f(started))))
    copy = _copy_interval(move)
    if copy is not None:
        colour = COLOURS[move["outcome"]] if failed else COLOURS["precopy"]
        body.append(_rect(axis.x(copy[0]), y + 1, max(axis.width(*copy), 1.5), bar_height, colour, title))
        for step in move.get("ladder_steps") or []:
            at = _rung_time(step, copy[0]) if isinstance(step, dict) else None
            if at is not None:
                x = axis.x(at)
                body.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2">'
                            '<title>%s</title></line>' % (x, y - 1, x, y + bar_height + 3, COLOURS["rung"], _e(
                                "%s: %s at %s s: %s" % (move["guest"], _rung_label(step), _f(at - copy[0]),
                                                        step.get("reason") or ""))))
    if switchover is not None and checked is not None and checked > switchover:
        body.append(_rect(axis.x(switchover), y + 4, axis.width(switchover, checked), bar_height - 6, COLOURS["settle"],
                          "%s settle check: %s s after the switchover (%s)" % (
                              move["guest"], _f(checked - switchover), move.get("state_after") or "state unknown")))
    if switchover is not None and move.get("downtime_ms") is not None:
        x = axis.x(switchover)
        body.append('<path d="M%.1f %.1fl4 -5h-8z" fill="%s"><title>%s</title></path>' % (
            x, y + 1, COLOURS["pause"], _e("%s paused %s ms at the switchover" % (move["guest"],
                                                                                  move["downtime_ms"]))))
        paused = "%s paused %s ms" % (move["guest"], move["downtime_ms"])
        body.append(_rect(x - 1, y, 3, bar_height + 2, COLOURS["pause"], paused))
    right = WIDTH - RIGHT + 6
    if failed:
        reason = move.get("reason") or "no reason given"
        if not reason.startswith(move["outcome"]):
            reason = "%s: %s" % (move["outcome"], reason)
        body.append(_text(right, y + 12, _short(reason, 26), cls="reason"))
    elif move.get("downtime_ms") is not None:
        body.append(_text(right, y + 12, "%s ms pause" % move["downtime_ms"]))
    elif copy is None:
        body.append(_text(right, y + 12, move.get("outcome") or "", cls="muted"))


def _band(wave, moves):
    """The figures of one wave's band: (first, last, moves, failed, p50, p95, max pause), None when nothing has a
    time."""
    times = [t for m in moves for t in _phases(m)[1:] if t is not None]
    if not times:
        return None
    pauses = _pauses(moves)
    return (min(times), max(times), len(moves), len([m for m in moves if m.get("outcome") in ("failed", "aborted")]),
            percentile(pauses, 0.5), percentile(pauses, 0.95), max(pauses) if pauses else None)


def _band_row(body, axis, y, wave, moves):
    """One band for the moves of a wave: from its first start to its last end, with its figures."""
    figures = _band(wave, moves)
    if figures is None:
        return
    first, last, count, failed, p50, p95, worst = figures
    title = "wave %s: %d moves, %d failed, %s to %s s, pause p50 %s ms, p95 %s ms, max %s ms" % (
        wave, count, failed, _f(first), _f(last), _f(p50, 0), _f(p95, 0), "-" if worst is None else worst)
    body.append(_text(LABEL - 8, y + 12, "wave %s (%d moves)" % (wave, count), anchor="end"))
    body.append(_rect(axis.x(first), y + 1, max(axis.width(first, last), 1.5), ROW - 6,
                      COLOURS["failed"] if failed else COLOURS["precopy"], title, ' opacity="0.55"'))
    body.append(_text(WIDTH - RIGHT + 6, y + 12, "%d failed" % failed if failed else "p95 %s ms" % _f(p95, 0),
                      cls="reason" if failed else None))


def _timeline_moves(moves):
    """(rows drawn one per move, bands per wave or None, note): every move up to ROW_LIMIT, else the slowest and
    the failed ones over per-wave bands."""
    timed = [m for m in moves if _copy_interval(m) is not None or _phases(m)[0] is not None]
    if len(timed) <= ROW_LIMIT:
        return timed, None, None
    order = dict((id(m), index) for index, m in enumerate(timed))
    failed = [m for m in timed if m.get("outcome") in ("failed", "aborted")][:SLOWEST]
    slowest = sorted(timed, key=lambda m: (-(_num(m.get("duration_s")) or 0), order[id(m)]))[:SLOWEST]
    chosen = dict((id(m), m) for m in failed + slowest)
    rows = sorted(chosen.values(), key=lambda m: order[id(m)])
    waves = {}
    for move in timed:
        waves.setdefault(_num(move.get("wave")) or 0, []).append(move)
    note = ("%d moves: the timeline shows one band per wave, then the %d slowest moves and the first %d failed ones "
            "(%d rows); the table below lists every move." % (len(timed), len(slowest), len(failed), len(rows)))
    return rows, sorted(waves.items()), note


def _engine_section(host, kind, section, moves):
    out = ["<h2>%s \u00b7 %s</h2>" % (_e(host), _e(kind))]
    summary = []
    if section.get("status") == "failed":
        summary.append("%s failed: %s" % (kind, section.get("msg") or "no message"))
    if section.get("check_mode"):
        summary.append("check mode: the plan, nothing was moved")
    if summary:
        out.append('<p class="note">%s</p>' % _e("; ".join(summary)))
    planned = [m for m in moves if m.get("outcome") == "planned"]
    done = [m for m in moves if m.get("outcome") != "planned"]
    if planned:
        out.append("<h3>Plan: %d move%s</h3>" % (len(planned), "" if len(planned) == 1 else "s"))
        rows = [(m["guest"], m.get("action") or "-", m.get("source") or "-", m.get("destination") or "-",
                 _f(m.get("wave"), 0)) for m in planned]
        out.append(_table(("guest", "action", "from", "to", "wave"), rows, numeric=(4,)))
    if not done:
        return "".join(out)
    segments = in_flight(done)
    drawn, bands, note = _timeline_moves(done)
    ends = [t for m in done for t in _phases(m) if t is not None]
    if ends:
        axis = _Axis(min([0.0] + ends), max(ends))
        if segments:
            out.append(_strip(axis, segments, host, kind))
        if drawn:
            out.append("<h3>Guest timeline</h3>")
            out.append(_legend((("waiting", "waiting for a slot"), ("precopy", "pre-copy"), ("rung",
                                "ladder rung"), ("pause", "pause (switchover)"), ("settle", "settle check"),
                                ("failed", "failed"), ("aborted", "aborted"))))
            if note:
                out.append('<p class="note">%s</p>' % _e(note))
            rows = (len(bands) if bands else 0) + len(drawn)
            height = rows * ROW + AXIS + 10
            body = axis.draw(2, height - AXIS)
            y = 6
            for wave, wave_moves in bands or []:
                _band_row(body, axis, y, wave, wave_moves)
                y += ROW
            for move in drawn:
                _move_row(body, axis, y, move)
                y += ROW
            out.append(_svg(height, body, "timeline of the %s moves of %s" % (kind, host)))
            out.append('<p class="note">Seconds since the %s of %s began.</p>' % (_e(kind), _e(host)))
            if bands:
                rows = [("%s" % wave, figures[2], figures[3], _f(figures[0]), _f(figures[1]), _f(figures[4], 0),
                         _f(figures[5], 0), "-" if figures[6] is None else figures[6])
                        for wave, figures in ((w, _band(w, ms)) for w, ms in bands) if figures is not None]
                out.append(_table(("wave", "moves", "failed", "first s", "last s", "pause p50 ms", "pause p95 ms",
                                   "pause max ms"), rows, numeric=(1, 2, 3, 4, 5, 6, 7)))
    out.append("<h3>Moves</h3>")
    rows = []
    for m in done:
        queued, started, switchover, checked, _end = _phases(m)
        rows.append((m["guest"], m.get("source") or "-", m.get("destination") or "-", m.get("outcome"),
                     _f(m.get("wave"), 0), _f(started - queued if started is not None and queued is not None
                                              else None), _f(m.get("duration_s")),
                     "-" if m.get("downtime_ms") is None else m["downtime_ms"],
                     _f(checked - switchover if checked is not None and switchover is not None else None),
                     _bytes(m["bytes_transferred"]) if m.get("bytes_transferred") else "-",
                     len(m.get("ladder_steps") or []), m.get("reason") or ""))
    out.append(_table(("guest", "from", "to", "outcome", "wave", "waited s", "pre-copy s", "pause ms", "settle s",
                       "transferred", "rungs", "reason"), rows, numeric=(4, 5, 6, 7, 8, 9, 10),
                      row_class=lambda i: "failed" if rows[i][3] in ("failed", "aborted") else None))
    rungs = [(m["guest"], _rung_label(s), _f(_num(s.get("at_s")), 1), s.get("reason") or "")
             for m in done for s in (m.get("ladder_steps") or []) if isinstance(s, dict)]
    if rungs and len(rungs) <= 2 * ROW_LIMIT:
        out.append("<details><summary>Ladder rungs (%d)</summary>%s</details>" % (len(rungs), _table(
            ("guest", "rung", "at s", "why"), rungs, numeric=(2,))))
    elif rungs:
        out.append('<p class="note">%d ladder rungs: see the JSON report.</p>' % len(rungs))
    return "".join(out)


def _strip(axis, segments, host, kind):
    """Migrations in flight (filled steps) and their aggregate rate (line) over the engine's clock. Past ROW_LIMIT
    segments the strip draws STRIP_BUCKETS buckets (peak in flight, mean rate) instead of every change."""
    height = 118
    top, bottom = 10, height - AXIS
    drawn = segments
    if len(segments) > ROW_LIMIT:
        drawn = _buckets(segments, STRIP_BUCKETS)
    peak = max(s[2] for s in segments) or 1
    top_rate = max(s[3] for s in drawn) or 1.0
    body = axis.draw(top, bottom)
    span = bottom - top
    step = max(1, int(-(-peak // 4)))
    for count in range(step, peak + 1, step):
        y = bottom - span * count / float(peak)
        body.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="grid"/>' % (LABEL, y, WIDTH - RIGHT, y))
        body.append(_text(LABEL - 6, y + 4, "%d" % count, anchor="end", cls="muted"))
    body.append(_text(LABEL - 26, top + span / 2 + 4, "in flight", anchor="end"))
    body.append(_text(WIDTH - RIGHT + 6, top + 10, "rate, peak", cls="muted"))
    body.append(_text(WIDTH - RIGHT + 6, top + 24, _rate(top_rate)))
    points = []
    for first, last, count, rate in drawn:
        y = bottom - span * count / float(peak)
        body.append(_rect(axis.x(first), y, axis.width(first, last), bottom - y, COLOURS["inflight"],
                          "%s to %s s: %d in flight, %s" % (_f(first), _f(last), count, _rate(rate)),
                          ' opacity="0.45"'))
        rate_y = bottom - 0.92 * span * rate / top_rate
        points.append("%.1f,%.1f %.1f,%.1f" % (axis.x(first), rate_y, axis.x(last), rate_y))
    body.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="1.8"><title>%s</title></polyline>' % (
        " ".join(points), COLOURS["rate"], _e("aggregate rate of the %s moves of %s, peak %s" % (
            kind, host, _rate(top_rate)))))
    rows = [("%s to %s" % (_f(low), _f(high)), flying, _rate(rate)) for low, high, flying, rate in _buckets(segments)]
    return "".join([
        "<h3>Migrations in flight</h3>",
        _legend((("inflight", "migrations copying (left scale)"), ("rate", "aggregate rate (line)"))),
        _svg(height, body, "migrations in flight and their rate, %s %s" % (host, kind)),
        "<details><summary>In flight, in %d intervals</summary>%s</details>" % (
            len(rows), _table(("seconds", "peak in flight", "mean rate"), rows, numeric=(1, 2))),
    ])


def _disks(report):
    disks = [d for name in sorted(report.get("hosts") or {})
             for d in (report["hosts"][name] or {}).get("disk_moves") or []]
    refused = [d for name in sorted(report.get("hosts") or {})
               for d in (report["hosts"][name] or {}).get("disks_refused") or []]
    if not disks and not refused:
        return ""
    out = ["<h2>Disk moves</h2>"]
    timed = [d for d in disks if _num(d.get("seconds")) is not None][:ROW_LIMIT]
    if timed:
        longest = max(_num(d["seconds"]) for d in timed) or 1.0
        axis = _Axis(0.0, longest)
        height = len(timed) * ROW + AXIS + 10
        body = axis.draw(2, height - AXIS)
        for index, disk in enumerate(timed):
            y = 6 + index * ROW
            failed = disk.get("outcome") in ("failed", "aborted")
            name = "%s %s" % (disk.get("guest"), disk.get("target"))
            title = "%s on %s: %s, %s s, %s, %s MiB/s%s" % (
                name, disk.get("host"), disk.get("outcome"), _f(disk.get("seconds")),
                _bytes(disk.get("bytes")), disk.get("rate_mib_s") if disk.get("rate_mib_s") is not None else "-",
                ": %s" % disk["reason"] if disk.get("reason") else "")
            body.append(_text(LABEL - 8, y + 12, _short(name, 28), anchor="end", cls="reason" if failed else None))
            body.append(_rect(axis.x(0), y + 1, max(axis.width(0, disk["seconds"]), 1.5), ROW - 6,
                              COLOURS["failed"] if failed else COLOURS["disk"], title))
            body.append(_text(WIDTH - RIGHT + 6, y + 12, _short(disk.get("outcome"), 24),
                              cls="reason" if failed else None))
        out.append('<p class="note">Each disk\'s copy time (seconds from the start of its own copy).</p>')
        out.append(_svg(height, body, "copy time per disk"))
    rows = [(d.get("host"), d.get("guest"), d.get("target"), d.get("to_pool") or "-", d.get("outcome"),
             _bytes(d["bytes"]) if d.get("bytes") else "-", _f(d.get("seconds")),
             "-" if d.get("rate_mib_s") is None else d["rate_mib_s"], "yes" if d.get("synchronous") else "no",
             d.get("source_after") or "-", d.get("reason") or "") for d in disks]
    if rows:
        out.append(_table(("host", "guest", "disk", "to pool", "outcome", "copied", "took s", "MiB/s", "synchronous",
                           "source", "reason"), rows, numeric=(5, 6, 7),
                          row_class=lambda i: "failed" if rows[i][4] in ("failed", "aborted") else None))
    if refused:
        out.append("<h3>Disks refused</h3>")
        out.append(_table(("host", "guest", "disk", "code", "reason"), [
            (d.get("host"), d.get("guest"), d.get("target"), d.get("code") or "-", d.get("reason") or "")
            for d in refused]))
    return "".join(out)


def _failures(report):
    out = []
    failures = report.get("failures") or []
    if failures:
        rows = [(f.get("host"), f.get("what"), f.get("name"), f.get("outcome") or "-",
                 _route(f) if f.get("what") == "move" else "-", f.get("reason") or "no reason given")
                for f in failures]
        out += ["<h2>Failures</h2>", _table(("host", "what", "name", "outcome", "route", "reason"), rows,
                                            row_class=lambda i: "failed")]
    hosts = report.get("hosts") or {}
    not_moved = [(e.get("host"), e.get("guest"), e.get("plan_list") or "skipped", ", ".join(e.get("codes") or []),
                  e.get("reason")) for name in sorted(hosts) for e in
                 ((hosts[name] or {}).get("blocked") or []) + ((hosts[name] or {}).get("skipped") or [])]
    if not_moved:
        out += ["<h2>Not moved</h2>", _table(("host", "guest", "list", "codes", "reason"), not_moved)]
    gates = [(g.get("host"), g.get("check"), "passed" if g.get("ok") else "did not pass", g.get("msg") or "")
             for name in sorted(hosts) for g in (hosts[name] or {}).get("gates") or []]
    if gates:
        out += ["<h2>Gates</h2>", _table(("host", "check", "result", "message"), gates,
                                         row_class=lambda i: "failed" if gates[i][2] != "passed" else None)]
    return "".join(out)


def render(report):
    """The HTML page of a report built by ``report.build`` (a str; the same report gives the same text)."""
    hosts = report.get("hosts") or {}
    moves = [m for name in sorted(hosts) for m in (hosts[name] or {}).get("moves") or []]
    parts = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<meta name="color-scheme" content="light">',
             "<title>%s</title>" % _e("%s %s: %s" % (report.get("playbook") or "run", report.get("run_id"),
                                                     report.get("status"))),
             "<style>%s</style></head><body>" % CSS,
             '<main style="border-top-color:%s">' % STATUS_COLOURS.get(report.get("status"), "#59636e"),
             _header(report, moves), _host_lanes(report)]
    for name in sorted(hosts):
        host = hosts[name] or {}
        for kind in ("evacuate", "restore"):
            section = host.get(kind)
            kind_moves = [m for m in host.get("moves") or [] if m.get("kind") == kind]
            if isinstance(section, dict) and (kind_moves or section.get("status") == "failed"):
                parts.append(_engine_section(name, kind, section, kind_moves))
    parts += [_disks(report), _failures(report)]
    footer = "hostmaint.libvirt run report %s (report version %s); the JSON report beside this file holds every " \
        "figure." % (report.get("run_id"), report.get("report_version"))
    parts.append("<footer>%s</footer></main></body></html>\n" % _e(footer))
    return "".join(parts)
