# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore canary: the operator's guest or the smallest one first, the rest in plan order."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    DecisionError,
    Disk,
    Guest,
    HostFacts,
    Limits,
    MigrationRecord,
    Move,
    Nic,
)


def migrate(name, memory):
    return Move(guest=name, action="migrate", source="hv2", destination="hv1", memory_mib=memory)


MOVES = [migrate("web", 2048), migrate("db", 4096), migrate("cache", 512), migrate("app", 1024)]


def names(moves):
    return [move.guest for move in moves]


def test_the_smallest_guest_is_the_canary_and_the_rest_keep_their_order():
    first, rest = placement.canary(MOVES)
    assert first.guest == "cache"
    assert names(rest) == ["web", "db", "app"]


def test_ties_go_to_the_first_name():
    moves = [migrate("zeta", 512), migrate("beta", 512), migrate("alpha", 1024)]
    first, rest = placement.canary(moves)
    assert first.guest == "beta"
    assert names(rest) == ["zeta", "alpha"]


def test_the_operator_names_the_canary():
    first, rest = placement.canary(MOVES, named="db")
    assert first.guest == "db"
    assert names(rest) == ["web", "cache", "app"]


def test_an_unknown_name_is_one_sentence_naming_the_guest():
    with pytest.raises(DecisionError) as caught:
        placement.canary(MOVES, named="mail")
    assert caught.value.message == "cannot take mail as the canary: it is not among the planned moves"
    assert caught.value.details["migrations"] == ["web", "db", "cache", "app"]


def test_only_a_migration_can_be_the_canary():
    start = Move(guest="stopped", action="start", source="hv1", destination="hv1", memory_mib=64)
    moved = Move(guest="off", action="move_definition", source="hv2", destination="hv1")
    first, rest = placement.canary([start, moved] + MOVES)
    assert first.guest == "cache"
    assert names(rest) == ["stopped", "off", "web", "db", "app"]
    with pytest.raises(DecisionError, match="cannot take stopped as the canary: its move is start, not a live migration"):
        placement.canary([start] + MOVES, named="stopped")


def test_nothing_to_migrate_means_no_canary():
    start = Move(guest="stopped", action="start", source="hv1", destination="hv1")
    assert placement.canary([]) == (None, [])
    assert placement.canary([start]) == (None, [start])
    with pytest.raises(DecisionError, match="cannot take web as the canary"):
        placement.canary([], named="web")


def test_canary_of_a_real_restore_plan():
    shared = "/var/lib/libvirt/shared"

    def away(name, memory):
        return Guest(name=name, uuid="uuid-%s" % name, state="running", memory_mib=memory, max_memory_mib=memory,
                     disks=[Disk(target="vda", path="%s/%s.qcow2" % (shared, name))],
                     interfaces=[Nic(type="bridge", source="br0")],
                     record=MigrationRecord(origin_host="hv1", origin_host_uuid="uuid-hv1"))

    def host(name):
        return HostFacts(name=name, uuid="uuid-%s" % name, hostname=name, memory_free_mib=64000, bridges=["br0"],
                         volume_paths=["%s/%s.qcow2" % (shared, n) for n in ("big", "small", "mid")])

    plan = placement.restore_plan({"hv2": [away("big", 4096), away("small", 256)], "hv3": [away("mid", 1024)]},
                                  host("hv1"), {"hv2": host("hv2"), "hv3": host("hv3")}, Limits(reserve_mib=0))
    first, rest = placement.canary(plan.moves)
    assert (first.guest, first.source, first.destination) == ("small", "hv2", "hv1")
    assert names(rest) == [m.guest for m in plan.moves if m.guest != "small"]
    assert placement.canary(plan.moves, named="mid")[0].source == "hv3"
