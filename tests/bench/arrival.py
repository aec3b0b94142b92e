# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When a guest that a live migration broke shows it, after the switchover: the data behind settle_s.

    python tests/bench/arrival.py [--count 40] [--watch 20] [--downtime 50]

The engine watches every guest it moved for ``settle_s`` after its switchover (its events on the destination,
its probe) and stops the run at the first guest that did not land well. This measures how long that watch
must be. On a lab whose QEMU breaks guests in migrations (Debian 12's QEMU 7.2 with TCG:
``HOSTMAINT_LAB_DISTRO_QEMU=1``, README "The lab's QEMU"), two guests of 384 MiB that rewrite 20 MiB/s of
memory and check it (tests/lab/guest/dirty.c; one sweep of its 64 MiB buffer takes 3.2 s) are moved back and
forth between hv2 and hv3 with plain ``virsh migrate --live --p2p --tls`` (after ``migrate-setmaxdowntime``
``--downtime`` ms, the engine's lowest rung; 0: QEMU's default): the faults are the emulator's, not the
engine's. For each migration:

- the switchover: the destination's ``Resumed Migrated`` event (``virsh event --all --loop --timestamp`` on
  both hosts for the whole run);
- then for ``--watch`` seconds, each signal's first sight, in seconds after the switchover: the
  destination's events that the engine's settle check counts (reboot, crash, stop, shutdown, a pause the move
  did not ask for); the guest's console (a kernel fault: ``Kernel panic``, ``Oops``, ``BUG:``, ``general
  protection``; a lost write its memory check found: ``LAB-GUEST-CORRUPTION``), read by the controller every
  0.1 s; the guest's HTTP answer (a new boot id), every 0.2 s; and when it answered HTTP again first.

It prints one line per broken migration and the distribution of each signal's delay (min, median, max), and
writes JSON. It asserts nothing. Interrupted (Ctrl-C), it analyses the migrations done so far. A migration of these
guests at a 50 ms limit takes 20-60 s on 2 cores with TCG (they converge slowly), so 40 take about 40 minutes.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figures  # noqa: E402  pylint: disable=wrong-import-position
from bench_evacuate import LAB, ROOT, lab_set_up, log, on, sh, write_json  # noqa: E402  pylint: disable=wrong-import-position
from rates import HOSTS, dirty_guests, located  # noqa: E402  pylint: disable=wrong-import-position

GUESTS = ("arr1", "arr2")
FAULT_TEXT = re.compile(r"Kernel panic|Oops|BUG:|general protection|LAB-GUEST-CORRUPTION")


def console_of(host, guest):
    paths = glob.glob(os.path.join(ROOT, ".lab", "hosts", host, "var-log-libvirt", "qemu", "%s-serial.log" % guest))
    if not paths:
        return ""
    with open(paths[0], errors="replace") as fh:
        return fh.read()


def boot_id(address):
    try:
        with urllib.request.urlopen("http://%s/" % address, timeout=0.5) as resp:
            return resp.read().decode().strip()
    except OSError:
        return None


def watch(name, address, before, console_start, watch_s):
    """Signals seen from the controller for ``watch_s`` after the migration returned: {signal: epoch s}; the
    console counts from ``console_start`` ({host: length before the migration})."""
    seen = {}
    deadline = time.time() + watch_s
    next_http = 0.0
    while time.time() < deadline:
        now = time.time()
        if "console" not in seen:
            for host in HOSTS:
                text = console_of(host, name)[console_start[host]:]
                match = FAULT_TEXT.search(text)
                if match:
                    seen["console"] = now
                    seen["console_text"] = text[match.start():match.start() + 120].splitlines()[0]
                    break
        if now >= next_http:
            next_http = now + 0.2
            answer = boot_id(address)
            if answer is not None and "http_again" not in seen:
                seen["http_again"] = now
            if answer is not None and answer != before and "new_boot_id" not in seen:
                seen["new_boot_id"] = now
        time.sleep(0.1)
    return seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--count", type=int, default=40, help="migrations")
    parser.add_argument("--watch", type=float, default=20.0, help="seconds watched after each migration")
    parser.add_argument("--downtime", type=int, default=50, help="downtime limit set before each migration (0: none)")
    parser.add_argument("--json", default=os.path.join(ROOT, ".cache", "bench", "arrival-%s.json"
                                                       % datetime.datetime.now().strftime("%Y%m%dT%H%M%S")))
    args = parser.parse_args()
    lab_set_up()
    versions = re.sub(r"\s+", " ", on("hv2", "virsh -q version").stdout.strip())
    addresses = dirty_guests(GUESTS)
    logs = dict((host, os.path.join(ROOT, ".cache", "bench", "arrival-events-%s.log" % host)) for host in HOSTS)
    os.makedirs(os.path.dirname(logs[HOSTS[0]]), exist_ok=True)
    listeners = [subprocess.Popen([LAB, "exec", host, "virsh", "event", "--all", "--loop", "--timestamp"],
                                  stdout=open(logs[host], "w"), stderr=subprocess.STDOUT) for host in HOSTS]
    time.sleep(1.0)
    migrations = []
    try:
        for step in range(args.count):
            name = GUESTS[step % len(GUESTS)]
            source = located(name)
            dest = HOSTS[1 - HOSTS.index(source)]
            before = None
            for _try in range(100):
                before = boot_id(addresses[name])
                if before:
                    break
                time.sleep(0.5)
            script = "virsh migrate --live --p2p --tls --persistent --undefinesource %s qemu+tls://%s/system" % (name, dest)
            if args.downtime:
                script = "virsh migrate-setmaxdowntime %s %d && %s" % (name, args.downtime, script)
            console_start = dict((h, len(console_of(h, name))) for h in HOSTS)
            started = time.time()
            proc = on(source, script, check=False, timeout=900)
            returned = time.time()
            seen = watch(name, addresses[name], before, console_start, args.watch)
            migrations.append(dict(guest=name, source=source, destination=dest, started=started, returned=returned,
                                   ok=proc.returncode == 0, seen=seen, before=before))
            signals = ", ".join("%s +%.2f s" % (k, v - returned) for k, v in seen.items()
                                if isinstance(v, float) and k != "http_again")
            log("%d/%d %s %s -> %s rc %d: %s" % (
                step + 1, args.count, name, source, dest, proc.returncode, signals or "quiet"))
    except KeyboardInterrupt:
        log("interrupted after %d migrations: what was gathered is analysed" % len(migrations))
    finally:
        for proc in listeners:
            proc.terminate()
            proc.wait(5)
        for name in GUESTS:
            sh(LAB, "guest", "rm", name, check=False)
    events = {}
    for host, path in logs.items():
        with open(path) as fh:
            events[host] = figures.virsh_events(fh.read())
    broken, delays = figures.arrival_delays(migrations, events, args.watch)
    print(versions)
    print("%d migrations (downtime limit %s), %d broken, %d failed" % (
        len(migrations), "%d ms" % args.downtime if args.downtime else "QEMU's default", len(broken),
        len([m for m in migrations if not m["ok"]])))
    for mig in broken:
        print("  %s %s -> %s: %s%s" % (mig["guest"], mig["source"], mig["destination"],
                                       ", ".join("%s +%.2f s" % kv for kv in sorted(mig["after_switchover_s"].items())),
                                       " (%s; %s)" % (mig.get("first_event"), mig["seen"].get("console_text"))))
    print("seconds after the switchover (min / median / max, count):")
    for key, values in sorted(delays.items()):
        print("  %-18s %6.2f %6.2f %6.2f  n=%d" % (key, min(values), statistics.median(values), max(values), len(values)))
    write_json(args.json, dict(versions=versions, downtime_ms=args.downtime, watch_s=args.watch,
                               migrations=migrations, delays=delays))


if __name__ == "__main__":
    main()
