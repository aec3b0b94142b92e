# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only file that calls libvirt: one connection per URI, turned into the collection's plain data."""

from __future__ import annotations

import json
import time
import traceback
import xml.etree.ElementTree as ET

from ansible_collections.hostmaint.libvirt.plugins.module_utils import domain_xml
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import STATES, HostFacts

LIBVIRT_IMPORT_ERROR = None
try:
    import libvirt
except ImportError:
    libvirt = None
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()

# Filesystems every host of a cluster mounts as one: a pool on them is shared storage.
SHARED_FS_TYPES = frozenset((
    "nfs", "nfs4", "cifs", "smb3", "ceph", "fuse.ceph", "glusterfs", "fuse.glusterfs", "gfs2", "ocfs2",
    "gpfs", "lustre", "beegfs", "fuse.quobyte", "fuse.sshfs",
))


LIBVIRT_ERRORS = (libvirt.libvirtError,) if libvirt is not None else ()


# The maintenance mark: a libvirt secret of the host itself, looked up by this usage. libvirt allows
# one secret per usage, so defining it is atomic: two runs cannot both mark one host.
MAINTENANCE_USAGE = "hostmaint:maintenance"
MAINTENANCE_XML = """<secret ephemeral='no' private='no'>
  <description>%s</description>
  <usage type='volume'><volume>%s</volume></usage>
</secret>"""


def _quiet(_ctx, _err):
    """libvirt prints every error to stderr by default; ours go into the module's result instead."""


def mount_fs_type(path, mounts_text):
    """The filesystem type of the mount holding path, from /proc/mounts text (pure)."""
    best = ("", None)
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        prefix = mount_point.rstrip("/") + "/"
        if (path == mount_point or path.startswith(prefix)) and len(mount_point) >= len(best[0]):
            best = (mount_point, fields[2])
    return best[1]


class LibvirtAdapter(object):
    """One libvirt connection, opened on first use and closed by close()."""

    def __init__(self, uri, conn=None, local=None):
        self.uri = uri
        self._conn = conn
        self.close_error = None
        self.local = local if local is not None else "://" in uri and uri.split("://", 1)[1].startswith("/")

    # -- connection -------------------------------------------------------------------------
    @property
    def conn(self):
        if self._conn is None:
            if libvirt is None:
                raise HostmaintError("the libvirt Python bindings are not installed", exception=LIBVIRT_IMPORT_ERROR)
            libvirt.registerErrorHandler(_quiet, None)
            try:
                self._conn = libvirt.open(self.uri)
            except LIBVIRT_ERRORS as exc:
                raise HostmaintError("cannot connect to libvirt at %s: %s" % (self.uri, exc.get_error_message()), uri=self.uri)
        return self._conn

    def close(self):
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except LIBVIRT_ERRORS as exc:
                # a peer that went away cannot be closed cleanly; that must not hide the real result
                self.close_error = str(exc)

    # -- host -------------------------------------------------------------------------------
    def host_identity(self):
        caps = ET.fromstring(self.conn.getCapabilities())
        return dict(hostname=self.conn.getHostname(), uuid=caps.findtext("host/uuid"), uri=self.uri)

    def pools(self, shared_names=()):
        """Storage pools as dicts: name, type, path, active, shared (and why)."""
        mounts = ""
        if self.local:
            try:
                with open("/proc/mounts") as handle:
                    mounts = handle.read()
            except (IOError, OSError):
                mounts = ""
        pools = []
        for pool in self.conn.listAllStoragePools(0):
            root = ET.fromstring(pool.XMLDesc(0))
            pool_type = root.get("type")
            path = root.findtext("target/path")
            fs_type = mount_fs_type(path, mounts) if path and mounts else None
            if pool.name() in shared_names:
                shared_by = "listed in shared_pools"
            elif pool_type in domain_xml.SHARED_POOL_TYPES:
                shared_by = "pool type %s" % pool_type
            elif fs_type in SHARED_FS_TYPES:
                shared_by = "filesystem %s" % fs_type
            else:
                shared_by = None
            pools.append(dict(name=pool.name(), type=pool_type, path=path, active=bool(pool.isActive()),
                              shared=shared_by is not None, shared_by=shared_by))
        return pools

    # -- guests -----------------------------------------------------------------------------
    def guests(self, pools=None):
        """Every domain of this host as a Guest, sorted by name."""
        pools = pools if pools is not None else self.pools()
        result = []
        for dom in self.conn.listAllDomains(0):
            try:
                state = STATES[dom.state()[0]]
                result.append(domain_xml.parse_domain(dom.XMLDesc(0), state=state, persistent=bool(dom.isPersistent()),
                                                      pools=pools))
            except LIBVIRT_ERRORS as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # vanished between listing and reading: not ours to report
                raise HostmaintError("cannot read guest %s on %s: %s" % (dom.name(), self.uri, exc.get_error_message()))
        return sorted(result, key=lambda guest: guest.name)

    # -- host facts ---------------------------------------------------------------------------
    def memory_mib(self):
        """(total, available for guests) in MiB: free plus reclaimable page cache and buffers."""
        stats = self.conn.getMemoryStats(-1, 0)
        total = int(stats.get("total", 0)) // 1024
        available = (int(stats.get("free", 0)) + int(stats.get("buffers", 0)) + int(stats.get("cached", 0))) // 1024
        return total, available

    def hugepages_free_mib(self, caps):
        """Free huge pages per page size (KiB -> free MiB), summed over NUMA cells."""
        sizes = [int(p.get("size")) for p in caps.findall("host/cpu/pages") if int(p.get("size", 4)) > 4]
        cells = caps.find("host/topology/cells")
        count = int(cells.get("num", 1)) if cells is not None else 1
        if not sizes:
            return {}
        try:
            free = self.conn.getFreePages(sizes, 0, count, 0)
        except LIBVIRT_ERRORS:
            return {}
        result = dict((size, 0) for size in sizes)
        for per_cell in free.values():
            for size, pages in per_cell.items():
                result[int(size)] = result.get(int(size), 0) + int(pages) * int(size) // 1024
        return result

    def bridges(self):
        names = []
        for iface in self.conn.listAllInterfaces(0):
            if iface.isActive() and ET.fromstring(iface.XMLDesc(0)).get("type") == "bridge":
                names.append(iface.name())
        return sorted(names)

    def networks(self):
        return sorted(net.name() for net in self.conn.listAllNetworks(0) if net.isActive())

    def existing_paths(self, paths, pools):
        """The disk locations among ``paths`` (absolute paths, or pool/volume) this host's pools hold.

        Shared pools are refreshed first, so files another host created there are seen."""
        found = []
        if not paths:
            return found
        for pool in self.conn.listAllStoragePools(0):
            shared = [p for p in pools if p["name"] == pool.name() and p["shared"]]
            if shared and pool.isActive():
                try:
                    pool.refresh(0)
                except LIBVIRT_ERRORS as exc:
                    del exc  # a pool busy refreshing still answers look-ups with what it knew
        for path in paths:
            try:
                if path.startswith("/"):
                    self.conn.storageVolLookupByPath(path)
                else:  # "pool/volume", a disk of type volume
                    pool, _sep, volume = path.partition("/")
                    self.conn.storagePoolLookupByName(pool).storageVolLookupByName(volume)
                found.append(path)
            except LIBVIRT_ERRORS as exc:
                if exc.get_error_code() not in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
                    raise HostmaintError("cannot look up %s on %s: %s" % (path, self.uri, exc.get_error_message()))
        return found

    def compare_cpu(self, cpu_xml, arch, machine, virttype):
        """(compatible, reason) as libvirt on this host judges a guest CPU definition."""
        if not cpu_xml:
            return True, None
        try:
            verdict = self.conn.compareHypervisorCPU(None, arch, machine, virttype, cpu_xml, 0)
        except LIBVIRT_ERRORS as exc:
            return False, exc.get_error_message()
        if verdict == libvirt.VIR_CPU_COMPARE_INCOMPATIBLE:
            return False, "the host's %s CPU cannot provide the guest's CPU" % virttype
        return True, None

    def guest_cpu_xml(self, name):
        """The <cpu> of a guest's migratable XML (host-model expanded), or None."""
        dom = self.domain(name)
        flags = libvirt.VIR_DOMAIN_XML_MIGRATABLE if dom.isActive() else 0
        cpu = ET.fromstring(dom.XMLDesc(flags)).find("cpu")
        return ET.tostring(cpu, encoding="unicode") if cpu is not None else None

    def host_facts(self, name, shared_names=(), guests=(), cpu_xml=None, paths=()):
        """This host as the decisions see it. ``guests``/``cpu_xml`` are the guests to judge CPUs for."""
        caps = ET.fromstring(self.conn.getCapabilities())
        machines = set()
        for guest in caps.findall("guest"):
            for machine in guest.findall("arch/machine"):
                machines.add((machine.text or "").strip())
                if machine.get("canonical"):
                    machines.add(machine.get("canonical"))
        total, available = self.memory_mib()
        pools = self.pools(shared_names)
        resident = self.guests(pools=pools)
        cpu_verdicts = {}
        for guest in guests:
            cpu_verdicts[guest.name] = self.compare_cpu((cpu_xml or {}).get(guest.name), guest.arch,
                                                        guest.machine, guest.domain_type)
        return HostFacts(
            name=name,
            uri=self.uri,
            uuid=caps.findtext("host/uuid"),
            hostname=self.conn.getHostname(),
            libvirt_version=int(self.conn.getLibVersion()),
            qemu_version=int(self.conn.getVersion()),
            arch=caps.findtext("host/cpu/arch"),
            cpu_model=caps.findtext("host/cpu/model"),
            memory_total_mib=total,
            memory_free_mib=available,
            hugepages_free_mib=self.hugepages_free_mib(caps),
            machine_types=sorted(m for m in machines if m),
            bridges=self.bridges(),
            networks=self.networks(),
            pools=pools,
            volume_paths=self.existing_paths(list(paths), pools),
            maintenance=self.maintenance() is not None,
            maintenance_info=self.maintenance(),
            cpu_compatible=cpu_verdicts,
            resident_groups=sorted(set(g.anti_affinity for g in resident if g.anti_affinity and g.active)),
        )

    # -- maintenance mark ---------------------------------------------------------------------
    def _maintenance_secret(self):
        try:
            return self.conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_VOLUME, MAINTENANCE_USAGE)
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                return None
            raise HostmaintError("cannot read the maintenance mark on %s: %s" % (self.uri, exc.get_error_message()))

    def maintenance(self):
        """The maintenance mark's details (dict) if this host is in maintenance, else None."""
        secret = self._maintenance_secret()
        if secret is None:
            return None
        try:
            return json.loads(secret.value(0).decode("utf-8"))
        except (LIBVIRT_ERRORS + (ValueError,)):
            return {"since": None, "run_id": None, "reason": "marked without details"}

    def set_maintenance(self, info):
        """Mark this host in maintenance; False when it already was (the mark is kept as it was)."""
        if self._maintenance_secret() is not None:
            return False
        description = "hostmaint: host in maintenance since %s (run %s)" % (info.get("since"), info.get("run_id"))
        try:
            secret = self.conn.secretDefineXML(MAINTENANCE_XML % (description, MAINTENANCE_USAGE), 0)
        except LIBVIRT_ERRORS as exc:
            if self._maintenance_secret() is not None:
                return False  # another run marked it a moment ago
            raise HostmaintError("cannot mark %s in maintenance: %s" % (self.uri, exc.get_error_message()))
        secret.setValue(json.dumps(info).encode("utf-8"), 0)
        return True

    def clear_maintenance(self):
        secret = self._maintenance_secret()
        if secret is None:
            return False
        secret.undefine()
        return True

    # -- guests -------------------------------------------------------------------------------
    def domain(self, name):
        try:
            return self.conn.lookupByName(name)
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise HostmaintError("unknown guest %s: %s has no such guest" % (name, self.uri), guest=name)
            raise HostmaintError("cannot read guest %s on %s: %s" % (name, self.uri, exc.get_error_message()))

    def has_domain(self, name):
        try:
            self.conn.lookupByName(name)
            return True
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise HostmaintError("cannot read guest %s on %s: %s" % (name, self.uri, exc.get_error_message()))

    def _metadata_flags(self, dom):
        flags = 0
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        if dom.isPersistent():
            flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
        return flags

    def set_record(self, name, record):
        dom = self.domain(name)
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain_xml.record_xml(record), domain_xml.PREFIX,
                        domain_xml.ORIGIN_NS, self._metadata_flags(dom))

    def clear_record(self, name):
        dom = self.domain(name)
        dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, domain_xml.ORIGIN_NS,
                        self._metadata_flags(dom))

    def guest(self, name, pools=None):
        dom = self.domain(name)
        return domain_xml.parse_domain(dom.XMLDesc(0), state=STATES[dom.state()[0]],
                                       persistent=bool(dom.isPersistent()),
                                       pools=pools if pools is not None else self.pools())

    def define(self, xml):
        try:
            return self.conn.defineXML(xml)
        except LIBVIRT_ERRORS as exc:
            raise HostmaintError("cannot define a guest on %s: %s" % (self.uri, exc.get_error_message()))

    def undefine(self, name):
        dom = self.domain(name)
        flags = getattr(libvirt, "VIR_DOMAIN_UNDEFINE_KEEP_NVRAM", 0)
        dom.undefineFlags(flags)

    def inactive_xml(self, name):
        return self.domain(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)

    def shutdown(self, name, timeout_s):
        """Clean shutdown with a bounded wait; True once the guest is off."""
        dom = self.domain(name)
        if not dom.isActive():
            return True
        dom.shutdown()
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if not dom.isActive():
                return True
            time.sleep(0.5)
        return not dom.isActive()

    def start(self, name):
        dom = self.domain(name)
        if not dom.isActive():
            dom.create()
