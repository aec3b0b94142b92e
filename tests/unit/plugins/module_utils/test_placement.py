# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement: evacuation and restore plans, their waves, and the properties every plan keeps."""

from __future__ import annotations

import collections
import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation, placement, preflight
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    GIB,
    MIB,
    POLICIES,
    DecisionError,
    Disk,
    Guest,
    HostFacts,
    Limits,
    MigrationRecord,
    Nic,
)

SHARED = "/var/lib/libvirt/shared"


def host(name, free=8192, **changes):
    facts = HostFacts(name=name, uuid="uuid-%s" % name, hostname=name, memory_free_mib=free, bridges=["br0"],
                      volume_paths=["%s/%s.qcow2" % (SHARED, n) for n in ("a", "b", "c", "d", "e", "f", "g", "h")])
    return dataclasses.replace(facts, **changes)


def guest(name, memory=1024, disk="a", **changes):
    base = Guest(name=name, uuid="uuid-%s" % name, state="running", memory_mib=memory, max_memory_mib=memory,
                 disks=[Disk(target="vda", path="%s/%s.qcow2" % (SHARED, disk))],
                 interfaces=[Nic(type="bridge", source="br0")])
    return dataclasses.replace(base, **changes)


HV1 = host("hv1")
NO_RESERVE = Limits(reserve_mib=0)


def placed(plan):
    return dict((m.guest, m.destination) for m in plan.moves if m.action in ("migrate", "move_definition"))


def load(plan, action="migrate"):
    used = collections.Counter()
    for move in plan.moves:
        if move.action == action:
            used[move.destination] += move.memory_mib
    return used


# --- evacuation: capacity and reserve -----------------------------------------------------------------------

def test_everything_fits_and_moves():
    guests = [guest("g%d" % i) for i in range(4)]
    plan = placement.plan(guests, HV1, [host("hv2"), host("hv3")], NO_RESERVE, run_id="r1")
    assert plan.complete and plan.proceed
    assert sorted(placed(plan)) == ["g0", "g1", "g2", "g3"]
    assert plan.run_id == "r1" and plan.source == "hv1"
    assert all(m.expected_bytes == 1024 * MIB for m in plan.moves)


def test_worst_fit_spreads_equal_guests_evenly():
    guests = [guest("g%d" % i) for i in range(4)]
    plan = placement.plan(guests, HV1, [host("hv2"), host("hv3")], NO_RESERVE)
    assert load(plan) == {"hv2": 2048, "hv3": 2048}


def test_biggest_guest_goes_to_the_roomiest_host():
    plan = placement.plan([guest("small", 512), guest("big", 4096)], HV1, [host("hv2", 6000), host("hv3", 9000)],
                          NO_RESERVE)
    assert placed(plan) == {"big": "hv3", "small": "hv2"}


def test_best_fit_takes_over_when_worst_fit_strands_a_guest():
    # worst fit: 3->hv2 (1 left), 2->hv3 (1 left), 2 stranded; best fit places all three
    guests = [guest("a", 3072), guest("b", 2048), guest("c", 2048, disk="b")]
    plan = placement.plan(guests, HV1, [host("hv2", 4096), host("hv3", 3072)], NO_RESERVE)
    assert plan.complete
    assert load(plan) == {"hv2": 4096, "hv3": 3072}


def test_no_room_left_blocks_with_capacity_and_memory_reasons():
    guests = [guest("a", 3000), guest("b", 3000), guest("c", 3000)]
    plan = placement.plan(guests, HV1, [host("hv2", 4000), host("hv3", 2500)], Limits(reserve_mib=500))
    assert not plan.complete and not plan.proceed
    assert len(plan.moves) == 1 and plan.moves[0].destination == "hv2"
    assert [b.guest for b in plan.blocked] == ["b", "c"]
    for entry in plan.blocked:
        assert sorted(p.code for p in entry.reasons) == ["capacity", "memory"]
        capacity = [p for p in entry.reasons if p.code == "capacity"][0]
        assert capacity.destination == "hv2"
        assert capacity.message == ("cannot live-migrate %s to hv2: destination has 500 MiB free after the 500 MiB "
                                    "reserve once 3000 MiB of guests planned before it are placed, guest needs "
                                    "3000 MiB" % entry.guest)


@pytest.mark.parametrize("reserve, fits", [(0, True), (1024, True), (1025, False)])
def test_reserve_is_kept_free(reserve, fits):
    plan = placement.plan([guest("a", 2048)], HV1, [host("hv2", 3072)], Limits(reserve_mib=reserve))
    assert plan.complete is fits


def test_default_reserve_is_one_gib():
    assert Limits().reserve_mib == 1024
    plan = placement.plan([guest("a", 7169)], HV1, [host("hv2", 8192)])
    assert [p.code for p in plan.blocked[0].reasons] == ["memory"]


def test_max_memory_counts_not_the_balloon():
    plan = placement.plan([guest("a", 1024, max_memory_mib=4096)], HV1, [host("hv2", 3000)], NO_RESERVE)
    assert [p.code for p in plan.blocked[0].reasons] == ["memory"]


def test_hugepage_guests_use_hugepages():
    guests = [guest("h1", 2048, hugepages=True), guest("h2", 2048, hugepages=True, disk="b")]
    plan = placement.plan(guests, HV1, [host("hv2", 0, hugepages_free_mib={2048: 3072})], NO_RESERVE)
    assert len(plan.moves) == 1
    assert plan.blocked[0].reasons[0].code == "capacity"
    assert "of free hugepages" in plan.blocked[0].reasons[0].message


# --- evacuation: destinations that must not receive ---------------------------------------------------------

@pytest.mark.parametrize("bad, code", [
    (host("hv2", maintenance=True), "maintenance"),
    (host("hv2", reachable=False), "unreachable"),
    (host("hv2", bridges=[]), "bridge_missing"),
    (host("hv2", hostname_resolves=False), "hostname_unresolvable"),
    (host("hv1"), "same_host"),
])
def test_a_host_that_fails_preflight_never_receives(bad, code):
    plan = placement.plan([guest("a")], HV1, [bad, host("hv3", 2048)], NO_RESERVE)
    assert placed(plan) == {"a": "hv3"}
    plan = placement.plan([guest("a")], HV1, [bad], NO_RESERVE)
    assert [p.code for p in plan.blocked[0].reasons] == [code]


def test_all_blocked_plan_lists_every_guest_and_every_destination():
    guests = [guest("a"), guest("b", disk="b"), guest("c", state="shutoff", disk="c")]
    plan = placement.plan(guests, HV1, [host("hv2", maintenance=True), host("hv3", bridges=[])])
    assert plan.moves == [] and not plan.complete and not plan.proceed
    assert [b.guest for b in plan.blocked] == ["a", "b", "c"]
    for entry in plan.blocked:
        assert sorted(set(p.destination for p in entry.reasons)) == ["hv2", "hv3"]


def test_no_destination_at_all_is_a_reason():
    plan = placement.plan([guest("a")], HV1, [])
    assert [p.code for p in plan.blocked[0].reasons] == ["no_destination"]


def test_partial_plan_proceeds_only_when_asked():
    guests = [guest("a"), guest("b", 999999, disk="b")]
    strict = placement.plan(guests, HV1, [host("hv2")])
    partial = placement.plan(guests, HV1, [host("hv2")], Limits(allow_partial=True))
    for plan in (strict, partial):
        assert [m.guest for m in plan.moves] == ["a"]
        assert [b.guest for b in plan.blocked] == ["b"]
        assert not plan.complete
    assert not strict.proceed
    assert partial.proceed


# --- evacuation: policies and guest states ------------------------------------------------------------------

PASSTHROUGH = ["host device passthrough (PCI 0000:01:00.0) pins the guest to its host"]


@pytest.mark.parametrize("policy", POLICIES)
def test_a_migratable_guest_migrates_whatever_its_policy(policy):
    plan = placement.plan([guest("a", policy=policy)], HV1, [host("hv2")])
    assert [(m.guest, m.action) for m in plan.moves] == [("a", "migrate")]


@pytest.mark.parametrize("policy, where, proceed_partial", [
    ("migrate", "blocked", True),
    ("fail", "blocked", False),
    ("shutdown", "moves", True),
    ("skip", "skipped", True),
])
def test_policy_decides_for_a_guest_that_cannot_migrate(policy, where, proceed_partial):
    guests = [guest("gpu", non_migratable_reasons=PASSTHROUGH, policy=policy), guest("web", disk="b")]
    plan = placement.plan(guests, HV1, [host("hv2")], Limits(allow_partial=True))
    assert placed(plan) == {"web": "hv2"}
    entries = getattr(plan, where)
    gpu = [e for e in entries if e.guest == "gpu"]
    assert len(gpu) == 1
    reasons = gpu[0].problems if where == "skipped" else gpu[0].reasons
    assert [p.code for p in reasons] == ["host_device"]
    assert plan.proceed is proceed_partial
    if where == "moves":
        assert gpu[0].action == "shutdown" and gpu[0].destination is None
        assert gpu[0].wave == max(m.wave for m in plan.moves)  # shutdowns go last
        assert plan.waves[-1] == ["gpu"]


def test_policy_applies_when_the_room_runs_out_too():
    guests = [guest("big", 6000), guest("late", 4000, policy="shutdown", disk="b")]
    plan = placement.plan(guests, HV1, [host("hv2", 8000)], NO_RESERVE)
    assert [(m.guest, m.action) for m in plan.moves] == [("big", "migrate"), ("late", "shutdown")]
    assert plan.moves[1].reasons[0].code == "capacity"
    assert plan.complete


def test_paused_guest_migrates_and_needs_its_memory():
    plan = placement.plan([guest("p", 4096, state="paused")], HV1, [host("hv2", 5000)], NO_RESERVE)
    assert plan.moves[0].action == "migrate" and plan.moves[0].state == "paused"
    assert plan.moves[0].memory_mib == 4096
    plan = placement.plan([guest("p", 4096, state="paused")], HV1, [host("hv2", 4000)], NO_RESERVE)
    assert plan.blocked[0].reasons[0].code == "memory"


def test_shut_off_guest_moves_its_definition_without_memory():
    plan = placement.plan([guest("off", 64000, state="shutoff")], HV1, [host("hv2", 0)], NO_RESERVE)
    move = plan.moves[0]
    assert (move.action, move.destination, move.memory_mib, move.expected_bytes) == ("move_definition", "hv2", 0, 0)


def test_shut_off_guest_still_lands_only_where_it_could_run():
    plan = placement.plan([guest("off", state="shutoff")], HV1, [host("hv2", bridges=[]), host("hv3", 0)])
    assert placed(plan) == {"off": "hv3"}


@pytest.mark.parametrize("policy, where", [("migrate", "blocked"), ("fail", "blocked"), ("shutdown", "skipped"),
                                           ("skip", "skipped")])
def test_shut_off_guest_that_cannot_move(policy, where):
    plan = placement.plan([guest("off", state="shutoff", policy=policy)], HV1, [host("hv2", bridges=[])])
    assert [e.guest for e in getattr(plan, where)] == ["off"]
    if where == "skipped":
        assert plan.skipped[0].code == "stays_off"


def test_transient_shut_off_guest_is_skipped_as_not_defined():
    plan = placement.plan([guest("t", state="shutoff", persistent=False)], HV1, [host("hv2")])
    assert [(s.guest, s.code) for s in plan.skipped] == [("t", "not_defined")]
    assert plan.complete


def test_transient_running_guest_migrates():
    plan = placement.plan([guest("t", persistent=False)], HV1, [host("hv2")])
    assert [(m.guest, m.action) for m in plan.moves] == [("t", "migrate")]


def test_crashed_guest_is_blocked_with_state():
    plan = placement.plan([guest("c", state="crashed")], HV1, [host("hv2")])
    assert [p.code for p in plan.blocked[0].reasons] == ["state"]


# --- evacuation: anti-affinity ------------------------------------------------------------------------------

def test_anti_affinity_group_never_shares_a_destination():
    guests = [guest("db%d" % i, anti_affinity="db", disk="abc"[i]) for i in range(3)]
    plan = placement.plan(guests, HV1, [host("hv2", 64000), host("hv3", 64000)], NO_RESERVE)
    assert sorted(placed(plan).values()) == ["hv2", "hv3"]
    assert len(plan.blocked) == 1
    assert sorted(p.code for p in plan.blocked[0].reasons) == ["anti_affinity", "anti_affinity"]
    assert "anti-affinity group db: guest db" in plan.blocked[0].reasons[0].message


def test_anti_affinity_counts_guests_already_on_the_destination():
    plan = placement.plan([guest("db1", anti_affinity="db")], HV1,
                          [host("hv2", 64000, resident_groups=["db"]), host("hv3", 1500)], NO_RESERVE)
    assert placed(plan) == {"db1": "hv3"}
    plan = placement.plan([guest("db1", anti_affinity="db")], HV1, [host("hv2", resident_groups=["db"])])
    assert "a guest of that group already runs there" in plan.blocked[0].reasons[0].message


def test_guests_without_a_group_share_freely():
    plan = placement.plan([guest("a", anti_affinity=None), guest("b", anti_affinity="", disk="b")], HV1,
                          [host("hv2", 64000, resident_groups=[""])], NO_RESERVE)
    assert plan.complete


# --- evacuation: storage copy, bytes ------------------------------------------------------------------------

def test_storage_copy_move_names_the_disks_and_counts_their_bytes():
    local = Disk(target="vda", path="/var/lib/libvirt/images/a.qcow2")
    destination = host("hv2", pools=[{"name": "default", "path": "/var/lib/libvirt/images", "active": True}])
    the_guest = guest("a", 1024, disks=[local, Disk(target="vdb", path=SHARED + "/a.qcow2")])
    # the survey sizes every local disk it may copy; only the disks the move copies count
    sizes = {"a": {local.path: 10 * GIB, SHARED + "/a.qcow2": 99 * GIB}}
    plan = placement.plan([the_guest], HV1, [destination], Limits(allow_storage_copy=["a"], reserve_mib=0),
                          disk_bytes=sizes)
    move = plan.moves[0]
    assert move.storage_copy and move.copy_disks == ["vda"]
    assert (move.disk_bytes, move.expected_bytes) == (10 * GIB, 1024 * MIB + 10 * GIB)
    assert plan.as_dict()["moves"][0]["disk_bytes"] == 10 * GIB
    # a guest the survey could not size counts its memory only; a shut-off one copies nothing
    unsized = placement.plan([the_guest], HV1, [destination], Limits(allow_storage_copy=True, reserve_mib=0))
    assert (unsized.moves[0].disk_bytes, unsized.moves[0].expected_bytes) == (0, 1024 * MIB)
    off = placement.plan([dataclasses.replace(the_guest, state="shutoff")], HV1, [destination],
                         Limits(allow_storage_copy=True, reserve_mib=0), disk_bytes=sizes)
    assert (off.moves[0].action, off.moves[0].disk_bytes, off.moves[0].expected_bytes) == ("move_definition", 0, 0)
    blocked = placement.plan([the_guest], HV1, [destination], NO_RESERVE)
    assert [p.code for p in blocked.blocked[0].reasons] == ["disk_not_shared"]


# --- evacuation: host generations (rolling upgrades) --------------------------------------------------------

def codes(move):
    return [p.code for p in move.reasons]


def placed_moves(plan):
    return [m for m in plan.moves if m.action in ("migrate", "move_definition")]


def older_than(host, source_generation):
    return (source_generation is not None and host.generation is not None
            and generation.compare(host.generation, source_generation) < 0)


def assert_room_kept(plan, guests, by_host, limits):
    """Every destination keeps its reserve free of the general memory (hugepage guests use their own pool)."""
    general = collections.Counter()
    for move in placed_moves(plan):
        if move.action == "migrate" and not [g for g in guests if g.name == move.guest][0].hugepages:
            general[move.destination] += move.memory_mib
    for name, used in general.items():
        assert used <= by_host[name].memory_free_mib - limits.reserve_mib


def test_newest_generation_wins_over_more_room():
    # without generations worst fit would send the first guests to the roomier hv2
    guests = [guest("a", 4096), guest("b", 4096, disk="b"), guest("c", 4096, disk="c")]
    destinations = [host("hv2", 64000, generation="7"), host("hv3", 16000, generation="8")]
    plan = placement.plan(guests, host("hv1", generation="7"), destinations, NO_RESERVE)
    assert placed(plan) == {"a": "hv3", "b": "hv3", "c": "hv3"}
    assert all(m.reasons == [] for m in plan.moves)
    untiered = [dataclasses.replace(h, generation=None) for h in destinations]
    assert placed(placement.plan(guests, HV1, untiered, NO_RESERVE))["a"] == "hv2"


def test_never_older_than_the_source_while_newer_or_equal_has_room():
    # hv2 (older than the source) is the roomiest; hv3 (newest) fills first, then hv4 (same as the source)
    guests = [guest("g%d" % i, 2048, disk="abcdef"[i]) for i in range(6)]
    destinations = [host("hv2", 64000, generation="2026.9"), host("hv3", 4096, generation="2026.11"),
                    host("hv4", 6144, generation="2026.10")]
    plan = placement.plan(guests, host("hv1", generation="2026.10"), destinations, NO_RESERVE)
    assert plan.complete
    assert load(plan) == {"hv3": 4096, "hv4": 6144, "hv2": 2048}
    older = [m for m in plan.moves if m.destination == "hv2"]
    assert [codes(m)[0] for m in older] == ["older_generation"]
    assert all(m.reasons == [] for m in plan.moves if m.destination != "hv2")


def test_newer_but_not_newest_generations_share_one_tier():
    # hv3 (newest) full after one guest; hv4 and hv5 (both at least the source's) share by worst fit; hv2 older
    guests = [guest("g%d" % i, 4096, disk="abcd"[i]) for i in range(4)]
    destinations = [host("hv2", 64000, generation="6"), host("hv3", 4096, generation="9"),
                    host("hv4", 20000, generation="8"), host("hv5", 16000, generation="7")]
    plan = placement.plan(guests, host("hv1", generation="7"), destinations, NO_RESERVE)
    assert load(plan) == {"hv3": 4096, "hv4": 8192, "hv5": 4096}


def test_older_host_only_when_nothing_else_has_room_and_the_move_says_why():
    guests = [guest("big", 4096), guest("small", 2048, disk="b")]
    plan = placement.plan(guests, host("hv1", generation="8"),
                          [host("hv2", 64000, generation="7"), host("hv3", 4096, generation="8")], NO_RESERVE)
    assert placed(plan) == {"big": "hv3", "small": "hv2"}
    small = plan.move_for("small")
    assert codes(small) == ["older_generation", "capacity"]
    assert small.reasons[0].destination == "hv2"
    assert small.reasons[0].message == ("small goes to hv2 (generation 7), older than its source hv1 (generation 8): "
                                        "no destination of generation 8 or newer can take it")
    assert small.reasons[1].destination == "hv3"
    assert plan.move_for("big").reasons == []
    assert plan.complete and plan.proceed
    assert plan.as_dict()["moves"][1]["reasons"][0]["code"] == "older_generation"


def test_derived_generations_order_hosts_numerically():
    old = generation.derive(9000000, 7002000, "6.1.0-9-amd64", "12.9")
    new = generation.derive(9000000, 7002000, "6.1.0-37-amd64", "12.11")
    plan = placement.plan([guest("a")], host("hv1", generation=old),
                          [host("hv2", 64000, generation=old), host("hv3", 2048, generation=new)], NO_RESERVE)
    assert placed(plan) == {"a": "hv3"}


def test_unknown_generation_comes_after_known_newer_and_before_older():
    guests = [guest("g%d" % i, 2048, disk="abcdef"[i]) for i in range(5)]
    destinations = [host("hv2", 64000, generation="6"), host("hv3", 32000), host("hv4", 4096, generation="7")]
    plan = placement.plan(guests, host("hv1", generation="7"), destinations, NO_RESERVE)
    assert load(plan) == {"hv4": 4096, "hv3": 6144}
    assert all(m.reasons == [] for m in plan.moves)


def test_without_generations_on_destinations_nothing_changes():
    guests = [guest("g%d" % i, 1024 * (i + 1), disk="abcdef"[i]) for i in range(6)]
    destinations = [host("hv2", 9000), host("hv3", 7000), host("hv4", 5000)]
    before = placed(placement.plan(guests, HV1, destinations, NO_RESERVE))
    assert placed(placement.plan(guests, host("hv1", generation="8"), destinations, NO_RESERVE)) == before


def test_unknown_source_generation_still_prefers_the_newest():
    plan = placement.plan([guest("a"), guest("b", disk="b")], HV1,
                          [host("hv2", 64000, generation="7"), host("hv3", 4096, generation="8")], NO_RESERVE)
    assert placed(plan) == {"a": "hv3", "b": "hv3"}


def test_newest_counts_only_destinations_the_guest_may_go_to():
    # hv2 is the newest but under maintenance: hv3 is the newest the guest may go to, and wins over the roomier hv4
    destinations = [host("hv2", 64000, generation="9", maintenance=True), host("hv3", 4096, generation="8"),
                    host("hv4", 64000, generation="7")]
    plan = placement.plan([guest("a")], host("hv1", generation="6"), destinations, NO_RESERVE)
    assert placed(plan) == {"a": "hv3"}


def test_generations_keep_anti_affinity():
    guests = [guest("db1", anti_affinity="db"), guest("db2", anti_affinity="db", disk="b")]
    plan = placement.plan(guests, host("hv1", generation="7"),
                          [host("hv2", 64000, generation="6"), host("hv3", 64000, generation="8")], NO_RESERVE)
    assert placed(plan) == {"db1": "hv3", "db2": "hv2"}
    assert codes(plan.move_for("db2")) == ["older_generation", "anti_affinity"]


def test_a_complete_plan_beats_the_generation_preference():
    # the tiers put the 3072 MiB guest on hv3 (newer) and leave a 2048 one out; best fit without them places all
    guests = [guest("a", 3072), guest("b", 2048, disk="b"), guest("c", 2048, disk="c")]
    plan = placement.plan(guests, host("hv1", generation="7"),
                          [host("hv2", 3072, generation="6"), host("hv3", 4096, generation="8")], NO_RESERVE)
    assert plan.complete
    assert placed(plan) == {"a": "hv2", "b": "hv3", "c": "hv3"}
    assert codes(plan.move_for("a")) == ["older_generation"]
    assert "a destination of generation 7 or newer had room for it" in plan.move_for("a").reasons[0].message


def test_replace_prefers_the_newest_remaining_destination():
    destinations = [host("hv3", 64000, generation="7"), host("hv4", 8192, generation="8")]
    again = placement.replace([guest("a")], host("hv1", generation="7"), destinations, NO_RESERVE)
    assert placed(again) == {"a": "hv4"}
    again = placement.replace([guest("a")], host("hv1", generation="7"), destinations, NO_RESERVE,
                              committed_mib={"hv4": 8000})
    assert placed(again) == {"a": "hv3"}


# --- evacuation: destinations to avoid (the hosts a rolling upgrade empties next) -----------------------------

def test_an_avoided_destination_gets_nothing_while_another_has_room():
    # worst fit alone would send both guests to the roomier hv2
    plan = placement.plan([guest("a"), guest("b", disk="b")], HV1, [host("hv2", 64000), host("hv3", 4096)],
                          NO_RESERVE, avoid=["hv2"])
    assert placed(plan) == {"a": "hv3", "b": "hv3"}
    assert all(m.reasons == [] for m in plan.moves)


def test_an_avoided_destination_takes_a_guest_no_other_can_and_the_move_says_why():
    plan = placement.plan([guest("big", 4096), guest("small", 2048, disk="b")], HV1,
                          [host("hv2", 64000), host("hv3", 4096)], NO_RESERVE, avoid=["hv2"])
    assert placed(plan) == {"big": "hv3", "small": "hv2"}
    small = plan.move_for("small")
    assert codes(small) == ["avoided", "capacity"]
    assert (small.reasons[0].destination, small.reasons[0].message) == (
        "hv2", "small goes to hv2, a host to be emptied next (avoid): no other destination can take it")
    assert small.reasons[1].destination == "hv3"  # why not there: big took the room
    assert plan.move_for("big").reasons == []
    assert plan.complete and plan.proceed  # a note, never a block
    assert plan.as_dict()["moves"][1]["reasons"][0]["code"] == "avoided"


def test_an_avoided_destination_comes_after_every_generation_tier_the_older_ones_too():
    # hv4 is the newest and roomiest but avoided; hv3 (unknown) and then hv2 (older than the source) come first
    destinations = [host("hv2", 4096, generation="7"), host("hv3", 2048), host("hv4", 64000, generation="9")]
    guests = [guest("g%d" % i, 2048, disk="abcd"[i]) for i in range(4)]
    plan = placement.plan(guests, host("hv1", generation="8"), destinations, NO_RESERVE, avoid=["hv4"])
    assert load(plan) == {"hv3": 2048, "hv2": 4096, "hv4": 2048}
    older = [m for m in plan.moves if m.destination == "hv2"]
    assert [codes(m)[0] for m in older] == ["older_generation", "older_generation"]
    assert older[0].reasons[0].message.endswith(": the destinations of generation 8 or newer that have room for it "
                                                "are to be emptied next (avoid)")
    last = [m for m in plan.moves if m.destination == "hv4"][0]
    assert codes(last)[0] == "avoided" and "no other destination can take it" in last.reasons[0].message


def test_a_complete_plan_beats_the_avoidance_and_the_move_says_so():
    # kept off hv2, the 3072 MiB guest takes hv3 and a 2048 one is left out; best fit without avoiding places all
    guests = [guest("a", 3072), guest("b", 2048, disk="b"), guest("c", 2048, disk="c")]
    plan = placement.plan(guests, HV1, [host("hv2", 3072), host("hv3", 4096)], NO_RESERVE, avoid=["hv2"])
    assert plan.complete
    assert placed(plan) == {"a": "hv2", "b": "hv3", "c": "hv3"}
    assert codes(plan.move_for("a")) == ["avoided"]
    assert plan.move_for("a").reasons[0].message == (
        "a goes to hv2, a host to be emptied next (avoid): another destination had room for it, but keeping guests "
        "off the hosts to be emptied next would leave more guests without a destination")


def test_names_in_avoid_that_are_no_destination_are_ignored_and_an_empty_avoid_changes_nothing():
    guests = [guest("g%d" % i, 1024 * (i + 1), disk="abcdef"[i]) for i in range(6)]
    destinations = [host("hv2", 9000), host("hv3", 7000), host("hv4", 5000)]
    before = placement.plan(guests, HV1, destinations, NO_RESERVE).as_dict()
    assert placement.plan(guests, HV1, destinations, NO_RESERVE, avoid=["hv9", "hv1"]).as_dict() == before
    assert placement.plan(guests, HV1, destinations, NO_RESERVE, avoid=[]).as_dict() == before


def test_an_avoided_destination_that_cannot_take_a_guest_is_no_reason_to_block_the_others():
    plan = placement.plan([guest("a", 4096)], HV1, [host("hv2", 1024), host("hv3", 2048)], NO_RESERVE, avoid=["hv2"])
    assert placed(plan) == {} and [b.guest for b in plan.blocked] == ["a"]
    assert sorted(r.code for r in plan.blocked[0].reasons) == ["memory", "memory"]  # no avoided note on a block


def test_replace_avoids_too():
    again = placement.replace([guest("a")], HV1, [host("hv3", 64000), host("hv4", 8192)], NO_RESERVE, avoid=["hv3"])
    assert placed(again) == {"a": "hv4"}
    again = placement.replace([guest("a")], HV1, [host("hv3", 64000), host("hv4", 8192)], NO_RESERVE,
                              committed_mib={"hv4": 8000}, avoid=["hv3"])
    assert placed(again) == {"a": "hv3"} and codes(again.move_for("a")) == ["avoided", "memory"]


# --- waves --------------------------------------------------------------------------------------------------

def wave_counts(plan):
    waves = collections.defaultdict(lambda: (collections.Counter(), collections.Counter()))
    for move in plan.moves:
        if move.action in ("migrate", "move_definition"):
            outbound, inbound = waves[move.wave]
            outbound[move.source] += 1
            inbound[move.destination] += 1
    return waves


@pytest.mark.parametrize("count, inbound, outbound, destinations, waves", [
    (6, 2, 2, 3, 3),
    (6, 1, 4, 2, 3),
    (6, 3, 6, 2, 1),
    (5, 1, 1, 3, 5),
    (1, 2, 2, 2, 1),
])
def test_waves_respect_inbound_and_outbound_limits(count, inbound, outbound, destinations, waves):
    guests = [guest("g%d" % i, 1024 * (i + 1), disk="abcdefgh"[i]) for i in range(count)]
    hosts = [host("hv%d" % (i + 2), 64000) for i in range(destinations)]
    plan = placement.plan(guests, HV1, hosts, Limits(reserve_mib=0, max_inbound=inbound, max_outbound=outbound))
    assert plan.complete
    assert len(plan.waves) == waves
    for outbound_used, inbound_used in wave_counts(plan).values():
        assert max(outbound_used.values()) <= outbound
        assert max(inbound_used.values()) <= inbound
    assert [m.order for m in plan.moves] == list(range(1, count + 1))


def test_largest_guests_go_first_and_spread_over_destinations():
    guests = [guest("g%d" % i, 1024 * (i + 1), disk="abcdefgh"[i]) for i in range(4)]
    plan = placement.plan(guests, HV1, [host("hv2", 64000), host("hv3", 64000)], NO_RESERVE)
    assert plan.waves == [["g3", "g2"], ["g1", "g0"]]
    first = [m for m in plan.moves if m.wave == 1]
    assert sorted(m.destination for m in first) == ["hv2", "hv3"]


def test_plan_is_json_ready():
    guests = [guest("a"), guest("gpu", non_migratable_reasons=PASSTHROUGH, policy="shutdown")]
    data = placement.plan(guests, HV1, [host("hv2")]).as_dict()
    text = json.dumps(data)
    assert json.loads(text)["waves"] == [["a"], ["gpu"]]
    assert set(data) == {"kind", "source", "home", "run_id", "allow_partial", "complete", "proceed", "moves",
                         "waves", "blocked", "skipped", "not_home"}


@pytest.mark.parametrize("guests, hosts, limits, message", [
    ([guest("a"), guest("a")], [host("hv2")], None, "duplicate guest a"),
    ([guest("")], [host("hv2")], None, "a guest has no name"),
    ([guest("a")], [host("hv2"), host("hv2")], None, "duplicate host hv2"),
    ([guest("a")], [host("hv2")], Limits(max_outbound=0), "max_outbound"),
])
def test_bad_input_raises_decision_error(guests, hosts, limits, message):
    with pytest.raises(DecisionError, match=message):
        placement.plan(guests, HV1, hosts, limits)


UNKNOWN = 'cannot evacuate a: its policy "pray" (settings metadata) is not one of migrate, shutdown, skip, fail'


@pytest.mark.parametrize("state", ["running", "shutoff"])
def test_an_unknown_policy_blocks_its_guest_even_one_that_could_move(state):
    # no longer bad input (it was a DecisionError "invalid policy 'pray' for guest a"): data, like any block
    guests = [guest("a", policy="pray", state=state), guest("b", disk="b")]
    plan = placement.plan(guests, HV1, [host("hv2")])
    assert placed(plan) == {"b": "hv2"} and plan.skipped == []
    assert [(b.guest, b.policy, [(r.code, r.message) for r in b.reasons]) for b in plan.blocked] == [
        ("a", "pray", [("unknown_policy", UNKNOWN)])]
    assert not plan.complete and not plan.proceed  # nothing moves
    plan = placement.plan(guests, HV1, [host("hv2")], Limits(allow_partial=True))
    assert placed(plan) == {"b": "hv2"} and [b.guest for b in plan.blocked] == ["a"]
    assert plan.proceed  # the rest moves, as with any blocked guest under allow_partial


def test_an_unknown_policy_blocks_its_guest_when_it_is_placed_again_too():
    again = placement.replace([guest("a", policy="pray")], HV1, [host("hv3")])
    assert again.moves == [] and [r.code for r in again.blocked[0].reasons] == ["unknown_policy"]


# --- restore ------------------------------------------------------------------------------------------------

HOME = host("hv1", 8192, uuid="uuid-hv1", hostname="hv1.lab", maintenance=True)


def away(name, memory=1024, origin="hv1", **changes):
    return guest(name, memory, record=MigrationRecord(origin_host=origin, origin_host_uuid="uuid-%s" % origin,
                                                      run_id="r1"), **changes)


def test_restore_brings_every_recorded_guest_home_and_skips_the_rest():
    guests = {
        "hv1": [away("home-already")],
        "hv2": [away("a"), guest("native"), away("other", origin="hv3")],
        "hv3": [away("b", disk="b"), away("off", state="shutoff", disk="c")],
    }
    plan = placement.restore_plan(guests, HOME, {"hv2": host("hv2"), "hv3": host("hv3")}, NO_RESERVE, run_id="r2")
    assert plan.kind == "restore" and plan.home == "hv1" and plan.proceed
    assert sorted((m.guest, m.source, m.destination, m.action) for m in plan.moves) == [
        ("a", "hv2", "hv1", "migrate"), ("b", "hv3", "hv1", "migrate"), ("off", "hv3", "hv1", "move_definition")]
    assert [(s.guest, s.code) for s in plan.skipped] == [("home-already", "already_home")]
    assert plan.not_home == [] and plan.complete


def test_a_guest_with_an_unknown_policy_still_comes_home():
    guests = {"hv1": [], "hv2": [away("a", policy="pray")]}
    plan = placement.restore_plan(guests, HOME, {"hv2": host("hv2")}, NO_RESERVE)
    assert [(m.guest, m.action) for m in plan.moves] == [("a", "migrate")] and plan.not_home == []


@pytest.mark.parametrize("record", [
    MigrationRecord(origin_host="somename", origin_host_uuid="uuid-hv1"),
    MigrationRecord(origin_host="hv1"),
    MigrationRecord(origin_host="hv1.lab"),
])
def test_restore_matches_records_by_uuid_or_name(record):
    plan = placement.restore_plan({"hv2": [guest("a", record=record)]}, HOME, {"hv2": host("hv2")})
    assert [m.guest for m in plan.moves] == ["a"]


def test_restore_plans_home_capacity_and_reports_not_home():
    guests = {"hv2": [away("big", 6000), away("s1", 2000, disk="b"), away("s2", 2000, disk="c")]}
    plan = placement.restore_plan(guests, host("hv1", 5000), {"hv2": host("hv2")}, NO_RESERVE)
    # smallest first brings the most guests home
    assert sorted(m.guest for m in plan.moves) == ["s1", "s2"]
    assert [b.guest for b in plan.not_home] == ["big"]
    assert plan.not_home[0].reasons[0].code == "capacity"
    assert plan.not_home[0].reasons[0].message.startswith("cannot bring big home to hv1: ")
    assert plan.proceed and not plan.complete


def test_restore_reports_a_guest_home_never_had_room_for_as_memory():
    plan = placement.restore_plan({"hv2": [away("big", 6000)]}, host("hv1", 5000), {"hv2": host("hv2")})
    assert [p.code for p in plan.not_home[0].reasons] == ["memory"]


def test_restore_starts_guests_shut_down_by_policy_first():
    guests = {"hv1": [away("stopped", 3000, state="shutoff")], "hv2": [away("a", 1000), away("b", 3000, disk="b")]}
    plan = placement.restore_plan(guests, host("hv1", 4500), {"hv2": host("hv2")}, NO_RESERVE)
    assert [(m.guest, m.action, m.wave) for m in plan.moves if m.action == "start"] == [("stopped", "start", 1)]
    assert [m.guest for m in plan.moves if m.action == "migrate"] == ["a"]
    assert [b.guest for b in plan.not_home] == ["b"]
    plan = placement.restore_plan({"hv1": [away("stopped", 3000, state="shutoff")]}, host("hv1", 2000), {})
    assert plan.not_home[0].reasons[0].message == ("cannot start stopped on hv1: destination has 976 MiB free after "
                                                   "the 1024 MiB reserve, guest needs 3000 MiB")


def test_restore_never_starts_a_shut_off_guest_whose_definition_came_home_in_an_earlier_pass():
    # pass 2 of one restore: "off" came home shut off in pass 1 (its record is cleared at the run's end); it is
    # home, not a guest to start, and takes none of home's room from "a"
    guests = {"hv1": [away("off", 3000, state="shutoff")], "hv2": [away("a", 3000)]}
    plan = placement.restore_plan(guests, host("hv1", 3500), {"hv2": host("hv2")}, NO_RESERVE, came_home=["off"])
    assert [(m.guest, m.action) for m in plan.moves] == [("a", "migrate")] and plan.not_home == []
    assert [(s.guest, s.code) for s in plan.skipped] == [("off", "already_home")]
    # without it, the same guest is one that evacuation shut down by policy: it starts first
    plan = placement.restore_plan(guests, host("hv1", 3500), {"hv2": host("hv2")}, NO_RESERVE)
    assert [(m.guest, m.action) for m in plan.moves] == [("off", "start")] and [b.guest for b in plan.not_home] == ["a"]


def test_restore_ignores_home_maintenance_but_not_other_preflight_problems():
    plan = placement.restore_plan({"hv2": [away("a")]}, host("hv1", bridges=[], maintenance=True),
                                  {"hv2": host("hv2")})
    assert [p.code for p in plan.not_home[0].reasons] == ["bridge_missing"]


def test_restore_leaves_guests_on_an_unreachable_host_where_they_are():
    plan = placement.restore_plan({"hv2": [away("a")]}, HOME, {"hv2": host("hv2", reachable=False)})
    assert [p.code for p in plan.not_home[0].reasons] == ["unreachable"]
    assert "its current host hv2 is unreachable" in plan.not_home[0].reasons[0].message


def test_restore_prefers_the_running_copy_of_a_guest_defined_twice():
    guests = {"hv1": [away("a", state="shutoff")], "hv2": [away("a")]}
    plan = placement.restore_plan(guests, HOME, {"hv2": host("hv2")})
    assert [(m.guest, m.source, m.action) for m in plan.moves] == [("a", "hv2", "migrate")]


def test_restore_brings_a_guest_with_local_disks_home_by_a_storage_copy_that_counts_their_bytes():
    # its disk sits in hv2's own pool, the copy an evacuation made; home has a pool for that directory
    pools = [{"name": "default", "path": "/var/lib/libvirt/images", "active": True}]
    local = Disk(target="vda", path="/var/lib/libvirt/images/a.qcow2", pool="default", shared=False)
    guests = {"hv1": [], "hv2": [away("a", 512, disks=[local])]}
    home = dataclasses.replace(HOME, pools=pools, volume_paths=HOME.volume_paths + [local.path])
    blocked = placement.restore_plan(guests, home, {"hv2": host("hv2", pools=pools)}, NO_RESERVE)
    assert [p.code for p in blocked.not_home[0].reasons] == ["disk_not_shared"] and blocked.moves == []
    plan = placement.restore_plan(guests, home, {"hv2": host("hv2", pools=pools)},
                                  Limits(reserve_mib=0, allow_storage_copy=True), disk_bytes={"a": {local.path: 20 * GIB}})
    move = plan.moves[0]
    # copied even though home has a file at that path: what an earlier copy left there is not the guest's disk
    assert (move.guest, move.source, move.destination, move.action, move.storage_copy, move.copy_disks) == (
        "a", "hv2", "hv1", "migrate", True, ["vda"])
    assert (move.disk_bytes, move.expected_bytes) == (20 * GIB, 512 * MIB + 20 * GIB)


def test_restore_keeps_anti_affinity_with_home_residents():
    plan = placement.restore_plan({"hv2": [away("db2", anti_affinity="db")]}, host("hv1", resident_groups=["db"]),
                                  {"hv2": host("hv2")})
    assert [p.code for p in plan.not_home[0].reasons] == ["anti_affinity"]


def test_restore_waves_respect_home_inbound_and_per_host_outbound():
    guests = {"hv2": [away("a%d" % i, 512, disk="abcd"[i]) for i in range(4)],
              "hv3": [away("b%d" % i, 512, disk="efgh"[i]) for i in range(4)]}
    limits = Limits(reserve_mib=0, max_inbound=3, max_outbound=1)
    plan = placement.restore_plan(guests, host("hv1", 64000), {"hv2": host("hv2"), "hv3": host("hv3")}, limits)
    assert len(plan.moves) == 8
    for outbound, inbound in wave_counts(plan).values():
        assert inbound["hv1"] <= 2  # one per source host, two hosts
        assert max(outbound.values()) <= 1
    assert len(plan.waves) == 4


@pytest.mark.parametrize("state", ["running", "paused"])
@pytest.mark.parametrize("elsewhere", [None, "shutoff", "running"])
def test_a_guest_on_its_home_is_never_planned_to_move(state, elsewhere):
    guests = {"hv1": [away("web", state=state)], "hv2": [away("other", disk="b")]}
    if elsewhere:
        guests["hv2"].append(away("web", state=elsewhere))  # a stale copy with the same UUID and record
    plan = placement.restore_plan(guests, HOME, {"hv2": host("hv2")}, NO_RESERVE)
    assert [m.guest for m in plan.moves] == ["other"]
    assert [(s.guest, s.code, s.reason) for s in plan.skipped] == [("web", "already_home", "web already runs on hv1")]
    assert plan.not_home == [] and plan.complete
    assert plan.as_dict()["skipped"][0]["code"] == "already_home"


def test_restore_needs_facts_for_every_current_host():
    with pytest.raises(DecisionError, match="no host facts for hv2"):
        placement.restore_plan({"hv2": [away("a")]}, HOME, {})


# --- properties ---------------------------------------------------------------------------------------------

GROUPS = st.sampled_from([None, None, "a", "b"])


@st.composite
def hosts_strategy(draw):
    count = draw(st.integers(min_value=0, max_value=4))
    hosts = []
    for index in range(count):
        hosts.append(HostFacts(
            name="hv%d" % (index + 2),
            uuid="uuid-hv%d" % (index + 2),
            memory_free_mib=draw(st.integers(min_value=0, max_value=12000)),
            hugepages_free_mib=draw(st.sampled_from([{}, {2048: 2048}, {2048: 4096, 1048576: 2048}])),
            bridges=draw(st.sampled_from([["br0"], ["br0"], ["br0"], []])),
            volume_paths=[SHARED + "/a.qcow2"],
            maintenance=draw(st.booleans()) and draw(st.booleans()),
            reachable=not (draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans())),
            resident_groups=draw(st.lists(st.sampled_from(["a", "b"]), max_size=1)),
        ))
    return hosts


@st.composite
def guests_strategy(draw):
    count = draw(st.integers(min_value=0, max_value=10))
    guests = []
    for index in range(count):
        guests.append(Guest(
            name="g%d" % index,
            uuid="uuid-g%d" % index,
            state=draw(st.sampled_from(["running", "running", "paused", "shutoff", "crashed"])),
            persistent=draw(st.booleans()) or draw(st.booleans()),
            memory_mib=draw(st.integers(min_value=0, max_value=6000)),
            hugepages=draw(st.booleans()) and draw(st.booleans()),
            disks=[Disk(target="vda", path=SHARED + "/a.qcow2")],
            interfaces=[Nic(type="bridge", source="br0")],
            non_migratable_reasons=PASSTHROUGH if (draw(st.booleans()) and draw(st.booleans())) else [],
            policy=draw(st.sampled_from(POLICIES)),
            anti_affinity=draw(GROUPS),
        ))
    return guests


LIMITS = st.builds(Limits, reserve_mib=st.integers(min_value=0, max_value=2048),
                   max_inbound=st.integers(min_value=1, max_value=3),
                   max_outbound=st.integers(min_value=1, max_value=3),
                   allow_partial=st.booleans())


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(guests=guests_strategy(), hosts=hosts_strategy(), limits=LIMITS)
def test_property_evacuation_plans_keep_every_promise(guests, hosts, limits):
    plan = placement.plan(guests, HV1, hosts, limits)
    by_name = dict((g.name, g) for g in guests)
    by_host = dict((h.name, h) for h in hosts)

    # every guest exactly once: moved, blocked (with a reason) or skipped (with a reason)
    seen = [m.guest for m in plan.moves] + [b.guest for b in plan.blocked] + [s.guest for s in plan.skipped]
    assert sorted(seen) == sorted(by_name)
    assert all(entry.reasons for entry in plan.blocked)
    assert all(entry.reason for entry in plan.skipped)

    # no destination over capacity, hugepages included; no move that preflight would refuse
    general = collections.Counter()
    huge = collections.Counter()
    for move in plan.moves:
        the_guest = by_name[move.guest]
        if move.action == "migrate":
            assert the_guest.active
            (huge if the_guest.hugepages else general)[move.destination] += move.memory_mib
        if move.action in ("migrate", "move_definition"):
            assert preflight.check(the_guest, HV1, by_host[move.destination], limits) == []
        if move.action == "shutdown":
            assert the_guest.policy == "shutdown" and the_guest.active
    for name, used in general.items():
        assert used <= by_host[name].memory_free_mib - limits.reserve_mib
    for name, used in huge.items():
        assert used <= sum(by_host[name].hugepages_free_mib.values())

    # no wave over the inbound or outbound limit
    for outbound, inbound in wave_counts(plan).values():
        assert max(outbound.values()) <= limits.max_outbound
        assert max(inbound.values()) <= limits.max_inbound
    assert sorted(m.order for m in plan.moves) == list(range(1, len(plan.moves) + 1))

    # anti-affinity kept, residents included
    for name in by_host:
        groups = [by_name[m.guest].anti_affinity for m in plan.moves
                  if m.destination == name and by_name[m.guest].anti_affinity]
        assert len(groups) == len(set(groups))
        assert not set(groups) & set(by_host[name].resident_groups)

    # proceed means: nothing blocked, or partial asked and no blocked guest says fail
    expected = not plan.blocked or (limits.allow_partial and all(b.policy != "fail" for b in plan.blocked))
    assert plan.proceed is expected
    json.dumps(plan.as_dict())


GENERATIONS = st.sampled_from([None, "6", "7", "8", "2026.10"])


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(guests=guests_strategy(), hosts=hosts_strategy(), limits=LIMITS, source_generation=GENERATIONS,
       generations=st.lists(GENERATIONS, min_size=4, max_size=4))
def test_property_generations_never_cost_a_guest_and_explain_every_older_host(guests, hosts, limits,
                                                                              source_generation, generations):
    source = dataclasses.replace(HV1, generation=source_generation)
    tiered = [dataclasses.replace(h, generation=g) for h, g in zip(hosts, generations)]
    plan = placement.plan(guests, source, tiered, limits)
    plain = placement.plan(guests, source, hosts, limits)
    # the tiers never leave out a guest packing without them would place
    assert len(placed(plan)) >= len(placed(plain))
    by_host = dict((h.name, h) for h in tiered)
    for move in placed_moves(plan):
        # a move to an older host, and only such a move, says so first in its reasons
        assert (codes(move)[:1] == ["older_generation"]) is older_than(by_host[move.destination], source_generation)
    assert_room_kept(plan, guests, by_host, limits)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(guests=guests_strategy(), hosts=hosts_strategy(), limits=LIMITS, source_generation=GENERATIONS,
       generations=st.lists(GENERATIONS, min_size=4, max_size=4),
       avoid=st.lists(st.sampled_from(["hv2", "hv3", "hv4", "hv5", "hv9"]), max_size=3))
def test_property_avoidance_never_costs_a_guest_and_explains_every_avoided_host(
        guests, hosts, limits, source_generation, generations, avoid):
    source = dataclasses.replace(HV1, generation=source_generation)
    tiered = [dataclasses.replace(h, generation=g) for h, g in zip(hosts, generations)]
    plan = placement.plan(guests, source, tiered, limits, avoid=avoid)
    plain = placement.plan(guests, source, tiered, limits)
    # keeping guests off the avoided hosts never leaves out a guest packing without it would place
    assert len(placed(plan)) >= len(placed(plain))
    assert plan.proceed is (not plan.blocked or (limits.allow_partial and all(b.policy != "fail" for b in plan.blocked)))
    by_host = dict((h.name, h) for h in tiered)
    for move in placed_moves(plan):
        # a move to an avoided host, and only such a move, says so; an older host's note still comes first
        assert ("avoided" in codes(move)) is (move.destination in avoid)
        assert (codes(move)[:1] == ["older_generation"]) is older_than(by_host[move.destination], source_generation)
    assert_room_kept(plan, guests, by_host, limits)
    # a blocked guest's reasons are problems, never notes
    assert all(r.code not in ("avoided", "older_generation") for b in plan.blocked for r in b.reasons)


@settings(max_examples=200, deadline=None, database=None)
@given(guests=guests_strategy(), free=st.integers(min_value=0, max_value=16000), limits=LIMITS,
       homes=st.lists(st.sampled_from(["hv1", "hv2", "hv3"]), min_size=10, max_size=10),
       hosts=st.lists(st.sampled_from(["hv1", "hv2", "hv3"]), min_size=10, max_size=10))
def test_property_restore_never_overfills_home(guests, free, limits, homes, hosts):
    home = host("hv1", free, hugepages_free_mib={2048: 4096})
    guests_by_host = {"hv1": [], "hv2": [], "hv3": []}
    for index, the_guest in enumerate(guests):
        the_guest.record = MigrationRecord(origin_host=homes[index])
        if not the_guest.persistent and not the_guest.active:
            continue
        guests_by_host[hosts[index]].append(the_guest)
    plan = placement.restore_plan(guests_by_host, home, {"hv2": host("hv2"), "hv3": host("hv3")}, limits)

    candidates = sorted(g.name for name in guests_by_host for g in guests_by_host[name]
                        if g.record.origin_host == "hv1")
    seen = [m.guest for m in plan.moves] + [b.guest for b in plan.not_home] + [s.guest for s in plan.skipped]
    assert sorted(seen) == candidates
    assert all(entry.reasons for entry in plan.not_home)
    # a guest that runs on home is never planned to move, and is skipped as already home
    on_home = set(g.name for g in guests_by_host["hv1"] if g.active and g.record.origin_host == "hv1")
    assert not on_home & set(m.guest for m in plan.moves)
    assert on_home <= set(s.guest for s in plan.skipped if s.code == "already_home")
    general = sum(m.memory_mib for m in plan.moves if m.action in ("migrate", "start")
                  and not [g for g in guests if g.name == m.guest][0].hugepages)
    assert general <= max(free - limits.reserve_mib, 0)
    for outbound, inbound in wave_counts(plan).values():
        assert max(outbound.values()) <= limits.max_outbound
        assert max(inbound.values()) <= limits.max_inbound


# -- definitions a migration left behind ----------------------------------------------------------------------
def _copy(name, state, record=None, uuid="u-1", persistent=True):
    return Guest(name=name, uuid=uuid, state=state, persistent=persistent, record=record)


def test_a_shut_off_copy_on_the_source_of_an_evacuated_guest_is_stale():
    hv1 = HostFacts(name="hv1", uuid="h-1")
    by_host = {"hv1": [_copy("web", "shutoff")], "hv2": [_copy("web", "running", MigrationRecord("hv1", "h-1"))]}
    assert placement.stale_copies(by_host, {"hv1": hv1}) == [dict(guest="web", uuid="u-1", host="hv1", runs_on="hv2")]


def test_a_shut_off_copy_away_from_home_of_a_guest_that_came_home_is_stale():
    by_host = {"hv1": [_copy("web", "running")], "hv2": [_copy("web", "shutoff", MigrationRecord("hv1"))]}
    assert placement.stale_copies(by_host, {}) == [dict(guest="web", uuid="u-1", host="hv2", runs_on="hv1")]


def test_copies_no_record_ties_another_uuid_or_a_transient_one_are_left_alone():
    running = _copy("web", "running")
    assert placement.stale_copies({"hv1": [_copy("web", "shutoff")], "hv2": [running]}, {}) == []
    tied = _copy("web", "running", MigrationRecord("hv1"))
    assert placement.stale_copies({"hv1": [_copy("web", "shutoff", uuid="u-2")], "hv2": [tied]}, {}) == []
    assert placement.stale_copies({"hv1": [_copy("web", "shutoff", persistent=False)], "hv2": [tied]}, {}) == []
    # both shut off: a definition moved half-way, not a guest running twice
    moved_half_way = _copy("web", "shutoff", MigrationRecord("hv1"))
    assert placement.stale_copies({"hv1": [_copy("web", "shutoff")], "hv2": [moved_half_way]}, {}) == []
    # a record naming a third host ties nothing here
    elsewhere = _copy("web", "running", MigrationRecord("hv9"))
    assert placement.stale_copies({"hv1": [_copy("web", "shutoff")], "hv2": [elsewhere]}, {}) == []


@pytest.mark.parametrize("left, running, stale", [
    (_copy("web", "shutoff"), _copy("web", "running"), True),
    (_copy("web", "shutoff"), _copy("web", "paused"), True),
    (_copy("web", "running"), _copy("web", "running"), False),  # both run: not ours to judge here
    (_copy("web", "shutoff", persistent=False), _copy("web", "running"), False),
    (_copy("web", "shutoff"), _copy("web", "running", persistent=False), False),  # the only definition left
    (_copy("web", "shutoff"), _copy("web", "shutoff"), False),  # a definition moved half-way
    (_copy("web", "shutoff"), _copy("web", "running", uuid="u-2"), False),  # another guest of the same name
    (_copy("web", "shutoff", uuid=""), _copy("web", "running", uuid=""), False),  # no UUID: nothing proves it
], ids=["shut-off-vs-running", "shut-off-vs-paused", "both-running", "transient-copy", "transient-running",
        "both-shut-off", "other-uuid", "no-uuid"])
def test_the_one_rule_of_a_stale_copy(left, running, stale):
    # the rule the survey's stale_copies, the re-read before a removal and the executor's look after a failed move
    # all apply (executor.Executor._left_on_source)
    assert placement.is_stale_copy(left, running) is stale
