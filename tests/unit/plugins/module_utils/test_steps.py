# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a run as a value (module_utils.steps): every write after the survey is a step of it, the stale copies
first. Plain data in, plain data out: no adapter, no module."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import steps
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    DecisionError,
    Disk,
    Guest,
    HostFacts,
    Limits,
    MigrationRecord,
    Nic,
    Survey,
    record_for,
)

SHARED = "/var/lib/libvirt/shared"
RECORD = MigrationRecord(origin_host="hv1", origin_host_uuid="uuid-hv1", run_id="r0", time="2026-11-25T18:00:00Z")


def guest(name, state="running", memory_mib=512, **fields):
    return Guest(name=name, uuid=fields.pop("uuid", "uuid-%s" % name), state=state, memory_mib=memory_mib,
                 max_memory_mib=memory_mib, interfaces=[Nic(type="bridge", source="br0")],
                 disks=[Disk(target="vda", path="%s/%s.qcow2" % (SHARED, name), pool="shared", shared=True)], **fields)


def host(name, free_mib=8192):
    return HostFacts(name=name, uuid="uuid-%s" % name, hostname=name, libvirt_version=9000000, qemu_version=7002000,
                     arch="x86_64", memory_total_mib=free_mib, memory_free_mib=free_mib, bridges=["br0"],
                     networks=["default"], pools=[dict(name="shared", type="netfs", path=SHARED, active=True,
                                                       shared=True, shared_by="pool type netfs")],
                     volume_paths=["%s/%s.qcow2" % (SHARED, n) for n in ("web1", "web2", "db1")])


def evacuation_survey(stale=()):
    """hv1 with web1 and web2 running and a shut-off copy of db1, which runs on hv2 with a record naming hv1."""
    here = [guest("db1", state="shutoff"), guest("web1"), guest("web2")]
    away = [guest("db1", record=RECORD)]
    return Survey(source=host("hv1"), destinations=[host("hv2"), host("hv3")], guests=here, limits=Limits(),
                  identity=dict(hostname="hv1", uuid="uuid-hv1"), guests_by_host={"hv1": here, "hv2": away, "hv3": []},
                  stale_copies=list(stale))


DB1_COPY = dict(guest="db1", uuid="uuid-db1", host="hv1", runs_on="hv2")


def test_a_stale_copy_is_the_first_step_of_an_evacuation_and_never_a_move():
    plan = steps.evacuation(evacuation_survey([DB1_COPY]), Limits(), run_id="r1", record=RECORD)
    assert plan.kind == "evacuate" and plan.stale_copies == [DB1_COPY]
    assert sorted(m.guest for m in plan.moves.moves) == ["web1", "web2"]  # the copy is neither moved nor started
    assert [g.name for g in plan.guests] == ["web1", "web2"]
    assert plan.records == {"web1": RECORD, "web2": RECORD}
    assert (plan.clear_records, plan.end_maintenance) == (False, False)


def test_without_the_copy_found_the_shut_off_definition_is_a_move_of_its_own():
    # what the plan does with a shut-off guest the survey found no reason to remove: its definition moves
    plan = steps.evacuation(evacuation_survey(), Limits(), run_id="r1", record=RECORD)
    assert plan.stale_copies == []
    assert sorted((m.guest, m.action) for m in plan.moves.moves) == [
        ("db1", "move_definition"), ("web1", "migrate"), ("web2", "migrate")]


def test_an_evacuation_plan_is_the_same_value_for_the_same_survey():
    survey = evacuation_survey([DB1_COPY])
    first = steps.evacuation(survey, Limits(), run_id="r1", record=RECORD)
    again = steps.evacuation(survey, Limits(), run_id="r1", record=RECORD)
    assert first.moves.as_dict() == again.moves.as_dict() and first.stale_copies == again.stale_copies
    assert [g.name for g in survey.guests] == ["db1", "web1", "web2"]  # the survey is left as it was


def test_guests_with_a_record_keep_theirs():
    survey = evacuation_survey()
    survey.guests[1].record = MigrationRecord(origin_host="hv0", run_id="r-older")
    plan = steps.evacuation(survey, Limits(), run_id="r1", record=RECORD)
    assert sorted(plan.records) == ["db1", "web2"]


def restore_survey(stale=()):
    """hv1 home, web1 away on hv2 and web2 on hv3 (records naming hv1), and a shut-off copy of web2 left on hv2."""
    home = host("hv1")
    by_host = {"hv1": [], "hv2": [guest("web1", record=RECORD), guest("web2", state="shutoff", record=RECORD)],
               "hv3": [guest("web2", record=RECORD)]}
    returning = [g for name in ("hv2", "hv3") for g in by_host[name]]
    return Survey(source=home, destinations=[host("hv2"), host("hv3")], guests=returning, limits=Limits(),
                  guests_by_host=by_host, stale_copies=list(stale))


WEB2_COPY = dict(guest="web2", uuid="uuid-web2", host="hv2", runs_on="hv3")


def test_a_restore_removes_the_copy_first_brings_the_guests_home_then_clears_records_and_the_mark():
    plan = steps.restoration(restore_survey([WEB2_COPY]), Limits(), run_id="r2")
    assert plan.kind == "restore" and plan.stale_copies == [WEB2_COPY]
    assert sorted((m.guest, m.source, m.destination, m.action) for m in plan.moves.moves) == [
        ("web1", "hv2", "hv1", "migrate"), ("web2", "hv3", "hv1", "migrate")]
    assert sorted((g.name, g.state) for g in plan.guests) == [("web1", "running"), ("web2", "running")]
    assert (plan.clear_records, plan.end_maintenance) == (True, True)


def test_the_stale_copies_of_the_plan_say_in_check_mode_what_a_run_removes():
    assert steps.would_remove([WEB2_COPY]) == [dict(guest="web2", host="hv2", runs_on="hv3", removed=False,
                                                    note="a run removes it: web2 runs on hv3")]


def test_the_records_cleared_are_those_of_guests_home_that_run_or_came_home():
    home = host("hv1")
    there = [guest("web1", record=RECORD), guest("web2", state="shutoff", record=RECORD),
             guest("web3", state="shutoff", record=RECORD), guest("own"),
             guest("other", record=MigrationRecord(origin_host="hv7", origin_host_uuid="uuid-hv7"))]
    assert steps.records_to_clear(there, home, moved=["web3"]) == ["web1", "web3"]
    assert steps.records_to_clear(there, home) == ["web1"]


# -- guests that stay where they land (return_home false) -------------------------------------------------------
def staying_survey():
    """hv1 with web1 (no record), web2 (a record naming hv3, where it came from) and app, whose settings demand its
    home, and a shut-off db2 whose definition moves."""
    here = [guest("app", return_to="home"), guest("db2", state="shutoff"), guest("web1"),
            guest("web2", record=dataclasses.replace(RECORD, origin_host="hv3", origin_host_uuid="uuid-hv3"))]
    paths = ["%s/%s.qcow2" % (SHARED, g.name) for g in here]
    destinations = [dataclasses.replace(host(name), volume_paths=paths) for name in ("hv2", "hv4")]
    return Survey(source=host("hv1"), destinations=destinations, guests=here, limits=Limits(),
                  identity=dict(hostname="hv1", uuid="uuid-hv1"), guests_by_host={"hv1": here, "hv2": [], "hv4": []})


def test_with_return_home_each_guest_keeps_its_home_and_the_moves_say_which():
    plan = steps.evacuation(staying_survey(), Limits(reserve_mib=0), run_id="r1", record=RECORD)
    assert plan.stays == [] and sorted(plan.records) == ["app", "db2", "web1"]  # web2 keeps the record it has
    assert dict((m.guest, m.home_after) for m in plan.moves.moves) == {"app": "hv1", "db2": "hv1", "web1": "hv1",
                                                                       "web2": "hv3"}


def test_without_return_home_every_guest_stays_where_it_lands_but_one_that_demands_its_home():
    plan = steps.evacuation(staying_survey(), Limits(reserve_mib=0), run_id="r1", record=RECORD, return_home=False)
    assert plan.stays == ["db2", "web1", "web2"]
    assert plan.records == {"app": RECORD, "db2": RECORD, "web1": RECORD, "web2": RECORD}  # web2's is replaced
    moves = dict((m.guest, m) for m in plan.moves.moves)
    assert dict((name, m.home_after) for name, m in moves.items()) == {
        "app": "hv1", "db2": moves["db2"].destination, "web1": moves["web1"].destination,
        "web2": moves["web2"].destination}
    # what the executor writes with each attempt: the record naming where the move takes the guest
    for name in ("web1", "web2", "db2"):
        written = record_for(moves[name], plan.records, plan.stays, {"hv2": "uuid-hv2", "hv4": "uuid-hv4"})
        assert (written.origin_host, written.origin_host_uuid, written.run_id) == (
            moves[name].destination, "uuid-%s" % moves[name].destination, "r0")
    assert record_for(moves["app"], plan.records, plan.stays, {"hv2": "uuid-hv2"}) == RECORD
    again = dataclasses.replace(moves["web1"], destination="hv9")  # placed again on another destination
    assert record_for(again, plan.records, plan.stays, {"hv9": "uuid-hv9"}).origin_host_uuid == "uuid-hv9"


@pytest.mark.parametrize("value", ["away", "Home", ""])
def test_a_return_that_is_not_home_is_one_sentence_naming_the_guest_and_the_value(value):
    survey = staying_survey()
    survey.guests.append(guest("odd", return_to=value))
    with pytest.raises(DecisionError) as error:
        steps.evacuation(survey, Limits(), run_id="r1", record=RECORD)
    assert error.value.message == ('return %r of guest odd in its settings metadata must be "home" (it demands its '
                                   'home) or left out' % value)
    assert error.value.details == dict(guest="odd", value=value)
