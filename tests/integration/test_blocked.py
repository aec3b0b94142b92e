# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evacuations that cannot be carried out move nothing and say why, guest by guest."""

from __future__ import annotations

import pytest

from conftest import PASSTHROUGH, lab_cli


@pytest.fixture()
def plain(lab):
    lab.add_guest("bl-plain", "hv1")
    yield
    lab.remove_guest("bl-plain")
    lab.clear_maintenance()


def assert_nothing_moved(lab, result, guests):
    assert result.get("failed") is True
    assert "nothing was moved" in result["msg"]
    assert "outcomes" not in result
    for guest in guests:
        assert lab.defined_on(guest) == ["hv1"]
    assert not lab.in_maintenance("hv1")


def test_destination_missing_a_bridge(lab, plain):
    lab_cli("exec", "hv1", "ip", "link", "add", "br7", "type", "bridge")
    lab_cli("exec", "hv1", "ip", "link", "set", "br7", "up")
    try:
        lab.add_guest("bl-br7", "hv1", "--extra-bridge", "br7")
        result = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
        assert_nothing_moved(lab, result, ["bl-br7", "bl-plain"])
        blocked = dict((b["guest"], b) for b in result["plan"]["blocked"])
        assert list(blocked) == ["bl-br7"]
        codes = dict((r["destination"], r["code"]) for r in blocked["bl-br7"]["reasons"])
        assert codes == {"hv2": "bridge_missing", "hv3": "bridge_missing"}
        assert "bl-br7" in result["msg"] and "br7" in result["msg"]
        # partial evacuation moves the rest, and reports the host not empty
        partial = lab.ansible("hv1", "hostmaint.libvirt.evacuate", {"allow_partial": True})["hv1"]
        assert partial["empty"] is False and partial["remaining"] == ["bl-br7"]
        assert lab.defined_on("bl-plain") in (["hv2"], ["hv3"])
        assert lab.defined_on("bl-br7") == ["hv1"]
    finally:
        lab.remove_guest("bl-br7")
        lab_cli("exec", "hv1", "ip", "link", "del", "br7", check=False)


def test_destination_without_memory(lab, plain):
    lab.add_guest("bl-big", "hv1", "--memory", "16384")
    try:
        facts = lab.ansible("hv2", "hostmaint.libvirt.hypervisor_info")["hv2"]["hypervisor"]
        reserve = facts["memory_free_mib"] - 8192  # leaves hv2 and hv3 about 8 GiB: the 16 GiB guest cannot fit
        result = lab.ansible("hv1", "hostmaint.libvirt.evacuate", {"reserve_mib": reserve})["hv1"]
        assert_nothing_moved(lab, result, ["bl-big", "bl-plain"])
        blocked = dict((b["guest"], b) for b in result["plan"]["blocked"])
        assert list(blocked) == ["bl-big"]
        for reason in blocked["bl-big"]["reasons"]:
            assert reason["code"] == "memory"
            assert "16384 MiB" in reason["message"]
    finally:
        lab.remove_guest("bl-big")


def test_guest_with_a_passthrough_device(lab, plain, tmp_path):
    xml = tmp_path / "pci.xml"
    xml.write_text(PASSTHROUGH % "bl-pci")
    lab.virsh("hv1", "define", str(xml))
    try:
        result = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
        assert_nothing_moved(lab, result, ["bl-pci", "bl-plain"])
        blocked = dict((b["guest"], b) for b in result["plan"]["blocked"])
        assert [r["code"] for r in blocked["bl-pci"]["reasons"]] == ["host_device"]
        assert "PCI 0000:3b:00.2" in blocked["bl-pci"]["reasons"][0]["message"]
        # with policy skip it stays, and the others move
        skip = lab.ansible("hv1", "hostmaint.libvirt.evacuate", {"policies": {"bl-pci": "skip"}})["hv1"]
        assert not skip.get("failed"), skip.get("msg")
        assert [s["guest"] for s in skip["plan"]["skipped"]] == ["bl-pci"]
        assert lab.defined_on("bl-pci") == ["hv1"] and lab.defined_on("bl-plain") in (["hv2"], ["hv3"])
    finally:
        lab.virsh("hv1", "undefine", "bl-pci", check=False)


def test_bad_input_is_one_sentence_and_changes_nothing(lab, plain):
    cases = [
        ({"max_inbound": 0}, "max_inbound must be 1 or more, got 0"),
        ({"policies": {"bl-plain": "later"}}, "policies gives guest bl-plain the policy 'later', expected one of"),
        ({"uri_template": "qemu+tls://nowhere/system"}, "must contain {host}"),
    ]
    for args, message in cases:
        result = lab.ansible("hv1", "hostmaint.libvirt.evacuate", args)["hv1"]
        assert result.get("failed") is True and message in result["msg"], result["msg"]
        assert lab.defined_on("bl-plain") == ["hv1"] and not lab.in_maintenance("hv1")
    result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", {"guest": "nope", "destination": "hv2"})["hv1"]
    assert result["failed"] and result["msg"] == "guest nope is defined neither on hv1 nor on the destination hv2: name a guest of hv1"
    result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", {"guest": "bl-plain", "destination": "hv9"})["hv1"]
    assert result["failed"] and result["msg"] == ("destination hv9 is not among destinations (hv2, hv3): name one of them, "
                                                  "or add hv9 to destinations")
    # an unreachable destination is a verdict, not a crash: the other destination takes the guest
    result = lab.ansible("hv1", "hostmaint.libvirt.migration_preflight", {
        "destinations": [{"name": "hv2"}, {"name": "ghost", "address": lab.hosts()["hv1"].rsplit(".", 1)[0] + ".250"}],
        "connect_timeout": 2})["hv1"]
    assert result["verdicts"]["bl-plain"]["ghost"]["problems"][0]["code"] == "unreachable"
    assert result["verdicts"]["bl-plain"]["hv2"]["ok"] is True and result["ready"] is True
    assert lab.defined_on("bl-plain") == ["hv1"]
