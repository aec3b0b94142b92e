# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.guest_info against real lab hosts, checked against what virsh says."""

from __future__ import annotations

import re

import pytest

from conftest import PASSTHROUGH


@pytest.fixture(scope="module")
def guests(lab, tmp_path_factory):
    lab.add_guest("gi-shared", "hv1", "--disk", "shared", "--memory", "192")
    lab.add_guest("gi-local", "hv1", "--disk", "local")
    xml = tmp_path_factory.mktemp("xml") / "pci.xml"
    xml.write_text(PASSTHROUGH % "gi-pci")
    lab.virsh("hv1", "define", str(xml))
    lab.virsh("hv1", "metadata", "gi-local", "--uri", "urn:hostmaint:libvirt:origin:1", "--key", "hostmaint",
              "--set", '<origin host="hv3" host_uuid="uuid-of-hv3" run_id="run-42" time="2026-11-25T18:00:00Z"/>',
              "--live", "--config")
    yield ["gi-local", "gi-pci", "gi-shared"]
    for name in ("gi-shared", "gi-local"):
        lab.remove_guest(name)
    lab.virsh("hv1", "undefine", "gi-pci", check=False)


def test_guest_info_matches_virsh(lab, guests):
    result = lab.ansible("hv1", "hostmaint.libvirt.guest_info")["hv1"]
    assert result["changed"] is False
    assert result["host"]["hostname"] == "hv1"
    capabilities = lab.virsh("hv1", "capabilities").stdout
    assert "<uuid>%s</uuid>" % result["host"]["uuid"] in capabilities
    by_name = dict((g["name"], g) for g in result["guests"])
    assert sorted(by_name) == sorted(lab.names("hv1", "--all")) == guests

    for name in ("gi-shared", "gi-local"):
        guest = by_name[name]
        assert guest["uuid"] == lab.virsh("hv1", "domuuid", name).stdout.strip()
        assert guest["state"] == lab.virsh("hv1", "domstate", name).stdout.strip() == "running"
        dominfo = lab.virsh("hv1", "dominfo", name).stdout
        assert "%d KiB" % (guest["memory_mib"] * 1024) in dominfo
        assert re.search(r"CPU\(s\):\s+%d\n" % guest["vcpus"], dominfo)
        assert guest["persistent"] is True and guest["migratable"] is True
        iflist = lab.virsh("hv1", "domiflist", name).stdout.split()
        assert guest["interfaces"][0]["mac"] in iflist and "br0" in iflist
        assert guest["interfaces"][0]["source"] == "br0"
        blk = lab.virsh("hv1", "domblklist", name, "--details").stdout.split()
        disk = guest["disks"][0]
        assert disk["path"] in blk and disk["target"] == "vda" and disk["format"] == "qcow2" and disk["bus"] == "virtio"
    assert by_name["gi-shared"]["memory_mib"] == 192
    assert (by_name["gi-shared"]["disks"][0]["pool"], by_name["gi-shared"]["disks"][0]["shared"]) == ("lab-shared", True)
    assert (by_name["gi-local"]["disks"][0]["pool"], by_name["gi-local"]["disks"][0]["shared"]) == ("default", False)

    assert by_name["gi-local"]["record"] == {"origin_host": "hv3", "origin_host_uuid": "uuid-of-hv3",
                                             "run_id": "run-42", "time": "2026-11-25T18:00:00Z"}
    assert by_name["gi-shared"]["record"] is None

    pci = by_name["gi-pci"]
    assert (pci["state"], pci["migratable"]) == ("shutoff", False)
    assert pci["host_devices"] == [{"type": "pci", "description": "PCI 0000:3b:00.2"}]
    assert pci["non_migratable_reasons"] == ["host device passthrough (PCI 0000:3b:00.2) pins the guest to its host"]


def test_a_plain_directory_is_shared_only_by_the_operators_word(lab, guests):
    result = lab.ansible("hv1", "hostmaint.libvirt.guest_info", {"names": ["gi-local", "nope"]})["hv1"]
    assert [g["name"] for g in result["guests"]] == ["gi-local"]
    assert result["guests"][0]["disks"][0]["shared"] is False
    assert result["missing"] == ["nope"]
    listed = lab.ansible("hv1", "hostmaint.libvirt.guest_info", {"names": ["gi-local"], "shared_pools": ["default"]})["hv1"]
    assert listed["guests"][0]["disks"][0]["shared"] is True


def test_every_host_answers_and_an_empty_host_lists_nothing(lab, guests):
    results = lab.ansible("hypervisors", "hostmaint.libvirt.guest_info")
    assert sorted(results) == ["hv1", "hv2", "hv3"]
    for host in ("hv2", "hv3"):
        assert results[host]["guests"] == [] and results[host]["host"]["hostname"] == host


def test_unreachable_uri_fails_with_one_sentence(lab, guests):
    # an address of the lab's own subnet where no host listens
    nobody = lab.hosts()["hv1"].rsplit(".", 1)[0] + ".250"
    uri = "qemu+ssh://root@%s/system?no_tty=1" % nobody
    result = lab.ansible("hv1", "hostmaint.libvirt.guest_info", {"uri": uri})["hv1"]
    assert result.get("failed") is True
    assert result["msg"].startswith("cannot connect to libvirt at %s: " % uri)
