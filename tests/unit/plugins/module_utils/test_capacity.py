# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A declared capacity (capacity_mib): the free memory every decision sees, placement's verdict on it, and bad
values judged in one sentence naming the host. Pure: model, placement and inputs, no Ansible, no libvirt."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import inputs, placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    Guest,
    HostFacts,
    Limits,
    capacity_free_mib,
    with_capacity,
)
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.module_utils.test_placement import HV1, guest, host

NO_RESERVE = Limits(reserve_mib=0)


def running(name, memory, state="running", max_memory_mib=None):
    return Guest(name=name, uuid="uuid-%s" % name, state=state, memory_mib=memory,
                 max_memory_mib=memory if max_memory_mib is None else max_memory_mib)


TWO_RUNNING = [running("r1", 256), running("r2", 256)]


def test_a_host_declared_at_1024_mib_with_two_running_256_mib_guests_has_512_free_whatever_it_measures():
    assert capacity_free_mib(20480, 1024, TWO_RUNNING) == 512
    facts = with_capacity(host("hv2", 20480), 1024, TWO_RUNNING)
    assert (facts.memory_free_mib, facts.capacity_mib) == (512, 1024)


@pytest.mark.parametrize("measured, capacity, guests, free", [
    (20480, 0, TWO_RUNNING, 20480),  # not declared: as measured, nothing changes
    (20480, None, TWO_RUNNING, 20480),
    (300, 1024, TWO_RUNNING, 300),  # the host measures less than the capacity leaves: the smaller counts
    (20480, 1024, TWO_RUNNING + [running("off", 512, state="shutoff")], 512),  # a shut-off guest holds nothing
    (20480, 1024, TWO_RUNNING + [running("arriving", 256, state="paused")], 256),  # an incoming migration counts
    (20480, 1024, [running("balloon", 128, max_memory_mib=768)], 256),  # its maximum counts, not its balloon
    (20480, 512, TWO_RUNNING + [running("r3", 256)], 0),  # over its capacity: nothing more, never below 0
])
def test_the_free_memory_within_a_declared_capacity(measured, capacity, guests, free):
    assert capacity_free_mib(measured, capacity, guests) == free


def test_facts_without_a_capacity_or_of_a_host_that_did_not_answer_are_left_as_they_are():
    facts = host("hv2", 20480)
    assert with_capacity(facts, 0, TWO_RUNNING) is facts
    silent = HostFacts(name="hv3", reachable=False, unreachable_reason="timed out")
    assert with_capacity(silent, 1024, TWO_RUNNING) is silent


def test_placement_refuses_a_third_guest_the_declared_capacity_has_no_room_for_with_the_usual_memory_reason():
    declared = with_capacity(host("hv2", 20480), 1024, TWO_RUNNING)
    plan = placement.plan([guest("g3", 600)], HV1, [declared], NO_RESERVE)
    assert plan.moves == [] and not plan.proceed
    reasons = plan.blocked[0].reasons
    assert [(r.code, r.destination) for r in reasons] == [("memory", "hv2")]
    assert reasons[0].message == ("cannot live-migrate g3 to hv2: destination has 512 MiB free (512 MiB less the 0 MiB "
                                  "reserve), guest needs 600 MiB")
    # the same host measured as it is takes the guest
    assert placement.plan([guest("g3", 600)], HV1, [host("hv2", 20480)], NO_RESERVE).move_for("g3").destination == "hv2"
    # and within the capacity a guest that fits goes there
    assert placement.plan([guest("g3", 512)], HV1, [declared], NO_RESERVE).move_for("g3").destination == "hv2"


def test_the_reserve_is_still_kept_within_a_declared_capacity():
    declared = with_capacity(host("hv2", 20480), 1024, TWO_RUNNING)
    plan = placement.plan([guest("g3", 512)], HV1, [declared], Limits(reserve_mib=256))
    assert plan.blocked[0].reasons[0].message == ("cannot live-migrate g3 to hv2: destination has 256 MiB free (512 "
                                                  "MiB less the 256 MiB reserve), guest needs 512 MiB")


@pytest.mark.parametrize("value, number", [(None, 0), ("", 0), (0, 0), (4096, 4096), ("4096", 4096), (" 512 ", 512),
                                           (8192.0, 8192), (16777216, 16777216)])
def test_a_capacity_is_a_whole_number_of_mib(value, number):
    assert inputs.capacity(value, "hv2") == number


@pytest.mark.parametrize("value, message", [
    (-1, "capacity_mib of hv2 must be 0 (not declared) or more, got -1"),
    ("-512", "capacity_mib of hv2 must be 0 (not declared) or more, got -512"),
    (1024.5, "capacity_mib of hv2 must be a whole number of MiB (0: not declared), got 1024.5"),
    ("lots", "capacity_mib of hv2 must be a whole number of MiB (0: not declared), got 'lots'"),
    ("4 GiB", "capacity_mib of hv2 must be a whole number of MiB (0: not declared), got '4 GiB'"),
    (True, "capacity_mib of hv2 must be a whole number of MiB (0: not declared), got True"),
    ([4096], "capacity_mib of hv2 must be a whole number of MiB (0: not declared), got [4096]"),
    (25769803776, "capacity_mib of hv2 must be 16777216 MiB (16 TiB) or less, got 25769803776: is it in KiB or "
                  "bytes?"),
])
def test_a_capacity_that_is_not_one_is_one_sentence_naming_the_host(value, message):
    with pytest.raises(HostmaintError) as error:
        inputs.capacity(value, "hv2")
    assert error.value.message == message
    assert error.value.details == dict(option="capacity_mib", host="hv2")


def engine_params(**given):
    from ansible_collections.hostmaint.libvirt.plugins.module_utils import options

    params = dict((key, spec.get("default")) for key, spec in options.module_spec("evacuate").items())
    params.update(given)
    return params


def test_the_engine_options_judge_this_hosts_capacity_and_each_destinations():
    params = engine_params(name="hv1", capacity_mib="2048", destinations=[
        {"name": "hv2", "capacity_mib": 1024}, {"name": "hv3", "capacity_mib": None}, {"name": "hv4", "capacity_mib": 0}])
    inputs.check_engine_options(params)
    judged = inputs.engine_options(params)
    assert (judged.capacity_mib, judged.capacities) == (2048, {"hv2": 1024})
    with pytest.raises(HostmaintError) as error:
        inputs.check_engine_options(engine_params(name="hv1", destinations=[{"name": "hv3", "capacity_mib": -4}]))
    assert error.value.message == "capacity_mib of hv3 must be 0 (not declared) or more, got -4"
    with pytest.raises(HostmaintError) as error:
        inputs.check_engine_options(engine_params(name="hv1", capacity_mib="half"))
    assert error.value.message == "capacity_mib of hv1 must be a whole number of MiB (0: not declared), got 'half'"
    with pytest.raises(HostmaintError) as error:
        inputs.check_engine_options(engine_params(capacity_mib=-1))
    assert error.value.message == "capacity_mib of this host must be 0 (not declared) or more, got -1"
