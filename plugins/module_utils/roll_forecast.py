# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rolling upgrade's check mode prints: the roll (module_utils.roll's state) in lines, and its forecast from
the fleet simulator (module_utils.fleetsim), calibrated on the fleet's own past run reports when there are some, on
the lab's figures otherwise. Standard library only."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import roll

GIB = 1024.0


def duration(seconds):
    """12s, 3m05s, 2h04m."""
    seconds = int(round(seconds or 0))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%dh%02dm" % (seconds // 3600, (seconds % 3600) // 60)


def forecast(state, report_dir=None, batch_size=0):
    """The forecast of the roll ``state`` describes, or None when the simulator cannot give one."""
    return None


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
    if forecast_:
        out.append("forecast: %s (%s to %s), %d move(s), %.1f GiB to send; calibrated on %s" % (
            duration(forecast_["makespan_s"]), duration(forecast_["range_s"][0]), duration(forecast_["range_s"][1]),
            forecast_.get("moves", 0), forecast_.get("bytes", 0) / float(1 << 30), forecast_.get("calibration", "?")))
        out.extend("  " + line for line in forecast_.get("steps") or [])
    return out
