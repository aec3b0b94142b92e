# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Domain XML <-> Guest, and the collection's own metadata elements.

Pure: xml.etree and the collection's model and errors only. The adapter hands in the XML libvirt returned plus the live facts XML does
not carry (state, persistence); everything else is read from the XML here.

Two metadata elements of our own live in a guest's <metadata>, each under its own namespace so
that one can change without touching the other:

- the migration record (written by evacuation, removed once the guest is home again)::

    <hostmaint:origin xmlns:hostmaint="urn:hostmaint:libvirt:origin:1"
                      host="hv1" host_uuid="..." run_id="..." time="2026-11-25T18:00:00Z"/>

- the operator's per-guest settings (written by people or their automation)::

    <hostmaint:settings xmlns:hostmaint="urn:hostmaint:libvirt:settings:1"
                        policy="shutdown" anti_affinity="db" probe="tcp://192.0.2.50:22" return="home"/>

  ``return="home"``: the guest demands its home; an evacuation that lets guests stay where they land
  (``return_home: false``) still gives it a record naming its home. Read as written (``Guest.return_to``).
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    POLICIES,
    RETURNS,
    Disk,
    Guest,
    HostDevice,
    MigrationRecord,
    Nic,
)

PREFIX = "hostmaint"
ORIGIN_NS = "urn:hostmaint:libvirt:origin:1"
SETTINGS_NS = "urn:hostmaint:libvirt:settings:1"
ORIGIN_TAG = "origin"
SETTINGS_TAG = "settings"

# Storage pool types whose volumes every host of a cluster reaches at the same path by nature.
SHARED_POOL_TYPES = frozenset(("netfs", "gluster", "rbd", "iscsi", "iscsi-direct", "sheepdog", "vstorage"))

# libvirt memory units, as factors to KiB.
_UNITS_TO_KIB = {
    "b": 1 / 1024.0, "bytes": 1 / 1024.0,
    "k": 1, "kib": 1, "kb": 1000 / 1024.0,
    "m": 1024, "mib": 1024, "mb": 1000 ** 2 / 1024.0,
    "g": 1024 ** 2, "gib": 1024 ** 2, "gb": 1000 ** 3 / 1024.0,
    "t": 1024 ** 3, "tib": 1024 ** 3, "tb": 1000 ** 4 / 1024.0,
}


class DomainXMLError(HostmaintError, ValueError):
    """The XML is not a libvirt domain definition we can read: one sentence, like every error of the collection.

    A HostmaintError, so that a malformed domain XML reaches the modules' one exit point as a failure, not a
    traceback (the adapter adds the guest's host); still a ValueError for callers that caught it as one.
    """


def _mib(element):
    """A libvirt memory element (value plus unit attribute, KiB by default) in MiB."""
    if element is None or not (element.text or "").strip():
        return 0
    unit = element.get("unit", "KiB").lower()
    kib = float(element.text.strip()) * _UNITS_TO_KIB.get(unit, 1)
    return int(kib // 1024)


def _parse_disk(element):
    source = element.find("source")
    driver = element.find("driver")
    target = element.find("target")
    source_type = element.get("type", "file")
    path = None
    pool = None
    if source is not None:
        if source_type == "file":
            path = source.get("file")
        elif source_type == "block":
            path = source.get("dev")
        elif source_type == "dir":
            path = source.get("dir")
        elif source_type == "network":
            path = "%s:%s" % (source.get("protocol", "network"), source.get("name", ""))
        elif source_type == "volume":
            pool = source.get("pool")
            path = source.get("volume")
    return Disk(
        target=target.get("dev") if target is not None else "",
        device=element.get("device", "disk"),
        source_type=source_type,
        path=path,
        format=driver.get("type") if driver is not None else None,
        bus=target.get("bus") if target is not None else None,
        readonly=element.find("readonly") is not None,
        shareable=element.find("shareable") is not None,
        pool=pool,
        shared=source_type == "network",
    )


def _parse_nic(element):
    source = element.find("source")
    mac = element.find("mac")
    model = element.find("model")
    nic_type = element.get("type", "")
    source_name = None
    if source is not None:
        source_name = source.get(nic_type) or source.get("bridge") or source.get("network") or source.get("dev")
    return Nic(
        type=nic_type,
        source=source_name,
        mac=mac.get("address") if mac is not None else None,
        model=model.get("type") if model is not None else None,
    )


def _describe_hostdev(element):
    dev_type = element.get("type", "unknown")
    source = element.find("source")
    if source is None:
        return HostDevice(type=dev_type, description="%s device" % dev_type)
    address = source.find("address")
    if dev_type == "pci" and address is not None:
        desc = "PCI %s:%s:%s.%s" % tuple(
            (address.get(part) or "0x0").replace("0x", "").zfill(width)
            for part, width in (("domain", 4), ("bus", 2), ("slot", 2), ("function", 1))
        )
    elif dev_type == "usb":
        vendor = source.find("vendor")
        product = source.find("product")
        if vendor is not None and product is not None:
            desc = "USB %s:%s" % (vendor.get("id", "").replace("0x", ""), product.get("id", "").replace("0x", ""))
        elif address is not None:
            desc = "USB bus %s device %s" % (address.get("bus"), address.get("device"))
        else:
            desc = "USB device"
    elif dev_type == "mdev" and address is not None:
        desc = "mediated device %s" % address.get("uuid")
    elif dev_type == "scsi":
        adapter = source.find("adapter")
        desc = "SCSI device on %s" % (adapter.get("name") if adapter is not None else "host adapter")
    else:
        desc = "%s device" % dev_type
    return HostDevice(type=dev_type, description=desc)


def _non_migratable(devices, host_devices):
    reasons = ["host device passthrough (%s) pins the guest to its host" % dev.description for dev in host_devices]
    if devices is not None:
        for nic in devices.findall("interface"):
            if nic.get("type") == "hostdev":
                reasons.append("network interface passed through from the host (SR-IOV) pins the guest to its host")
        for fs in devices.findall("filesystem"):
            driver = fs.find("driver")
            if driver is not None and driver.get("type") == "virtiofs":
                reasons.append("virtiofs filesystem cannot be live-migrated")
    return reasons


def _metadata_child(root, namespace, tag):
    metadata = root.find("metadata")
    if metadata is None:
        return None
    return metadata.find("{%s}%s" % (namespace, tag))


def parse_record(element):
    """The migration record from its metadata element (or None)."""
    if element is None or not element.get("host"):
        return None
    return MigrationRecord(
        origin_host=element.get("host"),
        origin_host_uuid=element.get("host_uuid"),
        run_id=element.get("run_id"),
        time=element.get("time"),
    )


def record_from_xml(text):
    """The migration record from the XML string libvirt's virDomainGetMetadata returns."""
    if not text:
        return None
    try:
        element = ET.fromstring(text)
    except ET.ParseError as exc:
        raise DomainXMLError("unreadable migration record: %s" % exc)
    if element.tag.startswith("{"):
        element.tag = element.tag.split("}", 1)[1]
    return parse_record(element)


def record_xml(record):
    """The migration record as the element string virDomainSetMetadata takes (no namespace)."""
    element = ET.Element(ORIGIN_TAG)
    element.set("host", record.origin_host)
    for key in ("origin_host_uuid", "run_id", "time"):
        value = getattr(record, key)
        if value:
            element.set("host_uuid" if key == "origin_host_uuid" else key, value)
    return ET.tostring(element, encoding="unicode")


def settings_xml(policy=None, anti_affinity=None, probe=None, return_to=None):
    """The operator settings element string for virDomainSetMetadata (no namespace); ``return_to`` is its ``return``
    attribute (one of model.RETURNS)."""
    element = ET.Element(SETTINGS_TAG)
    if policy:
        if policy not in POLICIES:
            raise DomainXMLError("unknown policy %r: expected one of %s" % (policy, ", ".join(POLICIES)))
        element.set("policy", policy)
    if anti_affinity:
        element.set("anti_affinity", anti_affinity)
    if probe:
        element.set("probe", probe)
    if return_to:
        if return_to not in RETURNS:
            raise DomainXMLError("unknown return %r: expected %s" % (return_to, " or ".join(RETURNS)))
        element.set("return", return_to)
    return ET.tostring(element, encoding="unicode")


def assign_pools(disks, pools):
    """Mark each disk with the storage pool whose target directory holds it.

    ``pools`` is a list of dicts with ``name``, ``type``, ``path`` and ``shared``; the deepest
    matching pool wins. Disks already named by pool (type='volume') get the pool's sharing.
    """
    by_name = dict((pool["name"], pool) for pool in pools)
    for disk in disks:
        pool = by_name.get(disk.pool) if disk.pool else None
        if pool is None and disk.path and disk.path.startswith("/"):
            directory = posixpath.dirname(posixpath.normpath(disk.path))
            best = None
            for candidate in pools:
                root = posixpath.normpath(candidate.get("path") or "")
                if not candidate.get("path"):
                    continue
                if directory == root or directory.startswith(root.rstrip("/") + "/"):
                    if best is None or len(root) > len(posixpath.normpath(best["path"])):
                        best = candidate
            pool = best
        if pool is not None:
            disk.pool = pool["name"]
            disk.shared = disk.shared or bool(pool.get("shared"))
    return disks


def parse_domain(xml, state="shutoff", persistent=True, pools=None):
    """A Guest from libvirt domain XML plus the live facts the XML does not carry."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DomainXMLError("unreadable domain XML: %s" % exc)
    if root.tag != "domain":
        raise DomainXMLError("expected a <domain> element, got <%s>" % root.tag)
    name = root.findtext("name")
    if not name:
        raise DomainXMLError("domain XML has no <name>")
    try:
        return _guest(root, name, state, persistent, pools)
    except DomainXMLError:
        raise
    except ValueError as exc:  # a number that is not one: <memory>, <vcpu>
        raise DomainXMLError("the domain XML of %s has a value that is not a number (%s)" % (name, exc), guest=name)


def _guest(root, name, state, persistent, pools):
    memory = _mib(root.find("memory"))
    current = _mib(root.find("currentMemory")) or memory
    vcpu = root.find("vcpu")
    vcpus = int(vcpu.get("current") or vcpu.text) if vcpu is not None and (vcpu.text or "").strip() else 1
    os_type = root.find("os/type")
    cpu = root.find("cpu")
    devices = root.find("devices")

    disks = [_parse_disk(d) for d in devices.findall("disk")] if devices is not None else []
    assign_pools(disks, pools or [])
    nics = [_parse_nic(n) for n in devices.findall("interface") if n.get("type") != "hostdev"] if devices is not None else []
    host_devices = [_describe_hostdev(h) for h in devices.findall("hostdev")] if devices is not None else []

    settings = _metadata_child(root, SETTINGS_NS, SETTINGS_TAG)
    policy = settings.get("policy") if settings is not None else None

    return Guest(
        name=name,
        uuid=root.findtext("uuid") or "",
        state=state,
        persistent=persistent,
        memory_mib=current,
        max_memory_mib=memory,
        vcpus=vcpus,
        domain_type=root.get("type", "kvm"),
        machine=os_type.get("machine") if os_type is not None else None,
        arch=os_type.get("arch") if os_type is not None else None,
        cpu_mode=cpu.get("mode", "custom") if cpu is not None else None,
        cpu_model=cpu.findtext("model") if cpu is not None else None,
        hugepages=root.find("memoryBacking/hugepages") is not None,
        disks=disks,
        interfaces=nics,
        host_devices=host_devices,
        non_migratable_reasons=_non_migratable(devices, host_devices),
        policy=policy or "migrate",  # as written: one that is none of POLICIES blocks the guest (preflight)
        anti_affinity=settings.get("anti_affinity") if settings is not None else None,
        probe=settings.get("probe") if settings is not None else None,
        return_to=settings.get("return") if settings is not None else None,  # as written: evacuate judges it
        record=parse_record(_metadata_child(root, ORIGIN_NS, ORIGIN_TAG)),
    )


# -- live storage migration (module_utils/disk_moves.py decides, the adapter carries it out) --------------
DISK_MOVE_NS = "urn:hostmaint:libvirt:disk-move:1"
DISK_MOVE_TAG = "diskmove"


def disk_move_record_xml(record):
    """The record of a disk move under way as the element string virDomainSetMetadata takes (no namespace).

    ``record``: {run_id, time, source_after, disks: [{target, source, dest, created, phase}]}; written before the
    copy starts (as vdsm does), so that a re-run or stop_run can finish or undo what a dead run left."""
    element = ET.Element(DISK_MOVE_TAG)
    for key in ("run_id", "time", "source_after"):
        if record.get(key):
            element.set(key, str(record[key]))
    for disk in record.get("disks") or []:
        child = ET.SubElement(element, "disk")
        for key in ("target", "source", "dest", "phase"):
            if disk.get(key):
                child.set(key, str(disk[key]))
        child.set("created", "yes" if disk.get("created") else "no")
    return ET.tostring(element, encoding="unicode")


def disk_move_record(xml):
    """The disk move record of a domain XML (live or inactive), as disk_move_record_xml takes it, or None. libvirt
    puts the element's children into its namespace too (<hostmaint:disk>)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise DomainXMLError("unreadable domain XML: %s" % exc)
    element = _metadata_child(root, DISK_MOVE_NS, DISK_MOVE_TAG)
    if element is None or not element.get("run_id"):
        return None
    record = dict((key, element.get(key)) for key in ("run_id", "time", "source_after") if element.get(key))
    record["disks"] = [dict(target=d.get("target"), source=d.get("source"), dest=d.get("dest"),
                            phase=d.get("phase"), created=d.get("created") == "yes")
                       for d in element.findall("{%s}disk" % DISK_MOVE_NS) + element.findall("disk")]
    return record


def _disk_element(root, target):
    for disk in root.findall("devices/disk"):
        element = disk.find("target")
        if element is not None and element.get("dev") == target:
            return disk
    return None


def disk_source(xml, target):
    """The file (or block device) disk ``target`` (vda) of a domain XML names, or None (no such disk)."""
    disk = _disk_element(ET.fromstring(xml), target)
    if disk is None or disk.find("source") is None:
        return None
    source = disk.find("source")
    return source.get("file") or source.get("dev")


def disk_mirror(xml, target):
    """The block copy job libvirt shows on disk ``target`` of a live domain XML: {dest, ready, job} or None.

    ``ready`` is libvirt's own word (``<mirror ready='yes'>``): the copy mirrors every write, and only then may it
    pivot. Progress at 100 % is not the same thing ("not ready for pivot yet")."""
    disk = _disk_element(ET.fromstring(xml), target)
    mirror = disk.find("mirror") if disk is not None else None
    if mirror is None:
        return None
    source = mirror.find("source")
    dest = mirror.get("file") or (source.get("file") or source.get("dev") if source is not None else None)
    return dict(dest=dest, ready=mirror.get("ready") == "yes", job=mirror.get("job") or "copy")


def with_disk_source(xml, target, path, fmt=None):
    """The domain XML with disk ``target`` naming the file ``path`` (and its driver type ``fmt`` when given): the
    inactive definition a pivot left naming the old disk, made to boot from the new one. DomainXMLError when the
    domain has no such disk."""
    root = ET.fromstring(xml)
    disk = _disk_element(root, target)
    if disk is None:
        raise DomainXMLError("the definition of %s has no disk %s" % (root.findtext("name"), target))
    for child in list(disk):
        if child.tag in ("source", "backingStore"):
            disk.remove(child)
    disk.set("type", "file")
    source = ET.Element("source")
    source.set("file", path)
    target_element = disk.find("target")
    disk.insert(list(disk).index(target_element) if target_element is not None else 0, source)
    if fmt:
        driver = disk.find("driver")
        if driver is not None:
            driver.set("type", fmt)
    return ET.tostring(root, encoding="unicode")


def xml_text(value):
    """``value`` escaped for an XML attribute or text in single or double quotes."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")
            .replace('"', "&quot;"))
