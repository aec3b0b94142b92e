# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: evacuate and restore hv1 of the lab at several concurrency limits; prints numbers.

    make bench                      # or: python tests/bench/bench_evacuate.py --guests 6 --limits 1 2 3

Brings the lab up if needed and sets it up (playbooks/setup.yml: TLS), starts the guests on hv1, and for each limit (max_outbound and
max_inbound alike) times one evacuation and one restore through the modules, while every guest is
probed over HTTP. It asserts nothing: it reports wall time, QEMU's downtime per guest, bytes moved
and the probes' failures, so that runs on different machines or versions can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "tests", "lab", "lab")


def sh(*cmd):
    return subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=True).stdout


def module(name, args):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="oneline", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_DEPRECATION_WARNINGS="0")
    proc = subprocess.run(["ansible", "-i", os.path.join(ROOT, ".lab", "inventory.yml"), "hv1", "-m",
                           "hostmaint.libvirt.%s" % name, "-a", json.dumps(args)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
    line = [l for l in proc.stdout.splitlines() if l.startswith("hv1 | ")][0]
    result = json.loads(line.split(" => ", 1)[1])
    if "FAILED" in line:
        raise SystemExit("%s failed: %s" % (name, result.get("msg")))
    return result


class Probe(threading.Thread):
    def __init__(self, address):
        super(Probe, self).__init__(daemon=True)
        self.address, self.failed, self.done = address, 0, threading.Event()

    def run(self):
        deadline = time.time() + 600
        while not self.done.is_set() and time.time() < deadline:
            try:
                with urllib.request.urlopen("http://%s/" % self.address, timeout=0.5) as resp:
                    resp.read()
            except OSError:
                self.failed += 1
            time.sleep(0.02)


def timed(name, args, addresses):
    probes = [Probe(a) for a in addresses]
    for probe in probes:
        probe.start()
    started = time.time()
    result = module(name, args)
    wall = time.time() - started
    for probe in probes:
        probe.done.set()
        probe.join(5)
    outcomes = result.get("outcomes", [])
    downtimes = sorted(o["downtime_ms"] for o in outcomes if o.get("downtime_ms") is not None)
    return dict(wall=wall, moved=sum(1 for o in outcomes if o.get("moved")), downtimes=downtimes,
                mib=sum(int(o.get("bytes_transferred") or 0) for o in outcomes) / 1048576.0,
                probe_failures=sum(p.failed for p in probes),
                move_time=sum(o.get("duration_s") or 0 for o in outcomes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--guests", type=int, default=6)
    parser.add_argument("--memory", type=int, default=256)
    parser.add_argument("--limits", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    sh(LAB, "up")
    # a set-up lab, as a production fleet runs: TLS for control and data, engine defaults
    sh("ansible-playbook", "-i", os.path.join(ROOT, ".lab", "inventory.yml"), os.path.join(ROOT, "playbooks", "setup.yml"))
    status = json.loads(sh(LAB, "status", "--json"))
    have = dict((g["name"], g) for g in status["guests"])
    names = ["bench%d" % i for i in range(1, args.guests + 1)]
    for name in names:
        if name not in have:
            sh(LAB, "guest", "add", name, "--host", "hv1", "--memory", str(args.memory))
    status = json.loads(sh(LAB, "status", "--json"))
    addresses = [g["address"] for g in status["guests"] if g["name"] in names]
    print("%d guests of %d MiB on hv1, evacuated to hv2 and hv3 and restored; lab on %s"
          % (args.guests, args.memory, os.uname().nodename))
    header = ("limit", "run", "wall s", "moved", "MiB", "sum mig s", "downtime ms min/med/max", "probe")
    print("%-6s %-8s %8s %6s %8s %9s %26s %6s" % header)
    for limit in args.limits:
        for name in ("evacuate", "restore"):
            r = timed(name, {"max_outbound": limit, "max_inbound": limit}, addresses)
            d = r["downtimes"] or [0]
            print("%-6d %-8s %8.1f %6d %8.0f %9.1f %26s %6d" % (
                limit, name, r["wall"], r["moved"], r["mib"], r["move_time"],
                "%d/%d/%d" % (d[0], d[len(d) // 2], d[-1]), r["probe_failures"]))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
