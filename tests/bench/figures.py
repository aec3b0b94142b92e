# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bench's arithmetic, apart from the lab: nothing here runs a command or reads the lab.

bench_evacuate.py measures; this module turns what it measured into figures, verdicts and the printed
tables, and tests/unit/test_bench.py checks it on made-up data:

- the contenders, the order a round runs them in (``round_blocks``, ``rotated``);
- parsers: iputils ping's output (``icmp_gap``: the longest time without an echo reply), the start and end
  times the virsh scripts print (``virsh_times``), Ansible's json callback or oneline output (``task_result``);
- ``phases``: where a contender's wall time went, from the engine's outcome timelines or the virsh times;
- ``summarise``: per contender the median and range over the rounds, ratios of medians and per-round ratios;
- ``verdicts``: the targets of issue 15, met or missed, with the measured figure;
- ``table_lines``, ``phase_lines``, ``pair_lines``: the printed tables.
"""

from __future__ import annotations

import collections
import datetime
import json
import re
import statistics

# key -> label, in the order the table prints them. R (restore.yml) is the extra row of C's block.
CONTENDERS = collections.OrderedDict([
    ("A", "A serial virsh loop"),
    ("B", "B virsh, all at once"),
    ("P2", "P2 virsh, xargs -P2"),
    ("C", "C evacuate.yml"),
    ("M", "M module, defaults"),
    ("M11", "M11 module 1/1 fixed"),
    ("W", "W module 2/2 fixed"),
    ("E", "E module, empty host"),
    ("E2", "E2 evacuate.yml, empty"),
    ("R", "C restore.yml"),
])
SELECTABLE = [key for key in CONTENDERS if key != "R"]

# The module's arguments for the ad hoc contenders (and for EMPTY, the untimed run that empties hv1 for E or E2
# when the contender that would have done it is not selected).
EMPTY = "empty"
MODULE_ARGS = {
    "M": {},
    "M11": dict(max_outbound=1, max_inbound=1, pause_target_ms=0, settle_s=0),
    "W": dict(max_outbound=2, max_inbound=2, pause_target_ms=0, settle_s=0),
    "E": {},
    EMPTY: dict(settle_s=0),
}

# Ratios printed besides "x A": (numerator, denominator).
PAIRS = (("C", "A"), ("C", "P2"), ("M11", "A"), ("W", "P2"), ("M", "A"), ("C", "M"))

# Issue 15's targets, judged on the medians of the rounds.
M11_OVER_A = 1.1
W_OVER_P2 = 1.1
E2_MAX_S = 2.5
E_MAX_S = 1.5
C_OVER_A = 0.6
C_OVER_A_GOAL = 0.35
PAUSE_MAX_MS = 150
PAUSE_MEDIAN_MS = 50
ICMP_GAP_MAX_S = 0.5
PLANNING_MAX_S = 2.0
ENGINE_CONTENDERS = ("C", "M", "M11", "W")
# Contenders on an empty host: their time is the fixed cost, no ratio to A.
FIXED_COST = ("E", "E2")

TARGETS = ("M11 <= %.1fx A and W <= %.1fx P2 (equal concurrency); E2 (evacuate.yml, empty host) <= %.1f s, "
           "E (module ad hoc, empty host) <= %.1f s; C <= %.1fx A with every pause <= %d ms and their median "
           "<= %d ms; goal beyond: C faster than P2 and C <= %.2fx A; longest ICMP gap <= %.1f s (%s); "
           "no failed probe; planning 5,000 guests over 50 hosts <= %.0f s; all judged on the medians of the rounds"
           % (M11_OVER_A, W_OVER_P2, E2_MAX_S, E_MAX_S, C_OVER_A, PAUSE_MAX_MS, PAUSE_MEDIAN_MS, C_OVER_A_GOAL,
              ICMP_GAP_MAX_S, ", ".join(ENGINE_CONTENDERS), PLANNING_MAX_S))


# ---------------------------------------------------------------------------------------------
# What a round runs, and in which order
# ---------------------------------------------------------------------------------------------

def round_blocks(selected):
    """The blocks of one round, each a list of keys run one after the other with no move home in between
    (the guests go home to hv1 before each block). E follows M and E2 follows C, on the host they emptied;
    C's block ends with R (restore.yml), which brings the guests home. E or E2 without its partner follows
    EMPTY, an untimed run of the module that empties hv1."""
    chosen = [key for key in SELECTABLE if key in selected]
    blocks = []
    for key in chosen:
        if key == "C":
            blocks.append(["C"] + (["E2"] if "E2" in chosen else []) + ["R"])
        elif key == "M":
            blocks.append(["M"] + (["E"] if "E" in chosen else []))
        elif key == "E" and "M" not in chosen:
            blocks.append([EMPTY, "E"])
        elif key == "E2" and "C" not in chosen:
            blocks.append([EMPTY, "E2"])
        elif key not in ("E", "E2"):
            blocks.append([key])
    return blocks


def rotated(blocks, round_index):
    """The blocks in the order round ``round_index`` (0-based) runs them: each round starts one block later."""
    if not blocks:
        return []
    shift = round_index % len(blocks)
    return blocks[shift:] + blocks[:shift]


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

def spread(values):
    """{median, min, max, n} of the numbers given (None ignored), or None when there is none."""
    values = [v for v in values if v is not None]
    if not values:
        return None
    return dict(median=statistics.median(values), min=min(values), max=max(values), n=len(values))


def _ratio(num, den):
    if num is None or not den:
        return None
    return num / den


def pair(runs, num, den):
    """num against den: the ratio of their medians, and the same-round ratios (round -> num/den) with their
    spread. ``runs`` are run rows (key, round, wall_s)."""
    walls = dict((key, dict((r["round"], r["wall_s"]) for r in runs if r["key"] == key and r.get("wall_s")))
                 for key in (num, den))
    top, bottom = spread(walls[num].values()), spread(walls[den].values())
    per_round = dict((rnd, walls[num][rnd] / walls[den][rnd]) for rnd in sorted(walls[num]) if rnd in walls[den])
    return dict(num=num, den=den, ratio=_ratio(top and top["median"], bottom and bottom["median"]),
                per_round=per_round, per_round_spread=spread(per_round.values()))


def _pooled(runs, field):
    values = []
    for run in runs:
        values.extend(v for v in run.get(field) or [] if v is not None)
    return values


def _probe_values(runs, field):
    return [p.get(field) for run in runs for p in (run.get("probes") or {}).values() if p.get(field) is not None]


def summarise(runs):
    """Per contender, in CONTENDERS order: the runs' wall times (median, range), the ratio of the median to A's
    and the same-round ratios to A, pauses pooled over every run, probes, phases (medians), memory peaks."""
    out = []
    for key, label in CONTENDERS.items():
        mine = [r for r in runs if r["key"] == key]
        if not mine:
            continue
        downtimes = _pooled(mine, "downtimes_ms")
        against_a = pair(runs, key, "A") if key not in ("A",) + FIXED_COST else None
        phase_keys = []
        for run in mine:
            phase_keys.extend(k for k in (run.get("phases") or {}) if k not in phase_keys)
        http_failed = _probe_values(mine, "http_failed")
        out.append(dict(
            key=key, label=label, runs=len(mine), failed_runs=sum(1 for r in mine if r.get("returncode")),
            wall=spread(r.get("wall_s") for r in mine),
            rounds=dict((r["round"], r.get("wall_s")) for r in mine),
            ratio_to_a=1.0 if key == "A" else (against_a["ratio"] if against_a else None),
            ratio_to_a_per_round=against_a["per_round_spread"] if against_a else None,
            moved=spread(r.get("moved") for r in mine), guests=max(r.get("guests") or 0 for r in mine),
            downtime_p50_ms=statistics.median(downtimes) if downtimes else None,
            downtime_max_ms=max(downtimes) if downtimes else None,
            bytes=spread(r.get("bytes") for r in mine),
            http_failed=sum(http_failed) if http_failed else None,
            http_gap_max_s=max(_probe_values(mine, "http_gap_s") or [None]),
            icmp_gap_max_s=max(_probe_values(mine, "icmp_gap_s") or [None]),
            icmp_gap_per_run=spread(max([p["icmp_gap_s"] for p in (r.get("probes") or {}).values()
                                         if p.get("icmp_gap_s") is not None] or [None]) for r in mine),
            icmp_lost=sum(_probe_values(mine, "icmp_lost")) if _probe_values(mine, "icmp_lost") else None,
            restarted=sum(1 for v in _probe_values(mine, "restarted") if v),
            lost_writes=sum(1 for v in _probe_values(mine, "lost_writes") if v),
            phases=dict((k, _median_of(r.get("phases", {}).get(k) for r in mine)) for k in phase_keys),
            controller_peak_mib=max([r["controller_peak_mib"] for r in mine if r.get("controller_peak_mib")] or [None]),
            module_peak_mib=max([r["module_peak_mib"] for r in mine if r.get("module_peak_mib")] or [None]),
            loadavg_1m=spread((r.get("loadavg") or [None])[0] for r in mine)))
    return out


def _median_of(values):
    found = spread(values)
    return found["median"] if found else None


# ---------------------------------------------------------------------------------------------
# Parsers
# ---------------------------------------------------------------------------------------------

PING_REPLY = re.compile(r"^(?:\[(?P<at>\d+(?:\.\d+)?)\]\s+)?\d+ bytes from [^:]+: icmp_seq=(?P<seq>\d+)\b")
PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


def icmp_gap(output, interval=0.02, started=None, stopped=None):
    """The longest time without an echo reply, from iputils ping's output (``ping -D -n -i INTERVAL``).

    With -D timestamps (epoch seconds at each reply) it is the longest time between two replies in a row,
    counting from ``started`` to the first reply and from the last one to ``stopped`` when they are given;
    without them, (the longest run of missing icmp_seq + 1) x interval, counting the replies missing before the
    first and after the last when the closing statistics give the count sent. Duplicate replies count once, and
    icmp_seq is unwrapped past 65535. Returns {transmitted, received, lost, longest_gap_s, longest_missing,
    basis} ("timestamps" or "sequence"); longest_gap_s is None when no reply came at all."""
    replies = []
    seen = set()
    offset, last_raw = 0, None
    for line in output.splitlines():
        match = PING_REPLY.match(line.strip())
        if not match or "DUP!" in line:
            continue
        raw = int(match.group("seq"))
        if last_raw is not None and raw < last_raw - 32768:
            offset += 65536
        last_raw = raw
        seq = raw + offset
        if seq in seen:
            continue
        seen.add(seq)
        replies.append((seq, float(match.group("at")) if match.group("at") else None))
    summary = PING_SUMMARY.search(output)
    transmitted = int(summary.group(1)) if summary else None
    received = len(replies)
    replies.sort()
    missing = 0
    for (seq, _at), (after, _at2) in zip(replies, replies[1:]):
        missing = max(missing, after - seq - 1)
    if replies and transmitted is not None:  # a whole output: icmp_seq ran from 1 to transmitted
        missing = max(missing, replies[0][0] - 1, transmitted - replies[-1][0])
    timed = [at for _seq, at in replies if at is not None]
    if not replies:
        gap = None if started is None or stopped is None else stopped - started
        basis = "timestamps" if gap is not None else "sequence"
    elif len(timed) == len(replies):
        times = sorted(timed)
        if started is not None:
            times = [min(started, times[0])] + times
        if stopped is not None:
            times = times + [max(stopped, times[-1])]
        gap = max([b - a for a, b in zip(times, times[1:])] or [0.0])
        basis = "timestamps"
    else:
        gap = (missing + 1) * interval
        basis = "sequence"
    return dict(transmitted=transmitted, received=received,
                lost=(transmitted - received) if transmitted is not None else None,
                longest_gap_s=round(gap, 3) if gap is not None else None, longest_missing=missing, basis=basis)


VIRSH_TIME = re.compile(r"^MIG (\S+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?) (\d+)\s*$")


def virsh_times(output):
    """[{guest, start, end, rc}] from the lines ``MIG <guest> <start epoch s> <end epoch s> <rc>`` the virsh
    contenders' scripts print around each ``virsh migrate``; other lines are ignored."""
    found = []
    for line in output.splitlines():
        match = VIRSH_TIME.match(line.strip())
        if match:
            found.append(dict(guest=match.group(1), start=float(match.group(2)), end=float(match.group(3)),
                              rc=int(match.group(4))))
    return found


def virsh_timelines(migrations, launched):
    """Timelines (seconds since ``launched``, the controller's time.time() when it ran the script) for the
    virsh migrations: started and switchover (virsh returns when the guest runs on its destination); done
    is the switchover, since nothing watches the guest afterwards. The lab hosts share the controller's clock."""
    return [dict(guest=m["guest"], started=m["start"] - launched, switchover=m["end"] - launched,
                 done=m["end"] - launched, duration_s=m["end"] - m["start"], ok=m["rc"] == 0) for m in migrations]


def outcome_timelines(outcomes):
    """Timelines from the engine's outcomes (the module's result, or the run report's moves): seconds since
    the executor started, for the moves that started."""
    found = []
    for item in outcomes or []:
        timeline = item.get("timeline") or {}
        if timeline.get("started") is None:
            continue
        found.append(dict(guest=item.get("guest"), started=timeline["started"],
                          switchover=timeline.get("switchover"), done=timeline.get("done"),
                          duration_s=item.get("duration_s"),
                          ok=item.get("outcome") in ("migrated", "moved_definition")))
    return found


def report_moves(report, kind=None):
    """The moves of a run report (module_utils/report.py), of one kind (evacuate, restore) if given."""
    moves = []
    for host in (report or {}).get("hosts", {}).values():
        moves.extend(m for m in host.get("moves") or [] if kind is None or m.get("kind") == kind)
    return moves


def report_window_changes(report, kind):
    changes = []
    for host in (report or {}).get("hosts", {}).values():
        changes.extend((host.get(kind) or {}).get("window_changes") or [])
    return changes


def _seconds(duration):
    try:
        start = datetime.datetime.fromisoformat(duration["start"].replace("Z", "+00:00"))
        end = datetime.datetime.fromisoformat(duration["end"].replace("Z", "+00:00"))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return (end - start).total_seconds()


def task_result(output, host, module):
    """(result, task seconds) of the task that ran ``module`` (its short name: "evacuate") on ``host``, from
    the output of ``ansible`` or ``ansible-playbook`` with ANSIBLE_STDOUT_CALLBACK=json (one JSON document;
    task seconds from the callback's task duration: Ansible's task start to the host's result). Falls back on
    oneline output (``host | CHANGED => {...}``), which has no duration. (None, None) when neither is found."""
    text = output.strip()
    start = text.find("{")
    document = None
    if start >= 0:
        try:
            document = json.loads(text[start:])
        except ValueError:
            document = None
    if isinstance(document, dict) and "plays" in document:
        for play in document.get("plays") or []:
            for task in play.get("tasks") or []:
                result = (task.get("hosts") or {}).get(host)
                if result is None:
                    continue
                action = str(result.get("action") or (task.get("task") or {}).get("name") or "")
                if action.rsplit(".", 1)[-1] == module:
                    return result, _seconds((task.get("task") or {}).get("duration"))
        return None, None
    for line in output.splitlines():
        if line.startswith("%s | " % host) and " => " in line:
            head, body = line.split(" => ", 1)
            try:
                result = json.loads(body)
            except ValueError:
                continue
            result["failed"] = "FAILED" in head or result.get("failed", False)
            return result, None
    return None, None


# ---------------------------------------------------------------------------------------------
# Where the time went
# ---------------------------------------------------------------------------------------------

def phases(wall, timelines, task_s=None):
    """Where a contender's wall time went, from its moves' timelines (each: started, switchover, done, and
    duration_s or not, in seconds since one zero: the executor's start for the engine, the script's launch for
    virsh) and, for Ansible, the engine task's own time (task_s: Ansible's task start to its result).

    wall_s = fixed_s + moving_s + settle_tail_s, where
      fixed_s        everything but the moves: wall less the span from the first start to the last done;
      first_start_s  from the zero to the first start (virsh: lab exec and bash; engine: the executor's own
                     start, its connections);
      moving_s       first start to last switchover; migration_s_mean the mean start-to-switchover;
      concurrency    migrations at once on average over moving_s; settle_tail_s last switchover to last done;
      engine_s       the zero to the last done;
      ansible_s      wall less task_s (start-up, inventory, the other tasks, output);
      module_outside_s  task_s less engine_s (ssh, the module's transfer, survey and plan, its result).
    """
    out = dict(wall_s=round(wall, 2), moves=len(timelines))
    if task_s is not None:
        out["task_s"] = round(task_s, 2)
        out["ansible_s"] = round(wall - task_s, 2)
    if not timelines:
        out["fixed_s"] = round(wall, 2)
        return out
    first = min(t["started"] for t in timelines)
    switches = [t["switchover"] for t in timelines if t.get("switchover") is not None]
    last_switch = max(switches) if switches else first
    last_done = max([t["done"] for t in timelines if t.get("done") is not None] or [last_switch])
    durations = [t["duration_s"] if t.get("duration_s") is not None else (t["switchover"] - t["started"])
                 for t in timelines if t.get("duration_s") is not None or t.get("switchover") is not None]
    moving = last_switch - first
    out.update(fixed_s=round(wall - (last_done - first), 2), first_start_s=round(first, 2),
               moving_s=round(moving, 2), settle_tail_s=round(last_done - last_switch, 2),
               migration_s_mean=round(statistics.mean(durations), 2) if durations else None,
               concurrency=round(sum(durations) / moving, 2) if durations and moving > 0 else None,
               engine_s=round(last_done, 2))
    if task_s is not None:
        out["module_outside_s"] = round(task_s - last_done, 2)
    return out


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------

def _fmt(value, spec="%.2f", none="-"):
    return none if value is None else spec % value


def _ratio_verdict(target, runs, by, num, den, limit):
    if num not in by or den not in by:
        return target, None, "not run"
    found = pair(runs, num, den)
    per = found["per_round_spread"]
    met = None if found["ratio"] is None else found["ratio"] <= limit
    return target, met, "%s/%s = %s (same-round ratios: median %s, %s-%s)" % (
        num, den, _fmt(found["ratio"]), _fmt(per and per["median"]), _fmt(per and per["min"]),
        _fmt(per and per["max"]))


def _seconds_verdict(target, by, key, limit):
    if key not in by or not by[key]["wall"]:
        return target, None, "not run"
    wall = by[key]["wall"]
    measured = "%s median %.2f s (%.2f-%.2f)" % (key, wall["median"], wall["min"], wall["max"])
    return target, wall["median"] <= limit, measured


def workload_verdicts(name, summary, runs):
    """[(target, met: True, False or None when not measured, measured)] for one workload."""
    by = dict((s["key"], s) for s in summary)
    out = [
        _ratio_verdict("M11 <= %.1fx A" % M11_OVER_A, runs, by, "M11", "A", M11_OVER_A),
        _ratio_verdict("W <= %.1fx P2" % W_OVER_P2, runs, by, "W", "P2", W_OVER_P2),
        _seconds_verdict("E2 (evacuate.yml, empty host) <= %.1f s" % E2_MAX_S, by, "E2", E2_MAX_S),
        _seconds_verdict("E (module ad hoc, empty host) <= %.1f s" % E_MAX_S, by, "E", E_MAX_S),
        _ratio_verdict("C <= %.1fx A" % C_OVER_A, runs, by, "C", "A", C_OVER_A),
    ]
    c = by.get("C")
    if c:
        top, middle = c["downtime_max_ms"], c["downtime_p50_ms"]
        out.append(("C every pause <= %d ms" % PAUSE_MAX_MS, None if top is None else top <= PAUSE_MAX_MS,
                    "max %s ms" % _fmt(top, "%.0f")))
        out.append(("C median pause <= %d ms" % PAUSE_MEDIAN_MS, None if middle is None else middle <= PAUSE_MEDIAN_MS,
                    "median %s ms" % _fmt(middle, "%.0f")))
    out.append(_ratio_verdict("goal: C faster than P2", runs, by, "C", "P2", 1.0 - 1e-9))
    out.append(_ratio_verdict("goal: C <= %.2fx A" % C_OVER_A_GOAL, runs, by, "C", "A", C_OVER_A_GOAL))
    gaps = [(key, by[key]["icmp_gap_max_s"]) for key in ENGINE_CONTENDERS if key in by]
    measured = [gap for _key, gap in gaps if gap is not None]
    out.append(("longest ICMP gap <= %.1f s (%s)" % (ICMP_GAP_MAX_S, ", ".join(k for k, _g in gaps) or "no engine run"),
                max(measured) <= ICMP_GAP_MAX_S if measured else None,
                ", ".join("%s %s s" % (key, _fmt(gap)) for key, gap in gaps) or "not run"))
    if c:
        out.append(("C no failed probe (HTTP, 2 Hz)", None if c["http_failed"] is None else c["http_failed"] == 0,
                    "%s failed over %d runs, longest HTTP gap %s s" % (
                        _fmt(c["http_failed"], "%d"), c["runs"], _fmt(c["http_gap_max_s"]))))
    broken = [(s["key"], s["restarted"], s["lost_writes"]) for s in summary]
    out.append(("no guest restarted or lost a write", all(not r and not w for _k, r, w in broken),
                ", ".join("%s %d restarted, %d lost writes" % (k, r, w) for k, r, w in broken if r or w)
                or "none in any run"))
    return [("%s: %s" % (name, target), met, how) for target, met, how in out]


def verdicts(workloads, planning):
    """[(target, met: True, False or None when not measured, measured)] for every workload's summaries
    (``workloads``: name -> {"summary": [...], "runs": [...]}) and the planner timing."""
    out = []
    for name, data in workloads.items():
        out.extend(workload_verdicts(name, data["summary"], data["runs"]))
    if planning:
        out.append(("planning 5,000 guests / 50 hosts <= %.0f s" % PLANNING_MAX_S,
                    planning["seconds"] <= PLANNING_MAX_S, "%.2f s" % planning["seconds"]))
    return out


def verdict_lines(found):
    return ["  %-58s %-4s %s" % (target, "n/a" if met is None else ("met" if met else "MISS"), how)
            for target, met, how in found]


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

TABLE_HEAD = ("%-8s %-23s %2s %7s %11s %5s %16s %11s %6s %6s %6s %5s %5s %6s %6s"
              % ("workload", "contender", "n", "wall s", "range s", "x A", "x A same round", "pause p50/max",
                 "HTTPx", "HTTPgap", "ICMPgap", "rst", "lost", "MiB", "mod"))


def _range(s, spec="%.1f"):
    return "-" if not s else ("%s-%s" % (spec % s["min"], spec % s["max"]))


def table_lines(workload, summary):
    """One line per contender: runs, median wall and range, ratio of medians to A, same-round ratios to A
    (median, range), pauses pooled over the runs, HTTP probe failures and longest gap, longest ICMP gap,
    restarts, guests with lost writes, MiB moved (median), module peak MiB."""
    lines = []
    for s in summary:
        per = s["ratio_to_a_per_round"]
        same_round = "-" if not per else "%.2f %.2f-%.2f" % (per["median"], per["min"], per["max"])
        pauses = "-" if s["downtime_max_ms"] is None else "%.0f/%.0f" % (s["downtime_p50_ms"], s["downtime_max_ms"])
        label = s["label"] + ("!" * min(s["failed_runs"], 3))
        lines.append("%-8s %-23s %2d %7s %11s %5s %16s %11s %6s %6s %6s %5d %5d %6s %6s" % (
            workload, label, s["runs"], _fmt(s["wall"] and s["wall"]["median"], "%.1f"), _range(s["wall"]),
            _fmt(s["ratio_to_a"]), same_round, pauses, _fmt(s["http_failed"], "%d"), _fmt(s["http_gap_max_s"]),
            _fmt(s["icmp_gap_max_s"]), s["restarted"], s["lost_writes"],
            _fmt(s["bytes"] and s["bytes"]["median"] / 2 ** 20, "%.0f"), _fmt(s["module_peak_mib"], "%.0f")))
    return lines


PHASE_COLUMNS = (("wall_s", "wall"), ("fixed_s", "fixed"), ("first_start_s", "1st start"), ("moving_s", "moving"),
                 ("migration_s_mean", "per move"), ("concurrency", "at once"), ("settle_tail_s", "settle tail"),
                 ("engine_s", "engine"), ("task_s", "task"), ("ansible_s", "ansible"),
                 ("module_outside_s", "module-exec"))
PHASE_HEAD = "%-8s %-23s " % ("workload", "contender") + " ".join("%11s" % title for _k, title in PHASE_COLUMNS)


def phase_lines(workload, summary):
    """Per contender, the medians over the rounds of its phases (see ``phases``)."""
    return ["%-8s %-23s " % (workload, s["label"]) + " ".join(
        "%11s" % _fmt(s["phases"].get(key)) for key, _title in PHASE_COLUMNS) for s in summary if s["phases"]]


def pair_lines(workload, runs):
    lines = []
    present = set(r["key"] for r in runs)
    for num, den in PAIRS:
        if num in present and den in present:
            found = pair(runs, num, den)
            per = found["per_round_spread"]
            lines.append("%-8s %-6s ratio of medians %s; same-round ratios %s (%s-%s) over %d rounds" % (
                workload, "%s/%s" % (num, den), _fmt(found["ratio"]), _fmt(per and per["median"]),
                _fmt(per and per["min"]), _fmt(per and per["max"]), per["n"] if per else 0))
    return lines


# ---------------------------------------------------------------------------------------------
# The virsh contenders' scripts (run on hv1 with bash)
# ---------------------------------------------------------------------------------------------

VIRSH_MIGRATE = "virsh migrate --live --p2p --tls --persistent --undefinesource"
# m GUEST DEST: one migration, between two `date +%s.%N`, then "MIG guest start end rc" on one line.
TIMED_MIGRATE = ('m() { s=$(date +%s.%N); ' + VIRSH_MIGRATE + ' "$1" "qemu+tls://$2/system"; rc=$?; '
                 'echo "MIG $1 $s $(date +%s.%N) $rc"; }')


def virsh_script(key, names):
    """The bash script contender A, B or P2 runs on hv1 for the guests ``names``: A one after the other to hv2;
    B all backgrounded at once, then ``wait``; P2 through ``xargs -P2``, two at a time. B and P2 alternate
    hv2 and hv3."""
    dests = [("hv2" if key == "A" or index % 2 == 0 else "hv3") for index in range(len(names))]
    if key == "A":
        return "\n".join([TIMED_MIGRATE] + ["m %s %s" % (name, dest) for name, dest in zip(names, dests)])
    if key == "B":
        return "\n".join([TIMED_MIGRATE] + ["m %s %s &" % (name, dest) for name, dest in zip(names, dests)]
                         + ["wait"])
    if key == "P2":
        lines = " ".join("'%s %s'" % (name, dest) for name, dest in zip(names, dests))
        return "\n".join([TIMED_MIGRATE, "export -f m",
                          "printf '%%s\\n' %s | xargs -P2 -L1 bash -c 'm \"$0\" \"$1\"'" % lines])
    raise ValueError("no virsh script for contender %s" % key)


# -- arrival.py: when a broken guest shows it after its switchover ------------------------------------------------
VIRSH_EVENT = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\+0000: event '([^']+)' for domain '([^']+)'(?::\s*(.*))?$")
# The destination events the engine's settle check counts against a move (executor.settle_problem): a reset, a
# crash, a stop or shutdown that is not the migration's own, a suspend by the guest OS, a pause it did not ask for.
BAD_EVENT = re.compile(r"^(reboot|lifecycle: (Stopped (?!Migrated)|Crashed|Shutdown|PMSuspended|Suspended (?!Migrated|Post-copy)))")
SWITCHOVER_EVENT = "lifecycle: Resumed Migrated"


def virsh_events(text):
    """[(epoch s, kind, guest)] from ``virsh event --all --loop --timestamp`` output; kind is the event's name and,
    for lifecycle events, its text ("lifecycle: Resumed Migrated", "reboot")."""
    found = []
    for line in text.splitlines():
        match = VIRSH_EVENT.match(line.strip())
        if not match:
            continue
        stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        kind = match.group(2) + (": " + match.group(4) if match.group(4) else "")
        found.append((stamp, kind, match.group(3)))
    return found


def arrival_delays(migrations, events, watch_s):
    """(broken migrations, {signal: [seconds after the switchover]}) for arrival.py.

    ``migrations``: dicts with guest, destination, started, returned (epoch s) and seen ({signal: epoch s} as
    the controller saw them: console, new_boot_id, http_again), in order; ``events``: {host: virsh_events()}.
    Each migration gets ``switchover`` (its destination's 'Resumed Migrated' event between its start and the
    next migration's, else None: the return counts instead) and ``after_switchover_s``: returned, event (the
    first BAD_EVENT at or after the switchover, named in ``first_event``), console, new_boot_id, http_again.
    A migration is broken when any of event, console or new_boot_id was seen. The delays pool every broken
    migration's signals, every migration's return, and the quiet migrations' http_again."""
    broken, delays = [], {}
    for index, mig in enumerate(migrations):
        end = migrations[index + 1]["started"] if index + 1 < len(migrations) else mig["returned"] + watch_s
        mine = [(t, kind) for t, kind, guest in events.get(mig["destination"], []) if guest == mig["guest"]
                and mig["started"] <= t <= end]
        switch = [t for t, kind in mine if kind == SWITCHOVER_EVENT]
        mig["switchover"] = switch[0] if switch else None
        base = mig["switchover"] or mig["returned"]
        after = dict(returned=round(mig["returned"] - base, 2))
        bad = [(t, kind) for t, kind in mine if BAD_EVENT.match(kind) and t >= base]
        if bad:
            after["event"] = round(bad[0][0] - base, 2)
            mig["first_event"] = bad[0][1]
        for key in ("console", "new_boot_id", "http_again"):
            if key in mig.get("seen", {}):
                after[key] = round(mig["seen"][key] - base, 2)
        mig["after_switchover_s"] = after
        mig["broken"] = any(k in after for k in ("event", "console", "new_boot_id"))
        delays.setdefault("returned", []).append(after["returned"])
        if mig["broken"]:
            broken.append(mig)
            for key in ("event", "console", "new_boot_id"):
                if key in after:
                    delays.setdefault(key, []).append(after[key])
        elif "http_again" in after:
            delays.setdefault("http_again_quiet", []).append(after["http_again"])
    return broken, delays


def progress_pair_lines(runs):
    """The rows of the paired runs with progress on and off (bench_evacuate.progress_pairs): per host state (guests,
    empty), the median wall time with progress on and off over the pairs, the median of the pairs' own differences
    (on less off: the pairs ran back to back, so their difference is less noisy than the medians') and the progress
    lines the runs with it printed (median)."""
    lines = []
    for state in ("guests", "empty"):
        pairs = {}
        for run in runs:
            if run["state"] == state and run["returncode"] == 0:
                pairs.setdefault(run["pair"], {})[run["progress"]] = run
        both = [p for p in pairs.values() if True in p and False in p]
        if not both:
            continue
        on = statistics.median(p[True]["wall"] for p in both)
        off = statistics.median(p[False]["wall"] for p in both)
        diff = statistics.median(p[True]["wall"] - p[False]["wall"] for p in both)
        shown = statistics.median(p[True]["progress_lines"] for p in both)
        lines.append("progress %-7s %d pairs: on %.2f s, off %.2f s (medians); on - off %+.2f s (median of the "
                     "pairs); %d progress lines" % (state, len(both), on, off, diff, shown))
    return lines


# ---------------------------------------------------------------------------------------------
# The fleet simulator against this run (issue 19: the lab's own evacuation of 8 guests predicted within 25 % of a
# measurement made in the same run)
# ---------------------------------------------------------------------------------------------

# How module_utils.fleetsim.predict_evacuation runs each contender (the same as tests/sim/run.py's LAB_ROWS).
SIM_ROWS = (
    ("A", dict(planner="serial", slots=None)),
    ("B", dict(planner="reference", slots=8)),
    ("P2", dict(planner="reference", slots=2)),
    ("C", dict(playbook=True)),
    ("M", dict()),
    ("M11", dict(max_outbound=1, max_inbound=1, pause_target_ms=0, settle_s=0)),
    ("W", dict(max_outbound=2, max_inbound=2, pause_target_ms=0, settle_s=0)),
)
SIM_TARGET = 0.25


def simulator_check(summary, predict, guests=8, memory_mib=256):
    """The simulator's predictions against this run's medians: {rows: [{key, measured_s, predicted_s, error}],
    scaled: the same from the serial loop A alone (its measured / predicted ratio applied to every prediction: the
    machine's speed today, from the operator's own loop), target: whether C (evacuate.yml) is predicted within
    SIM_TARGET both ways}. ``predict(**kwargs)`` is fleetsim.predict_evacuation with its calibration."""
    measured = dict((s["key"], s["wall"]["median"]) for s in summary if s.get("wall") and s["wall"].get("median"))
    rows = []
    for key, kwargs in SIM_ROWS:
        if key in measured:
            predicted = predict(guests=guests, memory_mib=memory_mib, **kwargs)["seconds"]
            rows.append(dict(key=key, measured_s=measured[key], predicted_s=round(predicted, 2),
                             error=round(predicted / measured[key] - 1, 3)))
    found = dict((r["key"], r) for r in rows)
    scale = found["A"]["measured_s"] / found["A"]["predicted_s"] if "A" in found else None
    scaled = [dict(r, predicted_s=round(r["predicted_s"] * scale, 2),
                   error=round(r["predicted_s"] * scale / r["measured_s"] - 1, 3)) for r in rows if r["key"] != "A"] \
        if scale else []
    target = None
    if "C" in found:
        errors = [found["C"]["error"]] + [r["error"] for r in scaled if r["key"] == "C"]
        target = all(abs(e) <= SIM_TARGET for e in errors)
    return dict(rows=rows, scale_from_a=round(scale, 3) if scale else None, scaled=scaled, target=target)


def simulator_lines(check, source):
    out = ["simulator (module_utils.fleetsim.predict_evacuation, calibrated on %s) against this run's medians:"
           % source]
    for row in check["rows"]:
        out.append("  %-4s measured %6.1f s  predicted %6.1f s  %+4.0f %%" % (
            row["key"], row["measured_s"], row["predicted_s"], row["error"] * 100))
    if check["scaled"]:
        out.append("  from this run's serial loop A alone (ratio %.2f applied): %s" % (check["scale_from_a"], ", ".join(
            "%s %.1f s (%+.0f %%)" % (r["key"], r["predicted_s"], r["error"] * 100) for r in check["scaled"])))
    if check["target"] is not None:
        out.append("  target: evacuate.yml (C) predicted within %d %%: %s" % (
            SIM_TARGET * 100, "met" if check["target"] else "MISS"))
    return out
