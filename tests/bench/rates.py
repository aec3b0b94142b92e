# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How often a lab guest that dirties memory is broken by a live migration: restarts and lost writes.

    make rates          # or: python tests/bench/rates.py [--count 40] [--json FILE]

Two guests (384 MiB, rewriting 20 MiB/s of memory and checking it: tests/lab/guest/dirty.c) are moved
back and forth between hv2 and hv3 over the transport the lab uses after playbooks/setup.yml (TLS),
`--count` migrations per method, one guest at a time:

- virsh: `virsh migrate --live --p2p --tls --persistent --undefinesource`, QEMU's default downtime
  limit (300 ms), the control;
- virsh50: the same after `virsh migrate-setmaxdowntime <guest> 50`, the lowest limit the engine's
  ladder may use;
- engine: `ansible <source> -m hostmaint.libvirt.live_migrate` at the engine's defaults.

After every migration it waits for the guest to answer over HTTP, and counts a restart when it answers
with a new boot id, and lost writes when its own memory check (/memcheck) found more errors than before.
It prints one row per method, the QEMU and libvirt versions, and writes JSON. It asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_evacuate import (  # noqa: E402  pylint: disable=wrong-import-position
    INVENTORY, LAB, ROOT, answer, completed, lab_set_up, log, memory_errors, on, sh, write_json)

GUESTS = ("rate1", "rate2")
HOSTS = ("hv2", "hv3")
METHODS = ("virsh", "virsh50", "engine")


def dirty_guests(names):
    """Lab guests of 384 MiB rewriting 20 MiB/s of memory and checking it, made afresh, alternately on hv2 and hv3:
    {name: address}."""
    addresses = {}
    for index, name in enumerate(names):
        sh(LAB, "guest", "rm", name, check=False)
        added = json.loads(sh(LAB, "guest", "add", name, "--host", HOSTS[index % 2], "--memory", "384",
                              "--dirty", "20").stdout)
        addresses[name] = added["address"]
    return addresses


def located(name):
    for host in HOSTS:
        if name in on(host, "virsh -q list --name").stdout.split():
            return host
    raise SystemExit("%s runs on neither %s" % (name, " nor ".join(HOSTS)))


def wait_answer(address, within=60.0):
    deadline = time.time() + within
    while time.time() < deadline:
        try:
            return answer(address, 1.0)
        except OSError:
            time.sleep(0.3)
    return None


def migrate(method, name, source, dest):
    if method == "engine":
        proc = subprocess.run(["ansible", "-i", INVENTORY, source, "-m", "hostmaint.libvirt.live_migrate",
                               "-a", json.dumps({"guest": name, "destination": dest})],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=900,
                              check=False, cwd=ROOT, env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="hostmaint.libvirt.oneline"))
        return proc.returncode == 0, proc.stdout[-600:]
    script = "virsh migrate --live --p2p --tls --persistent --undefinesource %s qemu+tls://%s/system" % (name, dest)
    if method == "virsh50":
        script = "virsh migrate-setmaxdowntime %s 50 && %s" % (name, script)
    proc = on(source, script, check=False, timeout=900)
    return proc.returncode == 0, (proc.stderr or proc.stdout)[-600:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--count", type=int, default=40, help="migrations per method")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--json", default=os.path.join(ROOT, ".cache", "bench", "rates-%s.json"
                                                       % datetime.datetime.now().strftime("%Y%m%dT%H%M%S")))
    args = parser.parse_args()
    lab_set_up()
    versions = on("hv2", "virsh -q version").stdout
    addresses = dirty_guests(GUESTS)
    results = dict(versions=versions.strip(), count=args.count, methods={})
    for method in args.methods:
        row = dict(migrations=0, failed=0, restarts=0, lost_write_migrations=0, downtimes_ms=[], failures=[])
        for step in range(args.count):
            name = GUESTS[step % len(GUESTS)]
            source = located(name)
            dest = HOSTS[1 - HOSTS.index(source)]
            before = wait_answer(addresses[name])
            errors_before = memory_errors(addresses[name]) or 0
            ok, output = migrate(method, name, source, dest)
            row["migrations"] += 1
            if not ok:
                row["failed"] += 1
                row["failures"].append(output)
                log("%s %s %s -> %s failed: %s" % (method, name, source, dest, output.strip()[-300:]))
                continue
            time.sleep(3.0)  # a guest broken on arrival faults within a second or two
            after = wait_answer(addresses[name])
            errors = memory_errors(addresses[name])
            figures = completed(dest, name)
            if figures["downtime_ms"] is not None:
                row["downtimes_ms"].append(figures["downtime_ms"])
            if after != before:
                row["restarts"] += 1
                log("%s %s %s -> %s: restarted (%s, was %s)" % (method, name, source, dest, after, before))
            elif errors is not None and errors > errors_before:
                row["lost_write_migrations"] += 1
                log("%s %s %s -> %s: %d lost writes" % (method, name, source, dest, errors - errors_before))
        results["methods"][method] = row
        log("%s: %d migrations, %d failed, %d restarts, %d with lost writes"
            % (method, row["migrations"], row["failed"], row["restarts"], row["lost_write_migrations"]))
    for name in GUESTS:
        sh(LAB, "guest", "rm", name, check=False)
    print(re.sub(r"\s+", " ", results["versions"]))
    print("%-8s %11s %7s %9s %12s %12s" % ("method", "migrations", "failed", "restarts", "lost writes", "downtime max"))
    for method, row in results["methods"].items():
        cells = (method, row["migrations"], row["failed"], row["restarts"], row["lost_write_migrations"],
                 max(row["downtimes_ms"] or [None]))
        print("%-8s %11d %7d %9d %12d %12s" % cells)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
