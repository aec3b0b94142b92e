# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rolling upgrade's decisions (module_utils.roll): a host's cycle and resume, and the turns of a roll of many
hosts (how many in maintenance at once, one drain at a time, room for every guest, overlap, stay, a stop)."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import roll
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError


def fleet(hosts=4, guests_per_host=2, memory=1024, capacity=8192, cluster=None, **options):
    """hv1..hvN, each with its guests (g<host>-<n>), room for ``capacity`` MiB each."""
    names = ["hv%d" % i for i in range(1, hosts + 1)]
    host_list = [dict(name=h, cluster=(cluster or {}).get(h, "c1"), capacity_mib=capacity) for h in names]
    guests = [dict(name="g%s-%d" % (h[2:], n), host=h, memory_mib=memory) for h in names
              for n in range(guests_per_host)]
    return roll.new(host_list, guests, **options)


def take(state, host, action, **data):
    turn = roll.decide(state, host, action)
    assert turn["granted"], turn
    return roll.apply(state, host, action, turn=turn, **data), turn


def drained(state, host, moves=None):
    """``host`` emptied: every guest on it moved to ``moves`` {guest: destination} or to the first host in service."""
    moves = moves or {}
    open_hosts = [h for h in state["order"] if state["phase"][h] in (roll.QUEUED, roll.DONE, roll.SKIPPED)]
    result = [dict(guest=name, destination=moves.get(name, open_hosts[0]), outcome="migrated")
              for name, g in sorted(state["guests"].items()) if g["host"] == host]
    return roll.apply(state, host, "drained", moves=result)


def home_again(state, host):
    result = [dict(guest=name, destination=host, outcome="migrated")
              for name, g in sorted(state["guests"].items()) if g["home"] == host and g["host"] != host]
    return roll.apply(roll.apply(state, host, "upgraded"), host, "restored", moves=result)


# --- one host's cycle -----------------------------------------------------------------------------------------

def test_a_fresh_cycle_runs_every_step_and_a_resumed_one_starts_after_what_changed_the_host():
    assert roll.cycle("hv1", []) == dict(run=list(roll.CYCLE), done=[], resume="")
    resumed = roll.cycle("hv1", ["evacuate"], "/var/lib/libvirt/hostmaint/maintain.json")
    assert resumed["run"] == ["patch", "gate_after", "restore"]
    assert resumed["resume"] == "hv1: resuming after evacuate (from /var/lib/libvirt/hostmaint/maintain.json)"
    assert roll.cycle("hv1", ["evacuate", "patch"])["run"] == ["gate_after", "restore"]
    # checks are never kept: they judge the cluster as it is now
    assert roll.step_done(["evacuate"], "gate_after") == ["evacuate"]
    assert roll.step_done(["evacuate"], "patch") == ["evacuate", "patch"]
    with pytest.raises(DecisionError, match="hv1's maintenance state names steps no cycle has: dance"):
        roll.cycle("hv1", ["dance"])


def test_a_stopped_cycle_says_where_the_host_stands_and_how_to_resume():
    assert roll.stopped("hv2", "gate_before", "hv2: check app quorum failed (exit 1)", []) == (
        "maintenance of hv2 stopped at step gate_before: hv2: check app quorum failed (exit 1). hv2 was not "
        "touched; fix the cause and run the same playbook again: it resumes from the start.")
    assert "hv2 stays in maintenance; fix the cause and run the same playbook again: it resumes after evacuate." in \
        roll.stopped("hv2", "patch", "boom", ["evacuate"])
    assert "hv2 may have guests still away (see the report)" in roll.stopped("hv2", "restore", "x", ["evacuate", "patch"])


# --- one host at a time ---------------------------------------------------------------------------------------

def test_one_host_at_a_time_each_cycle_ends_before_the_next_host_enters():
    state = fleet()
    state, turn = take(state, "hv1", "enter")
    assert turn["mark"] == ["hv1"] and turn["avoid"] == ["hv2"]
    assert roll.decide(state, "hv2", "enter") == dict(
        granted=False, final=False, mark=[], avoid=[], in_maintenance=["hv1"], phase="queued", down=[],
        why="hv2 waits: 1 host(s) of cluster c1 in maintenance (hv1), at most 1 at once")
    state, _turn = take(state, "hv1", "drain")
    state = drained(state, "hv1")
    assert state["history"][-1] == dict(host="hv1", what="upgrading", at=None)
    assert state["phase"]["hv1"] == roll.UPGRADING
    assert all(g["home"] == "hv1" for n, g in state["guests"].items() if n.startswith("g1-"))
    assert not roll.decide(state, "hv2", "enter")["granted"]
    state = roll.apply(state, "hv1", "upgraded")
    assert not roll.decide(state, "hv2", "enter")["granted"]  # no overlap: its restore counts
    state = home_again(state, "hv1")
    assert state["phase"]["hv1"] == roll.DONE and state["guests"]["g1-0"] == dict(
        host="hv1", memory_mib=1024, home=None, anti_affinity=None, home_demanded=False, active=True)
    assert roll.decide(state, "hv2", "enter")["granted"]


def test_hosts_go_in_order_and_a_later_one_waits_for_the_first():
    state = fleet()
    assert roll.decide(state, "hv3", "enter")["why"] == "hv3 waits: hv1 goes first"


# --- several at once ------------------------------------------------------------------------------------------

def test_two_at_once_the_first_marks_its_partner_and_their_drains_take_turns():
    state = fleet(parallel_hosts=2)
    state, turn = take(state, "hv1", "enter")
    assert turn["mark"] == ["hv1", "hv2"] and turn["avoid"] == ["hv3"]  # marked before either plans
    assert state["phase"]["hv2"] == roll.ENTERED
    state, turn = take(state, "hv2", "enter")  # marked already: its turn is granted at once
    assert turn["why"] == "hv2 is entered already"
    assert roll.decide(state, "hv2", "drain")["why"] == "hv2 waits: hv1 is emptied first"
    state, _turn = take(state, "hv1", "drain")
    assert roll.decide(state, "hv2", "drain")["why"] == \
        "hv2 waits: hv1 is being emptied (one evacuation at a time in cluster c1)"
    state = drained(state, "hv1", dict.fromkeys(["g1-0", "g1-1"], "hv3"))
    state, _turn = take(state, "hv2", "drain")  # hv1 reboots meanwhile
    assert "at most 2 at once" in roll.decide(state, "hv3", "enter")["why"]
    state = drained(state, "hv2", dict.fromkeys(["g2-0", "g2-1"], "hv4"))
    state = home_again(state, "hv1")
    state, turn = take(state, "hv3", "enter")  # a slot is free: one more host, alone
    assert turn["mark"] == ["hv3"]


def test_k_hosts_enter_only_while_the_rest_holds_every_guest():
    # 4 hosts of 4096 MiB, 2 guests of 1024 MiB each, 1024 MiB reserve: the rest holds one host's guests, not two
    state = fleet(capacity=4096, parallel_hosts=2)
    state, turn = take(state, "hv1", "enter")
    assert turn["mark"] == ["hv1"]  # hv2 cannot join: without both, the other two cannot hold their guests
    assert roll.decide(state, "hv2", "enter")["why"].startswith(
        "hv2 waits: without hv1 and hv2, cluster c1 cannot hold every guest with the 1024 MiB reserve on each host: ")
    assert roll.refusal(state) == (
        "rolling_upgrade_parallel_hosts=2 cannot hold in cluster c1 (4 hosts): without hv1 and hv2, cluster c1 cannot "
        "hold every guest with the 1024 MiB reserve on each host: g2-0 needs 1024 MiB, and the most room left is "
        "0 MiB, on hv4; roll fewer hosts at once, or make room")
    assert roll.refusal(fleet(parallel_hosts=2)) is None
    assert roll.refusal(fleet(capacity=4096)) is None  # one at a time asks nothing more


def test_anti_affinity_counts_in_the_room_check():
    hosts = [dict(name="hv%d" % i, cluster="c", capacity_mib=65536) for i in (1, 2, 3)]
    guests = [dict(name="db%d" % i, host="hv%d" % i, memory_mib=1024, anti_affinity="db") for i in (1, 2, 3)]
    ok, why = roll.fits(roll.new(hosts, guests), "c", ["hv1"])
    assert not ok and why.endswith("db1 needs 1024 MiB, and every other host runs a guest of its anti-affinity group db")


# --- overlap and stay -----------------------------------------------------------------------------------------

def test_with_overlap_the_next_host_drains_while_the_last_one_restores_unless_a_returning_guest_is_on_it():
    state = fleet(overlap=True)
    state, _turn = take(state, "hv1", "enter")
    state, _turn = take(state, "hv1", "drain")
    state = drained(state, "hv1", {"g1-0": "hv3", "g1-1": "hv2"})
    state = roll.apply(state, "hv1", "upgraded")
    state, _turn = take(state, "hv2", "enter")  # hv1 restoring does not count against k
    assert roll.decide(state, "hv2", "drain")["why"] == \
        "hv2 waits: hv1, whose guest g1-1 runs here, brings its guests home first"
    state = roll.apply(state, "hv1", "restored", moves=[dict(guest="g1-1", destination="hv1", outcome="migrated")])
    assert roll.decide(state, "hv2", "drain")["granted"]


def test_a_host_is_not_emptied_while_a_guest_on_it_waits_for_its_home_s_restore():
    # k=2: hv1 was emptied partly onto hv3 before hv3 was in the batch; hv3 drains only after hv1 took its guest back
    state = fleet(parallel_hosts=2, capacity=16384)
    state, _turn = take(state, "hv1", "enter")
    state, _turn = take(state, "hv1", "drain")
    state = drained(state, "hv1", {"g1-0": "hv3", "g1-1": "hv4"})
    state, _turn = take(state, "hv2", "enter")
    state, _turn = take(state, "hv2", "drain")
    state = drained(state, "hv2", {"g2-0": "hv4", "g2-1": "hv4"})
    state = roll.apply(state, "hv2", "upgraded")
    state = home_again(state, "hv2")
    state, _turn = take(state, "hv3", "enter")
    assert roll.decide(state, "hv3", "drain")["why"] == \
        "hv3 waits: hv1, whose guest g1-0 runs here, brings its guests home first"
    before = state
    state = home_again(roll.apply(state, "hv1", "upgraded"), "hv1")
    assert roll.decide(state, "hv3", "drain")["granted"]
    assert before["guests"]["g1-0"]["host"] == "hv3"  # apply never changes the state it was given


def test_with_stay_a_guest_s_home_moves_with_it_unless_it_demands_home():
    hosts = [dict(name="hv%d" % i, cluster="c", capacity_mib=65536) for i in (1, 2, 3)]
    guests = [dict(name="a", host="hv1", memory_mib=512), dict(name="b", host="hv1", memory_mib=512, home_demanded=True)]
    state = roll.new(hosts, guests, return_mode="stay")
    state, _turn = take(state, "hv1", "enter")
    state, _turn = take(state, "hv1", "drain")
    state = drained(state, "hv1", {"a": "hv2", "b": "hv3"})
    assert state["guests"]["a"]["home"] == "hv2" and state["guests"]["b"]["home"] == "hv1"
    state = home_again(state, "hv1")
    assert state["guests"]["a"]["host"] == "hv2" and state["guests"]["b"]["host"] == "hv1"
    state, _turn = take(state, "hv2", "enter")
    state, _turn = take(state, "hv2", "drain")
    state = drained(state, "hv2", {"a": "hv1"})
    state = home_again(state, "hv2")
    state, _turn = take(state, "hv3", "enter")
    state, _turn = take(state, "hv3", "drain")
    state = home_again(drained(state, "hv3"), "hv3")
    assert roll.empty_at_end(state) == ["hv2", "hv3"]


# --- clusters, stops, resumes, bad input ----------------------------------------------------------------------

def test_clusters_roll_one_after_another_or_at_once():
    split = {"hv1": "a", "hv2": "a", "hv3": "b", "hv4": "b"}
    serial = fleet(cluster=split)
    serial, _turn = take(serial, "hv1", "enter")
    assert roll.decide(serial, "hv3", "enter")["why"] == "hv3 waits: cluster b rolls after the one before it"
    parallel = fleet(cluster=split, parallel_clusters=True)
    parallel, _turn = take(parallel, "hv1", "enter")
    parallel, turn = take(parallel, "hv3", "enter")
    assert turn["in_maintenance"] == ["hv3"]  # its own cluster's
    parallel, _turn = take(parallel, "hv1", "drain")
    assert roll.decide(parallel, "hv3", "drain")["granted"]  # one drain at a time per cluster


def test_a_failed_host_stops_the_roll_hosts_marked_leave_untouched_and_hosts_past_their_drain_finish():
    state = fleet(parallel_hosts=2)
    state, _turn = take(state, "hv1", "enter")
    state, _turn = take(state, "hv1", "drain")
    state = roll.apply(state, "hv1", "failed", reason="hv1 did not come back")
    assert state["stopped"] == "the roll stopped after hv1 failed"
    for host in ("hv2", "hv3"):  # hv2 was marked by hv1, hv3 was queued
        turn = roll.decide(state, host, "enter" if host == "hv3" else "drain")
        assert turn["final"] and turn["why"] == "%s leaves the roll untouched: the roll stopped after hv1 failed" % host
    state = roll.apply(state, "hv2", "released", reason="the roll stopped")
    assert roll.summary(state)["phases"] == {"failed": ["hv1"], "skipped": ["hv2"], "queued": ["hv3", "hv4"]}


def test_a_host_asks_again_just_before_its_evacuation_and_leaves_untouched_if_the_roll_stopped_meanwhile():
    state = fleet(parallel_hosts=2, capacity=16384)
    state, _turn = take(state, "hv1", "enter")
    state, _turn = take(state, "hv1", "drain")
    state = drained(state, "hv1", {"g1-0": "hv3", "g1-1": "hv4"})
    state, _turn = take(state, "hv2", "drain")  # its gates run now
    assert roll.decide(state, "hv2", "drain")["granted"]  # asked again: nothing changed
    state = roll.apply(state, "hv1", "failed", reason="hv1 did not come back")
    turn = roll.decide(state, "hv2", "drain")
    assert turn["final"] and turn["phase"] == roll.DRAINING
    state = roll.apply(state, "hv2", "released", reason=turn["why"])
    assert state["phase"]["hv2"] == roll.SKIPPED


def test_a_resumed_host_holds_its_slot_and_needs_no_turn_to_drain():
    hosts = [dict(name="hv1", cluster="c", capacity_mib=8192),
             dict(name="hv2", cluster="c", capacity_mib=8192, phase=roll.UPGRADING)]
    state = roll.new(hosts, [dict(name="g", host="hv1", memory_mib=512)])
    assert roll.decide(state, "hv2", "enter")["granted"] and roll.decide(state, "hv2", "drain")["granted"]
    assert "in maintenance (hv2)" in roll.decide(state, "hv1", "enter")["why"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(parallel_hosts=0), "invalid rolling_upgrade_parallel_hosts 0: expected a whole number of 1 or more"),
    (dict(parallel_hosts="two"), "invalid rolling_upgrade_parallel_hosts 'two': expected a whole number"),
    (dict(return_mode="away"), "invalid rolling_upgrade_return 'away': expected home or stay"),
])
def test_bad_options_are_one_sentence(kwargs, message):
    with pytest.raises(DecisionError) as found:
        fleet(**kwargs)
    assert found.value.message == message


def test_a_guest_on_a_host_outside_the_roll_is_refused():
    with pytest.raises(DecisionError, match="guest x runs on 'hv9', which is not a host of the roll"):
        roll.new([dict(name="hv1", capacity_mib=1)], [dict(name="x", host="hv9", memory_mib=1)])
