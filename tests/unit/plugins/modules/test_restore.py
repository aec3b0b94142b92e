# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore.run on the shared fake cluster (tests/unit/plugins/fake_adapter.py): guests an evacuation of hv1 left on
hv2 and hv3 come home, their records and hv1's mark are cleared; what the user reads in the module's JSON."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import runs
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MigrationRecord
from ansible_collections.hostmaint.libvirt.plugins.modules import restore
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.fake_adapter import FakeCluster, run_module

MARK = dict(since="2026-11-25T18:00:00Z", run_id="r0", reason="evacuate")
RECORD = MigrationRecord(origin_host="hv1", origin_host_uuid="uuid-hv1", run_id="r0", time="2026-11-25T18:00:00Z")


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setattr(runs, "QUIET_S", 0.0)


def evacuated():
    """hv1 in maintenance, its guests web1 on hv2 and web2 on hv3, and db1 of hv2's own."""
    cluster = FakeCluster("hv1", "hv2", "hv3")
    cluster.add("hv2", "web1", memory_mib=1024, record=RECORD)
    cluster.add("hv3", "web2", memory_mib=512, record=RECORD)
    cluster.add("hv2", "db1")
    cluster.marks["hv1"] = dict(MARK)
    return cluster


def test_check_mode_returns_the_plan_and_changes_nothing(capsys):
    cluster = evacuated()
    code, result = run_module(capsys, restore.Restore, cluster, check=True)
    assert code == 0 and result["changed"] is True, result
    assert sorted((m["guest"], m["source"], m["destination"]) for m in result["plan"]["moves"]) == [
        ("web1", "hv2", "hv1"), ("web2", "hv3", "hv1")]
    assert result["maintenance_cleared"] is False and result["canary"] == "web2"  # the smallest goes first
    assert "outcomes" not in result
    assert cluster.placement() == {"hv1": [], "hv2": ["db1", "web1"], "hv3": ["web2"]}
    assert cluster.changes() == [] and cluster.marks == {"hv1": MARK} and cluster.holds == {}


def test_a_real_run_brings_both_home_clears_records_and_mark_and_a_second_check_finds_nothing(capsys):
    cluster = evacuated()
    code, result = run_module(capsys, restore.Restore, cluster)
    assert code == 0 and result["changed"] is True, result
    assert sorted((o["guest"], o["outcome"], o["runs_on"]) for o in result["outcomes"]) == [
        ("web1", "migrated", ["hv1"]), ("web2", "migrated", ["hv1"])]
    assert cluster.placement() == {"hv1": ["web1", "web2"], "hv2": ["db1"], "hv3": []}
    assert result["records_cleared"] == ["web1", "web2"] and cluster.records() == {}
    assert result["maintenance_cleared"] is True and cluster.marks == {} and cluster.holds == {}
    assert result["canary"] == "web2" and result["passes"] == 1
    code, again = run_module(capsys, restore.Restore, cluster, check=True)
    assert code == 0 and again["changed"] is False and again["plan"]["moves"] == [], again


def test_a_guest_that_cannot_come_home_is_named_and_the_others_come_home(capsys):
    cluster = evacuated()
    cluster.memory_mib["hv1"] = 2048  # room for web2 (512 MiB) with the 1024 MiB reserve, not for web1 too
    code, result = run_module(capsys, restore.Restore, cluster)
    assert code == 1 and result["msg"] == "hv1: web1 did not come home", result
    assert [b["guest"] for b in result["plan"]["not_home"]] == ["web1"]
    assert cluster.placement() == {"hv1": ["web2"], "hv2": ["db1", "web1"], "hv3": []}
    assert cluster.records() == {"web1": "hv1"}  # it keeps its record, for the next restore
