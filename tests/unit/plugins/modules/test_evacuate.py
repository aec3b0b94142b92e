# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evacuate.run on the shared fake cluster (tests/unit/plugins/fake_adapter.py): what the user reads in the module's
JSON and where the guests, the mark and the records are afterwards."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.modules import evacuate
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.fake_adapter import (
    MOVES_BEGIN,
    FakeCluster,
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


def judge(cluster, code, result):
    """The rule, for one run with one fault: returns whether the run's moves had begun when it ended."""
    assert cluster.fired, "the fault was never raised: the run took another path than the clean one"
    assert code in (0, 1), result
    if code == 1:
        assert "\n" not in result["msg"] and "Traceback" not in result["msg"], result["msg"]
        assert "injected fault" in result["msg"] or "outcomes" in result, result["msg"]
    for name in ("web1", "web2"):
        assert len(where_is(cluster, name)) == 1, cluster.placement()  # a guest is never lost nor doubled
    assert cluster.holds == {}  # the hold is released whatever happened
    began = MOVES_BEGIN in cluster.calls
    if not began:
        if code == 1:  # ended before its first move: the mark this run set is taken back, nothing moved
            assert cluster.marks == {} and cluster.records() == {}, result
            assert cluster.placement()["hv1"] == ["web1", "web2"]
            assert [c[1] for c in cluster.changes()] in ([], ["set_maintenance"],
                                                         ["set_maintenance", "clear_maintenance"])
    else:  # moves began: the host stays marked, and the result says what moved and where each guest is
        assert cluster.marks["hv1"]["reason"] == "evacuate", cluster.marks
        for outcome in result["outcomes"]:
            assert where_is(cluster, outcome["guest"]) == sorted(outcome["runs_on"]), (outcome, cluster.placement())
            # moved: it landed and passed its check; one that landed and failed it says so, and runs_on where it is
            assert not outcome["moved"] or outcome["runs_on"] == [outcome["destination"]], outcome
        if code == 0:
            assert result["empty"] is True and cluster.placement()["hv1"] == []
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
