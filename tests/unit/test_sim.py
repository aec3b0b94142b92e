# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet simulator (tests/sim/engine.py) on small fleets."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tests.sim import engine  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (  # noqa: E402
    MIB, Guest, HostFacts, Limits, Move)


def test_same_seed_same_result_other_seed_other_result():
    one = engine.simulate(engine.fleet(4, 10, seed=3), "collection")
    assert one == engine.simulate(engine.fleet(4, 10, seed=3), "collection")
    assert one != engine.simulate(engine.fleet(4, 10, seed=4), "collection")


def test_two_flows_out_of_one_nic_each_get_half():
    fleet = engine.Fleet([engine.HostSpec("a", 65536, nic_bps=1000.0), engine.HostSpec("b", 65536, nic_bps=1000.0),
                          engine.HostSpec("c", 65536, nic_bps=1000.0)],
                         [engine.GuestSpec("g1", "a", 1024), engine.GuestSpec("g2", "a", 1024)])
    sim = engine.Sim(fleet)
    for guest, dest in (("g1", "b"), ("g2", "c")):
        move = Move(guest=guest, action="migrate", source="a", destination=dest)
        sim.flows.append(engine._Flow(sim.guests[guest], move, 0.0, 50))
    sim._rates()
    assert [f.rate for f in sim.flows] == [500.0, 500.0]
    sim.flows[1].move.destination = "b"
    sim._rates()
    assert [f.rate for f in sim.flows] == [500.0, 500.0]
    sim.flows.pop()
    sim._rates()
    assert sim.flows[0].rate == 1000.0


def test_one_migration_against_a_hand_calculation():
    # 8 GiB, half zero: round 1 sends 4 GiB at 1 GiB/s (4 s); the guest dirties 10 MiB/s, so round 2 holds
    # 40 MiB: 40 MiB / 1 GiB/s = 39 ms <= 50 ms, it switches over; blackout = 39 ms + the fixed cost.
    gib = 1024.0 * MIB
    fleet = engine.Fleet([engine.HostSpec("a", 65536, nic_bps=gib, reboot_s=0, gate_s=0),
                          engine.HostSpec("b", 65536, nic_bps=gib, reboot_s=0, gate_s=0)],
                         [engine.GuestSpec("g", "a", 8192, 0.5, dirty_bps=10 * MIB, working_set_bytes=gib)])
    sim = engine.Sim(fleet)
    sim.queue = list(sim._evacuation("a", set()))
    sim._drain()
    assert sim.now == pytest.approx(4.0)
    assert sim.blackouts == [pytest.approx(40 * MIB / gib + engine.SWITCH_COST_S)]
    assert sim.bytes == pytest.approx(4 * gib + 40 * MIB)
    assert sim.where["g"] == "b"


@pytest.mark.parametrize("planner", engine.PLANNERS)
@pytest.mark.parametrize("seed", [0, 1])
def test_no_planner_beats_the_lower_bound(planner, seed):
    result = engine.simulate(engine.fleet(5, 8, nic_gbit=1, reboot_s=30, gate_s=5, seed=seed), planner)
    assert result["makespan_s"] >= result["bound_s"]
    assert 0 < result["efficiency"] <= 1
    assert result["violations"] == 0


@pytest.mark.parametrize("planner", engine.PLANNERS)
def test_capacity_holds_with_faults(planner):
    # room for the guests of the host that does not come back: 60 guests of 8 GiB on 4 hosts while a fifth is down
    fleet = engine.fleet(6, 10, host_memory_mib=140 * 1024, seed=7, fail_rate=0.2, stop_rate=0.1, lost_hosts=1)
    assert any(g.fails for g in fleet.guests) and any(g.stops for g in fleet.guests)
    sim = engine.Sim(fleet, planner)
    result = sim.run()
    assert result["violations"] == 0
    assert result["min_headroom_mib"] >= 0
    assert sim.tried and result["failed_moves"] >= len(sim.tried)
    assert result["makespan_s"] >= result["bound_s"]
    assert result["skipped_hosts"] == 0
    assert "hv00" not in sim.where.values()
    # the guests that stopped are gone, the others are somewhere with room for them
    assert not any(g.stops and g.name in sim.where for g in fleet.guests if g.name in sim.tried)


def test_collection_destinations_are_what_placement_plan_picks():
    fleet = engine.fleet(4, 12, seed=2)
    sim = engine.Sim(fleet, "collection")
    sim.run()
    # the first host's evacuation saw the untouched fleet: plan it here with the real code, independently
    hosts = fleet.hosts
    used = dict((h.name, sum(g.memory_mib for g in fleet.guests if g.home == h.name)) for h in hosts)
    facts = [HostFacts(name=h.name, memory_total_mib=h.memory_mib, memory_free_mib=h.memory_mib - used[h.name])
             for h in hosts]
    guests = [Guest(name=g.name, uuid=g.name, state="running", memory_mib=g.memory_mib)
              for g in fleet.guests if g.home == hosts[0].name]
    plan = placement.plan(guests, facts[0], facts[1:], Limits())
    assert sim.placed[hosts[0].name] == dict((m.guest, m.destination) for m in plan.moves)
    assert len(plan.moves) == 12


def test_a_guest_that_never_converges_fails_after_the_downtime_steps_and_frees_its_room():
    # it dirties its whole 1 GiB working set faster than the link: every round holds 1 GiB, never under 500 ms
    gib = 1024.0 * MIB
    fleet = engine.Fleet([engine.HostSpec("a", 65536, nic_bps=gib), engine.HostSpec("b", 65536, nic_bps=gib)],
                         [engine.GuestSpec("g", "a", 8192, 0.5, dirty_bps=2 * gib, working_set_bytes=gib)])
    sim = engine.Sim(fleet)
    sim.queue = list(sim._evacuation("a", set()))
    sim._drain()
    assert sim.failed == 1 and sim.where["g"] == "a"
    assert sim.used == {"a": 8192, "b": 0}
    assert sim.now == pytest.approx(4.0 + (engine.MAX_ROUNDS - 1) * 1.0)
