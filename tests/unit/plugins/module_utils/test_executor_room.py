# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor judges a destination's room again just before each move: memory taken there after the plan
(a guest started there) makes it leave the run, and its guests go elsewhere or stay, blocked, untouched."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Guest, Limits, Plan
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.module_utils.test_executor import (
    RECORD,
    FakeAdapter,
    World,
    executor,
    move,
    survey,
)


class RoomyWorld(World):
    """A world whose hosts say how much memory is available (MiB), by host."""

    def __init__(self, *hosts, **available):
        super(RoomyWorld, self).__init__(*hosts)
        self.available = dict(available)

    def connect(self, host):
        self.connects[host] = self.connects.get(host, 0) + 1
        return RoomyAdapter(self, host)


class RoomyAdapter(FakeAdapter):
    def memory_mib(self):
        self._up()
        return 65536, self.world.available.get(self.host, 65536)


def test_a_destination_whose_memory_was_taken_after_the_plan_gets_nothing_and_the_guest_goes_elsewhere():
    world = RoomyWorld("hv1", "hv2", "hv3", hv2=1100, hv3=8192)
    world.add("hv1", "a")
    run = executor(world, limits=Limits(reserve_mib=1024))
    outcome = run.run(Plan(moves=[move("a", "hv1", "hv2")]), records={"a": RECORD}, survey=survey(world, ["a"]))[0]
    assert (outcome.outcome, outcome.destination, outcome.runs_on) == ("migrated", "hv3", ["hv3"])
    assert outcome.reason == ("placed on hv3 instead of hv2: hv2 no longer has room for a: 1100 MiB available less the "
                              "1024 MiB reserve, 256 MiB needed (its memory was taken after the plan was made)")


def test_with_no_other_room_the_guest_stays_blocked_and_untouched():
    world = RoomyWorld("hv1", "hv2", hv2=1100)
    world.add("hv1", "a")
    run = executor(world, limits=Limits(reserve_mib=1024))
    outcome = run.run(Plan(moves=[move("a", "hv1", "hv2")]), records={"a": RECORD})[0]
    assert outcome.outcome == "blocked" and "hv2 no longer has room for a" in outcome.reason
    assert world.hosts["hv1"] == {"a": "running"} and world.records == {}


def test_room_enough_moves_as_planned():
    world = RoomyWorld("hv1", "hv2", hv2=1300)
    world.add("hv1", "a")
    outcome = executor(world, limits=Limits(reserve_mib=1024)).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "migrated" and outcome.runs_on == ["hv2"]


class DeclaredAdapter(RoomyAdapter):
    """Every guest of the world 256 MiB, as the adapter's active_memory reads a host's active domains."""

    def active_memory(self):
        return [Guest(name=name, uuid="uuid-%s" % name, state=state, memory_mib=256, max_memory_mib=256)
                for name, state in sorted(self._guests().items())]


class DeclaredWorld(RoomyWorld):
    def connect(self, host):
        self.connects[host] = self.connects.get(host, 0) + 1
        return DeclaredAdapter(self, host)


def test_a_destination_is_judged_again_within_its_declared_capacity_and_the_guest_goes_elsewhere():
    world = DeclaredWorld("hv1", "hv2", "hv3")  # both measure 64 GiB available
    world.add("hv1", "a")
    for name in ("b", "c", "d"):  # started on hv2 after the plan: 768 of its declared 1024 MiB are taken
        world.add("hv2", name)
    run = executor(world, limits=Limits(reserve_mib=0), capacities={"hv2": 1024})
    outcome = run.run(Plan(moves=[move("a", "hv1", "hv2", memory_mib=512)]), records={"a": RECORD},
                      survey=survey(world, ["a"]))[0]
    assert (outcome.outcome, outcome.destination, outcome.runs_on) == ("migrated", "hv3", ["hv3"])
    assert outcome.reason == ("placed on hv3 instead of hv2: hv2 no longer has room for a: 256 MiB available within its "
                              "declared capacity of 1024 MiB less the 0 MiB reserve, 512 MiB needed (its memory was "
                              "taken after the plan was made)")


def test_room_within_the_declared_capacity_moves_as_planned():
    world = DeclaredWorld("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv2", "b")
    outcome = executor(world, limits=Limits(reserve_mib=0), capacities={"hv2": 1024}).run(
        Plan(moves=[move("a", "hv1", "hv2", memory_mib=512)]))[0]
    assert outcome.outcome == "migrated" and outcome.runs_on == ["hv2"]


def test_a_guest_placed_again_keeps_off_the_avoided_destinations():
    world = RoomyWorld("hv1", "hv2", "hv3", "hv4", hv4=1100)  # hv4's memory was taken after the plan
    world.add("hv1", "a")
    outcome = executor(world, limits=Limits(reserve_mib=1024), avoid=["hv2"]).run(
        Plan(moves=[move("a", "hv1", "hv4")]), records={"a": RECORD}, survey=survey(world, ["a"]))[0]
    # hv2 and hv3 had the same room in the survey: worst fit alone would take hv2
    assert (outcome.outcome, outcome.destination, outcome.runs_on) == ("migrated", "hv3", ["hv3"]), outcome.reason
