# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rolling upgrade's check mode prints: the roll (module_utils.roll's state) in lines, and its forecast from
the fleet simulator (module_utils.fleetsim), calibrated on the fleet's own past run reports when there are some, on
the lab's figures otherwise. Standard library only."""

from __future__ import annotations

import json
import os

from ansible_collections.hostmaint.libvirt.plugins.module_utils import fleetsim, roll

GIB = 1024.0


def duration(seconds):
    """12s, 3m05s, 2h04m."""
    seconds = int(round(seconds or 0))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%dh%02dm" % (seconds // 3600, (seconds % 3600) // 60)


# The newest run reports read to calibrate a forecast (older ones describe a fleet that may have changed).
REPORTS_READ = 20
SEEDS = 5


def past_reports(report_dir, limit=REPORTS_READ):
    """The newest run reports (the run_report module's JSON) in ``report_dir`` that hold a move or a step, newest
    first; unreadable files and other JSON (a roll's state file) are left out."""
    if not report_dir or not os.path.isdir(report_dir):
        return []
    names = [n for n in os.listdir(report_dir) if n.endswith(".json") and os.path.isfile(os.path.join(report_dir, n))]
    found = []
    for name in sorted(names, key=lambda n: os.path.getmtime(os.path.join(report_dir, n)), reverse=True):
        try:
            with open(os.path.join(report_dir, name)) as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        hosts = data.get("hosts") if isinstance(data, dict) else None
        if isinstance(hosts, dict) and any(isinstance(h, dict) and (h.get("moves") or h.get("steps"))
                                           for h in hosts.values()):
            found.append(data)
        if len(found) >= limit:
            break
    return found


def forecast(state, report_dir=None, batch_size=0, seeds=SEEDS):
    """The forecast of the roll ``state`` describes (module_utils.fleetsim on the roll's own decisions): {makespan_s,
    range_s, moves, bytes, blackout_p99_ms, calibration, steps}, calibrated on the newest run reports in
    ``report_dir`` and on the lab's measured figures for what they lack."""
    reports = past_reports(report_dir)
    calibration = fleetsim.Calibration.lab()
    if reports:
        calibration = fleetsim.Calibration.from_reports(reports, base=calibration)
    options = fleetsim.Options(parallel_hosts=state["options"]["parallel_hosts"],
                               return_mode=state["options"]["return_mode"], overlap=state["options"]["overlap"],
                               parallel_clusters=state["options"]["parallel_clusters"],
                               batch_size=int(batch_size) if batch_size and int(batch_size) < len(state["order"])
                               else None)
    found = fleetsim.forecast(lambda seed: fleetsim.from_state(state, calibration, seed=seed), calibration, options,
                              seeds=seeds)
    return dict((key, found.get(key)) for key in ("makespan_s", "range_s", "moves", "bytes", "blackout_p99_ms",
                                                  "calibration", "steps", "runs", "batches"))


def lines(state, forecast_=None):
    """The roll, said line by line: its options, each cluster's hosts in order with what happens to them, the
    guests and memory that will move, and the forecast."""
    options = state["options"]
    k = options["parallel_hosts"]
    out = ["roll of %d host(s): %s, guests %s%s%s" % (
        len(state["order"]), "1 host at a time" if k == 1 else "up to %d hosts of a cluster at once" % k,
        "return home" if options["return_mode"] == "home" else "stay where they land (unless they demand home)",
        ", a restore overlaps the next drain" if options["overlap"] else "",
        ", clusters in parallel" if options["parallel_clusters"] else "")]
    seen = []
    for host in state["order"]:
        cluster = state["clusters"][host]
        if cluster in seen:
            continue
        seen.append(cluster)
        members = roll.cluster_hosts(state, cluster)
        rolling = [h for h in members if state["phase"][h] not in roll.FINISHED]
        out.append("cluster %s: %s" % (cluster, ", ".join(rolling) or "nothing to do"))
        for member in members:
            phase = state["phase"][member]
            guests = [g for g in state["guests"].values() if g["host"] == member and g["active"]]
            if phase == roll.SKIPPED:
                out.append("  %s: %s" % (member, state["reasons"].get(member) or "skipped"))
            elif phase == roll.QUEUED:
                out.append("  %s: %d guest(s), %.1f GiB to move off" % (
                    member, len(guests), sum(g["memory_mib"] for g in guests) / GIB))
            else:
                out.append("  %s: its cycle resumes (%s)" % (member, phase))
    if forecast_ and not forecast_.get("moves") and not any(state["phase"][h] not in roll.FINISHED for h in state["order"]):
        out.append("forecast: nothing to roll")
    elif forecast_:
        out.append("forecast: %s (%s to %s), %d move(s), %.1f GiB to send; calibrated on %s" % (
            duration(forecast_["makespan_s"]), duration(forecast_["range_s"][0]), duration(forecast_["range_s"][1]),
            forecast_.get("moves", 0), forecast_.get("bytes", 0) / float(1 << 30), forecast_.get("calibration", "?")))
        if any(len(batch) > 1 for batch in forecast_.get("batches") or []):
            out.append("  batches (in maintenance together): %s" % "; ".join(
                ", ".join(batch) for batch in forecast_["batches"]))
        out.extend("  " + line for line in forecast_.get("steps") or [])
    return out
