# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evacuate.run on the shared fake cluster (tests/unit/plugins/fake_adapter.py): what the user reads in the module's
JSON and where the guests, the mark and the records are afterwards."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import GIB, MIB, Disk, Guest, MigrationRecord
from ansible_collections.hostmaint.libvirt.plugins.modules import evacuate, restore
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


def two_guests():
    cluster = FakeCluster("hv1", "hv2", "hv3")
    cluster.add("hv1", "web1", memory_mib=1024)
    cluster.add("hv1", "web2", memory_mib=512)
    return cluster


def test_check_mode_returns_the_plan_and_changes_nothing(capsys):
    cluster = two_guests()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, check=True)
    assert code == 0 and result["changed"] is True, result
    moves = sorted((m["guest"], m["action"]) for m in result["plan"]["moves"])
    assert moves == [("web1", "migrate"), ("web2", "migrate")]
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


def test_check_mode_returns_the_plan_a_real_run_carries_out(capsys):
    cluster = with_a_stale_copy()
    check, real = check_then_real(capsys, evacuate.Evacuate, cluster)
    assert [(c["guest"], c["host"], c["runs_on"]) for c in check["stale_copies"]] == [
        (c["guest"], c["host"], c["runs_on"]) for c in real["stale_copies"]] == [("db1", "hv1", "hv2")]
    assert sorted((o["guest"], o["destination"]) for o in real["outcomes"]) == sorted(
        (m["guest"], m["destination"]) for m in check["plan"]["moves"])  # what moved is what check mode said


def test_the_survey_reads_each_host_once_before_the_first_move(capsys):
    cluster = two_guests()
    code, result = run_module(capsys, observed(evacuate.Evacuate, cluster), cluster)
    assert code == 0, result
    counts = call_counts(before_the_moves(cluster.calls))
    for method in ("guests", "pools", "host_facts"):
        assert dict((h, counts.get((h, method))) for h in ("hv1", "hv2", "hv3")) == dict(hv1=1, hv2=1, hv3=1), method
    assert counts.get(("hv1", "host_identity"), 0) <= 1 and counts[("hv1", "guest_cpu_xml")] == 2
    assert counts[("hv1", "dirty_rates")] == 1


def test_the_executor_uses_the_modules_connections_one_adapter_per_host_per_run(capsys):
    cluster = two_guests()
    code, result = run_module(capsys, evacuate.Evacuate, cluster)
    assert code == 0 and result["summary"]["moved"] == 2, result
    assert sorted(cluster.opened) == ["hv1", "hv2", "hv3"]  # the survey, the moves and the last look share them
    assert sorted(host for host, method, _guest in cluster.calls if method == "close") == ["hv1", "hv2", "hv3"]


def with_a_stale_copy():
    """two_guests, and db1 running on hv2 (an evacuation of hv1 moved it) with a shut-off copy left on hv1."""
    cluster = two_guests()
    cluster.add("hv2", "db1", record=MigrationRecord(origin_host="hv1", origin_host_uuid="uuid-hv1", run_id="r0",
                                                     time="2026-11-25T18:00:00Z"))
    cluster.add("hv1", "db1", state="shutoff")
    return cluster


def test_a_stale_copy_is_removed_before_the_moves_and_never_moved(capsys):
    cluster = with_a_stale_copy()
    code, check = run_module(capsys, evacuate.Evacuate, cluster, check=True)
    assert code == 0 and check["changed"] is True, check
    assert check["stale_copies"] == [dict(guest="db1", host="hv1", runs_on="hv2", removed=False,
                                          note="a run removes it: db1 runs on hv2")]
    assert sorted(m["guest"] for m in check["plan"]["moves"]) == ["web1", "web2"] and cluster.changes() == []
    code, result = run_module(capsys, evacuate.Evacuate, cluster)
    assert code == 0 and result["stale_copies"] == [dict(
        guest="db1", host="hv1", runs_on="hv2", removed=True,
        note="removed: db1 runs on hv2, and a migration's last step never undefined it here")], result
    assert sorted(m["guest"] for m in result["plan"]["moves"]) == ["web1", "web2"]
    changes = cluster.changes()
    assert changes.index(("hv1", "undefine", "db1")) < changes.index(("hv1", "start_migration", "web1"))
    assert cluster.placement()["hv1"] == [] and "db1" in cluster.placement()["hv2"] and result["empty"] is True


def test_a_stale_copy_that_changed_since_the_survey_is_left_alone(capsys):
    cluster = with_a_stale_copy()

    class Restarted(evacuate.Evacuate):
        def remove_stale_copies(self, copies, survey):
            cluster.hosts["hv1"]["db1"].uuid = "uuid-another-db1"  # redefined meanwhile: not the copy that was read
            return super(Restarted, self).remove_stale_copies(copies, survey)

    code, result = run_module(capsys, Restarted, cluster)
    assert [(c["removed"], c["note"]) for c in result["stale_copies"]] == [
        (False, "left alone: it changed since it was read")], result
    assert code == 0 and "db1" in cluster.placement()["hv1"] and ("hv1", "undefine", "db1") not in cluster.changes()


def test_a_run_keeps_its_result_on_its_host_and_installs_its_stop_watch_once(capsys):
    kept, installed = [], []
    inject = dict(keep_log=lambda result, run_id: kept.append((run_id, result)), stop_watch_install=installed.append)
    code, result = run_module(capsys, evacuate.Evacuate, two_guests(), inject=inject)
    assert code == 0 and len(installed) == 1, result
    assert [(run_id, logged["host"], logged["summary"]["moved"]) for run_id, logged in kept] == [
        (result["run_id"], "hv1", 2)]
    kept[:], installed[:] = [], []
    code, result = run_module(capsys, evacuate.Evacuate, two_guests(), check=True, inject=inject)
    assert code == 0 and kept == [] and installed == []  # check mode holds nothing: nothing to keep, nothing to stop


def test_the_hold_ends_by_any_path_keeping_what_ended_the_run_on_its_host(capsys):
    # the hold is a context manager (EngineModule.held): an error leaves its failure on the host, then releases
    kept = []
    cluster = two_guests()
    cluster.fail("guests", at=CALLS[("hv1", "guests")])  # after the moves: the host stays marked
    code, result = run_module(capsys, evacuate.Evacuate, cluster,
                              inject=dict(keep_log=lambda logged, run_id: kept.append((run_id, logged))))
    assert code == 1 and cluster.holds == {}, result
    assert [(run_id, logged["failed"], logged["msg"], logged["summary"]["moved"]) for run_id, logged in kept] == [
        (result["run_id"], True, result["msg"], 2)]
    kept[:] = []
    cluster = two_guests()
    cluster.fail("host_facts")  # before the moves: the mark is taken back, and the failure is still kept
    code, result = run_module(capsys, evacuate.Evacuate, cluster,
                              inject=dict(keep_log=lambda logged, run_id: kept.append((run_id, logged))))
    assert code == 1 and cluster.holds == {} and cluster.marks == {}, result
    assert [(logged["failed"], logged["msg"]) for _run, logged in kept] == [(True, result["msg"])]


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


# -- an error at any adapter call: the host is left as the rule says --------------------------------------------
CALLS = clean_calls(evacuate.Evacuate, two_guests)
CHECK_CALLS = clean_calls(evacuate.Evacuate, two_guests, check=True)


def where_is(cluster, name):
    return sorted(host for host, guests in cluster.placement().items() if name in guests)


def judge(cluster, code, result, guests=("web1", "web2"), before=("web1", "web2"), records=None):
    """The rule, for one run with one fault: returns whether the run's moves had begun when it ended. ``guests``:
    those that must be on exactly one host; ``before``: hv1's guests before the run (the copy a run may remove);
    ``records``: the records before it (none)."""
    assert cluster.fired, "the fault was never raised: the run took another path than the clean one"
    assert code in (0, 1), result
    if code == 1:
        assert "\n" not in result["msg"] and "Traceback" not in result["msg"], result["msg"]
        assert "injected fault" in result["msg"] or "outcomes" in result, result["msg"]
    for name in guests:
        assert len(where_is(cluster, name)) == 1, cluster.placement()  # a guest is never lost nor doubled
    assert cluster.holds == {}  # the hold is released whatever happened
    began = MOVES_BEGIN in cluster.calls
    if not began:
        if code == 1:  # ended before its first move: the mark this run set is taken back, nothing moved
            assert cluster.marks == {} and cluster.records() == (records or {}), result
            assert [g for g in cluster.placement()["hv1"] if g in guests] == [g for g in before if g in guests]
            assert [c[1] for c in cluster.changes() if c[1] != "undefine"] in (
                [], ["set_maintenance"], ["set_maintenance", "clear_maintenance"])
            assert [c[2] for c in cluster.changes() if c[1] == "undefine"] in ([], ["db1"])  # only the stale copy
    else:  # moves began: the host stays marked, and the result says what moved and where each guest is
        assert cluster.marks["hv1"]["reason"] == "evacuate", cluster.marks
        for outcome in result["outcomes"]:
            assert where_is(cluster, outcome["guest"]) == sorted(outcome["runs_on"]), (outcome, cluster.placement())
            # moved: it landed and passed its check; one that landed and failed it says so, and runs_on where it is
            assert not outcome["moved"] or outcome["runs_on"] == [outcome["destination"]], outcome
        if code == 0:
            assert result["empty"] is True and [g for g in cluster.placement()["hv1"] if g in guests] == []
            assert [name for name, state in cluster.states("hv1").items() if state != "shutoff"] == []
    return began


@pytest.mark.parametrize("host, method", sorted(CALLS), ids=["%s-%s" % key for key in sorted(CALLS)])
def test_an_error_at_any_call_of_a_run_leaves_the_host_as_the_rule_says(capsys, host, method):
    for cluster in each_fault(CALLS, host, method, two_guests):
        code, result = run_module(capsys, observed(evacuate.Evacuate, cluster), cluster)
        judge(cluster, code, result)


@pytest.mark.parametrize("host, method", sorted(CHECK_CALLS), ids=["%s-%s" % key for key in sorted(CHECK_CALLS)])
def test_an_error_at_any_call_of_a_check_mode_run_changes_nothing(capsys, host, method):
    for cluster in each_fault(CHECK_CALLS, host, method, two_guests):
        code, result = run_module(capsys, evacuate.Evacuate, cluster, check=True)
        assert code in (0, 1) and "\n" not in result.get("msg", ""), result
        assert cluster.changes() == [] and cluster.marks == {} and cluster.holds == {}
        assert cluster.placement()["hv1"] == ["web1", "web2"]


def test_the_rule_is_tried_on_both_sides_of_the_first_move():
    # the clean run's calls reach past the first move (the fault matrix above is not all before it)
    assert ("hv1", "start_migration") in CALLS and ("hv1", "set_maintenance") in CALLS


def test_an_error_before_the_first_move_rolls_back_the_mark_and_names_the_object(capsys):
    cluster = two_guests()
    cluster.fail("host_facts")  # hv1's own facts, read to plan
    code, result = run_module(capsys, observed(evacuate.Evacuate, cluster), cluster)
    assert code == 1 and result["msg"] == "cannot host_facts on qemu:///system: injected fault", result
    assert cluster.marks == {} and MOVES_BEGIN not in cluster.calls
    assert [c[1] for c in cluster.changes()] == ["set_maintenance", "clear_maintenance"]


def test_an_error_after_the_moves_ends_the_run_saying_what_moved_and_the_host_stays_marked(capsys):
    cluster = two_guests()
    cluster.fail("guests", at=CALLS[("hv1", "guests")])  # the last look at what still runs on hv1
    code, result = run_module(capsys, evacuate.Evacuate, cluster)
    assert code == 1, result
    assert result["msg"] == ("the evacuation of hv1 ended on an error after its moves began: cannot guests on "
                             "qemu:///system: injected fault; web1, web2 moved; hv1 stays in maintenance (evacuate.yml "
                             "finishes the job, restore.yml brings it back into service)")
    assert sorted((o["guest"], o["moved"]) for o in result["outcomes"]) == [("web1", True), ("web2", True)]
    assert result["summary"]["moved"] == 2 and result["changed"] is True
    assert cluster.marks["hv1"]["run_id"] == result["run_id"] and cluster.placement()["hv1"] == []


def test_a_mark_that_cannot_be_taken_back_is_said(capsys):
    cluster = two_guests()
    cluster.add("hv1", "odd", policy="teleport")  # a blocked plan: the mark is taken back
    cluster.fail("clear_maintenance")
    code, result = run_module(capsys, evacuate.Evacuate, cluster)
    assert code == 1 and result["msg"].endswith(
        "; hv1 stays in maintenance: the mark this run set could not be removed (cannot clear_maintenance on "
        "qemu:///system: injected fault)"), result
    assert result["msg"].startswith("cannot evacuate hv1: 1 guest(s) cannot be placed, nothing was moved: odd ")
    assert "hv1" in cluster.marks and cluster.placement()["hv1"] == ["odd", "web1", "web2"]


@pytest.mark.parametrize("host, method", [("hv2", "watch"), ("hv3", "watch"), ("hv2", "guest_state"),
                                          ("hv3", "guest_state")])
def test_an_error_in_a_guests_settle_period_is_its_moves_failure(capsys, host, method):
    cluster = two_guests()
    cluster.fail(method, host=host)
    code, result = run_module(capsys, observed(evacuate.Evacuate, cluster), cluster, settle_s=1)
    assert judge(cluster, code, result) is True


STALE_CALLS = clean_calls(evacuate.Evacuate, with_a_stale_copy)
# hv2 not answering when its guests are read: the survey cannot see that db1 runs there, so the shut-off copy on
# hv1 looks like a guest of hv1's own and its definition is planned onto hv3 (as before the survey was one pass:
# a destination that does not answer hides the copies of its guests). Judged apart below.
HIDES_THE_COPY = (("hv2", "guests"), ("hv2", "pools"))


@pytest.mark.parametrize("host, method", sorted(STALE_CALLS), ids=["%s-%s" % key for key in sorted(STALE_CALLS)])
def test_an_error_at_any_call_of_a_run_with_a_stale_copy_never_loses_its_guest(capsys, host, method):
    for cluster in each_fault(STALE_CALLS, host, method, with_a_stale_copy):
        records = cluster.records()
        code, result = run_module(capsys, observed(evacuate.Evacuate, cluster), cluster)
        assert "db1" in cluster.placement()["hv2"] and cluster.states("hv2")["db1"] == "running"  # never moved
        if (host, method) in HIDES_THE_COPY:
            assert code == 0 and result["stale_copies"] == [] and result["empty"] is True, result
            assert [(o["guest"], o["runs_on"]) for o in result["outcomes"] if o["guest"] == "db1"] == [("db1", ["hv3"])]
            continue
        began = judge(cluster, code, result, guests=("web1", "web2"), before=["db1", "web1", "web2"], records=records)
        assert not began or "db1" not in [o["guest"] for o in result["outcomes"]]
        if "db1" in cluster.placement()["hv1"]:  # the copy stays only when its removal failed, and the run says so
            assert code == 1 or [c["removed"] for c in result["stale_copies"]] == [False], result


def test_the_fault_matrix_with_a_stale_copy_reaches_its_removal():
    assert ("hv1", "undefine") in STALE_CALLS and ("hv2", "guests") in STALE_CALLS


def test_options_naming_a_guest_no_host_has_fail_before_the_hold_and_the_mark(capsys):
    cluster = two_guests()
    cluster.add("hv3", "db1")
    code, result = run_module(capsys, evacuate.Evacuate, cluster, policies={"ghost": "shutdown", "db1": "skip"})
    assert code == 1 and result["msg"] == ("policies names guest ghost, which is defined on none of hv1, hv2, hv3: "
                                           "name guests of these hosts, or remove ghost from policies"), result
    assert cluster.marks == {} and cluster.holds == {} and cluster.placement()["hv1"] == ["web1", "web2"]
    assert cluster.changes() == []  # judged by name on each host before anything was written


# -- guests that stay where they land (return_home false) ---------------------------------------------------------
FROM_HV3 = MigrationRecord(origin_host="hv3", origin_host_uuid="uuid-hv3", run_id="r0", time="2026-11-25T18:00:00Z")


def staying():
    """hv1 runs web1 (1024 MiB), web2 (512 MiB, evacuated from hv3 earlier: its record names hv3) and app (256 MiB,
    its settings demand its home)."""
    cluster = two_guests()
    cluster.hosts["hv1"]["web2"].record = FROM_HV3
    cluster.add("hv1", "app", memory_mib=256, return_to="home")
    return cluster


def record_of(cluster, name):
    """(origin host, its UUID) of the record of guest ``name``, wherever it is, or None."""
    for guests in cluster.hosts.values():
        if name in guests and guests[name].record is not None:
            return guests[name].record.origin_host, guests[name].record.origin_host_uuid
    return None


def test_check_mode_says_which_host_each_guests_record_will_name(capsys):
    cluster = staying()
    code, home = run_module(capsys, evacuate.Evacuate, cluster, check=True)
    assert code == 0 and dict((m["guest"], m["home_after"]) for m in home["plan"]["moves"]) == {
        "app": "hv1", "web1": "hv1", "web2": "hv3"}, home
    code, stay = run_module(capsys, evacuate.Evacuate, cluster, check=True, return_home=False)
    assert code == 0 and dict((m["guest"], m["home_after"]) for m in stay["plan"]["moves"]) == dict(
        (m["guest"], "hv1" if m["guest"] == "app" else m["destination"]) for m in stay["plan"]["moves"]), stay
    assert cluster.changes() == []


def test_without_return_home_each_guests_record_names_where_it_landed_but_a_guest_that_demands_its_home(capsys):
    cluster = staying()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, return_home=False)
    assert code == 0 and result["empty"] is True, result
    landed = dict((o["guest"], o["runs_on"][0]) for o in result["outcomes"])
    for name in ("web1", "web2"):  # web2's record from hv3 is replaced: no restore of hv3 pulls it back either
        assert record_of(cluster, name) == (landed[name], "uuid-%s" % landed[name])
    assert record_of(cluster, "app") == ("hv1", "uuid-hv1")
    assert dict((m["guest"], m["home_after"]) for m in result["plan"]["moves"]) == dict(
        landed, app="hv1")  # what check mode would have said


def test_a_move_placed_again_writes_the_record_of_the_destination_it_goes_to(capsys):
    cluster = two_guests()
    cluster.fail("maintenance", host="hv2", at=2)  # the survey reads hv2's mark; the look just before web1's move fails
    code, result = run_module(capsys, evacuate.Evacuate, cluster, return_home=False)
    assert code == 0, result
    planned = dict((m["guest"], m["destination"]) for m in result["plan"]["moves"])
    web1 = [o for o in result["outcomes"] if o["guest"] == "web1"][0]
    assert planned["web1"] == "hv2" and (web1["destination"], web1["runs_on"]) == ("hv3", ["hv3"]), result
    assert web1["reason"].startswith("placed on hv3 instead of hv2: hv2 does not answer")
    assert record_of(cluster, "web1") == ("hv3", "uuid-hv3")


def test_a_guest_whose_move_fails_keeps_the_record_it_had(capsys):
    cluster = staying()
    cluster.migration_error["web2"] = "internal error: qemu unexpectedly closed the monitor"
    code, result = run_module(capsys, evacuate.Evacuate, cluster, return_home=False)
    assert code == 1 and "web2" in cluster.placement()["hv1"], result
    assert record_of(cluster, "web2") == ("hv3", "uuid-hv3")  # written back: restore of hv3 still brings it home
    assert ("hv1", "set_record", "web2") in cluster.changes() and ("hv1", "clear_record", "web2") not in cluster.calls


def test_a_restore_of_the_source_afterwards_brings_home_only_the_guest_that_demands_it_and_ends_the_maintenance(capsys):
    cluster = staying()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, return_home=False)
    assert code == 0 and cluster.marks["hv1"]["run_id"] == result["run_id"], result
    stayed = dict((name, host) for host, names in cluster.placement().items() for name in names if name != "app")
    code, back = run_module(capsys, restore.Restore, cluster)
    assert code == 0, back
    assert [(o["guest"], o["outcome"]) for o in back["outcomes"]] == [("app", "migrated")]
    assert back["maintenance_cleared"] is True and cluster.marks == {}
    assert cluster.placement()["hv1"] == ["app"] and record_of(cluster, "app") is None
    assert dict((name, host) for host, names in cluster.placement().items() for name in names if name != "app") == stayed
    # nor does a restore of hv3, where web2 came from first
    code, other = run_module(capsys, restore.Restore, cluster, name="hv3", uri=cluster.uri("hv3"),
                             destinations=[{"name": "hv1"}, {"name": "hv2"}])
    assert code == 0 and [m for m in other["plan"]["moves"] if m["guest"] == "web2"] == [], other


@pytest.mark.parametrize("value", ["away", "Home"])
def test_a_return_that_is_not_home_fails_naming_the_guest_and_the_value_and_changes_nothing(capsys, value):
    cluster = staying()
    cluster.add("hv1", "odd", return_to=value)
    for check in (True, False):
        code, result = run_module(capsys, evacuate.Evacuate, cluster, check=check, return_home=False)
        assert code == 1 and result["msg"] == ('return %r of guest odd in its settings metadata must be "home" (it '
                                               'demands its home) or left out' % value), result
        assert cluster.marks == {} and cluster.holds == {} and cluster.records() == {"web2": "hv3"}
        assert cluster.placement()["hv1"] == ["app", "odd", "web1", "web2"]
    assert [c[1] for c in cluster.changes()] == ["set_maintenance", "clear_maintenance"]  # taken back at once


# -- destinations to avoid (avoid) --------------------------------------------------------------------------------
def test_avoided_destinations_come_last_and_a_name_that_is_no_destination_is_a_warning(capsys):
    cluster = two_guests()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, check=True, avoid=["hv2", "hv9"])
    assert code == 0, result
    assert sorted((m["guest"], m["destination"], m["reasons"]) for m in result["plan"]["moves"]) == [
        ("web1", "hv3", []), ("web2", "hv3", [])]  # without avoid, worst fit spreads them over hv2 and hv3
    said = "".join(result.get("warnings", [])) + capsys.readouterr().err  # where Ansible puts a module's warning
    assert "avoid names hv9, which is not a destination of hv1 (hv2, hv3): ignored" in said


def test_a_guest_goes_to_an_avoided_destination_when_no_other_can_take_it_and_its_move_says_why(capsys):
    cluster = two_guests()
    cluster.memory_mib["hv3"] = 2300  # with the 1024 MiB reserve, room for web1 (1024 MiB), then not for web2
    code, result = run_module(capsys, evacuate.Evacuate, cluster, avoid=["hv2"])
    assert code == 0 and "avoid names" not in capsys.readouterr().err, result
    web2 = result["plan"]["moves"][1]
    assert (web2["guest"], web2["destination"]) == ("web2", "hv2")
    assert [(r["code"], r["destination"]) for r in web2["reasons"]] == [("avoided", "hv2"), ("capacity", "hv3")]
    assert web2["reasons"][0]["message"] == ("web2 goes to hv2, a host to be emptied next (avoid): no other "
                                             "destination can take it")
    assert cluster.placement() == {"hv1": [], "hv2": ["web2"], "hv3": ["web1"]} and result["empty"] is True


# -- declared capacities (capacity_mib) ----------------------------------------------------------------------------
DECLARED = dict(capacity_mib=8192, destinations=[{"name": "hv2", "capacity_mib": 1024},
                                                 {"name": "hv3", "capacity_mib": 1024}])


def crowded():
    """hv1 runs g3 (600 MiB); hv2 runs two 256 MiB guests and hv3 one of 512 MiB arriving by another run's migration:
    every host measures 16 GiB, and within 1024 MiB each has 512 MiB left."""
    cluster = FakeCluster("hv1", "hv2", "hv3")
    cluster.add("hv1", "g3", memory_mib=600)
    cluster.add("hv2", "r1", memory_mib=256)
    cluster.add("hv2", "r2", memory_mib=256)
    cluster.arriving["hv3"]["in1"] = Guest(name="in1", uuid="uuid-in1", state="paused", memory_mib=512,
                                           max_memory_mib=512)
    return cluster


def test_a_declared_capacity_is_the_room_the_plan_sees_incoming_migrations_included(capsys):
    cluster = crowded()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, reserve_mib=0, **DECLARED)
    assert code == 1 and result["msg"] == (
        "cannot evacuate hv1: 1 guest(s) cannot be placed, nothing was moved: g3 (cannot live-migrate g3 to hv2: "
        "destination has 512 MiB free (512 MiB less the 0 MiB reserve), guest needs 600 MiB; cannot live-migrate g3 "
        "to hv3: destination has 512 MiB free (512 MiB less the 0 MiB reserve), guest needs 600 MiB)"), result
    assert cluster.placement()["hv1"] == ["g3"] and cluster.marks == {}
    # undeclared, the same hosts take it; a guest that fits within the capacity moves
    code, result = run_module(capsys, evacuate.Evacuate, cluster, reserve_mib=0, check=True)
    assert code == 0 and [m["guest"] for m in result["plan"]["moves"]] == ["g3"], result
    cluster.hosts["hv1"]["g3"].memory_mib = cluster.hosts["hv1"]["g3"].max_memory_mib = 512
    code, result = run_module(capsys, evacuate.Evacuate, cluster, reserve_mib=0, **DECLARED)
    assert code == 0 and result["summary"]["moved"] == 1 and cluster.placement()["hv1"] == [], result


ROOMY = dict(capacity_mib=8192, destinations=[{"name": "hv2", "capacity_mib": 4096},
                                              {"name": "hv3", "capacity_mib": 4096}])


def declared_calls():
    cluster = two_guests()
    code, result = run_module(None, observed(evacuate.Evacuate, cluster), cluster, **ROOMY)
    assert code == 0, result
    return call_counts(cluster.calls)


DECLARED_CALLS = declared_calls()


@pytest.mark.parametrize("host", ["hv1", "hv2", "hv3"])
def test_an_error_reading_a_declared_hosts_guests_memory_leaves_the_host_as_the_rule_says(capsys, host):
    assert DECLARED_CALLS[(host, "active_memory")] >= 1  # each host is read (the destinations again before a move)
    for cluster in each_fault(DECLARED_CALLS, host, "active_memory", two_guests):
        code, result = run_module(capsys, observed(evacuate.Evacuate, cluster), cluster, **ROOMY)
        judge(cluster, code, result)


# -- guests whose local disks a storage copy takes along ----------------------------------------------------------
DB1_DISK = LOCAL + "/db1.qcow2"


def local_disk_guest(**volume):
    """hv1 runs db1 (512 MiB) on a 20 GiB disk in its own pool (no other host shares it); hv2 runs nothing."""
    cluster = FakeCluster("hv1", "hv2")
    cluster.add("hv1", "db1", disks=[Disk(target="vda", path=DB1_DISK, format="qcow2", pool="default")])
    cluster.volumes["hv1"][DB1_DISK] = dict(dict(capacity=20 * GIB, allocation=3 * GIB), **volume)
    return cluster


def db1_outcome(result):
    return [o for o in result["outcomes"] if o["guest"] == "db1"][0]


def test_a_storage_copy_counts_its_disk_and_deletes_it_on_the_source_once_the_guest_ran_well(capsys):
    cluster = local_disk_guest()
    code, blocked = run_module(capsys, evacuate.Evacuate, cluster, check=True)
    assert code == 1 and "storage copy is not allowed" in blocked["msg"], blocked
    code, check = run_module(capsys, evacuate.Evacuate, cluster, check=True, allow_storage_copy=True)
    move = check["plan"]["moves"][0]
    # the plan counts the disk's capacity beside the memory, so its time limit does too
    assert (move["storage_copy"], move["copy_disks"], move["disk_bytes"]) == (True, ["vda"], 20 * GIB), check
    assert move["expected_bytes"] == 512 * MIB + 20 * GIB
    code, result = run_module(capsys, evacuate.Evacuate, cluster, allow_storage_copy=True, settle_s=1)
    assert code == 0, result
    outcome = db1_outcome(result)
    assert (outcome["outcome"], outcome["runs_on"]) == ("migrated", ["hv2"])
    assert outcome["source_disks_deleted"] == [DB1_DISK]
    assert outcome["reason"] == "its disks copied to hv2 were deleted on hv1: %s" % DB1_DISK
    assert cluster.volumes == {"hv1": {}, "hv2": {DB1_DISK: dict(capacity=20 * GIB, allocation=3 * GIB)}}
    assert [c for c in cluster.changes() if c[1] == "delete_volumes"] == [("hv1", "delete_volumes", None)]


def test_with_storage_copy_source_keep_the_source_disk_stays_and_the_reason_says_so(capsys):
    cluster = local_disk_guest()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, allow_storage_copy=True,
                              storage_copy_source="keep")
    assert code == 0, result
    outcome = db1_outcome(result)
    assert outcome["outcome"] == "migrated" and outcome["source_disks_deleted"] == []
    assert outcome["reason"] == ("its disks copied to hv2 stay on hv1 too (storage_copy_source is keep): %s"
                                 % DB1_DISK)
    assert DB1_DISK in cluster.volumes["hv1"] and DB1_DISK in cluster.volumes["hv2"]


def test_a_source_disk_another_definition_on_the_source_names_stays(capsys):
    cluster = local_disk_guest()
    # a guest that stays on hv1 reads db1's disk (a backup appliance, say)
    cluster.add("hv1", "backup", policy="skip", non_migratable_reasons=["host device passthrough pins it"],
                disks=[Disk(target="vdb", path=DB1_DISK, pool="default", readonly=True)])
    code, result = run_module(capsys, evacuate.Evacuate, cluster, allow_storage_copy=True, allow_partial=True)
    assert code == 0, result
    outcome = db1_outcome(result)
    assert outcome["outcome"] == "migrated" and outcome["source_disks_deleted"] == []
    assert outcome["reason"] == "%s stays on hv1: the definition of backup on hv1 names it" % DB1_DISK
    assert DB1_DISK in cluster.volumes["hv1"]


def test_a_source_disk_that_cannot_be_deleted_is_a_note_not_a_failed_move(capsys):
    cluster = local_disk_guest()
    cluster.fail("delete_volumes", host="hv1")
    code, result = run_module(capsys, evacuate.Evacuate, cluster, allow_storage_copy=True)
    assert code == 0 and result["empty"] is True, result
    outcome = db1_outcome(result)
    assert outcome["outcome"] == "migrated" and outcome["source_disks_deleted"] == []
    assert outcome["reason"] == ("%s stays on hv1: cannot delete_volumes on qemu:///system: injected fault"
                                 % DB1_DISK)


@pytest.mark.parametrize("how", ["the migration fails", "the guest crashes on arrival"])
def test_no_source_disk_is_deleted_after_a_move_that_did_not_end_well(capsys, how):
    cluster = local_disk_guest()
    if how == "the migration fails":
        cluster.migration_error["db1"] = "internal error: qemu unexpectedly closed the monitor"
    else:
        cluster.landing_events["db1"] = [("crashed", "panicked")]
    code, result = run_module(capsys, evacuate.Evacuate, cluster, allow_storage_copy=True, settle_s=1)
    assert code == 1, result
    outcome = db1_outcome(result)
    assert outcome["outcome"] == "failed" and outcome["source_disks_deleted"] == []
    assert cluster.volumes["hv1"] == {DB1_DISK: dict(capacity=20 * GIB, allocation=3 * GIB)}
    assert [c for c in cluster.changes() if c[1] == "delete_volumes" and c[0] == "hv1"] == []
    if how == "the migration fails":
        assert outcome["runs_on"] == ["hv1"] and cluster.volumes["hv2"] == {}
    else:
        assert outcome["reason"].startswith("db1 crashed (panicked) ") and outcome["reason"].endswith(" on hv2")


def test_a_run_given_a_progress_file_returns_its_last_state_and_leaves_no_file(capsys, tmp_path):
    path = str(tmp_path / "progress.json")
    cluster = two_guests()
    code, result = run_module(capsys, evacuate.Evacuate, cluster, progress_file=path)
    assert code == 0, result
    last = result["_hostmaint_progress"]
    assert sorted((m["guest"], m["phase"], m["outcome"]) for m in last["moves"]) == [
        ("web1", "done", "migrated"), ("web2", "done", "migrated")]
    assert last["totals"]["done"] == 2 and last["host"] == "hv1"
    assert not tmp_path.joinpath("progress.json").exists() and list(tmp_path.iterdir()) == []
    cluster = two_guests()
    cluster.fail("guests", at=CALLS[("hv1", "guests")])  # an error after the moves: the failure carries it too
    code, result = run_module(capsys, evacuate.Evacuate, cluster, progress_file=path)
    assert code == 1 and result["_hostmaint_progress"]["totals"]["done"] == 2
    code, result = run_module(capsys, evacuate.Evacuate, two_guests(), progress_file=path, progress=False)
    assert code == 0 and "_hostmaint_progress" not in result
    code, result = run_module(capsys, evacuate.Evacuate, two_guests(), check=True, progress_file=path)
    assert code == 0 and "_hostmaint_progress" not in result
