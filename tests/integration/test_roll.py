# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 19's rolling upgrades on the lab: a roll whose guests stay where they land, with its check-mode forecast
beside the time it took; two hosts in maintenance at once, refused when the rest cannot hold every guest and run
when it can, with every host's memory watched against its declared capacity all along. Judged by what virsh says
(where each guest runs and is defined, its migration record, the maintenance marks), each host's version, the
guests' own answers (no restart, no lost write), and the run report."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from conftest import Prober, ansible_playbook, lab_cli
from test_maintain import judge, latest_report

SETTINGS_NS = "urn:hostmaint:libvirt:settings:1"
HOSTS = ("hv1", "hv2", "hv3")
GUEST_MIB = 256  # tests/lab/lab guest add's default


def pending_upgrade():
    """Every lab host back on the released version: the roll has an upgrade to do on each."""
    for host in HOSTS:
        lab_cli("exec", host, "sed", "-i", "s/+lab.*//", "/etc/debian_version")
    return dict((h, lab_cli("exec", h, "cat", "/etc/debian_version").stdout.strip()) for h in HOSTS)


def upgraded(before):
    return dict((h, lab_cli("exec", h, "cat", "/etc/debian_version").stdout.strip() == before[h] + "+lab1")
                for h in HOSTS)


def roll(reports, *extra, check=False):
    return ansible_playbook("playbooks/rolling_upgrade.yml", "-i", ".lab/inventory.yml", "-e",
                            "hostmaint_report_dir=%s" % reports, *(list(extra) + (["--check"] if check else [])))


def seconds(text):
    """'1m28s' -> 88."""
    found = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(\d+)s", text) or re.fullmatch(r"(\d+)h(\d+)m", text)
    assert found, text
    parts = [int(p or 0) for p in found.groups()]
    return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0)


def in_maintenance_over_time(turns):
    """The most hosts in maintenance at once, from the report's turns (entered ... done/skipped)."""
    inside, most = set(), 0
    for turn in turns:
        if turn["what"] == "entered":
            inside.add(turn["host"])
        elif turn["what"] in ("done", "skipped", "failed"):
            inside.discard(turn["host"])
        most = max(most, len(inside))
    return most


@pytest.fixture()
def reports(tmp_path):
    return str(tmp_path / "reports")


@pytest.fixture()
def guests(lab):
    made = []

    def add(name, host, home=False):
        found = lab.add_guest(name, host)
        if home:
            lab.virsh(host, "metadata", name, "--uri", SETTINGS_NS, "--key", "hostmaint", "--set",
                      '<settings return="home"/>', "--live", "--config")
        made.append(name)
        return Prober(found)

    yield add
    for name in made:
        lab.remove_guest(name)
    lab.clear_maintenance()


def test_a_roll_whose_guests_stay_upgrades_every_host_moves_most_guests_once_and_was_forecast(lab, guests, reports):
    probers = {"st1": guests("st1", "hv1"), "st2": guests("st2", "hv2", home=True), "st3": guests("st3", "hv3")}
    before = pending_upgrade()
    for prober in probers.values():
        prober.start()
    try:
        check = roll(reports, "-e", "rolling_upgrade_return=stay", check=True)
        assert check.returncode == 0, check.stdout[-3000:]
        assert not any(upgraded(before).values()) and not any(lab.in_maintenance(h) for h in HOSTS)
        found = re.search(r"forecast: (\S+) \((\S+) to (\S+)\), (\d+) move\(s\)", check.stdout)
        assert found, check.stdout[-3000:]
        forecast, low, high = (seconds(found.group(i)) for i in (1, 2, 3))
        assert low <= forecast <= high and int(found.group(4)) == 5  # st1 twice, st2 there and home, st3 once

        started = time.time()
        real = roll(reports, "-e", "rolling_upgrade_return=stay")
        took = time.time() - started
        assert real.returncode == 0, real.stdout[-4000:]
    finally:
        judge(lab, probers)
    assert all(upgraded(before).values()) and not any(lab.in_maintenance(h) for h in HOSTS)
    for name in probers:
        assert len(lab.defined_on(name)) == 1 and lab.running_on(name) == lab.defined_on(name), name
    # st2 demanded its home; the others stay where they landed, and their records name where they run
    assert lab.running_on("st2") == ["hv2"]
    for name in ("st1", "st3"):
        where = lab.running_on(name)[0]
        assert where != {"st1": "hv1", "st3": "hv3"}[name] and 'host="%s"' % where in lab.record(where, name), name
    report, _path = latest_report(reports, "rolling_upgrade")
    moves = [m for h in report["hosts"].values() for m in h["moves"] if m["outcome"] == "migrated"]
    per_guest = dict((name, len([m for m in moves if m["guest"] == name])) for name in probers)
    assert per_guest == {"st1": 2, "st2": 2, "st3": 1}, per_guest  # st1 left hv1 before any host was upgraded
    rolled = report["roll"]
    assert rolled["empty_at_end"] == ["hv3"] and rolled["options"]["return_mode"] == "stay"
    # the forecast made in check mode, beside the time the same roll took (the playbook's whole run)
    print("forecast %d s (%d to %d s), took %.0f s (report: %.0f s)" % (forecast, low, high, took,
                                                                         rolled["measured_s"]))
    assert 0.6 * forecast <= rolled["measured_s"] <= 1.6 * forecast, (forecast, rolled["measured_s"])


class CapacityWatch(threading.Thread):
    """Counts, every 0.3 s while a roll runs, the memory of every guest each host runs or is receiving (virsh list:
    an incoming migration is a paused guest there): the most any host ever held."""

    def __init__(self, lab):
        super(CapacityWatch, self).__init__(daemon=True)
        self.lab, self.most, self.samples = lab, {}, 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for host in HOSTS:
                held = len(self.lab.names(host, check=False)) * GUEST_MIB
                self.most[host] = max(self.most.get(host, 0), held)
            self.samples += 1
            time.sleep(0.3)

    def stop(self):
        self.halt.set()
        self.join(10)
        return self.most


def test_two_hosts_at_once_are_refused_without_room_for_every_guest_and_run_with_it(lab, guests, reports):
    # four guests of 256 MiB; the reserve is 1024 MiB: a host declared at 2048 MiB holds four, at 1792 MiB three
    probers = dict((name, guests(name, host)) for name, host in (("pk1", "hv1"), ("pk2", "hv1"), ("pk3", "hv2"),
                                                                ("pk4", "hv3")))
    placed = lab.placement()
    before = pending_upgrade()
    refused = roll(reports, "-e", "rolling_upgrade_parallel_hosts=2", "-e", "hostmaint_libvirt_capacity_mib=1792")
    assert refused.returncode != 0
    flat = " ".join(refused.stdout.split())
    assert ("rolling_upgrade_parallel_hosts=2 cannot hold in cluster hypervisors (3 hosts): without hv1 and hv2, "
            "cluster hypervisors cannot hold every guest with the 1024 MiB reserve on each host") in flat, flat[-2000:]
    assert "; nothing was changed" in flat
    assert lab.placement() == placed and not any(upgraded(before).values())
    assert not any(lab.in_maintenance(h) for h in HOSTS)

    watch = CapacityWatch(lab)
    for prober in probers.values():
        prober.start()
    watch.start()
    try:
        real = roll(reports, "-e", "rolling_upgrade_parallel_hosts=2", "-e", "hostmaint_libvirt_capacity_mib=2048")
        assert real.returncode == 0, real.stdout[-4000:]
    finally:
        most = watch.stop()
        judge(lab, probers)
    assert all(upgraded(before).values()) and not any(lab.in_maintenance(h) for h in HOSTS)
    assert lab.placement() == placed  # every guest home
    # never more than the declared capacity less the reserve on any host, and one host did hold all four
    assert watch.samples > 20 and max(most.values()) <= 2048 - 1024, most
    report, _path = latest_report(reports, "rolling_upgrade")
    turns = report["roll"]["turns"]
    assert in_maintenance_over_time(turns) == 2, json.dumps(turns, indent=1)
    assert dict(host="hv2", what="entered", at=turns[1]["at"], note="marked by hv1") == turns[1], turns[:3]
    # one evacuation at a time: hv2 was emptied only after hv1 was
    order = [(t["host"], t["what"]) for t in turns if t["what"] in ("draining", "upgrading")]
    assert order[:4] == [("hv1", "draining"), ("hv1", "upgrading"), ("hv2", "draining"), ("hv2", "upgrading")], order


def step_times(report, host, name):
    step = [s for s in report["hosts"][host]["steps"] if s["name"] == name][0]
    return step["started"], step["ended"]


def test_with_overlap_a_host_is_emptied_while_the_one_before_brings_its_guests_home(lab, guests, reports):
    probers = dict((name, guests(name, host)) for name, host in (("ov1", "hv1"), ("ov2", "hv1"), ("ov3", "hv1"),
                                                                ("ov4", "hv2")))
    placed = lab.placement()
    before = pending_upgrade()
    for prober in probers.values():
        prober.start()
    try:
        real = roll(reports, "-e", "rolling_upgrade_overlap=true")
        assert real.returncode == 0, real.stdout[-4000:]
    finally:
        judge(lab, probers)
    assert all(upgraded(before).values()) and not any(lab.in_maintenance(h) for h in HOSTS)
    assert lab.placement() == placed
    report, _path = latest_report(reports, "rolling_upgrade")
    # hv1's guests went to hv3, not to hv2, the next host to be emptied (avoid)
    out = [m for m in report["hosts"]["hv1"]["moves"] if m["source"] == "hv1"]
    assert sorted(m["destination"] for m in out) == ["hv3", "hv3", "hv3"], out
    # hv2 was being emptied while hv1's guests came home: the two steps overlap on the clock
    restore_started, restore_ended = step_times(report, "hv1", "restore")
    evacuate_started, _ended = step_times(report, "hv2", "evacuate")
    assert restore_started < evacuate_started < restore_ended, (restore_started, evacuate_started, restore_ended)
