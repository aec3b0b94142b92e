# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make sim: the fleet simulator (plugins/module_utils/fleetsim.py) on issue 19's reference fleets.

    python tests/sim/run.py [--hosts 50] [--guests-per-host 100] [--memory-mib 8192] [--nic-gbit 10 --nic-gbit 25]
                            [--seeds 5] [--rows all|collection|references] [--jobs 2] [--start-s S] [--finish-s S]
                            [--json FILE]

For each NIC speed, one table with a row per planner: the collection's roll at (k=1, home), (k=1, home, overlap),
(k=2, stay), (k=2, home, overlap), and the references serial (Nova), ovirt22 (2 out, 2 in) and vmware8 (8 per host),
each on the same fleets (one per seed) with the same calibration (Calibration.fleet: link-bound, the lab's fixed
costs). Columns: makespan (median over the seeds, and its range), efficiency (the lower bound over the makespan),
p50/p99/max blackout (medians of the seeds' figures; max: the largest), moves per guest, bytes sent (median),
minimum free-memory headroom (the lowest), failed moves and capacity violations (summed over the seeds), hosts left
empty, the slowest run's wall time. Then issue 19's targets per NIC speed, each met or MISSED with its numbers and,
when missed, the reason the simulation gives; then the lab check: predict_evacuation against the bench's rows.
The seeds run in --jobs processes (default 2, this machine's cores); each run is deterministic.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".build"))

# pylint: disable-next=wrong-import-position
from ansible_collections.hostmaint.libvirt.plugins.module_utils import fleetsim, placement  # noqa: E402

ROWS = (
    ("collection k=1 home", dict(parallel_hosts=1, return_mode="home")),
    ("collection k=1 home overlap", dict(parallel_hosts=1, return_mode="home", overlap=True)),
    ("collection k=2 stay", dict(parallel_hosts=2, return_mode="stay")),
    ("collection k=2 home overlap", dict(parallel_hosts=2, return_mode="home", overlap=True)),
    ("serial", dict(planner="serial")),
    ("ovirt22", dict(planner="ovirt22")),
    ("vmware8", dict(planner="vmware8")),
)
# Two p99 blackouts within 5 % of each other count as equal (target c): the rows' p99s differ by fractions of a
# millisecond where every guest switches over at the ladder's first step.
P99_EQUAL = 0.05
HEAD = ("%-28s %8s %19s %5s %5s %6s %6s %6s %5s %7s %8s %4s %4s %5s %6s"
        % ("planner", "makespan", "(range)", "eff", "slot", "p50ms", "p99ms", "maxms", "mpg", "TB sent", "headroom",
           "fail", "viol", "empty", "wall s"))

# The bench's rows (README, Performance; 2026-12-08, 8 idle guests of 256 MiB on hv1 -> hv2, hv3) and how
# predict_evacuation runs each.
LAB_ROWS = (
    ("A serial virsh loop", 24.3, dict(planner="serial", slots=None)),
    ("B virsh, all at once", 7.5, dict(planner="reference", slots=8)),
    ("P2 virsh, xargs -P2", 12.4, dict(planner="reference", slots=2)),
    ("C evacuate.yml, defaults", 10.6, dict(playbook=True)),
    ("M module ad hoc, defaults", 10.8, dict()),
    ("M11 module 1/1, fixed, no settle", 14.4, dict(max_outbound=1, max_inbound=1, pause_target_ms=0, settle_s=0)),
    ("W module 2/2, fixed, no settle", 8.6, dict(max_outbound=2, max_inbound=2, pause_target_ms=0, settle_s=0)),
)


def one(job):
    """One run (in a worker process): (label, gbit, seed, result, wall seconds)."""
    label, options, gbit, seed, args = job
    fleet = fleetsim.fleet(args["hosts"], args["guests_per_host"], args["memory_mib"], nic_gbit=gbit,
                           reboot_s=args["reboot_s"], gate_s=args["gate_s"], seed=seed)
    calibration = calibration_of(gbit, args)
    started = time.monotonic()
    result = fleetsim.simulate(fleet, fleetsim.Options(**options), calibration)
    return label, gbit, seed, result, time.monotonic() - started


def calibration_of(gbit, args):
    """Calibration.fleet at ``gbit``, with the fixed costs the command line gives."""
    changes = dict((k, args[k]) for k in ("start_s", "finish_s") if args.get(k) is not None)
    calibration = fleetsim.Calibration.fleet(gbit, **changes)
    if changes:
        calibration.source = "fleet defaults (%g GbE), %s" % (gbit, ", ".join(
            "%s %g s" % item for item in sorted(changes.items())))
    return calibration


def summarise(label, runs):
    """The row of one planner over its seeds."""
    def med(key):
        return statistics.median(r[key] for r in runs)
    return dict(
        planner=label, makespan_s=med("makespan_s"),
        makespan_range_s=[min(r["makespan_s"] for r in runs), max(r["makespan_s"] for r in runs)],
        bound_s=med("bound_s"), efficiency=round(med("efficiency"), 3), slot_bound_s=med("slot_bound_s"),
        slot_efficiency=round(med("slot_efficiency"), 3), blackout_p50_ms=med("blackout_p50_ms"),
        blackout_p99_ms=med("blackout_p99_ms"), blackout_max_ms=max(r["blackout_max_ms"] for r in runs),
        moves_per_guest=med("moves_per_guest"), bytes_sent=med("bytes_sent"),
        min_headroom_mib=min(r["min_headroom_mib"] for r in runs), failed_moves=sum(r["failed_moves"] for r in runs),
        violations=sum(r["violations"] for r in runs), conflicts=sum(r["conflicts"] for r in runs),
        empty_at_end=med("empty_at_end"), stopped=[r["stopped"] for r in runs if r["stopped"]],
        refused=[r["refused"] for r in runs if r["refused"]], drain_median_s=med("drain_median"),
        restore_median_s=med("restore_median"), overlap_s=med("overlap_s"), wall_s=max(r["wall_s"] for r in runs),
        seeds=len(runs))


def line(row):
    return "%-28s %8s %19s %5.2f %5.2f %6.1f %6.1f %6.1f %5.2f %7.1f %8d %4d %4d %5d %6.1f%s" % (
        row["planner"], clock(row["makespan_s"]), "(%s-%s)" % (clock(row["makespan_range_s"][0]),
                                                               clock(row["makespan_range_s"][1])),
        row["efficiency"], row["slot_efficiency"], row["blackout_p50_ms"], row["blackout_p99_ms"], row["blackout_max_ms"],
        row["moves_per_guest"], row["bytes_sent"] / 1e12, row["min_headroom_mib"], row["failed_moves"],
        row["violations"], row["empty_at_end"], row["wall_s"],
        ("  STOPPED: %s" % row["stopped"][0]) if row["stopped"] else (
            "  REFUSED: %s" % row["refused"][0] if row["refused"] else ""))


def clock(seconds):
    seconds = int(round(seconds))
    return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)


def why_slow(row, args, k, home):
    """The simulation's reason a row's efficiency stays below 0.8: the maintenance slot each host holds."""
    hosts = args["hosts"]
    per_slot = row["makespan_s"] * k / float(hosts)
    cycle = args["reboot_s"] + args["gate_s"]
    parts = "its drain (median %.0f s)" % row["drain_median_s"]
    if home and "overlap" not in row["planner"]:
        parts += ", its restore (median %.0f s)" % row["restore_median_s"]
    return ("each host holds one of the k=%d maintenance slots for %.0f s on average (makespan x k / %d hosts): %s, "
            "its reboot and gates (%.0f s) and Ansible's and the engine's own steps; the bound counts only the %.0f s "
            "of reboot and gates, but a host's drain cannot overlap its own reboot: %.0f / %.0f = %.2f. Against the "
            "roll's own slot bound (each slot holding the drain at the NIC's rate too: %s) the efficiency is %.2f"
            % (k, per_slot, hosts, parts, cycle, cycle, cycle, per_slot, cycle / per_slot, clock(row["slot_bound_s"]),
               row["slot_efficiency"]))


def targets(rows, args):
    """Issue 19's targets for one NIC speed: [(met, sentence)]."""
    by = dict((r["planner"], r) for r in rows)
    mine = [r for r in rows if r["planner"].startswith("collection")]
    refs = [r for r in rows if not r["planner"].startswith("collection")]
    out = []
    pause = placement.PAUSE_TARGET_MS
    fair = [r for r in mine if r["blackout_p99_ms"] <= pause and not r["violations"] and not r["stopped"]]
    best = max(fair or mine, key=lambda r: r["efficiency"])
    ok = bool(fair) and best["efficiency"] >= 0.8
    text = ("(a) efficiency >= 0.8 with p99 blackout <= %d ms and no capacity violation: best %s, efficiency %.2f, "
            "p99 %.1f ms, %d violation(s)" % (
                pause, best["planner"], best["efficiency"], best["blackout_p99_ms"], best["violations"]))
    if not ok:
        k = 2 if "k=2" in best["planner"] else 1
        text += ". Why: " + why_slow(best, args, k, "home" in best["planner"])
    out.append((ok, text))
    stay, home = by.get("collection k=2 stay"), by.get("collection k=1 home")
    if stay and home:
        ratio = stay["makespan_s"] / home["makespan_s"]
        text = "(b) k=2 stay at most half of k=1 home: %s against %s, %.2f" % (
            clock(stay["makespan_s"]), clock(home["makespan_s"]), ratio)
        if ratio > 0.5:
            text += ". Why: " + why_slow(stay, args, 2, False)
        out.append((ratio <= 0.5, text))
    for ref in refs:
        peers = [r for r in mine if r["blackout_p99_ms"] <= ref["blackout_p99_ms"] * (1 + P99_EQUAL)
                 and not r["stopped"]]
        if not peers:
            out.append((False, "(c) beats %s (%s, p99 %.1f ms): no row of the collection's has a p99 blackout at "
                               "most %.1f ms (lowest %.1f ms)" % (
                                   ref["planner"], clock(ref["makespan_s"]), ref["blackout_p99_ms"],
                                   ref["blackout_p99_ms"] * (1 + P99_EQUAL), min(r["blackout_p99_ms"] for r in mine))))
            continue
        fastest = min(peers, key=lambda r: r["makespan_s"])
        won = fastest["makespan_s"] < ref["makespan_s"]
        text = "(c) beats %s (%s, p99 %.1f ms): %s, %s (%.2fx), p99 %.1f ms" % (
            ref["planner"], clock(ref["makespan_s"]), ref["blackout_p99_ms"], fastest["planner"],
            clock(fastest["makespan_s"]), fastest["makespan_s"] / ref["makespan_s"], fastest["blackout_p99_ms"])
        like = by.get("collection k=1 home")
        if like and like is not fastest:
            text += "; like for like (k=1 home): %s (%.2fx), p99 %.1f ms" % (
                clock(like["makespan_s"]), like["makespan_s"] / ref["makespan_s"], like["blackout_p99_ms"])
        out.append((won, text))
    return out


def lab_check():
    """predict_evacuation with Calibration.lab() against the bench's medians: [(name, measured, predicted)]."""
    calibration = fleetsim.Calibration.lab()
    return [(name, measured, fleetsim.predict_evacuation(calibration=calibration, **kwargs)["seconds"])
            for name, measured, kwargs in LAB_ROWS]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--guests-per-host", type=int, default=100)
    parser.add_argument("--memory-mib", type=int, default=8192)
    parser.add_argument("--nic-gbit", type=float, action="append")
    parser.add_argument("--reboot-s", type=float, default=600.0)
    parser.add_argument("--gate-s", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rows", default="all", choices=("all", "collection", "references"))
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--start-s", type=float, help="a migration's fixed start cost (default: the lab's)")
    parser.add_argument("--finish-s", type=float, help="a migration's fixed finish cost (default: the lab's)")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    settings = dict(hosts=args.hosts, guests_per_host=args.guests_per_host, memory_mib=args.memory_mib,
                    reboot_s=args.reboot_s, gate_s=args.gate_s, start_s=args.start_s, finish_s=args.finish_s)
    rows = [(label, options) for label, options in ROWS
            if args.rows == "all" or (args.rows == "collection") == label.startswith("collection")]
    speeds = args.nic_gbit or [25.0]
    jobs = [(label, options, gbit, seed, settings) for gbit in speeds for label, options in rows
            for seed in range(args.seeds)]
    began = time.monotonic()
    if args.jobs > 1:
        with multiprocessing.Pool(args.jobs) as pool:
            done = pool.map(one, jobs, chunksize=1)
    else:
        done = [one(job) for job in jobs]
    total = time.monotonic() - began
    runs = {}
    for label, gbit, seed, result, wall in done:
        result.update(seed=seed, nic_gbit=gbit, wall_s=round(wall, 2), drain_median=result["drain_s"]["median"],
                      restore_median=result["restore_s"]["median"])
        runs.setdefault((gbit, label), []).append(result)
    output = dict(settings=dict(settings, seeds=args.seeds, nic_gbit=speeds), tables={}, targets={}, runs=[],
                  wall_s=round(total, 1))
    for gbit in speeds:
        print("== %d hosts x %d guests of %d MiB, %g GbE, %d s reboot, %d s gates, half zero pages, %d seed(s); "
              "calibration: %s" % (args.hosts, args.guests_per_host, args.memory_mib, gbit, args.reboot_s,
                                   args.gate_s, args.seeds, calibration_of(gbit, settings).source))
        print(HEAD)
        table = [summarise(label, runs[(gbit, label)]) for label, _options in rows]
        for row in table:
            print(line(row))
        print("bounds (eff: the lower bound; slot: the roll's own, with each host's drain in its slot): %s" % ", ".join(
            "%s %s / %s" % (r["planner"], clock(r["bound_s"]), clock(r["slot_bound_s"])) for r in table
            if r["planner"].startswith("collection")))
        output["tables"][str(gbit)] = table
        if args.rows == "all":
            checks = targets(table, settings)
            output["targets"][str(gbit)] = [dict(met=ok, text=text) for ok, text in checks]
            print("targets (issue 19), %g GbE:" % gbit)
            for ok, text in checks:
                print("  %s %s" % ("met   " if ok else "MISSED", text))
        print()
    print("lab check: predict_evacuation (Calibration.lab) against make bench, 2026-12-08, 8 idle guests of 256 MiB")
    checks = lab_check()
    for name, measured, predicted in checks:
        print("  %-34s measured %5.1f s  predicted %5.1f s  %+4.0f %%" % (
            name, measured, predicted, (predicted / measured - 1) * 100))
    output["lab_check"] = [dict(row=n, measured_s=m, predicted_s=p) for n, m, p in checks]
    print("%d runs in %.0f s (%d processes); slowest run %.1f s" % (
        len(done), total, args.jobs, max(wall for _l, _g, _s, _r, wall in done)))
    for (gbit, label), items in sorted(runs.items()):
        output["runs"] += items
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(output, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
