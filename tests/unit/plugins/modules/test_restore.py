# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore.run on the shared fake cluster (tests/unit/plugins/fake_adapter.py): guests an evacuation of hv1 left on
hv2 and hv3 come home, their records and hv1's mark are cleared; what the user reads in the module's JSON."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import GIB, MIB, Disk, MigrationRecord
from ansible_collections.hostmaint.libvirt.plugins.modules import restore
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.fake_adapter import (
    LOCAL,
    MOVES_BEGIN,
    FakeCluster,
    before_the_moves,
    call_counts,
    check_then_real,
    clean_calls,
    each_fault,
    observed,
    run_module,
)

MARK = dict(since="2026-11-25T18:00:00Z", run_id="r0", reason="evacuate")
RECORD = MigrationRecord(origin_host="hv1", origin_host_uuid="uuid-hv1", run_id="r0", time="2026-11-25T18:00:00Z")


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


def test_check_mode_returns_the_plan_a_real_run_carries_out(capsys):
    cluster = with_a_stale_copy()
    check, real = check_then_real(capsys, restore.Restore, cluster)
    assert real["passes"] == 1, real
    assert [(c["guest"], c["host"], c["runs_on"]) for c in check["stale_copies"]] == [
        (c["guest"], c["host"], c["runs_on"]) for c in real["stale_copies"]] == [("app", "hv2", "hv1")]
    assert check["canary"] == real["canary"] == "web2"


def test_the_survey_reads_each_host_once_before_the_first_move(capsys):
    cluster = evacuated()
    code, result = run_module(capsys, observed(restore.Restore, cluster), cluster)
    assert code == 0, result
    counts = call_counts(before_the_moves(cluster.calls))
    for method in ("guests", "pools", "host_facts"):
        assert dict((h, counts.get((h, method))) for h in ("hv1", "hv2", "hv3")) == dict(hv1=1, hv2=1, hv3=1), method
    assert counts.get(("hv1", "host_identity"), 0) <= 1
    assert counts.get(("hv1", "maintenance"), 0) == 1  # home's mark, read with its facts


def test_the_executor_uses_the_modules_connections_one_adapter_per_host_per_run(capsys):
    cluster = evacuated()
    code, result = run_module(capsys, restore.Restore, cluster)
    assert code == 0 and result["summary"]["moved"] == 2, result
    assert sorted(cluster.opened) == ["hv1", "hv2", "hv3"]
    assert sorted(host for host, method, _guest in cluster.calls if method == "close") == ["hv1", "hv2", "hv3"]


def with_a_stale_copy():
    """evacuated, and app, home on hv1 already, with a shut-off copy left on hv2 (the last step of its migration
    home never ran there), which still has the record naming hv1."""
    cluster = evacuated()
    cluster.add("hv1", "app")
    cluster.add("hv2", "app", state="shutoff", record=RECORD)
    return cluster


def test_a_stale_copy_is_removed_before_the_moves_and_never_brought_home(capsys):
    cluster = with_a_stale_copy()
    code, result = run_module(capsys, observed(restore.Restore, cluster), cluster)
    assert code == 0 and [(c["guest"], c["host"], c["removed"]) for c in result["stale_copies"]] == [
        ("app", "hv2", True)], result
    assert sorted((m["guest"], m["source"]) for m in result["plan"]["moves"]) == [("web1", "hv2"), ("web2", "hv3")]
    assert cluster.calls.index(("hv2", "undefine", "app")) < cluster.calls.index(MOVES_BEGIN)
    assert cluster.placement() == {"hv1": ["app", "web1", "web2"], "hv2": ["db1"], "hv3": []} and cluster.marks == {}


def test_a_guest_that_cannot_come_home_is_named_and_the_others_come_home(capsys):
    cluster = evacuated()
    cluster.memory_mib["hv1"] = 2048  # room for web2 (512 MiB) with the 1024 MiB reserve, not for web1 too
    code, result = run_module(capsys, restore.Restore, cluster)
    assert code == 1 and result["msg"] == "hv1: web1 did not come home", result
    assert [b["guest"] for b in result["plan"]["not_home"]] == ["web1"]
    assert cluster.placement() == {"hv1": ["web2"], "hv2": ["db1", "web1"], "hv3": []}
    assert cluster.records() == {"web1": "hv1"}  # it keeps its record, for the next restore


def test_home_has_the_room_its_declared_capacity_leaves(capsys):
    cluster = evacuated()  # hv1 measures 16 GiB free
    cluster.add("hv1", "own", memory_mib=512)  # a guest of hv1's own that stayed: 512 of its 1024 MiB are taken
    code, check = run_module(capsys, restore.Restore, cluster, check=True, capacity_mib=1024, reserve_mib=0)
    assert code == 0 and [m["guest"] for m in check["plan"]["moves"]] == ["web2"], check
    assert [(b["guest"], [(r["code"], r["message"]) for r in b["reasons"]]) for b in check["plan"]["not_home"]] == [
        ("web1", [("capacity", "cannot bring web1 home to hv1: destination has 0 MiB free after the 0 MiB reserve once "
                               "512 MiB of guests planned before it are placed, guest needs 1024 MiB")])]
    code, result = run_module(capsys, restore.Restore, cluster, capacity_mib=1024, reserve_mib=0)
    assert code == 1 and result["msg"] == "hv1: web1 did not come home", result
    assert cluster.placement() == {"hv1": ["own", "web2"], "hv2": ["db1", "web1"], "hv3": []}
    assert cluster.records() == {"web1": "hv1"}  # it keeps its record, for the next restore


# -- an error at any adapter call: the host is left as the rule says --------------------------------------------
CALLS = clean_calls(restore.Restore, evacuated)
CHECK_CALLS = clean_calls(restore.Restore, evacuated, check=True)
BEFORE = {"hv1": [], "hv2": ["db1", "web1"], "hv3": ["web2"]}


def where_is(cluster, name):
    return sorted(host for host, guests in cluster.placement().items() if name in guests)


def judge(cluster, code, result):
    """The rule, for one run with one fault."""
    assert cluster.fired, "the fault was never raised: the run took another path than the clean one"
    assert code in (0, 1), result
    if code == 1:
        assert "\n" not in result["msg"] and "Traceback" not in result["msg"], result["msg"]
    for name in ("web1", "web2", "db1"):
        assert len(where_is(cluster, name)) == 1, cluster.placement()  # a guest is never lost nor doubled
    assert cluster.holds == {}
    if MOVES_BEGIN not in cluster.calls:  # ended before anything came home: nothing changed, the mark stays
        assert code == 1 and cluster.changes() == [], (result, cluster.changes())
        assert cluster.placement() == BEFORE and cluster.marks == {"hv1": MARK}
        assert cluster.records() == {"web1": "hv1", "web2": "hv1"}
        return
    for outcome in result["outcomes"]:  # moves began: the result says what came home and where each guest is
        assert where_is(cluster, outcome["guest"]) == sorted(outcome["runs_on"]), (outcome, cluster.placement())
        assert not outcome["moved"] or outcome["runs_on"] == ["hv1"], outcome
    away = [name for name in ("web1", "web2") if where_is(cluster, name) != ["hv1"]]
    assert set(cluster.records()) >= set(away)  # a guest still away keeps its record, for the next restore
    if code == 0:
        assert away == [] and cluster.marks == {} and cluster.records() == {}, result
    elif cluster.marks:  # a run that failed and kept the mark says so, or why it did not finish
        assert result["maintenance_cleared"] is False, result


@pytest.mark.parametrize("host, method", sorted(CALLS), ids=["%s-%s" % key for key in sorted(CALLS)])
def test_an_error_at_any_call_of_a_run_leaves_the_host_as_the_rule_says(capsys, host, method):
    for cluster in each_fault(CALLS, host, method, evacuated):
        code, result = run_module(capsys, observed(restore.Restore, cluster), cluster)
        judge(cluster, code, result)


@pytest.mark.parametrize("host, method", sorted(CHECK_CALLS), ids=["%s-%s" % key for key in sorted(CHECK_CALLS)])
def test_an_error_at_any_call_of_a_check_mode_run_changes_nothing(capsys, host, method):
    for cluster in each_fault(CHECK_CALLS, host, method, evacuated):
        code, result = run_module(capsys, restore.Restore, cluster, check=True)
        assert code in (0, 1) and "\n" not in result.get("msg", ""), result
        assert cluster.changes() == [] and cluster.marks == {"hv1": MARK} and cluster.holds == {}
        assert cluster.placement() == BEFORE


def test_an_error_reading_this_hosts_own_facts_fails_the_run_naming_it(capsys):
    cluster = evacuated()
    cluster.fail("host_facts")
    code, result = run_module(capsys, restore.Restore, cluster)
    assert code == 1 and result["msg"] == "cannot host_facts on qemu:///system: injected fault", result
    assert cluster.changes() == [] and cluster.placement() == BEFORE  # not "no room at home" for every guest


def test_an_error_after_guests_came_home_ends_the_run_saying_so_and_the_mark_stays(capsys):
    cluster = evacuated()
    cluster.fail("clear_record", at=2)
    code, result = run_module(capsys, restore.Restore, cluster)
    assert code == 1, result
    assert result["msg"] == ("the restore of hv1 ended on an error: cannot clear_record on qemu:///system: injected "
                             "fault; web1, web2 came home; hv1 stays in maintenance (run restore.yml -l hv1 again)")
    assert result["records_cleared"] == ["web1"] and result["maintenance_cleared"] is False
    assert sorted((o["guest"], o["moved"]) for o in result["outcomes"]) == [("web1", True), ("web2", True)]
    assert cluster.marks == {"hv1": MARK} and cluster.records() == {"web2": "hv1"}
    code, result = run_module(capsys, restore.Restore, cluster)  # run again: it finishes the job
    assert code == 0 and cluster.marks == {} and cluster.records() == {}, result


def test_a_guest_named_in_options_that_only_a_silent_peer_might_have_is_a_warning(capsys):
    cluster = evacuated()
    cluster.down.add("hv3")
    code, result = run_module(capsys, restore.Restore, cluster, probes={"ghost": "tcp://192.0.2.1:22"}, settle_s=1)
    assert code == 1 and result["msg"].startswith("the restore of hv1 is not complete: hv3 did not answer"), result
    said = "".join(result.get("warnings", [])) + capsys.readouterr().err  # where Ansible puts a module's warning
    assert ("probes names guest ghost, which is defined on none of hv1, hv2, and hv3 did not answer: check that ghost "
            "is there and not a typo") in said
    assert cluster.placement()["hv1"] == ["web1"]  # what could come home came home


def test_a_guest_whose_disk_an_evacuation_copied_comes_home_by_a_copy_and_its_disk_away_is_deleted(capsys):
    # hv1's evacuation copied db1's disk to hv2's own pool and deleted hv1's; restore copies it back
    disk = LOCAL + "/db1.qcow2"
    cluster = FakeCluster("hv1", "hv2")
    cluster.add("hv2", "db1", record=RECORD, disks=[Disk(target="vda", path=disk, pool="default")])
    cluster.volumes["hv2"][disk] = dict(capacity=20 * GIB, allocation=3 * GIB)
    cluster.marks["hv1"] = dict(MARK)
    code, blocked = run_module(capsys, restore.Restore, cluster, check=True)
    assert [r["code"] for r in blocked["plan"]["not_home"][0]["reasons"]] == ["disk_not_shared"], blocked
    code, check = run_module(capsys, restore.Restore, cluster, check=True, allow_storage_copy=True)
    move = check["plan"]["moves"][0]
    assert (move["guest"], move["source"], move["destination"], move["storage_copy"], move["copy_disks"]) == (
        "db1", "hv2", "hv1", True, ["vda"]), check
    assert (move["disk_bytes"], move["expected_bytes"]) == (20 * GIB, 512 * MIB + 20 * GIB)
    code, result = run_module(capsys, restore.Restore, cluster, allow_storage_copy=True, settle_s=1)
    assert code == 0, result
    outcome = result["outcomes"][0]
    assert (outcome["outcome"], outcome["runs_on"], outcome["source_disks_deleted"]) == ("migrated", ["hv1"], [disk])
    assert cluster.volumes == {"hv1": {disk: dict(capacity=20 * GIB, allocation=3 * GIB)}, "hv2": {}}
    assert cluster.placement() == {"hv1": ["db1"], "hv2": []} and cluster.marks == {}
