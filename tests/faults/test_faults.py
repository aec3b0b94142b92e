# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults during an evacuation or a restore, on the lab (libvirt's own migration tests, the tp-libvirt catalog,
are the yardstick: docs/fault-catalog.md). Each case injects its fault into a real run, then checks the
invariant (tests/faults/invariant.py) from libvirt itself, re-runs the playbook as an operator would, and
checks it again: no guest lost, every guest placed once, the run bounded, the re-run finishing the job."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

import invariant
from conftest import (finish_playbook, incoming, libvirtd, links, qemu_pid, result_of, start_ad_hoc, start_playbook,
                      wait_for)
from labkit import kit

EVACUATE = "playbooks/evacuate.yml"
RESTORE = "playbooks/restore.yml"


def add(lab, names, host="hv1", *extra):
    return dict((name, lab.add_guest(name, host, *extra)) for name in names)


def rerun(lab, before, playbook, host, marks, case, **kwargs):
    """The operator's re-run: it must succeed and leave the invariant holding."""
    again = kit.ansible_playbook(playbook, "-l", host)
    case.note("re-run of %s -l %s: rc %d" % (playbook, host, again.returncode))
    assert again.returncode == 0, again.stdout[-3000:]
    return invariant.assert_holds(lab, before, marks=marks, **kwargs)


def in_flight_to(lab, names, hosts=("hv2", "hv3")):
    """(guest, destination) of the first migration seen under way towards hosts."""
    for host in hosts:
        found = [n for n in incoming(lab, host) if n in names]
        if found:
            return found[0], host
    return None


def guests_on(lab, host):
    return lab.names(host)


def evacuate_under(lab, case, names, fault, *extra, **kwargs):
    """evacuate.yml -l hv1, one move at a time, with ``fault(guest, destination)`` (which returns a note) injected
    once a migration is under way; then the invariant, and when the run failed, the operator's re-run and the
    invariant again. ``kwargs`` go to the invariant (such as ``stopped``)."""
    before = invariant.snapshot(lab)
    proc = start_playbook(EVACUATE, "-l", "hv1", "-e", "hostmaint_libvirt_max_outbound=1", *extra)
    guest, dest = wait_for("a migration from hv1", lambda: in_flight_to(lab, names))
    case.note(fault(guest, dest))
    rc = finish_playbook(proc)[0]
    case.note("evacuate.yml: rc %d" % rc)
    assert rc != 0 or not guests_on(lab, "hv1"), "the run reported success with guests left on hv1"
    invariant.assert_holds(lab, before, marks={"hv1"}, **kwargs)
    if rc != 0:
        rerun(lab, before, EVACUATE, "hv1", {"hv1"}, case, **kwargs)
    assert not guests_on(lab, "hv1")


@pytest.mark.case("fault", "1. the destination's libvirtd is killed during a migration to it, then restarted", 300)
def test_destination_libvirtd_killed_in_flight_then_restarted(clean, case):
    names = ["f1a", "f1b", "f1c"]
    add(clean, names, "hv1", "--dirty", "8")

    def fault(guest, dest):
        libvirtd(dest, "kill")
        time.sleep(3)
        libvirtd(dest, "start")
        return "killed %s's libvirtd for 3 s while %s migrated to it" % (dest, guest)
    evacuate_under(clean, case, names, fault)


@pytest.mark.case("fault", "2. the source's libvirtd is restarted during the run", 300)
def test_source_libvirtd_restarted_during_the_run(clean, case):
    names = ["f2a", "f2b", "f2c"]
    add(clean, names, "hv1", "--dirty", "8")

    def fault(guest, dest):
        libvirtd("hv1", "restart")
        return "restarted hv1's libvirtd while %s migrated to %s" % (guest, dest)
    evacuate_under(clean, case, names, fault)


def define_copy(host, xml):
    """virsh define on host, as libvirt leaves a migrated guest's source when the migration's last step never ran
    there (its libvirtd restarted at that moment): a shut-off definition of the guest, same name and UUID."""
    proc = subprocess.run([kit.LAB_CMD, "exec", host, "sh", "-c", "cat > /tmp/stale.xml && virsh -q define /tmp/stale.xml "
                           "&& rm -f /tmp/stale.xml"], input=xml, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.case("fault", "2b. a migration's last step never ran on its source (its libvirtd restarted then): the "
                  "source keeps a shut-off copy of a guest that runs elsewhere; the next evacuate or restore removes "
                  "it and never moves it", 300)
def test_a_copy_left_by_a_migration_whose_last_step_never_ran_is_removed(clean, case):
    lab = clean
    add(lab, ["f2s"], "hv1")
    xml = lab.virsh("hv1", "dumpxml", "--inactive", "f2s").stdout
    first = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
    assert not first.get("failed"), first.get("msg")
    away = lab.running_on("f2s")
    before = invariant.snapshot(lab)
    # the evacuation direction: hv1 (the source) kept its definition
    define_copy("hv1", xml)
    assert lab.defined_on("f2s") == sorted(["hv1"] + away)
    again = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
    case.note("evacuate again: %s" % [c["note"] for c in again.get("stale_copies", [])])
    assert not again.get("failed"), again.get("msg")
    assert [(c["guest"], c["host"], c["runs_on"], c["removed"]) for c in again["stale_copies"]] == [
        ("f2s", "hv1", away[0], True)]
    assert again["plan"]["moves"] == []  # never moved as a second instance
    invariant.assert_holds(lab, before, marks={"hv1"})
    # the restore direction: the guest came home, and the host it was on kept its definition (with its record)
    away_xml = lab.virsh(away[0], "dumpxml", "--inactive", "f2s").stdout
    home = kit.ansible_playbook(RESTORE, "-l", "hv1")
    assert home.returncode == 0, home.stdout[-3000:]
    define_copy(away[0], away_xml)
    check = lab.ansible("hv1", "hostmaint.libvirt.restore", check=True)["hv1"]
    assert [(c["guest"], c["host"], c["removed"]) for c in check["stale_copies"]] == [("f2s", away[0], False)]
    assert check["plan"]["moves"] == [] and lab.defined_on("f2s") == sorted(["hv1", away[0]])
    again = lab.ansible("hv1", "hostmaint.libvirt.restore")["hv1"]
    case.note("restore again: %s" % [c["note"] for c in again.get("stale_copies", [])])
    assert not again.get("failed"), again.get("msg")
    assert [(c["guest"], c["host"], c["runs_on"], c["removed"]) for c in again["stale_copies"]] == [
        ("f2s", away[0], "hv1", True)]
    invariant.assert_holds(lab, before)
    assert lab.defined_on("f2s") == ["hv1"] and lab.running_on("f2s") == ["hv1"]


@pytest.mark.case("fault", "3. the destination's QEMU for the incoming guest is killed mid-copy", 300)
def test_destination_qemu_killed_mid_copy(clean, case):
    names = ["f3a", "f3b"]
    add(clean, names, "hv1", "--dirty", "16")

    def fault(guest, dest):
        pid = wait_for("the incoming QEMU of %s on %s" % (guest, dest), lambda: qemu_pid(dest, guest), within=30)
        kit.lab_cli("exec", dest, "kill", "-9", str(pid))
        return "killed the incoming QEMU (pid %d) of %s on %s" % (pid, guest, dest)
    evacuate_under(clean, case, names, fault)


@pytest.mark.case("fault", "4a. the destination's migration link is cut for 5 s mid-migration", 300)
def test_migration_link_cut_briefly(clean, case):
    names = ["f4a", "f4b"]
    add(clean, names, "hv1", "--dirty", "16")

    def fault(guest, dest):
        links(dest, "down", which=("mig",))
        time.sleep(5)
        links(dest, "up", which=("mig",))
        return "cut %s's migration link for 5 s while %s migrated to it" % (dest, guest)
    evacuate_under(clean, case, names, fault)


@pytest.mark.case("fault", "4b. the destination is cut off (both links) for 40 s, beyond libvirt's keepalive (30 s)", 400)
def test_destination_cut_off_beyond_keepalive(clean, case):
    names = ["f4c", "f4d"]
    add(clean, names, "hv1", "--dirty", "16")

    def fault(guest, dest):
        links(dest, "down")
        time.sleep(40)
        links(dest, "up")
        return "cut %s off for 40 s while %s migrated to it" % (dest, guest)
    evacuate_under(clean, case, names, fault)


@pytest.mark.case("fault", "6. a guest dirties memory faster than it is copied; no post-copy: aborted at its bound", 200)
def test_a_guest_that_cannot_converge_is_aborted_at_its_bound(clean, case):
    lab = clean
    guest = add(lab, ["f6"], "hv1", "--dirty", "100")["f6"]
    before = invariant.snapshot(lab)
    prober = kit.Prober(guest)
    prober.start()
    started = time.time()
    # 40 MiB/s cannot copy a 128 MiB working set rewritten every 1.3 s, whatever the pause allowed, and
    # neither auto-converge nor post-copy may help: the ladder raises the pause limit, then aborts at 30 s
    result = lab.ansible("hv1", "hostmaint.libvirt.evacuate", {
        "bandwidth_mib": 40, "min_timeout": 30, "timeout_per_gib": 1, "postcopy": False,
        "auto_converge": False})["hv1"]
    took = time.time() - started
    prober.stop()
    outcome = (result.get("outcomes") or [{}])[0]
    case.note("evacuate: %s in %.0f s; ladder %s" % (outcome.get("outcome"), took,
                                                     [s.get("kind") for s in outcome.get("ladder_steps", [])]))
    assert result.get("failed") and outcome.get("outcome") == "aborted", result
    assert result["msg"].startswith("hv1 is not empty: f6 still run"), result["msg"]
    assert "keeps running on hv1" in outcome["reason"], outcome
    assert result["empty"] is False and result["remaining"] == ["f6"]
    assert [s for s in outcome["ladder_steps"] if s.get("kind") == "set_downtime"], outcome
    assert took < 30 + 40, "the abort came %.0f s after the start, beyond its 30 s bound and the abort grace" % took
    case.note("f6 answered %d probes, %d failed, longest gap %.1f s" % (prober.ok, prober.failed, prober.longest_gap))
    lab.kept_instance(prober)  # the same instance all along, no kernel fault, no lost write
    assert lab.record("hv1", "f6") is None
    invariant.assert_holds(lab, before, marks={"hv1"})
    assert guests_on(lab, "hv1") == ["f6"]


@pytest.mark.case("fault", "7a. ansible-playbook evacuate.yml is killed (SIGKILL) half-way; a re-run finishes", 300)
def test_the_playbook_killed_half_way_and_a_rerun_finishes(clean, case):
    lab = clean
    names = ["f7a", "f7b", "f7c"]
    add(lab, names, "hv1")
    before = invariant.snapshot(lab)
    proc = start_playbook(EVACUATE, "-l", "hv1", "-e", "hostmaint_libvirt_max_outbound=1")
    wait_for("a migration from hv1", lambda: in_flight_to(lab, names))
    proc.send_signal(signal.SIGKILL)  # ansible-playbook itself, as `kill -9 <pid>` would
    proc.wait(10)
    case.note("killed ansible-playbook (pid %d) while a migration was under way" % proc.pid)
    # the run on hv1 goes on without its controller, or stops: either way it releases hv1, within its bound
    wait_for("hv1's hold to be released", lambda: "hostmaint:hold" not in lab.virsh("hv1", "secret-list").stdout,
             within=240, every=1)
    invariant.assert_holds(lab, before, marks={"hv1"})
    rerun(lab, before, EVACUATE, "hv1", {"hv1"}, case)
    assert not guests_on(lab, "hv1")


@pytest.mark.case("fault", "7b. the evacuate module's own process is killed (SIGKILL) during a migration; the re-run "
                           "aborts the migration it left running and finishes", 300)
def test_the_module_killed_and_the_rerun_adopts_its_migration(clean, case):
    lab = clean
    add(lab, ["f7d", "f7e"], "hv1", "--dirty", "20")
    before = invariant.snapshot(lab)
    proc = start_ad_hoc("hv1", "hostmaint.libvirt.evacuate", {"max_outbound": 1, "bandwidth_mib": 4})
    guest, dest = wait_for("a migration from hv1", lambda: in_flight_to(lab, ["f7d", "f7e"]))
    hold = wait_for("hv1's hold", lambda: [l for l in lab.virsh("hv1", "secret-list").stdout.splitlines()
                                           if "hostmaint:hold" in l])
    uuid = hold[0].split()[0]
    held = json.loads(base64.b64decode(lab.virsh("hv1", "secret-get-value", uuid).stdout.strip()))
    kit.lab_cli("exec", "hv1", "kill", "-9", str(held["pid"]))
    case.note("killed the module (pid %d, run %s) while %s migrated to %s" % (held["pid"], held["run_id"], guest, dest))
    result_of(proc, "hv1")
    time.sleep(3)
    assert "Unbounded" in lab.virsh("hv1", "domjobinfo", guest).stdout, "the orphaned migration should still run"
    again = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
    assert again.get("failed") is not True, again.get("msg")
    case.note("re-run: took over the hold of run %s (%s); %s" % (
        again["taken_over"]["run_id"], again["taken_over"]["why"], "; ".join(u["reason"] for u in again["under_way"])))
    assert again["taken_over"]["run_id"] == held["run_id"]
    assert [(u["guest"], u["action"]) for u in again["under_way"]] == [(guest, "aborted")], again["under_way"]
    invariant.assert_holds(lab, before, marks={"hv1"})
    assert not guests_on(lab, "hv1")


@pytest.mark.case("fault", "8a. the same host evacuated twice at the same moment", 240)
def test_the_same_host_evacuated_twice_at_once(clean, case):
    lab = clean
    add(lab, ["f8a", "f8b"], "hv1")
    before = invariant.snapshot(lab)
    first = start_playbook(EVACUATE, "-l", "hv1")
    second = start_playbook(EVACUATE, "-l", "hv1")
    (rc1, out1), (rc2, out2) = finish_playbook(first), finish_playbook(second)
    case.note("two evacuate.yml -l hv1 at once: rc %d and %d" % (rc1, rc2))
    assert sorted([rc1, rc2]) == [0, 2], (out1[-2000:], out2[-2000:])
    refused = out2 if rc2 else out1
    assert "hv1 is held by run " in refused and "another run is working on hv1" in refused, refused[-3000:]
    invariant.assert_holds(lab, before, marks={"hv1"})
    assert not guests_on(lab, "hv1")


@pytest.mark.case("fault", "8b. two hosts evacuated at the same moment: no guest lands on a host being emptied", 300)
def test_two_hosts_evacuated_at_once(clean, case):
    lab = clean
    add(lab, ["f8c", "f8d"], "hv1")
    add(lab, ["f8e", "f8f"], "hv2")
    before = invariant.snapshot(lab)
    one = start_playbook(EVACUATE, "-l", "hv1")
    two = start_playbook(EVACUATE, "-l", "hv2")
    (rc1, out1), (rc2, out2) = finish_playbook(one), finish_playbook(two)
    case.note("evacuate.yml -l hv1 and -l hv2 at once: rc %d and %d" % (rc1, rc2))
    invariant.assert_holds(lab, before, marks={"hv1", "hv2"})
    for host, rc in (("hv1", rc1), ("hv2", rc2)):
        if rc != 0:
            rerun(lab, before, EVACUATE, host, {"hv1", "hv2"}, case)
    assert not guests_on(lab, "hv1") and not guests_on(lab, "hv2")
    assert sorted(guests_on(lab, "hv3")) == ["f8c", "f8d", "f8e", "f8f"]


@pytest.mark.case("fault", "11. a guest shuts itself down while it is being migrated", 240)
def test_a_guest_shut_down_from_inside_during_its_migration(clean, case):
    guests = add(clean, ["f11a"], "hv1", "--dirty", "16")
    add(clean, ["f11b"], "hv1")

    def fault(_guest, dest):
        # libvirt refuses its own shutdown during a migration: the guest powers itself off (tests/lab/guest/init)
        answer = urllib.request.urlopen("http://%s/cgi-bin/poweroff" % guests["f11a"]["address"], timeout=5).read()
        wait_for("f11a to be off", lambda: not clean.running_on("f11a"), within=60, every=1)
        return "f11a powered itself off (%s) while it migrated to %s" % (answer.decode().strip(), dest)
    evacuate_under(clean, case, ["f11a"], fault, "-e", "hostmaint_libvirt_bandwidth_mib=16", stopped={"f11a"})


MARK_XML = ("<secret ephemeral='no' private='no'><usage type='volume'><volume>hostmaint:maintenance</volume></usage>"
            "</secret>")
HOG = "import sys, time; b = bytearray(int(sys.argv[1]) * 1048576); b[::4096] = b'x' * len(b[::4096]); time.sleep(600)"


@pytest.mark.case("fault", "5. the destination's free memory is taken after planning (3 GiB allocated there)", 300)
def test_destination_memory_taken_after_planning(clean, case):
    lab = clean
    names = ["f5a", "f5b", "f5c"]
    add(lab, names, "hv1", "--dirty", "8")
    # hv3 in maintenance: hv2 is the only destination, planned with room for the three guests and little more
    kit.lab_cli("exec", "hv3", "sh", "-c", "printf \"%s\" > /tmp/m.xml && virsh secret-define /tmp/m.xml" % MARK_XML)
    before = invariant.snapshot(lab)
    # planned with 1.5 GiB of room on hv2 for three guests of 256 MiB, then 3 GiB taken: margins wider than what
    # another lab on the machine moves meanwhile (make test runs two)
    available = lab.ansible("hv2", "hostmaint.libvirt.hypervisor_info")["hv2"]["hypervisor"]["memory_free_mib"]
    reserve = available - 1536
    proc = start_ad_hoc("hv1", "hostmaint.libvirt.evacuate", {"max_outbound": 1, "reserve_mib": reserve})
    guest, dest = wait_for("a migration from hv1", lambda: in_flight_to(lab, names, hosts=("hv2",)))
    # the lab's hosts share one machine's memory: what a guest started on hv2 would take, a process takes
    hog = subprocess.Popen([sys.executable, "-c", HOG, "3072"])
    try:
        case.note("planned with %d MiB of room on hv2; 3 GiB taken there while %s migrated" % (
            available - reserve, guest))
        result = result_of(proc, "hv1")
    finally:
        hog.kill()
        hog.wait()
    outcomes = dict((o["guest"], o) for o in result.get("outcomes", []))
    case.note("evacuate: %s" % result.get("msg", "no failure")[:300])
    assert result.get("failed") and "no longer has room" in result["msg"], result.get("msg")
    stayed = [n for n in names if outcomes.get(n, {}).get("outcome") in ("blocked", "not_run")]
    assert stayed and all(lab.running_on(n) == ["hv1"] for n in stayed), outcomes
    invariant.assert_holds(lab, before, marks={"hv1", "hv3"})
    again = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
    case.note("re-run with the memory back: %s" % ("ok" if not again.get("failed") else again.get("msg")))
    assert not again.get("failed"), again.get("msg")
    invariant.assert_holds(lab, before, marks={"hv1", "hv3"})
    assert not guests_on(lab, "hv1")
