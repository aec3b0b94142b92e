# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.maintenance on the shared fake cluster: the mark set and ended, idempotent, check mode that
changes nothing, and a refusal naming the run while a live run holds the host."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.module_utils import hold as holds
from ansible_collections.hostmaint.libvirt.plugins.modules import evacuate, maintenance
from ansible_collections.hostmaint.libvirt.tests.unit.plugins import fake_adapter
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.fake_adapter import FakeCluster

# this machine is hv1 in boot boot-1; process 4242, started at tick 1000, runs (a run's)
ME = ("hv1", "boot-1", 999, 5)
PROCESSES = {4242: 1000}
LIVE = holds.make("20261125T180000Z-1a2b3c", "evacuate", "2026-11-25T18:00:00Z", "hv1", "boot-1", 4242, 1000)
EVACUATED = dict(since="2026-11-25T18:00:00Z", run_id="20261125T180000Z-1a2b3c", reason="evacuate")


def run_module(cluster, check=False, **args):
    output = io.StringIO()
    with patch_module_args(dict(args, _ansible_check_mode=check)), contextlib.redirect_stdout(output):
        with pytest.raises(SystemExit) as exit_info:
            maintenance.Maintenance(adapter_factory=cluster.factory, me=ME, start_of=PROCESSES.get).execute()
    return exit_info.value.code, json.loads(output.getvalue())


def cluster_of():
    cluster = FakeCluster("hv1", "hv2")
    cluster.add("hv1", "web1")
    return cluster


def test_check_then_set_then_set_again_marks_the_host_once_and_touches_no_guest():
    cluster = cluster_of()
    code, check = run_module(cluster, check=True, reason="rolling upgrade, batch 2")
    assert code == 0 and check["changed"] is True, check
    assert check["maintenance"]["reason"] == "rolling upgrade, batch 2" and check["maintenance"]["by"] == \
        "hostmaint.libvirt.maintenance"
    assert check["msg"] == "would mark hv1 in maintenance (rolling upgrade, batch 2)"
    assert cluster.changes() == [] and cluster.marks == {}
    code, real = run_module(cluster, reason="rolling upgrade, batch 2")
    assert code == 0 and real["changed"] is True and real["msg"] == "hv1 is marked in maintenance (rolling upgrade, " \
        "batch 2)", real
    assert cluster.marks["hv1"] == real["maintenance"]
    assert sorted(real["maintenance"]) == ["by", "reason", "run_id", "since"]
    assert real["maintenance"]["reason"] == "rolling upgrade, batch 2"
    code, again = run_module(cluster, reason="another reason")
    assert code == 0 and again["changed"] is False and again["maintenance"] == real["maintenance"], again
    assert again["msg"] == "hv1 is already marked in maintenance (rolling upgrade, batch 2)"
    assert [c[1] for c in cluster.changes()] == ["set_maintenance"]
    assert cluster.placement() == {"hv1": ["web1"], "hv2": []} and cluster.holds == {}


def test_a_mark_without_a_reason_says_maintenance_and_an_evacuations_mark_is_kept_as_it_is():
    cluster = cluster_of()
    code, result = run_module(cluster)
    assert code == 0 and result["maintenance"]["reason"] == "maintenance", result
    cluster.marks["hv1"] = dict(EVACUATED)
    code, result = run_module(cluster, reason="mine")
    assert code == 0 and result["changed"] is False and cluster.marks["hv1"] == EVACUATED, result


def test_check_then_end_then_end_again_removes_the_mark_once():
    cluster = cluster_of()
    cluster.marks["hv1"] = dict(EVACUATED)
    code, check = run_module(cluster, check=True, state="absent")
    assert code == 0 and check["changed"] is True and check["maintenance"] is None, check
    assert check["msg"] == "would end the maintenance of hv1" and cluster.marks == {"hv1": EVACUATED}
    code, real = run_module(cluster, state="absent")
    assert code == 0 and real["changed"] is True and real["maintenance"] is None, real
    assert real["msg"] == "the maintenance of hv1 is ended" and cluster.marks == {}
    code, again = run_module(cluster, state="absent")
    assert code == 0 and again["changed"] is False and again["msg"] == "hv1 carries no maintenance mark", again
    assert [c[1] for c in cluster.changes()] == ["clear_maintenance"]
    assert cluster.placement() == {"hv1": ["web1"], "hv2": []}


@pytest.mark.parametrize("check", [True, False])
@pytest.mark.parametrize("state, mark, doing", [
    ("absent", EVACUATED, "end the maintenance of hv1"),
    ("present", None, "mark hv1 in maintenance"),
])
def test_a_live_run_holding_the_host_owns_its_mark_and_a_change_is_refused_naming_it(check, state, mark, doing):
    cluster = cluster_of()
    if mark is not None:
        cluster.marks["hv1"] = dict(mark)
    cluster.holds["hv1"] = dict(LIVE)
    code, result = run_module(cluster, check=check, state=state)
    assert code == 1 and result["msg"] == (
        "cannot %s: run 20261125T180000Z-1a2b3c (evacuate) holds it since 2026-11-25T18:00:00Z and owns its mark (its "
        "process 4242 still runs); wait for it to end or stop it (playbooks/stop.yml -l hv1)" % doing), result
    assert result["held_by"] == LIVE
    assert cluster.changes() == [] and cluster.holds == {"hv1": LIVE}
    assert cluster.marks == ({"hv1": mark} if mark is not None else {})


def test_a_mark_already_as_asked_is_no_change_even_while_a_run_holds_the_host():
    cluster = cluster_of()
    cluster.marks["hv1"] = dict(EVACUATED)
    cluster.holds["hv1"] = dict(LIVE)
    code, result = run_module(cluster)
    assert code == 0 and result["changed"] is False and result["maintenance"] == EVACUATED, result


@pytest.mark.parametrize("hold, msg", [
    (dict(LIVE, pid=4343), None),  # its process is gone: the hold is stale, the mark may end
    (dict(LIVE, boot_id="boot-0"), None),  # taken before the host rebooted
    (dict(LIVE, node="controller"), "it was taken on controller, where this run cannot see whether it still runs"),
    ({}, "a run is taking its hold this moment"),
])
def test_a_hold_is_judged_as_a_run_judges_it(hold, msg):
    cluster = cluster_of()
    cluster.marks["hv1"] = dict(EVACUATED)
    cluster.holds["hv1"] = hold
    code, result = run_module(cluster, state="absent")
    if msg is None:
        assert code == 0 and result["changed"] is True and cluster.marks == {}, result
        assert cluster.holds == {"hv1": hold}  # the mark only: the hold stays for the next run to take over
    else:
        assert code == 1 and msg in result["msg"] and cluster.marks == {"hv1": EVACUATED}, result


def test_a_marked_host_receives_no_guest_from_an_evacuation_of_another():
    cluster = FakeCluster("hv1", "hv2", "hv3")
    cluster.add("hv1", "web1")
    code, result = run_module(cluster)  # on hv1: marks hv1 (the cluster's local host)
    assert code == 0 and result["changed"] is True, result
    cluster.local = "hv2"  # now evacuate hv2's guest: hv1, marked, must not receive it
    cluster.uris[fake_adapter.LOCAL_URI] = "hv2"
    cluster.add("hv2", "db1")
    code, evacuated = fake_adapter.run_module(None, evacuate.Evacuate, cluster)
    assert code == 0 and [(m["guest"], m["destination"]) for m in evacuated["plan"]["moves"]] == [("db1", "hv3")]


@pytest.mark.parametrize("method", ["host_identity", "maintenance", "hold", "set_maintenance"])
def test_an_error_of_libvirt_is_one_sentence_and_changes_nothing(method):
    cluster = cluster_of()
    cluster.fail(method)
    code, result = run_module(cluster, reason="x")
    assert code == 1 and result["msg"] == "cannot %s on qemu:///system: injected fault" % method, result
    assert cluster.marks == {}


def test_a_bad_uri_fails_before_libvirt_is_asked():
    cluster = cluster_of()
    code, result = run_module(cluster, uri="foo://x")
    assert code == 1 and "uri 'foo://x'" in result["msg"] and cluster.calls == [], result
