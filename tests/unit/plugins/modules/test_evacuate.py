# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evacuate.run on the shared fake cluster (tests/unit/plugins/fake_adapter.py): what the user reads in the module's
JSON and where the guests, the mark and the records are afterwards."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import runs
from ansible_collections.hostmaint.libvirt.plugins.modules import evacuate
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.fake_adapter import FakeCluster, run_module


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    # a host with nothing under way counts as settled after QUIET_S; the fake has nothing under way ever
    monkeypatch.setattr(runs, "QUIET_S", 0.0)


def two_guests():
    cluster = FakeCluster("hv1", "hv2", "hv3")
    cluster.add("hv1", "web1", memory_mib=1024)
    cluster.add("hv1", "web2", memory_mib=512)
    return cluster


def test_check_mode_returns_the_plan_and_changes_nothing(capsys):
    cluster = two_guests()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, check=True)
    assert code == 0 and result["changed"] is True, result
    assert sorted((m["guest"], m["action"]) for m in result["plan"]["moves"]) == [("web1", "migrate"),
                                                                                   ("web2", "migrate")]
    assert sorted(m["destination"] for m in result["plan"]["moves"]) == ["hv2", "hv3"]  # worst fit spreads them
    assert result["plan"]["blocked"] == [] and result["plan"]["proceed"] is True
    assert result["maintenance"] is None and result["empty"] is True and result["remaining"] == []  # would be
    assert "outcomes" not in result
    assert cluster.placement() == {"hv1": ["web1", "web2"], "hv2": [], "hv3": []}
    assert cluster.changes() == [] and cluster.marks == {} and cluster.holds == {} and cluster.records() == {}


def test_a_real_run_moves_both_guests_marks_the_host_and_a_second_check_finds_nothing_to_do(capsys):
    cluster = two_guests()
    code, result = run_module(capsys, evacuate.Evacuate, cluster)
    assert code == 0 and result["changed"] is True, result
    assert sorted((o["guest"], o["outcome"], o["moved"]) for o in result["outcomes"]) == [
        ("web1", "migrated", True), ("web2", "migrated", True)]
    placed = dict((o["guest"], o["runs_on"]) for o in result["outcomes"])
    assert cluster.placement() == {"hv1": [], "hv2": sorted(g for g, on in placed.items() if on == ["hv2"]),
                                   "hv3": sorted(g for g, on in placed.items() if on == ["hv3"])}
    assert cluster.placement()["hv1"] == [] and result["empty"] is True and result["remaining"] == []
    assert cluster.marks["hv1"]["run_id"] == result["run_id"] == result["maintenance"]["run_id"]
    assert cluster.records() == {"web1": "hv1", "web2": "hv1"}  # where restore brings them back to
    assert result["summary"]["moved"] == 2 and result["summary"]["failed"] == 0
    assert cluster.holds == {}  # the run's hold is released
    code, again = run_module(capsys, evacuate.Evacuate, cluster, check=True)
    assert code == 0 and again["changed"] is False and again["plan"]["moves"] == [], again


def test_a_blocked_plan_moves_nothing_and_rolls_the_mark_back(capsys):
    cluster = two_guests()
    cluster.add("hv1", "gpu", host_devices=[], non_migratable_reasons=["host device passthrough (PCI 0000:03:00.0) "
                                                                       "pins the guest to its host"])
    code, result = run_module(capsys, evacuate.Evacuate, cluster)
    assert code == 1 and result["changed"] is False, result
    assert result["msg"] == ("cannot evacuate hv1: 1 guest(s) cannot be placed, nothing was moved: gpu (cannot "
                             "live-migrate gpu: host device passthrough (PCI 0000:03:00.0) pins the guest to its host)")
    assert [b["guest"] for b in result["plan"]["blocked"]] == ["gpu"]
    assert cluster.placement() == {"hv1": ["gpu", "web1", "web2"], "hv2": [], "hv3": []}
    assert cluster.marks == {} and cluster.holds == {} and cluster.records() == {}
    assert [c[1] for c in cluster.changes()] == ["set_maintenance", "clear_maintenance"]


def test_a_guest_whose_policy_is_unknown_blocks_the_evacuation(capsys):
    cluster = two_guests()
    cluster.add("hv1", "odd", policy="teleport")
    code, result = run_module(capsys, evacuate.Evacuate, cluster)
    assert code == 1 and result["msg"] == (
        'cannot evacuate hv1: 1 guest(s) cannot be placed, nothing was moved: odd (cannot evacuate odd: its policy '
        '"teleport" (settings metadata) is not one of migrate, shutdown, skip, fail)'), result
    assert result["plan"]["blocked"][0]["policy"] == "teleport"
    assert cluster.placement()["hv1"] == ["odd", "web1", "web2"] and cluster.marks == {}
    # with allow_partial the others move and it stays; the policies option may also say what to do with it
    code, result = run_module(capsys, evacuate.Evacuate, cluster, allow_partial=True)
    assert code == 0 and result["remaining"] == ["odd"] and cluster.placement()["hv1"] == ["odd"], result
    code, result = run_module(capsys, evacuate.Evacuate, cluster, policies={"odd": "skip"})
    assert code == 0 and result["plan"]["skipped"] == [] and cluster.placement()["hv1"] == [], result
