# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chaos soak (make soak CYCLES=N [SEED=S], outside CI): N cycles on the lab, alternately evacuating hv1
(evacuate.yml -l hv1) and bringing its guests home (restore.yml -l hv1), each with one fault injected at a
random moment (seeded; the seed is printed). After each cycle the faults are healed as a machine would heal
(a daemon restarted, a link up again), the invariant is checked from libvirt itself, the playbook is re-run
as an operator would (once; a second time only after the previous run's hold is gone), and the invariant is
checked again. A re-run that still fails, or a lab that needs a hand, counts as a manual intervention.

Prints every cycle, then: cycles run, faults by kind, invariant violations and manual interventions (both
must be 0). Writes the figures to .cache/faults/soak-<seed>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import invariant  # noqa: E402  pylint: disable=wrong-import-position
from conftest import (finish_playbook, libvirtd, libvirtd_alive, links, qemu_pid, restore_lab,  # noqa: E402
                      start_playbook)
from labkit import ROOT, kit  # noqa: E402  pylint: disable=wrong-import-position

GUESTS = (("sk1", ()), ("sk2", ("--dirty", "8")), ("sk3", ()))
FAULTS = ("none", "destination libvirtd killed", "source libvirtd restarted", "destination QEMU killed",
          "migration link cut 5 s", "playbook killed (SIGKILL)", "playbook interrupted (SIGINT)", "stop.yml")
CYCLE_BOUND_S = 400
CASUALTIES = []  # guests whose own QEMU the fault killed (once switched over, the incoming QEMU is the guest)


def in_flight(lab, names, hosts):
    for host in hosts:
        found = [n for n in lab.names(host, "--transient", check=False) if n in names]
        if found:
            return found[0], host
    return None


def inject(lab, fault, phase, names, rng, proc):
    """Wait a random moment (or for a migration under way), then inject the fault; returns a note."""
    dests = ("hv2", "hv3") if phase == "evacuate" else ("hv1",)
    deadline = time.time() + rng.uniform(1.0, 12.0)
    flight = None
    while time.time() < deadline and proc.poll() is None:
        flight = in_flight(lab, names, dests)
        if flight and rng.random() < 0.5:
            break
        time.sleep(0.2)
    if proc.poll() is not None:
        return "the run ended before the fault"
    guest, dest = flight or (None, rng.choice(dests))
    source = "hv1" if phase == "evacuate" else None
    if fault == "destination libvirtd killed":
        libvirtd(dest, "kill")
        time.sleep(rng.uniform(1, 5))
        libvirtd(dest, "start")
    elif fault == "source libvirtd restarted":
        libvirtd(source or rng.choice(("hv2", "hv3")), "restart")
    elif fault == "destination QEMU killed":
        pid = qemu_pid(dest, guest) if guest else None
        if pid is None:
            return "no incoming QEMU to kill"
        kit.lab_cli("exec", dest, "kill", "-9", str(pid))
        CASUALTIES.append(guest)  # killed after its switchover, it is the guest itself that dies
    elif fault == "migration link cut 5 s":
        links(dest, "down", which=("mig",))
        time.sleep(5)
        links(dest, "up", which=("mig",))
    elif fault == "playbook killed (SIGKILL)":
        proc.send_signal(signal.SIGKILL)
    elif fault == "playbook interrupted (SIGINT)":
        proc.send_signal(signal.SIGINT)
    elif fault == "stop.yml":
        kit.ansible_playbook("playbooks/stop.yml", "-l", "hv1", timeout=200)
    return "%s%s" % (fault, " while %s moved to %s" % (guest, dest) if guest else "")


def heal(lab):
    """What the machine does by itself after a fault: daemons and links come back. Returns what needed a hand."""
    for host in lab.hosts():
        links(host, "up")
        if not libvirtd_alive(host):
            libvirtd(host, "start")


def held(lab):
    return [h for h in lab.hosts() if "hostmaint:hold" in lab.virsh(h, "secret-list", check=False).stdout]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10 ** 6)
    rng = random.Random(seed)
    print("soak: seed %d, %d cycles" % (seed, args.cycles), flush=True)
    lab = kit.Lab()
    if not os.path.exists(os.path.join(ROOT, ".lab", "state.json")):
        kit.lab_cli("up", "--hosts", "3", timeout=900)
        setup = kit.ansible_playbook("playbooks/setup.yml")
        if setup.returncode != 0:
            print(setup.stdout[-3000:])
            return 2
    restore_lab(lab)
    for name, extra in GUESTS:
        lab.add_guest(name, "hv1", *extra)
    names = [name for name, _extra in GUESTS]
    figures = dict(seed=seed, cycles=0, faults={}, violations=[], interventions=[], reruns=0, seconds=[],
                   casualties=[])
    path = os.path.join(ROOT, ".cache", "faults", "soak-%d.json" % seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    for cycle in range(1, args.cycles + 1):
        phase = "evacuate" if cycle % 2 else "restore"
        playbook = "playbooks/%s.yml" % phase
        fault = rng.choice(FAULTS)
        del CASUALTIES[:]
        started = time.time()
        before = invariant.snapshot(lab)
        proc = start_playbook(playbook, "-l", "hv1")
        note = inject(lab, fault, phase, names, rng, proc) if fault != "none" else "no fault"
        rc, _out = finish_playbook(proc, timeout=CYCLE_BOUND_S)
        heal(lab)
        marks = {"hv1"} if phase == "evacuate" else set()
        problems = []
        # the playbook was killed or stopped: its run on hv1 releases the host within its bound
        deadline = time.time() + 180
        while held(lab) and time.time() < deadline:
            time.sleep(1)
        problems += invariant.violations(before, invariant.snapshot(lab, guests=set(before["answers"])),
                                         marks=marks, maybe_marked={"hv1"}, stopped=set(CASUALTIES))
        again = kit.ansible_playbook(playbook, "-l", "hv1", timeout=CYCLE_BOUND_S)
        figures["reruns"] += 1
        if again.returncode != 0:
            time.sleep(5)
            again = kit.ansible_playbook(playbook, "-l", "hv1", timeout=CYCLE_BOUND_S)
            if again.returncode != 0:
                figures["interventions"].append(dict(cycle=cycle, fault=fault, output=again.stdout[-1500:]))
        after = invariant.snapshot(lab, guests=set(before["answers"]))
        problems += invariant.violations(before, after, marks=marks, stopped=set(CASUALTIES))
        where = sorted(set(h for n in names for h, v in after["hosts"].items() if v and n in v["guests"]))
        home_ok = (phase == "evacuate" and "hv1" not in where) or (phase == "restore" and where == ["hv1"])
        if not home_ok:
            problems.append("after the re-run of %s the guests are on %s" % (playbook, ", ".join(where)))
        for name in CASUALTIES:  # the operator starts the guest the fault killed, where it is defined
            for host in lab.defined_on(name):
                if name not in lab.running_on(name):
                    lab.virsh(host, "start", name, check=False)
                    figures["casualties"].append(dict(cycle=cycle, guest=name, host=host))
        took = time.time() - started
        figures["cycles"] = cycle
        figures["faults"][fault] = figures["faults"].get(fault, 0) + 1
        figures["seconds"].append(round(took, 1))
        if problems:
            figures["violations"].append(dict(cycle=cycle, fault=fault, note=note, problems=problems))
            restore_lab(lab)  # a hand is needed: the lab is put back and the guests made again
            figures["interventions"].append(dict(cycle=cycle, fault=fault, output="lab restored after violations"))
            for name, extra in GUESTS:
                lab.add_guest(name, "hv1", *extra)
        print("cycle %d %s: %s; rc %d, re-run rc %d; %s (%.0f s)" % (
            cycle, phase, note, rc, again.returncode, "; ".join(problems) or "invariant holds", took), flush=True)
        with open(path, "w") as handle:
            json.dump(figures, handle, indent=1)
    print("soak: seed %d: %d cycles run; faults by kind: %s; invariant violations: %d; manual interventions: %d; "
          "guests killed by the fault itself and started again: %d; cycle time median %.0f s" % (
              seed, figures["cycles"], ", ".join("%s %d" % kv for kv in sorted(figures["faults"].items())),
              len(figures["violations"]), len(figures["interventions"]), len(figures["casualties"]),
              sorted(figures["seconds"])[len(figures["seconds"]) // 2] if figures["seconds"] else 0))
    print("soak: figures in %s" % os.path.relpath(path, ROOT))
    return 0 if not figures["violations"] and not figures["interventions"] else 1


if __name__ == "__main__":
    sys.exit(main())
