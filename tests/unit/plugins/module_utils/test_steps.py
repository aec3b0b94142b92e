# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a run as a value (module_utils.steps): every write after the survey is a step of it, the stale copies
first. Plain data in, plain data out: no adapter, no module."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import steps
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    Disk,
    Guest,
    HostFacts,
    Limits,
    MigrationRecord,
    Nic,
    Survey,
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
