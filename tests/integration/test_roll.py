# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 19's rolling upgrades on the lab, beside the Molecule scenarios rolling_stay (guests that stay, the forecast
beside the time the roll took), rolling_parallel (two hosts at once within declared capacities, refused without the
room, every host's memory watched) and two_clusters: a roll whose restores overlap the next host's evacuation.
Judged by what virsh says (where each guest runs, the maintenance marks), each host's version, the guests' own
answers (no restart, no lost write), and the run report's clock."""

from __future__ import annotations

import pytest

from conftest import Prober, ansible_playbook, lab_cli
from test_maintain import judge, latest_report

HOSTS = ("hv1", "hv2", "hv3")


def pending_upgrade():
    """Every lab host back on the released version: the roll has an upgrade to do on each."""
    for host in HOSTS:
        lab_cli("exec", host, "sed", "-i", "s/+lab.*//", "/etc/debian_version")
    return dict((h, lab_cli("exec", h, "cat", "/etc/debian_version").stdout.strip()) for h in HOSTS)


def upgraded(before):
    return dict((h, lab_cli("exec", h, "cat", "/etc/debian_version").stdout.strip() == before[h] + "+lab1")
                for h in HOSTS)


def roll(reports, *extra):
    return ansible_playbook("playbooks/rolling_upgrade.yml", "-i", ".lab/inventory.yml", "-e",
                            "hostmaint_report_dir=%s" % reports, *extra)


@pytest.fixture()
def reports(tmp_path):
    return str(tmp_path / "reports")


@pytest.fixture()
def guests(lab):
    made = []

    def add(name, host):
        found = lab.add_guest(name, host)
        made.append(name)
        return Prober(found)

    yield add
    for name in made:
        lab.remove_guest(name)
    lab.clear_maintenance()


def step_times(report, host, name):
    step = [s for s in report["hosts"][host]["steps"] if s["name"] == name][0]
    return step["started"], step["ended"]


def test_with_overlap_a_host_is_emptied_while_the_one_before_brings_its_guests_home(lab, guests, reports):
    where = (("ov1", "hv1"), ("ov2", "hv1"), ("ov3", "hv1"), ("ov4", "hv2"))
    probers = dict((name, guests(name, host)) for name, host in where)
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
    # the roll let hv2 in while hv1's guests came home: hv2 entered maintenance and got its turn to be emptied (its
    # checks, then its evacuation) before hv1 was done, and its checks ran while hv1's restore did
    turns = report["roll"]["turns"]
    at = dict(((t["host"], t["what"]), t["at"]) for t in turns)
    assert at[("hv1", "restoring")] < at[("hv2", "entered")] < at[("hv2", "draining")] < at[("hv1", "done")], turns
    restore_started, restore_ended = step_times(report, "hv1", "restore")
    checks_started, _ended = step_times(report, "hv2", "preflight")
    assert restore_started < checks_started < restore_ended, (restore_started, checks_started, restore_ended)
