# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The only file that calls libvirt: one connection per URI, turned into the collection's plain data.

Every libvirt error that leaves this file is a HostmaintError with one sentence naming the object: each public
method of LibvirtAdapter carries ``_typed("<what it does to which object>")``, which turns any libvirt error (or
unreadable XML from libvirt) that no inner, more precise sentence (``_failing``) caught into
``cannot <what>: <libvirt's message>``. Before
the first connection is opened, libvirt's default event loop is registered and run in a daemon thread, so
that connections keep alive (a peer that goes away is noticed within seconds, not at the next TCP
timeout) and can deliver guest events (``LibvirtAdapter.watch``). A live migration is started with
``LibvirtAdapter.start_migration`` from plain ``MigrationOptions`` and driven through the MigrationJob
it returns.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import socket
import threading
import time
import traceback
import xml.etree.ElementTree as ET

from ansible_collections.hostmaint.libvirt.plugins.module_utils import domain_xml
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    STATES,
    CompletedStats,
    Guest,
    GuestEvent,
    HostFacts,
    JobResult,
    JobSample,
)

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
# A run's hold on its host (module_utils/hold.py): a secret of its own usage, atomic in the same way.
HOLD_USAGE = "hostmaint:hold"
MAINTENANCE_XML = """<secret ephemeral='no' private='no'>
  <description>%s</description>
  <usage type='volume'><volume>%s</volume></usage>
</secret>"""


# Keepalive on every connection: a probe after 5 s of silence, the connection closed after 3 unanswered.
KEEPALIVE_INTERVAL_S = 5
KEEPALIVE_COUNT = 3


def _quiet(_ctx, _err):
    """libvirt prints every error to stderr by default; ours go into the module's result instead."""


def _message(exc):
    return exc.get_error_message() or str(exc)


# What a libvirt call may raise besides the collection's own errors: libvirt's, and what reading the XML or the
# numbers libvirt returned raises when they are not what we expect.
_UNTYPED = LIBVIRT_ERRORS + (ET.ParseError, ValueError)


def _retyped(sentence, exc, details):
    """The HostmaintError ``sentence: what went wrong`` for an error of a libvirt call; None for a HostmaintError
    that already names its object (a DomainXMLError does not know the guest's host, so it gets the sentence too)."""
    if isinstance(exc, domain_xml.DomainXMLError):
        return HostmaintError("%s: %s" % (sentence, exc.message), **dict(exc.details, **details))
    if isinstance(exc, HostmaintError):
        return None
    if LIBVIRT_ERRORS and isinstance(exc, LIBVIRT_ERRORS):
        return HostmaintError("%s: %s" % (sentence, _message(exc)), code=exc.get_error_code(), **details)
    if isinstance(exc, ET.ParseError):
        return HostmaintError("%s: libvirt returned unreadable XML (%s)" % (sentence, exc), **details)
    return HostmaintError("%s: libvirt returned what this module cannot read (%s: %s)" % (
        sentence, type(exc).__name__, exc), **details)


@contextlib.contextmanager
def _failing(sentence, **details):
    """Turn an error of the libvirt calls inside the block into a HostmaintError: ``sentence: libvirt's message``."""
    try:
        yield
    except (HostmaintError,) + _UNTYPED as exc:
        error = _retyped(sentence, exc, details)
        if error is None:
            raise
        raise error from exc


def _typed(what):
    """Decorate a public LibvirtAdapter method: any error of its libvirt calls that no inner sentence named
    leaves it as the HostmaintError ``cannot <what>: libvirt's message``. ``what`` names the object: it is
    formatted with the adapter's ``uri`` and the call's arguments by name (``{name}``: the guest)."""
    def decorate(method):
        signature = inspect.signature(method)

        @functools.wraps(method)
        def typed(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except (HostmaintError,) + _UNTYPED as exc:
                arguments = signature.bind(self, *args, **kwargs).arguments
                arguments.pop("self", None)
                error = _retyped("cannot " + what.format(uri=self.uri, **arguments), exc, dict(uri=self.uri))
                if error is None:
                    raise
                raise error from exc
        return typed
    return decorate


class _EventLoop(object):
    """libvirt's default event loop implementation, registered once per process and run in a daemon thread.

    It must be registered before a connection is opened: only connections opened afterwards keep alive
    and deliver events.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.thread = None
        self.error = None

    @property
    def running(self):
        return self.thread is not None and self.error is None

    def start(self):
        if libvirt is None:
            return False
        with self.lock:
            if self.thread is not None:
                return self.error is None
            try:
                libvirt.virEventRegisterDefaultImpl()
            except LIBVIRT_ERRORS as exc:
                self.error = _message(exc)
                self.thread = False
                return False
            self.thread = threading.Thread(target=self._run, name="libvirt-events")
            self.thread.daemon = True
            self.thread.start()
            return True

    def _run(self):
        while True:
            try:
                libvirt.virEventRunDefaultImpl()
            except LIBVIRT_ERRORS as exc:
                self.error = _message(exc)  # no more events nor keepalives; connections still work
                return


EVENT_LOOP = _EventLoop()


def start_event_loop():
    """Register and run libvirt's default event loop (once per process); False when it cannot run."""
    return EVENT_LOOP.start()


def _names(prefix, *names):
    """{libvirt constant value: lower-case name} for the constants prefix+NAME this libvirt-python has."""
    table = {}
    if libvirt is None:
        return table
    for name in names:
        value = getattr(libvirt, prefix + name, None)
        if value is not None:
            table[value] = name.lower()
    return table


# virDomainEventType and its details, as the GuestEvent kinds and details of the model.
EVENT_KINDS = _names("VIR_DOMAIN_EVENT_", "DEFINED", "UNDEFINED", "STARTED", "SUSPENDED", "RESUMED", "STOPPED",
                     "SHUTDOWN", "PMSUSPENDED", "CRASHED")
EVENT_DETAILS = dict(
    defined=_names("VIR_DOMAIN_EVENT_DEFINED_", "ADDED", "UPDATED", "RENAMED", "FROM_SNAPSHOT"),
    undefined=_names("VIR_DOMAIN_EVENT_UNDEFINED_", "REMOVED", "RENAMED"),
    started=_names("VIR_DOMAIN_EVENT_STARTED_", "BOOTED", "MIGRATED", "RESTORED", "FROM_SNAPSHOT", "WAKEUP"),
    suspended=_names("VIR_DOMAIN_EVENT_SUSPENDED_", "PAUSED", "MIGRATED", "IOERROR", "WATCHDOG", "RESTORED",
                     "FROM_SNAPSHOT", "API_ERROR", "POSTCOPY", "POSTCOPY_FAILED"),
    resumed=_names("VIR_DOMAIN_EVENT_RESUMED_", "UNPAUSED", "MIGRATED", "FROM_SNAPSHOT", "POSTCOPY",
                   "POSTCOPY_FAILED"),
    stopped=_names("VIR_DOMAIN_EVENT_STOPPED_", "SHUTDOWN", "DESTROYED", "CRASHED", "MIGRATED", "SAVED", "FAILED",
                   "FROM_SNAPSHOT"),
    shutdown=_names("VIR_DOMAIN_EVENT_SHUTDOWN_", "FINISHED", "GUEST", "HOST"),
    pmsuspended=_names("VIR_DOMAIN_EVENT_PMSUSPENDED_", "MEMORY", "DISK"),
    crashed=_names("VIR_DOMAIN_EVENT_CRASHED_", "PANICKED", "CRASHLOADED"),
)


def _codes(prefix, *names):
    return frozenset(getattr(libvirt, prefix + name) for name in names if libvirt is not None
                     and hasattr(libvirt, prefix + name))


# A failed migration whose error has one of these codes, or comes from libvirt's RPC layer (the source's
# libvirtd talking to the destination's), is the destination's: unreachable, gone, or refusing the move.
DESTINATION_ERROR_CODES = _codes("VIR_ERR_", "NO_CONNECT", "AUTH_FAILED", "AUTH_CANCELLED", "AUTH_UNAVAILABLE",
                                 "HOOK_SCRIPT_FAILED", "OPERATION_DENIED", "RPC")
DESTINATION_ERROR_DOMAINS = _codes("VIR_FROM_", "RPC", "REMOTE")
ABORTED_ERROR_CODES = _codes("VIR_ERR_", "OPERATION_ABORTED")


def error_cause(code, domain):
    """What a libvirt error of a migration points at (JobResult.cause): 'aborted', 'destination' or None."""
    if code in ABORTED_ERROR_CODES:
        return "aborted"
    if code in DESTINATION_ERROR_CODES or domain in DESTINATION_ERROR_DOMAINS:
        return "destination"
    return None


def migration_flags(options, name=None):
    """(flags, params) for virDomainMigrateToURI3 from MigrationOptions: live, peer-to-peer, aborted on error.

    A storage copy always names its disks (VIR_MIGRATE_PARAM_MIGRATE_DISKS): without the list libvirt copies every
    writable disk that is not shareable, those on shared storage too (the destination would write the very file the
    source reads; Nova never leaves the list out either). So a storage copy with no disk named is refused, with a
    HostmaintError naming the guest (``name``) when given."""
    if options.storage_copy and not options.copy_disks:
        raise HostmaintError("cannot migrate %s with a storage copy that names no disk: libvirt would copy every "
                             "writable disk, those on shared storage too" % (name or "a guest"), guest=name)
    flags = libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_ABORT_ON_ERROR
    params = {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: int(options.bandwidth_mib or 0)}
    if options.persistent:
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    if options.tls:
        flags |= libvirt.VIR_MIGRATE_TLS
    if options.paused:
        flags |= libvirt.VIR_MIGRATE_PAUSED
    if options.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
        if options.auto_converge_initial is not None:
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = int(options.auto_converge_initial)
        if options.auto_converge_increment is not None:
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = int(options.auto_converge_increment)
    if options.postcopy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    if options.storage_copy:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
        params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(options.copy_disks)
    if options.unsafe:
        # its disks sit on a pool the operator declared shared, which libvirt cannot see as such
        flags |= libvirt.VIR_MIGRATE_UNSAFE
    return flags, params


BLOCK_JOB_TYPES = _names("VIR_DOMAIN_BLOCK_JOB_TYPE_", "PULL", "COPY", "COMMIT", "ACTIVE_COMMIT", "BACKUP")


def _block_jobs(dom, xml):
    """{disk target: job type} of the block jobs running on an active domain whose live XML is ``xml``."""
    found = {}
    for disk in ET.fromstring(xml).findall("devices/disk"):
        target = disk.find("target")
        if target is None or not target.get("dev"):
            continue
        info = dom.blockJobInfo(target.get("dev"), 0)
        if info:
            found[target.get("dev")] = BLOCK_JOB_TYPES.get(info.get("type"), "type %s" % info.get("type"))
    return found


class MigrationJob(object):
    """One live migration started by ``LibvirtAdapter.start_migration``: the blocking libvirt call runs in
    its own thread; this object samples, steers, aborts and waits for it.

    ``sample()`` gives a JobSample while libvirt shows the job (None before it shows one, or while it is
    finishing); ``set_downtime(ms)``, ``postcopy()`` and ``abort()`` raise HostmaintError when libvirt
    refuses; ``wait(timeout)`` is True once the call returned; ``result()`` is its JobResult;
    ``completed_stats()`` the finished job's numbers, read on the destination, else on the source, else
    from the last sample; ``downtime_before`` is the guest's downtime limit before the job (None: unknown).
    """

    def __init__(self, source, dom, name, dest_uri, destination=None, downtime_before=None):
        self.source = source
        self.dom = dom
        self.name = name
        self.dest_uri = dest_uri
        self.destination = destination
        self.downtime_before = downtime_before
        self.last = None
        self._result = None
        self._thread = None

    def _start(self, flags, params):
        def call():
            try:
                self.dom.migrateToURI3(self.dest_uri, params, flags)
                self._result = JobResult(ok=True)
            except LIBVIRT_ERRORS as exc:
                self._result = JobResult(ok=False, error=_message(exc),
                                         cause=error_cause(exc.get_error_code(), exc.get_error_domain()))

        self._thread = threading.Thread(target=call, name="migrate-%s" % self.name)
        self._thread.daemon = True  # an abort libvirt never honours must not keep the module alive
        self._thread.start()
        return self

    def _what(self):
        return "%s from %s" % (self.name, self.source.uri)

    def sample(self):
        try:
            stats = self.dom.jobStats(0)
        except LIBVIRT_ERRORS:
            return None  # the job may be finishing; wait() and result() tell
        if not stats or stats.get("type", 0) == 0:
            return None
        self.last = JobSample.from_job_stats(stats)
        return self.last

    def set_downtime(self, ms):
        with _failing("cannot set the downtime limit of the migration of %s to %d ms" % (self._what(), int(ms))):
            self.dom.migrateSetMaxDowntime(int(ms), 0)

    def postcopy(self):
        with _failing("cannot switch the migration of %s to post-copy" % self._what()):
            self.dom.migrateStartPostCopy(0)

    def abort(self):
        with _failing("cannot abort the migration of %s" % self._what()):
            self.dom.abortJob()

    def wait(self, timeout):
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self):
        if self._thread.is_alive():
            raise HostmaintError("the migration of %s has not finished yet" % self._what())
        return self._result

    def completed_stats(self):
        stats = {}
        for adapter in (self.destination, self.source):
            if adapter is None:
                continue
            try:
                # KEEP_COMPLETED: reading them must not take them from the operator (virsh domjobinfo --completed)
                stats = adapter.conn.lookupByName(self.name).jobStats(
                    libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED | getattr(libvirt, "VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED", 0))
            except (HostmaintError,) + LIBVIRT_ERRORS:
                stats = {}  # gone from the source, or the destination keeps no statistics: try the next
            if stats and stats.get("type", 0):
                break
        if stats and stats.get("type", 0):
            return CompletedStats(downtime_ms=stats.get("downtime"), bytes_transferred=stats.get("data_processed"),
                                  iterations=stats.get("memory_iteration"))
        if self.last is not None:
            return CompletedStats(bytes_transferred=self.last.data_processed, iterations=self.last.memory_iteration)
        return CompletedStats()


class GuestWatch(object):
    """The events of one guest (by name) on one host, as GuestEvents stamped with ``clock``, from the
    moment ``LibvirtAdapter.watch`` returned it until ``close()``."""

    def __init__(self, adapter, name, clock):
        self.adapter = adapter
        self.name = name
        self.clock = clock
        self._events = []
        self._changed = threading.Condition()

    def add(self, kind, detail=None):
        with self._changed:
            self._events.append(GuestEvent(kind=kind, detail=detail, at=self.clock()))
            self._changed.notify_all()

    def events(self):
        with self._changed:
            return list(self._events)

    def wait(self, timeout, seen=None):
        """Wait up to timeout for more than ``seen`` events (all so far when None); True if there are."""
        with self._changed:
            count = len(self._events) if seen is None else seen
            self._changed.wait_for(lambda: len(self._events) > count, timeout)
            return len(self._events) > count

    def close(self):
        self.adapter.unwatch(self)


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


# Where libvirt's TLS client looks for this host's certificate (run as root, no pkipath in the URI).
CLIENT_CERT = "/etc/pki/libvirt/clientcert.pem"


def tls_hint(uri, cert=CLIENT_CERT):
    """'' or the cause libvirt's own message hides: a TLS URI from a host that has no client certificate
    ("Unable to read TLS confirmation" is all libvirt says when the server turns it away)."""
    if not uri.startswith("qemu+tls") or "pkipath=" in uri or os.path.exists(cert):
        return ""
    return "; this host (%s) has no TLS client certificate at %s: run playbooks/setup.yml for it" % (
        socket.gethostname(), cert)


class LibvirtAdapter(object):
    """One libvirt connection, opened on first use (by any thread: libvirt connections are thread-safe,
    so one adapter serves every migration of a run that touches its host) and closed by close()."""

    def __init__(self, uri, conn=None, local=None):
        self.uri = uri
        self._conn = conn
        self._lock = threading.RLock()
        self.close_error = None
        self.keepalive_error = None
        self.local = local if local is not None else "://" in uri and uri.split("://", 1)[1].startswith("/")
        self._watches = {}  # guest name -> [GuestWatch]
        self._callbacks = []  # event callback ids on this connection

    # -- connection -------------------------------------------------------------------------
    @property
    def conn(self):
        with self._lock:
            if self._conn is None:
                if libvirt is None:
                    raise HostmaintError("the libvirt Python bindings are not installed",
                                         exception=LIBVIRT_IMPORT_ERROR)
                libvirt.registerErrorHandler(_quiet, None)
                start_event_loop()  # before the connection is opened, or it never keeps alive nor gets events
                try:
                    conn = libvirt.open(self.uri)
                except LIBVIRT_ERRORS as exc:
                    raise HostmaintError("cannot connect to libvirt at %s: %s%s" % (
                        self.uri, exc.get_error_message(), tls_hint(self.uri)), uri=self.uri)
                if EVENT_LOOP.running:
                    try:
                        conn.setKeepAlive(KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT)
                    except LIBVIRT_ERRORS as exc:
                        self.keepalive_error = _message(exc)  # the connection works without; it only notices later
                self._conn = conn
            return self._conn

    def close(self):
        with self._lock:
            conn, self._conn = self._conn, None
            callbacks, self._callbacks = self._callbacks, []
            self._watches = {}
        if conn is None:
            return
        try:
            for callback in callbacks:
                conn.domainEventDeregisterAny(callback)
            conn.close()
        except LIBVIRT_ERRORS as exc:
            # a peer that went away cannot be closed cleanly; that must not hide the real result
            self.close_error = str(exc)

    def alive(self):
        """Whether this host's libvirtd answers on this connection now (opening it if need be)."""
        try:
            with _failing("libvirt at %s does not answer" % self.uri):
                return bool(self.conn.isAlive()) and self.conn.getLibVersion() > 0
        except HostmaintError:
            return False

    # -- events -------------------------------------------------------------------------------
    @_typed("watch {name} on {uri}")
    def watch(self, name, clock=time.time):
        """A GuestWatch of guest ``name`` on this host, also before the guest exists here (an incoming
        migration): one connection-wide callback per event type, registered on the first watch and
        filtered by name, so nothing between the migration's start and its end is missed."""
        if not EVENT_LOOP.running:
            raise HostmaintError("cannot watch %s on %s: libvirt's event loop does not run in this process%s"
                                 % (name, self.uri, " (%s)" % EVENT_LOOP.error if EVENT_LOOP.error else ""))
        watch = GuestWatch(self, name, clock)
        with self._lock:
            conn = self.conn
            if not self._callbacks:
                with _failing("cannot watch the guests of %s" % self.uri):
                    self._callbacks.append(conn.domainEventRegisterAny(
                        None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, self._on_lifecycle, None))
                    self._callbacks.append(conn.domainEventRegisterAny(
                        None, libvirt.VIR_DOMAIN_EVENT_ID_REBOOT, self._on_reboot, None))
            self._watches.setdefault(name, []).append(watch)
        return watch

    def unwatch(self, watch):
        with self._lock:
            watches = self._watches.get(watch.name, [])
            if watch in watches:
                watches.remove(watch)

    def _deliver(self, dom, kind, detail):
        try:
            name = dom.name()
        except LIBVIRT_ERRORS:
            return  # a domain object that cannot even name itself concerns no watch
        with self._lock:
            watches = list(self._watches.get(name, []))
        for watch in watches:
            watch.add(kind, detail)

    def _on_lifecycle(self, _conn, dom, event, detail, _opaque):
        kind = EVENT_KINDS.get(event, "event %s" % event)
        self._deliver(dom, kind, EVENT_DETAILS.get(kind, {}).get(detail, str(detail)))

    def _on_reboot(self, _conn, dom, _opaque):
        self._deliver(dom, "reboot", None)

    # -- host -------------------------------------------------------------------------------
    @_typed("read the identity (hostname, UUID) of {uri}")
    def host_identity(self):
        caps = ET.fromstring(self.conn.getCapabilities())
        return dict(hostname=self.conn.getHostname(), uuid=caps.findtext("host/uuid"), uri=self.uri)

    @_typed("read the storage pools of {uri}")
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
    @_typed("read the guests of {uri}")
    def guests(self, pools=None):
        """Every domain of this host as a Guest, sorted by name; a guest still arriving by an incoming migration
        is not one yet (libvirt holds it while it is prepared, and evacuate waits for it to land)."""
        pools = pools if pools is not None else self.pools()
        result = []
        paused, by_migration = libvirt.VIR_DOMAIN_PAUSED, getattr(libvirt, "VIR_DOMAIN_PAUSED_MIGRATION", 2)
        for dom in self.conn.listAllDomains(0):
            name = None
            try:
                name = dom.name()
                raw = dom.state()
                if list(raw[:2]) == [paused, by_migration] and not dom.isPersistent():
                    continue
                state = STATES[raw[0]]
                xml = dom.XMLDesc(0)
                guest = domain_xml.parse_domain(xml, state=state, persistent=bool(dom.isPersistent()), pools=pools)
                if guest.active:
                    guest.block_jobs = _block_jobs(dom, xml)
                result.append(guest)
            except (domain_xml.DomainXMLError,) + _UNTYPED as exc:
                if LIBVIRT_ERRORS and isinstance(exc, LIBVIRT_ERRORS) and exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # vanished between listing and reading: not ours to report
                raise _retyped("cannot read guest %s on %s" % (name or "(unnamed)", self.uri), exc,
                               dict(uri=self.uri, guest=name)) from exc
        return sorted(result, key=lambda guest: guest.name)

    # -- host facts ---------------------------------------------------------------------------
    @_typed("read the memory of {uri}")
    def memory_mib(self):
        """(total, available for guests) in MiB: free plus reclaimable page cache and buffers."""
        stats = self.conn.getMemoryStats(-1, 0)
        total = int(stats.get("total", 0)) // 1024
        available = (int(stats.get("free", 0)) + int(stats.get("buffers", 0)) + int(stats.get("cached", 0))) // 1024
        return total, available

    @_typed("read the memory of the guests of {uri}")
    def active_memory(self):
        """Every active domain of this host, those still arriving by an incoming migration included (which
        ``guests`` leaves out), as a Guest with its name, UUID, state, persistence and memory only
        (virDomainGetInfo: its current and maximum memory), sorted by name: what a declared capacity counts
        (model.capacity_free_mib). Cheap: no domain XML is read."""
        found = []
        for dom in self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            try:
                state, max_kib, kib = dom.info()[:3]
                found.append(Guest(name=dom.name(), uuid=dom.UUIDString(), state=STATES[state],
                                   persistent=bool(dom.isPersistent()), memory_mib=int(kib) // 1024,
                                   max_memory_mib=int(max_kib) // 1024))
            except LIBVIRT_ERRORS as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # gone between listing and reading: it holds no memory here any more
                raise
        return sorted(found, key=lambda guest: guest.name)

    @_typed("read the free huge pages of {uri}")
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

    @_typed("read the bridges of {uri}")
    def bridges(self):
        """The host's active bridges; None when its libvirt cannot say (no interface driver: on libvirt 10 and
        later a separate package, libvirt-daemon-driver-interface on Debian), so that nothing is judged on them."""
        names = []
        try:
            interfaces = self.conn.listAllInterfaces(0)
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() == getattr(libvirt, "VIR_ERR_NO_SUPPORT", 3):
                return None
            raise  # typed by _typed
        for iface in interfaces:
            if iface.isActive() and ET.fromstring(iface.XMLDesc(0)).get("type") == "bridge":
                names.append(iface.name())
        return sorted(names)

    @_typed("read the networks of {uri}")
    def networks(self):
        return sorted(net.name() for net in self.conn.listAllNetworks(0) if net.isActive())

    @_typed("look up the guests' disks on {uri}")
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

    @_typed("look up volumes on {uri}")
    def local_volumes(self, paths):
        """The absolute paths among ``paths`` that are volumes of this host's pools (refreshed first)."""
        for pool in self.conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
            try:
                pool.refresh(0)
            except LIBVIRT_ERRORS:
                pass  # a pool busy refreshing still answers look-ups with what it knew
        found = []
        for path in paths:
            try:
                self.conn.storageVolLookupByPath(path)
                found.append(path)
            except LIBVIRT_ERRORS:
                continue
        return found

    @_typed("delete volumes on {uri}")
    def delete_volumes(self, paths):
        """Delete the volumes at ``paths`` (what a failed storage copy left behind on its destination, or the source's
        disks a storage copy left behind once its guest runs on the destination); the paths deleted."""
        deleted = []
        for path in paths:
            with _failing("cannot delete %s on %s" % (path, self.uri)):
                self.conn.storageVolLookupByPath(path).delete(0)
            deleted.append(path)
        return deleted

    @_typed("read the sizes of volumes on {uri}")
    def volume_sizes(self, paths):
        """{path: {capacity, allocation}} in bytes for the absolute paths among ``paths`` that are volumes of this
        host's pools (volume_info)."""
        return dict((path, dict(capacity=info["capacity"], allocation=info["allocation"]))
                    for path, info in self.volume_info(paths).items())

    @_typed("read the volumes of the disks on {uri}")
    def volume_info(self, paths):
        """{path: {name, pool, capacity, allocation, format}} for the absolute paths among ``paths`` that are volumes
        of this host's pools (virStorageVolLookupByPath, then virStorageVolGetInfo, which the storage driver answers
        from the volume itself). When one is not found the active pools are refreshed once and it is looked up again
        (a file the pools have not listed yet); a path that is still no volume is left out."""
        def look_up(path):
            try:
                return self.conn.storageVolLookupByPath(path)
            except LIBVIRT_ERRORS as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                    raise
                return None
        volumes = dict((path, look_up(path)) for path in paths)
        if any(volume is None for volume in volumes.values()):
            for pool in self.conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
                try:
                    pool.refresh(0)
                except LIBVIRT_ERRORS:
                    pass  # a pool busy refreshing still answers look-ups with what it knew
            volumes = dict((path, volume or look_up(path)) for path, volume in volumes.items())
        found = {}
        for path in sorted(volumes):
            if volumes[path] is None:
                continue
            with _failing("cannot read the size of %s on %s" % (path, self.uri)):
                volume = volumes[path]
                _kind, capacity, allocation = volume.info()
                fmt = ET.fromstring(volume.XMLDesc(0)).find("target/format")
                found[path] = dict(name=volume.name(), pool=volume.storagePoolLookupByVolume().name(),
                                   capacity=int(capacity), allocation=int(allocation),
                                   format=fmt.get("type") if fmt is not None else None)
        return found

    @_typed("read which definitions of the guests of {uri} name their disks")
    def definitions_naming(self, paths):
        """{path: {guest: the definitions of it that name the path}} for each of ``paths`` (every one is in the answer,
        with {} when nothing names it): a domain of this host names a path when a disk of its live definition (an
        active domain, virDomainGetXMLDesc) or of its persistent one (a persistent domain, VIR_DOMAIN_XML_INACTIVE)
        has it as its source, a backing file or a mirror, a disk of type volume by its volume's path
        (virStorageVolGetPath); the definitions are listed as ["inactive", "live"], or one of them. Paths compare
        normalised (os.path.normpath); a volume that cannot be resolved raises (what it names is not known)."""
        wanted = dict((os.path.normpath(path), path) for path in paths)
        found = dict((path, {}) for path in paths)
        for dom in self.conn.listAllDomains(0):
            try:
                name = dom.name()
                texts = [("live", dom.XMLDesc(0))] if dom.isActive() else []
                if dom.isPersistent():
                    texts.append(("inactive", dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))
            except LIBVIRT_ERRORS as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue  # gone between listing and reading
                raise
            for kind, text in texts:
                named = set()
                for source in ET.fromstring(text).findall("devices/disk//source"):
                    for key in ("file", "dev"):
                        if source.get(key):
                            named.add(os.path.normpath(source.get(key)))
                    if source.get("pool") and source.get("volume"):
                        try:
                            pool = self.conn.storagePoolLookupByName(source.get("pool"))
                            named.add(os.path.normpath(pool.storageVolLookupByName(source.get("volume")).path()))
                        except LIBVIRT_ERRORS as exc:
                            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                                raise  # an active pool without that volume names no file; anything else is unknown
                for path in sorted(named & set(wanted)):
                    found[wanted[path]].setdefault(name, []).append(kind)
        return dict((path, dict((name, sorted(kinds)) for name, kinds in names.items()))
                    for path, names in found.items())

    @_typed("compare a guest CPU with the host CPU of {uri}")
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

    @_typed("read the CPU of {name} on {uri}")
    def guest_cpu_xml(self, name):
        """The <cpu> of a guest's migratable XML (host-model expanded), or None."""
        dom = self.domain(name)
        flags = libvirt.VIR_DOMAIN_XML_MIGRATABLE if dom.isActive() else 0
        cpu = ET.fromstring(dom.XMLDesc(flags)).find("cpu")
        return ET.tostring(cpu, encoding="unicode") if cpu is not None else None

    @_typed("read the facts of {name} at {uri}")
    def host_facts(self, name, shared_names=(), guests=(), cpu_xml=None, paths=(), pools=None, resident=None):
        """This host as the decisions see it. ``guests``/``cpu_xml`` are the guests to judge CPUs for; ``pools`` and
        ``resident`` (this host's own guests) are what the caller has read of this host already (read here when
        None), so that a survey reads each host once."""
        caps = ET.fromstring(self.conn.getCapabilities())
        machines = set()
        for guest in caps.findall("guest"):
            for machine in guest.findall("arch/machine"):
                machines.add((machine.text or "").strip())
                if machine.get("canonical"):
                    machines.add(machine.get("canonical"))
        total, available = self.memory_mib()
        pools = pools if pools is not None else self.pools(shared_names)
        resident = resident if resident is not None else self.guests(pools=pools)
        mark = self.maintenance()
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
            maintenance=mark is not None,
            maintenance_info=mark,
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

    @_typed("read the maintenance mark on {uri}")
    def maintenance(self):
        """The maintenance mark's details (dict) if this host is in maintenance, else None."""
        secret = self._maintenance_secret()
        if secret is None:
            return None
        try:
            return json.loads(secret.value(0).decode("utf-8"))
        except (LIBVIRT_ERRORS + (ValueError,)):
            return {"since": None, "run_id": None, "reason": "marked without details"}

    @_typed("mark {uri} in maintenance")
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
        try:
            secret.setValue(json.dumps(info).encode("utf-8"), 0)
        except LIBVIRT_ERRORS as exc:
            # a mark without its value would outlive this run, which must leave the host as it found it
            left = ""
            try:
                secret.undefine()
            except LIBVIRT_ERRORS as again:
                left = "; the mark stays without details (%s)" % _message(again)
            raise HostmaintError("cannot mark %s in maintenance: %s%s" % (self.uri, _message(exc), left)) from exc
        return True

    @_typed("clear the maintenance mark on {uri}")
    def clear_maintenance(self):
        secret = self._maintenance_secret()
        if secret is None:
            return False
        secret.undefine()
        return True

    # -- a run's hold (module_utils/hold.py) --------------------------------------------------
    def _hold_secret(self):
        try:
            return self.conn.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_VOLUME, HOLD_USAGE)
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SECRET:
                return None
            raise HostmaintError("cannot read the run hold on %s: %s" % (self.uri, exc.get_error_message()))

    @_typed("read the run hold on {uri}")
    def hold(self):
        """The hold a run keeps on this host (dict), or None."""
        secret = self._hold_secret()
        if secret is None:
            return None
        try:
            return json.loads(secret.value(0).decode("utf-8"))
        except LIBVIRT_ERRORS + (ValueError,):
            return {}  # defined, its value not written yet (another run is taking it) or unreadable

    @_typed("take the run hold on {uri}")
    def take_hold(self, info):
        """Take the hold on this host; False when another run holds it (libvirt keeps one secret per usage)."""
        description = "hostmaint: held by run %s (%s) since %s" % (
            info.get("run_id"), info.get("action"), info.get("since"))
        try:
            secret = self.conn.secretDefineXML(MAINTENANCE_XML % (description, HOLD_USAGE), 0)
        except LIBVIRT_ERRORS as exc:
            if self._hold_secret() is not None:
                return False
            raise HostmaintError("cannot take the run hold on %s: %s" % (self.uri, exc.get_error_message()))
        with _failing("cannot write the run hold on %s" % self.uri):
            secret.setValue(json.dumps(info).encode("utf-8"), 0)
        return True

    @_typed("write the run hold on {uri}")
    def update_hold(self, info):
        """Write the hold's value again (a stop request, or the run's own ``stopping``); False when none."""
        secret = self._hold_secret()
        if secret is None:
            return False
        with _failing("cannot write the run hold on %s" % self.uri):
            secret.setValue(json.dumps(info).encode("utf-8"), 0)
        return True

    @_typed("release the run hold on {uri}")
    def release_hold(self, run_id=None):
        """Remove the hold (only run ``run_id``'s when given); True when one was removed."""
        secret = self._hold_secret()
        if secret is None:
            return False
        if run_id is not None:
            try:
                current = json.loads(secret.value(0).decode("utf-8"))
            except LIBVIRT_ERRORS + (ValueError,):
                current = {}
            if current.get("run_id") != run_id:
                return False
        with _failing("cannot release the run hold on %s" % self.uri):
            secret.undefine()
        return True

    # -- migrations under way -----------------------------------------------------------------
    @_typed("read the migrations under way on {uri}")
    def migration_jobs(self):
        """{guest: "out" or "in"} for every guest of this host with a migration under way (started by anyone)."""
        found = {}
        with _failing("cannot list the guests of %s" % self.uri):
            domains = self.conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
        out_op = getattr(libvirt, "VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT", 5)
        in_op = getattr(libvirt, "VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN", 4)
        paused, by_migration = libvirt.VIR_DOMAIN_PAUSED, getattr(libvirt, "VIR_DOMAIN_PAUSED_MIGRATION", 2)
        for dom in domains:
            try:
                name = dom.name()
                state = dom.state()
            except LIBVIRT_ERRORS:
                continue  # gone meanwhile
            try:
                stats = dom.jobStats(0)
            except LIBVIRT_ERRORS:
                # the destination of an incoming migration: paused for it, and libvirt keeps its statistics
                # on the source ("available only on the source host")
                if list(state[:2]) == [paused, by_migration]:
                    found[name] = "in"
                continue
            if not stats or not stats.get("type"):
                continue
            operation = stats.get("operation")
            if operation == out_op:
                found[name] = "out"
            elif operation == in_op:
                found[name] = "in"
        return found

    @_typed("abort the migration of {name} on {uri}")
    def abort_job(self, name, wait_s=30.0):
        """Abort the job (a migration) running on guest ``name`` here and wait, bounded, until it is over;
        True once no job runs on it."""
        dom = self.domain(name)
        try:
            dom.abortJob()
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() != getattr(libvirt, "VIR_ERR_OPERATION_INVALID", 55):
                raise HostmaintError("cannot abort the migration of %s on %s: %s"
                                     % (name, self.uri, exc.get_error_message()))
        deadline = time.time() + wait_s
        while True:
            try:
                stats = dom.jobStats(0)
            except LIBVIRT_ERRORS:
                return True  # the guest left or its job ended
            if not stats or not stats.get("type"):
                return True
            if time.time() >= deadline:
                return False
            time.sleep(0.2)

    # -- guests -------------------------------------------------------------------------------
    @_typed("read guest {name} on {uri}")
    def domain(self, name):
        try:
            return self.conn.lookupByName(name)
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise HostmaintError("unknown guest %s: %s has no such guest" % (name, self.uri), guest=name)
            raise HostmaintError("cannot read guest %s on %s: %s" % (name, self.uri, exc.get_error_message()))

    @_typed("read guest {name} on {uri}")
    def has_domain(self, name):
        try:
            self.conn.lookupByName(name)
            return True
        except LIBVIRT_ERRORS as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise HostmaintError("cannot read guest %s on %s: %s" % (name, self.uri, exc.get_error_message()))

    @_typed("read the UUID of {name} on {uri}")
    def guest_uuid(self, name):
        dom = self.domain(name)
        with _failing("cannot read the UUID of %s on %s" % (name, self.uri)):
            return dom.UUIDString()

    @_typed("read the state of {name} on {uri}")
    def guest_state(self, name):
        """(state, persistent) of a guest: state as model.STATES names it."""
        dom = self.domain(name)
        with _failing("cannot read the state of %s on %s" % (name, self.uri)):
            return STATES[dom.state()[0]], bool(dom.isPersistent())

    @_typed("read the dirty rates of the guests of {uri}")
    def dirty_rates(self):
        """Guest name -> bytes per second each guest dirtied when libvirt last measured it (only guests
        someone measured, virsh domdirtyrate-calc); empty when this libvirt cannot tell. An estimate
        for ordering migrations, so a host that cannot answer gives none rather than an error."""
        flag = getattr(libvirt, "VIR_DOMAIN_STATS_DIRTYRATE", None)
        if flag is None:
            return {}
        try:
            records = self.conn.getAllDomainStats(flag, 0)
        except LIBVIRT_ERRORS:
            return {}
        rates = {}
        for dom, stats in records:
            measured = getattr(libvirt, "VIR_DOMAIN_DIRTYRATE_MEASURED", 2)
            if stats.get("dirtyrate.calc_status") == measured and stats.get("dirtyrate.megabytes_per_second"):
                rates[dom.name()] = int(stats["dirtyrate.megabytes_per_second"]) * 1024 * 1024
        return rates

    def _metadata_flags(self, dom):
        flags = 0
        if dom.isActive():
            flags |= libvirt.VIR_DOMAIN_AFFECT_LIVE
        if dom.isPersistent():
            flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
        return flags

    @_typed("write the migration record of {name} on {uri}")
    def set_record(self, name, record):
        dom = self.domain(name)
        with _failing("cannot write the migration record of %s on %s" % (name, self.uri)):
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain_xml.record_xml(record), domain_xml.PREFIX,
                            domain_xml.ORIGIN_NS, self._metadata_flags(dom))

    @_typed("clear the migration record of {name} on {uri}")
    def clear_record(self, name):
        dom = self.domain(name)
        with _failing("cannot clear the migration record of %s on %s" % (name, self.uri)):
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, domain_xml.ORIGIN_NS,
                            self._metadata_flags(dom))

    @_typed("read guest {name} on {uri}")
    def guest(self, name, pools=None):
        dom = self.domain(name)
        with _failing("cannot read guest %s on %s" % (name, self.uri)):
            xml = dom.XMLDesc(0)
            guest = domain_xml.parse_domain(xml, state=STATES[dom.state()[0]], persistent=bool(dom.isPersistent()),
                                            pools=pools if pools is not None else self.pools())
            if guest.active:
                guest.block_jobs = _block_jobs(dom, xml)
            return guest

    @_typed("define a guest on {uri}")
    def define(self, xml):
        try:
            return self.conn.defineXML(xml)
        except LIBVIRT_ERRORS as exc:
            raise HostmaintError("cannot define a guest on %s: %s" % (self.uri, exc.get_error_message()))

    @_typed("undefine {name} on {uri}")
    def undefine(self, name):
        dom = self.domain(name)
        flags = getattr(libvirt, "VIR_DOMAIN_UNDEFINE_KEEP_NVRAM", 0)
        with _failing("cannot undefine %s on %s" % (name, self.uri)):
            dom.undefineFlags(flags)

    @_typed("read the definition of {name} on {uri}")
    def inactive_xml(self, name):
        dom = self.domain(name)
        with _failing("cannot read the definition of %s on %s" % (name, self.uri)):
            return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)

    @_typed("shut {name} down on {uri}")
    def shutdown(self, name, timeout_s):
        """Clean shutdown with a bounded wait; True once the guest is off."""
        dom = self.domain(name)
        with _failing("cannot shut %s down on %s" % (name, self.uri)):
            if not dom.isActive():
                return True
            dom.shutdown()
            deadline = time.time() + timeout_s
            while time.time() < deadline:
                if not dom.isActive():
                    return True
                time.sleep(0.5)
            return not dom.isActive()

    @_typed("start {name} on {uri}")
    def start(self, name):
        dom = self.domain(name)
        with _failing("cannot start %s on %s" % (name, self.uri)):
            if not dom.isActive():
                dom.create()

    # -- migration ----------------------------------------------------------------------------
    @_typed("set the downtime limit of {name} on {uri} back to {ms} ms")
    def set_downtime_limit(self, name, ms):
        """Set guest ``name``'s migration downtime limit outside any migration: after a migration that failed
        or was aborted, back to the one it had before. libvirt restores QEMU's migration parameters when its
        job ends, but to their values at the job's start, which already hold the first limit set just
        before it."""
        dom = self.domain(name)
        with _failing("cannot set the downtime limit of %s on %s back to %d ms" % (name, self.uri, int(ms))):
            dom.migrateSetMaxDowntime(int(ms), 0)

    @_typed("start the migration of {name} from {uri} to {dest_uri}")
    def start_migration(self, name, dest_uri, options, destination=None):
        """Start the live migration of guest ``name`` to ``dest_uri`` (the URI this host's libvirtd reaches
        the destination at, peer-to-peer) with MigrationOptions; returns its MigrationJob at once.

        ``destination`` (the destination's adapter) is where the finished job's statistics are read.
        The first downtime limit (``options.downtime_ms``) is set just before the migration starts; the job
        keeps the limit the guest had before (``downtime_before``), for ``set_downtime_limit`` after a failure.
        """
        dom = self.domain(name)
        flags, params = migration_flags(options, name)
        try:
            before = int(dom.migrateGetMaxDowntime(0))
        except LIBVIRT_ERRORS + (AttributeError,):
            before = None  # libvirt before 3.7 cannot tell: it is not set back after a failure
        job = MigrationJob(self, dom, name, dest_uri, destination=destination, downtime_before=before)
        with _failing("cannot set the downtime limit of %s on %s" % (name, self.uri)):
            dom.migrateSetMaxDowntime(int(options.downtime_ms), 0)
        return job._start(flags, params)

    # -- live storage migration: block copy (module_utils/disk_moves.py decides, disk_mover.py drives) ---------
    @_typed("read the storage pools of {uri}")
    def pool_space(self):
        """{pool name: {active, capacity, allocation, available, path, type}} in bytes, active pools refreshed."""
        found = {}
        for pool in self.conn.listAllStoragePools(0):
            if pool.isActive():
                try:
                    pool.refresh(0)
                except LIBVIRT_ERRORS:
                    pass  # a pool busy refreshing still answers with what it knew
            root = ET.fromstring(pool.XMLDesc(0))
            _state, capacity, allocation, available = pool.info()
            found[pool.name()] = dict(active=bool(pool.isActive()), capacity=int(capacity), allocation=int(allocation),
                                      available=int(available), path=root.findtext("target/path"),
                                      type=root.get("type"))
        return found

    @_typed("list the volumes of pool {pool} on {uri}")
    def volume_names(self, pool):
        with _failing("cannot list the volumes of pool %s on %s" % (pool, self.uri)):
            return sorted(self.conn.storagePoolLookupByName(pool).listVolumes())

    @_typed("list the volumes of pool {pool} on {uri}")
    def pool_volumes(self, pool):
        """[{name, path, capacity, allocation, format, backing}] of pool ``pool``, refreshed first."""
        found = []
        with _failing("cannot list the volumes of pool %s on %s" % (pool, self.uri)):
            handle = self.conn.storagePoolLookupByName(pool)
            try:
                handle.refresh(0)
            except LIBVIRT_ERRORS:
                pass
            for volume in handle.listAllVolumes(0):
                root = ET.fromstring(volume.XMLDesc(0))
                _kind, capacity, allocation = volume.info()
                found.append(dict(name=volume.name(), path=volume.path(), capacity=int(capacity),
                                  allocation=int(allocation), format=root.find("target/format").get("type")
                                  if root.find("target/format") is not None else None,
                                  backing=root.findtext("backingStore/path")))
        return sorted(found, key=lambda v: v["name"])

    @_typed("read the block jobs of {name} on {uri}")
    def block_jobs(self, name):
        """{disk target: job type} for every block job running on guest ``name`` (none when it is shut off)."""
        dom = self.domain(name)
        return _block_jobs(dom, dom.XMLDesc(0)) if dom.isActive() else {}

    @_typed("count the snapshots of {name} on {uri}")
    def snapshot_count(self, name):
        return int(self.domain(name).snapshotNum(0))

    @_typed("create volume {volume} in pool {pool} on {uri}")
    def create_volume(self, pool, volume, capacity, fmt):
        """Create an empty volume (``fmt``: qcow2 or raw, ``capacity`` bytes, sparse); its path."""
        xml = ("<volume><name>%s</name><capacity unit='bytes'>%d</capacity><allocation unit='bytes'>0</allocation>"
               "<target><format type='%s'/></target></volume>") % (
            domain_xml.xml_text(volume), int(capacity), domain_xml.xml_text(fmt or "raw"))
        with _failing("cannot create volume %s in pool %s on %s" % (volume, pool, self.uri)):
            return self.conn.storagePoolLookupByName(pool).createXML(xml, 0).path()

    @_typed("copy {source} into pool {pool} on {uri}")
    def copy_volume(self, source, pool, volume, fmt):
        """Copy the volume at ``source`` (no guest uses it while this runs) into a new volume of ``pool``; its path.
        libvirt's copy (qemu-img convert) carries no backing chain."""
        with _failing("cannot copy %s into pool %s on %s" % (source, pool, self.uri)):
            original = self.conn.storageVolLookupByPath(source)
            _kind, capacity, _allocation = original.info()
            xml = ("<volume><name>%s</name><capacity unit='bytes'>%d</capacity>"
                   "<target><format type='%s'/></target></volume>") % (
                domain_xml.xml_text(volume), int(capacity), domain_xml.xml_text(fmt or "raw"))
            return self.conn.storagePoolLookupByName(pool).createXMLFrom(xml, original, 0).path()

    @_typed("start copying disk {target} of {name} on {uri}")
    def start_block_copy(self, name, target, dest, fmt, bandwidth_mib=0, synchronous=False):
        """Start a block copy of disk ``target`` into the existing file ``dest`` (created by create_volume): a
        full copy (no backing chain), a transient job (what a persistent guest needs), at most ``bandwidth_mib``
        MiB/s (0: no cap), with synchronous writes when asked (libvirt 8.0: the copy converges whatever the guest
        writes, the guest's writes wait for both disks)."""
        dom = self.domain(name)
        flags = libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB
        if synchronous:
            flag = getattr(libvirt, "VIR_DOMAIN_BLOCK_COPY_SYNCHRONOUS_WRITES", None)
            if flag is None:
                raise HostmaintError("cannot copy disk %s of %s on %s with synchronous writes: this libvirt-python "
                                     "predates them (libvirt 8.0)" % (target, name, self.uri))
            flags |= flag
        params = {}
        if bandwidth_mib:
            params[libvirt.VIR_DOMAIN_BLOCK_COPY_BANDWIDTH] = int(bandwidth_mib) * 1024 * 1024
        xml = "<disk type='file'><source file='%s'/><driver type='%s'/></disk>" % (
            domain_xml.xml_text(dest), domain_xml.xml_text(fmt or "raw"))
        with _failing("cannot start copying disk %s of %s on %s into %s" % (target, name, self.uri, dest)):
            dom.blockCopy(target, xml, params, flags)

    @_typed("read the copy of disk {target} of {name} on {uri}")
    def block_copy_state(self, name, target):
        """{source (the file the guest uses), mirror ({dest, ready, job} or None), cur, end (bytes copied of)}."""
        dom = self.domain(name)
        xml = dom.XMLDesc(0)
        info = dom.blockJobInfo(target, 0) if dom.isActive() else {}
        return dict(source=domain_xml.disk_source(xml, target), mirror=domain_xml.disk_mirror(xml, target),
                    cur=int(info.get("cur", 0)) if info else None, end=int(info.get("end", 0)) if info else None,
                    job=bool(info))

    @_typed("end the copy of disk {target} of {name} on {uri}")
    def end_block_copy(self, name, target, pivot, wait_s=30.0):
        """Pivot to the copy (``pivot``) or abandon it (the guest stays on its source), and wait, bounded, until no
        block job runs on the disk; True once none does."""
        dom = self.domain(name)
        flags = libvirt.VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT if pivot else 0
        try:
            dom.blockJobAbort(target, flags)
        except LIBVIRT_ERRORS as exc:
            if pivot or dom.blockJobInfo(target, 0):
                raise HostmaintError("cannot %s disk %s of %s on %s: %s" % (
                    "pivot" if pivot else "abort the copy of", target, name, self.uri, _message(exc)))
        deadline = time.time() + wait_s
        while dom.blockJobInfo(target, 0):
            if time.time() >= deadline:
                return False
            time.sleep(0.1)
        return True

    @_typed("update the definition of {name} on {uri}")
    def set_disk_source(self, name, target, path, fmt=None):
        """Make the inactive definition of ``name`` name ``path`` for disk ``target`` (a pivot of a transient job
        leaves it naming the old file). Returns whether it changed."""
        dom = self.domain(name)
        if not dom.isPersistent():
            return False
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)
        if domain_xml.disk_source(xml, target) == path:
            return False
        with _failing("cannot update the definition of %s on %s" % (name, self.uri)):
            self.conn.defineXML(domain_xml.with_disk_source(xml, target, path, fmt))
        return True

    @_typed("read the definitions of {name} on {uri}")
    def disk_sources(self, name, target):
        """(live source, inactive source) of disk ``target``: the live one None when shut off, the inactive one
        None when the guest is transient."""
        dom = self.domain(name)
        live = domain_xml.disk_source(dom.XMLDesc(0), target) if dom.isActive() else None
        inactive = (domain_xml.disk_source(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE), target)
                    if dom.isPersistent() else None)
        return live, inactive

    @_typed("read the disk move record of {name} on {uri}")
    def disk_move_record(self, name):
        dom = self.domain(name)
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE if dom.isPersistent() else 0
        return domain_xml.disk_move_record(dom.XMLDesc(flags))

    @_typed("write the disk move record of {name} on {uri}")
    def set_disk_move_record(self, name, record):
        dom = self.domain(name)
        with _failing("cannot write the disk move record of %s on %s" % (name, self.uri)):
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain_xml.disk_move_record_xml(record),
                            domain_xml.PREFIX, domain_xml.DISK_MOVE_NS, self._metadata_flags(dom))

    @_typed("clear the disk move record of {name} on {uri}")
    def clear_disk_move_record(self, name):
        dom = self.domain(name)
        with _failing("cannot clear the disk move record of %s on %s" % (name, self.uri)):
            dom.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, None, None, domain_xml.DISK_MOVE_NS,
                            self._metadata_flags(dom))
