# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance playbooks on the lab: the guards, clusters, and a roll stopped by a failing gate. (A whole
cycle that stops at a failed patch step and resumes, and a whole rolling upgrade, are the Molecule scenarios
maintain and rolling_upgrade: extensions/molecule.)"""

from __future__ import annotations

import glob
import json
import os

import pytest

from conftest import ROOT, Prober, ansible_playbook, lab_cli


@pytest.fixture()
def reports(tmp_path):
    return str(tmp_path / "reports")


def latest_report(folder, playbook):
    found = sorted(glob.glob(os.path.join(folder, "*%s*.json" % playbook)), key=os.path.getmtime)
    assert found, "no %s report in %s" % (playbook, folder)
    with open(found[-1]) as fh:
        return json.load(fh), found[-1]


def judge(lab, probers):
    """Every probed guest kept answering as the instance it was."""
    for prober in probers.values():
        prober.stop()
        lab.assert_kept_answering(prober)


def test_the_one_host_playbooks_refuse_several_hosts_and_no_host_and_change_nothing(lab):
    for playbook in ("evacuate", "restore", "maintain"):
        everything = ansible_playbook("playbooks/%s.yml" % playbook, "-i", ".lab/inventory.yml")
        assert everything.returncode != 0
        assert ("%s.yml targets 3 hosts (hv1, hv2, hv3): name one with -l, or add -e hostmaint_allow_many=true"
                % playbook) in everything.stdout
        nothing = ansible_playbook("playbooks/%s.yml" % playbook, "-i", ".lab/inventory.yml", "-e", "hostmaint_hosts=nocluster")
        assert nothing.returncode != 0 and "%s.yml: no host of nocluster: nothing was changed" % playbook in nothing.stdout
    assert not any(lab.in_maintenance(host) for host in ("hv1", "hv2", "hv3"))


def test_a_guest_never_leaves_its_cluster(lab, tmp_path):
    inventory = tmp_path / "clusters.yml"
    with open(os.path.join(ROOT, ".lab", "inventory.yml")) as fh:
        text = fh.read()
    # hv1 and hv2 are cluster_a, hv3 cluster_b, all three under hypervisors
    text = text.replace("    hypervisors:\n      hosts:\n", "    cluster_a:\n      hosts:\n        hv1:\n        hv2:\n"
                        "      vars:\n        hostmaint_libvirt_cluster_group: cluster_a\n"
                        "    cluster_b:\n      hosts:\n        hv3:\n"
                        "      vars:\n        hostmaint_libvirt_cluster_group: cluster_b\n"
                        "    hypervisors:\n      hosts:\n", 1)
    inventory.write_text(text)
    names = ["cl1", "cl2"]
    for name in names:
        lab.add_guest(name, "hv1")
    try:
        moved = ansible_playbook("playbooks/evacuate.yml", "-i", str(inventory), "-l", "hv1",
                                 "-e", "hostmaint_report_dir=%s" % (tmp_path / "reports"))
        assert moved.returncode == 0, moved.stdout[-3000:]
        assert all(lab.running_on(name) == ["hv2"] for name in names)
        home = ansible_playbook("playbooks/restore.yml", "-i", str(inventory), "-l", "hv1",
                                "-e", "hostmaint_report_dir=%s" % (tmp_path / "reports"))
        assert home.returncode == 0, home.stdout[-3000:]
        assert all(lab.running_on(name) == ["hv1"] for name in names)
    finally:
        for name in names:
            lab.remove_guest(name)
        lab.clear_maintenance("hv1")


def test_a_failing_gate_stops_the_roll_at_that_host_with_nothing_lost_and_a_rerun_continues(lab, reports):
    origins = {"rg1": "hv1", "rg2": "hv2", "rg3": "hv3"}
    for host in ("hv1", "hv2", "hv3"):  # every host back on the released version: the upgrade is pending again
        lab_cli("exec", host, "sed", "-i", "s/+lab.*//", "/etc/debian_version")
    probers = dict((name, Prober(lab.add_guest(name, host))) for name, host in origins.items())
    versions = dict((h, lab_cli("exec", h, "cat", "/etc/debian_version").stdout.strip()) for h in ("hv1", "hv2", "hv3"))
    try:
        for prober in probers.values():
            prober.start()
        # the operator's own check fails on hv2 only
        gate = json.dumps({"maintain_gate_commands": [{"name": "app quorum", "command": "test $(hostname) != hv2"}]})
        # hv1 and hv2 only: the roll's order and its stop are the point (Molecule's rolling_upgrade rolls all three)
        stopped = ansible_playbook("playbooks/rolling_upgrade.yml", "-i", ".lab/inventory.yml", "-l", "hv1,hv2",
                                   "-e", "hostmaint_report_dir=%s" % reports, "-e", gate)
        assert stopped.returncode != 0, stopped.stdout[-3000:]
        assert "maintenance of hv2 stopped at step gate_before: hv2: check app quorum failed (exit 1)" in stopped.stdout
        # hv1 took its turn; hv2 was not touched; hv3 was not in the roll
        after = dict((h, lab_cli("exec", h, "cat", "/etc/debian_version").stdout.strip()) for h in ("hv1", "hv2", "hv3"))
        assert after == {"hv1": versions["hv1"].split("+lab")[0] + "+lab1", "hv2": versions["hv2"], "hv3": versions["hv3"]}
        assert not any(lab.in_maintenance(h) for h in ("hv1", "hv2", "hv3"))
        for name, host in origins.items():
            assert lab.running_on(name) == [host] and lab.defined_on(name) == [host], name
        report, _path = latest_report(reports, "rolling_upgrade")
        assert report["status"] == "failed" and sorted(report["hosts"]) == ["hv1", "hv2"]
        assert report["hosts"]["hv2"]["steps"][-1]["status"] == "failed"

        # without the failing check, the same command continues: hv1 is skipped, hv2 takes its turn
        again = ansible_playbook("playbooks/rolling_upgrade.yml", "-i", ".lab/inventory.yml", "-l", "hv1,hv2",
                                 "-e", "hostmaint_report_dir=%s" % reports)
        assert again.returncode == 0, again.stdout[-4000:]
        assert "hv1 is at the target" in again.stdout
        for host in ("hv1", "hv2"):
            assert lab_cli("exec", host, "cat", "/etc/debian_version").stdout.strip().endswith("+lab1"), host
        assert lab_cli("exec", "hv3", "cat", "/etc/debian_version").stdout.strip() == versions["hv3"]
        for name, host in origins.items():
            assert lab.running_on(name) == [host] and lab.defined_on(name) == [host], name
        judge(lab, probers)
    finally:
        for name in origins:
            lab.remove_guest(name)
        lab.clear_maintenance()
