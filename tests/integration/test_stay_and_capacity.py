# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 19's engine features on the lab: guests that stay where they land (evacuate's return_home: false, a guest's
return="home"), destinations avoided, and declared capacities (capacity_mib) - judged by where virsh says each guest
runs, the migration record virsh shows on it, and the free memory the modules report against what virsh lists."""

from __future__ import annotations

import re

import pytest

SETTINGS_NS = "urn:hostmaint:libvirt:settings:1"
STAYERS = ["sy-home", "sy-1", "sy-2"]


def host_uuid(lab, host):
    return re.search(r"<uuid>([^<]+)</uuid>", lab.virsh(host, "capabilities").stdout).group(1)


def running_mib(lab, host):
    """The memory a declared capacity counts on host: the maximum memory of each guest running there, from virsh."""
    total = 0
    for name in lab.names(host):
        total += int(re.search(r"Max memory:\s+(\d+) KiB", lab.virsh(host, "dominfo", name).stdout).group(1)) // 1024
    return total


@pytest.fixture()
def stayers(lab):
    for name in STAYERS:
        lab.add_guest(name, "hv1")
    lab.virsh("hv1", "metadata", "sy-home", "--uri", SETTINGS_NS, "--key", "hostmaint", "--set",
              '<settings return="home"/>', "--live", "--config")
    yield STAYERS
    for name in STAYERS:
        lab.remove_guest(name)
    lab.clear_maintenance()


def test_guests_stay_where_they_land_and_only_the_one_that_demands_its_home_comes_back(lab, stayers):
    check = lab.ansible("hv1", "hostmaint.libvirt.evacuate", {"return_home": False, "avoid": ["hv9"]}, check=True)["hv1"]
    assert not check.get("failed") and check["changed"] is True, check.get("msg")
    said = dict((m["guest"], (m["destination"], m["home_after"])) for m in check["plan"]["moves"])
    assert sorted(said) == sorted(STAYERS)
    assert said["sy-home"][1] == "hv1" and all(said[n][1] == said[n][0] for n in ("sy-1", "sy-2")), said

    result = lab.ansible("hv1", "hostmaint.libvirt.evacuate", {"return_home": False})["hv1"]
    assert not result.get("failed"), result.get("msg")
    assert result["empty"] is True and lab.names("hv1", "--all") == []
    landed = {}
    for outcome in result["outcomes"]:
        assert outcome["outcome"] == "migrated" and lab.running_on(outcome["guest"]) == [outcome["destination"]]
        landed[outcome["guest"]] = outcome["destination"]
    for name in ("sy-1", "sy-2"):  # the record on each guest names where it runs, by name and UUID
        record = lab.record(landed[name], name)
        assert 'host="%s"' % landed[name] in record and 'host_uuid="%s"' % host_uuid(lab, landed[name]) in record
    assert 'host="hv1"' in lab.record(landed["sy-home"], "sy-home")
    assert lab.in_maintenance("hv1")

    restored = lab.ansible("hv1", "hostmaint.libvirt.restore")["hv1"]
    assert not restored.get("failed"), restored.get("msg")
    assert [(o["guest"], o["outcome"]) for o in restored["outcomes"]] == [("sy-home", "migrated")]
    assert restored["maintenance_cleared"] is True and not lab.in_maintenance("hv1")
    assert lab.running_on("sy-home") == ["hv1"] and lab.record("hv1", "sy-home") is None
    for name in ("sy-1", "sy-2"):  # they stay: no restore pulls them back
        assert lab.running_on(name) == [landed[name]]


def test_a_guest_goes_to_an_avoided_host_only_when_no_other_can_take_it(lab, stayers):
    result = lab.ansible("hv1", "hostmaint.libvirt.migration_preflight", {"avoid": ["hv2"]})["hv1"]
    assert not result.get("failed") and result["ready"] is True, result.get("msg")
    assert sorted((m["guest"], m["destination"], m["reasons"]) for m in result["plan"]["moves"]) == [
        (name, "hv3", []) for name in sorted(STAYERS)]
    # hv3 declared with room for two of them: the third goes to hv2 after all, and its move says why
    third = lab.ansible("hv1", "hostmaint.libvirt.migration_preflight", {
        "avoid": ["hv2"], "reserve_mib": 0,
        "destinations": [{"name": "hv2"}, {"name": "hv3", "capacity_mib": 2 * 256 + running_mib(lab, "hv3")}]})["hv1"]
    assert not third.get("failed") and third["ready"] is True, third.get("msg")
    avoided = [m for m in third["plan"]["moves"] if m["destination"] == "hv2"]
    assert len(avoided) == 1 and avoided[0]["reasons"][0]["code"] == "avoided", third["plan"]["moves"]
    assert avoided[0]["reasons"][0]["message"].endswith("a host to be emptied next (avoid): no other destination "
                                                        "can take it")


def test_a_declared_capacity_is_the_room_hypervisor_info_and_preflight_see(lab):
    lab.add_guest("cp-there", "hv2", "--memory", "256")
    lab.add_guest("cp-here", "hv1", "--memory", "192")
    try:
        running = running_mib(lab, "hv2")
        info = lab.ansible("hv2", "hostmaint.libvirt.hypervisor_info", {"capacity_mib": running + 128})["hv2"]
        facts = info["hypervisor"]
        assert (facts["capacity_mib"], facts["memory_free_mib"]) == (running + 128, 128), facts
        assert facts["memory_measured_free_mib"] > 128  # the lab's hosts share one machine's memory, all of it free
        bad = lab.ansible("hv2", "hostmaint.libvirt.hypervisor_info", {"capacity_mib": -1})["hv2"]
        assert bad.get("failed") and bad["msg"] == "capacity_mib of this host must be 0 (not declared) or more, got -1"

        verdict = lab.ansible("hv1", "hostmaint.libvirt.migration_preflight", {
            "guests": ["cp-here"], "reserve_mib": 0,
            "destinations": [{"name": "hv2", "capacity_mib": running + 128},
                             {"name": "hv3", "capacity_mib": 64 + running_mib(lab, "hv3")}]})["hv1"]
        assert not verdict.get("failed") and verdict["ready"] is False, verdict.get("msg")
        for host, free in (("hv2", 128), ("hv3", 64)):
            assert verdict["verdicts"]["cp-here"][host]["problems"] == [{
                "code": "memory", "guest": "cp-here", "destination": host,
                "message": "cannot live-migrate cp-here to %s: destination has %d MiB free (%d MiB less the 0 MiB "
                           "reserve), guest needs 192 MiB" % (host, free, free)}]
    finally:
        lab.remove_guest("cp-there")
        lab.remove_guest("cp-here")
