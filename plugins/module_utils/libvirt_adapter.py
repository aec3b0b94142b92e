# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only file that calls libvirt: one connection per URI, turned into the collection's plain data."""

from __future__ import annotations

import traceback
import xml.etree.ElementTree as ET

from ansible_collections.hostmaint.libvirt.plugins.module_utils import domain_xml
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import STATES

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
