# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import domain_xml
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MigrationRecord

FULL = """
<domain type='kvm'>
  <name>web01</name>
  <uuid>0b3f8a9e-5f4e-4d0c-9a55-2f1b9c3e7d10</uuid>
  <metadata>
    <hostmaint:origin xmlns:hostmaint="urn:hostmaint:libvirt:origin:1" host="hv1" host_uuid="u-1" run_id="r1"
        time="2026-11-25T18:00:00Z"/>
    <hostmaint:settings xmlns:hostmaint="urn:hostmaint:libvirt:settings:1" policy="shutdown" anti_affinity="web"/>
    <other:thing xmlns:other="urn:example:other" host="not-ours"/>
  </metadata>
  <memory unit='GiB'>4</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <memoryBacking><hugepages/></memoryBacking>
  <os><type arch='x86_64' machine='pc-q35-7.2'>hvm</type></os>
  <cpu mode='host-model'/>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/web01.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/shared/vm/web01-data.raw'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/web01-db'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cd'/>
      <source network='backend'/>
    </interface>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x03' slot='0x00' function='0x1'/></source>
    </hostdev>
    <hostdev mode='subsystem' type='usb'>
      <source><vendor id='0x046d'/><product id='0xc52b'/></source>
    </hostdev>
  </devices>
</domain>
"""

POOLS = [
    dict(name="default", type="dir", path="/var/lib/libvirt/images", shared=False),
    dict(name="shared", type="dir", path="/srv/shared", shared=True),
    dict(name="root", type="dir", path="/", shared=False),
]


def test_full_domain_is_read_completely():
    guest = domain_xml.parse_domain(FULL, state="running", persistent=True, pools=POOLS)
    assert (guest.name, guest.uuid, guest.state, guest.persistent) == (
        "web01", "0b3f8a9e-5f4e-4d0c-9a55-2f1b9c3e7d10", "running", True)
    assert (guest.memory_mib, guest.max_memory_mib, guest.vcpus) == (2048, 4096, 2)
    assert (guest.domain_type, guest.machine, guest.arch, guest.cpu_mode) == ("kvm", "pc-q35-7.2", "x86_64", "host-model")
    assert guest.hugepages is True
    disks = dict((d.target, d) for d in guest.disks)
    assert (disks["vda"].path, disks["vda"].format, disks["vda"].bus, disks["vda"].pool, disks["vda"].shared) == (
        "/var/lib/libvirt/images/web01.qcow2", "qcow2", "virtio", "default", False)
    # the deepest pool holding the file wins over "/"
    assert (disks["vdb"].pool, disks["vdb"].shared) == ("shared", True)
    assert (disks["vdc"].source_type, disks["vdc"].path, disks["vdc"].shared) == ("network", "rbd:pool/web01-db", True)
    assert (disks["sda"].device, disks["sda"].path, disks["sda"].readonly) == ("cdrom", None, True)
    assert [(n.type, n.source, n.mac, n.model) for n in guest.interfaces] == [
        ("bridge", "br0", "52:54:00:aa:bb:cc", "virtio"), ("network", "backend", "52:54:00:aa:bb:cd", None)]
    assert guest.interfaces[0].bridge == "br0" and guest.interfaces[1].network == "backend"
    assert [h.description for h in guest.host_devices] == ["PCI 0000:03:00.1", "USB 046d:c52b"]
    assert guest.migratable is False
    assert guest.non_migratable_reasons == [
        "host device passthrough (PCI 0000:03:00.1) pins the guest to its host",
        "host device passthrough (USB 046d:c52b) pins the guest to its host",
    ]
    assert (guest.policy, guest.anti_affinity) == ("shutdown", "web")
    assert guest.record == MigrationRecord("hv1", "u-1", "r1", "2026-11-25T18:00:00Z")
    assert guest.as_dict()["migratable"] is False


def test_minimal_domain_defaults():
    guest = domain_xml.parse_domain("<domain type='qemu'><name>g</name><memory>131072</memory></domain>")
    assert (guest.memory_mib, guest.vcpus, guest.disks, guest.interfaces) == (128, 1, [], [])
    assert (guest.policy, guest.record, guest.migratable, guest.state) == ("migrate", None, True, "shutoff")


@pytest.mark.parametrize("xml, message", [
    ("<domain", "unreadable domain XML"),
    ("<network><name>x</name></network>", "expected a <domain> element, got <network>"),
    ("<domain type='kvm'/>", "domain XML has no <name>"),
])
def test_bad_xml_is_one_clear_error(xml, message):
    with pytest.raises(domain_xml.DomainXMLError, match=message) as error:
        domain_xml.parse_domain(xml)
    # the collection's error type: the modules' one exit point reports it as one sentence, not a traceback
    assert isinstance(error.value, HostmaintError) and isinstance(error.value, ValueError)
    assert error.value.message.startswith(message)


@pytest.mark.parametrize("xml, message", [
    ("<domain><name>g</name><memory>lots</memory></domain>",
     "the domain XML of g has a value that is not a number (could not convert string to float: 'lots')"),
    ("<domain><name>g</name><vcpu>two</vcpu></domain>",
     "the domain XML of g has a value that is not a number (invalid literal for int() with base 10: 'two')"),
])
def test_a_number_that_is_none_is_one_clear_error_naming_the_guest(xml, message):
    with pytest.raises(domain_xml.DomainXMLError) as error:
        domain_xml.parse_domain(xml)
    assert error.value.message == message and error.value.details == {"guest": "g"}


@pytest.mark.parametrize("xml, reason", [
    ("<interface type='hostdev'><source><address type='pci' bus='0x05'/></source></interface>", "SR-IOV"),
    ("<filesystem type='mount'><driver type='virtiofs'/><source dir='/x'/><target dir='x'/></filesystem>",
     "virtiofs"),
    ("<hostdev mode='subsystem' type='mdev'><source><address uuid='c2177883'/></source></hostdev>",
     "mediated device c2177883"),
])
def test_other_host_bound_devices(xml, reason):
    guest = domain_xml.parse_domain("<domain><name>g</name><devices>%s</devices></domain>" % xml)
    assert guest.migratable is False
    assert reason in guest.non_migratable_reasons[0]


SETTINGS = ("<domain><name>g</name><metadata><s:settings xmlns:s='urn:hostmaint:libvirt:settings:1' %s/>"
            "</metadata></domain>")


@pytest.mark.parametrize("attributes, policy", [
    ("policy='explode'", "explode"),  # kept as written: preflight blocks the guest naming it (unknown_policy)
    ("policy='Shutdown'", "Shutdown"),  # no guessing either
    ("policy='skip'", "skip"),
    ("policy=''", "migrate"),  # not set: the default
    ("anti_affinity='db'", "migrate"),
])
def test_a_policy_is_read_as_written_and_defaults_to_migrate_only_when_none_is_set(attributes, policy):
    assert domain_xml.parse_domain(SETTINGS % attributes).policy == policy


def test_record_round_trip_through_metadata_strings():
    record = MigrationRecord("hv3", "uuid-3", "run-9", "2026-11-25T19:00:00Z")
    element = domain_xml.record_xml(record)
    assert element.startswith("<origin ")
    # libvirt hands the element back with its namespace prefix
    returned = element.replace("<origin ", "<hostmaint:origin xmlns:hostmaint='%s' " % domain_xml.ORIGIN_NS)
    assert domain_xml.record_from_xml(returned) == record
    assert domain_xml.record_from_xml("") is None
    with pytest.raises(domain_xml.DomainXMLError):
        domain_xml.record_from_xml("<origin")


def test_settings_xml_validates_policy():
    assert domain_xml.settings_xml(policy="skip", anti_affinity="db") == '<settings policy="skip" anti_affinity="db" />'
    with pytest.raises(domain_xml.DomainXMLError, match="unknown policy 'later'"):
        domain_xml.settings_xml(policy="later")


@pytest.mark.parametrize("attributes, return_to, demanded", [
    ("return='home'", "home", True),
    ("return='away'", "away", False),  # kept as written: evacuate refuses it naming the guest (steps.check_returns)
    ("return='Home'", "Home", False),  # no guessing
    ("policy='skip'", None, False),  # not set
])
def test_the_return_attribute_is_read_as_written(attributes, return_to, demanded):
    guest = domain_xml.parse_domain(SETTINGS % attributes)
    assert (guest.return_to, guest.home_demanded) == (return_to, demanded)
    assert guest.as_dict()["return_to"] == return_to  # what guest_info returns


def test_settings_xml_writes_return_home_and_nothing_else():
    written = domain_xml.settings_xml(policy="shutdown", return_to="home")
    assert written == '<settings policy="shutdown" return="home" />'
    back = SETTINGS % written[len("<settings "):-len(" />")]
    assert domain_xml.parse_domain(back).return_to == "home"
    with pytest.raises(domain_xml.DomainXMLError, match="unknown return 'away': expected home"):
        domain_xml.settings_xml(return_to="away")
