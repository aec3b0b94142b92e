# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""make sim: the fleet simulator's table per planner (tests/sim/engine.py), JSON with --json.

A row with skipped_hosts > 0 did not finish the roll (hosts it could not empty stay up), so its makespan and
efficiency are not comparable with the others.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, ".build"))
sys.path.insert(0, ROOT)

from tests.sim import engine  # noqa: E402  pylint: disable=wrong-import-position

COLUMNS = ("planner", "makespan_s", "efficiency", "blackout_p50_ms", "blackout_p99_ms", "blackout_max_ms",
           "moves_per_guest", "bytes_sent", "min_headroom_mib", "failed_moves", "violations", "skipped_hosts")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--guests-per-host", type=int, default=100)
    parser.add_argument("--memory-mib", type=int, default=8192)
    parser.add_argument("--nic-gbit", type=float, action="append")
    parser.add_argument("--reboot-s", type=float, default=600.0)
    parser.add_argument("--gate-s", type=float, default=60.0)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--planners", default=",".join(engine.PLANNERS))
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    results = []
    for gbit in args.nic_gbit or [25.0]:
        print("== %d hosts x %d guests of %d MiB, %g GbE, %d s reboot, %d s gates, %d seed(s)" % (
            args.hosts, args.guests_per_host, args.memory_mib, gbit, args.reboot_s, args.gate_s, args.seeds))
        print(" ".join("%16s" % c for c in COLUMNS + ("wall_s",)))
        for planner in args.planners.split(","):
            for seed in range(args.seeds):
                fleet = engine.fleet(args.hosts, args.guests_per_host, args.memory_mib, nic_gbit=gbit,
                                     reboot_s=args.reboot_s, gate_s=args.gate_s, seed=seed)
                started = time.monotonic()
                row = engine.simulate(fleet, planner)
                row.update(seed=seed, nic_gbit=gbit, wall_s=round(time.monotonic() - started, 2))
                results.append(row)
                print(" ".join("%16s" % row[c] for c in COLUMNS + ("wall_s",)))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
