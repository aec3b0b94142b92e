# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The adapter's side of migrations and events: flags from plain options, the migration job over a small fake
domain, what a libvirt error points at, and guest events through libvirt's own test driver (in process, no
libvirtd), with the default event loop the adapter registers before it opens a connection."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET

import pytest

libvirt = pytest.importorskip("libvirt")

from ansible_collections.hostmaint.libvirt.plugins.module_utils import libvirt_adapter  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.executor import settle_problem  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (  # noqa: E402
    MigrationOptions,
    MigrationRecord,
)


class FakeError(libvirt.libvirtError):
    def __init__(self, message, code=libvirt.VIR_ERR_OPERATION_FAILED, domain=libvirt.VIR_FROM_QEMU):
        super(FakeError, self).__init__(message)
        self.message, self.code, self.domain = message, code, domain

    def get_error_message(self):
        return self.message

    def get_error_code(self):
        return self.code

    def get_error_domain(self):
        return self.domain


class FakeDom(object):
    """The libvirt domain calls a MigrationJob makes; the migration ends when ``done`` is set. ``limit`` is
    QEMU's downtime limit (None: a libvirt too old to tell it)."""

    def __init__(self, error=None, limit=None):
        self.done = threading.Event()
        self.error = error
        self.calls = []
        self.limit = limit

    def migrateToURI3(self, uri, params, flags):
        self.calls.append(("migrate", uri, params, flags))
        self.done.wait(5)
        if self.error is not None:
            raise self.error

    def jobStats(self, flags=0):
        if self.done.is_set():
            return {"type": 0}
        return {"type": 2, "data_processed": 5 * 1048576, "memory_remaining": 1048576, "memory_iteration": 2,
                "memory_dirty_rate": 10, "memory_page_size": 4096}

    def migrateGetMaxDowntime(self, flags):
        if self.limit is None:
            raise FakeError("this function is not supported by the connection driver: virDomainMigrateGetMaxDowntime",
                            code=libvirt.VIR_ERR_NO_SUPPORT)
        return self.limit

    def migrateSetMaxDowntime(self, ms, flags):
        self.calls.append(("downtime", ms))
        if self.limit is not None:
            self.limit = ms

    def migrateStartPostCopy(self, flags):
        raise FakeError("Requested operation is not valid: post-copy migration was not enabled",
                        code=libvirt.VIR_ERR_OPERATION_INVALID)

    def abortJob(self):
        self.calls.append(("abort",))
        self.error = FakeError("operation aborted: migration out: canceled by client",
                               code=libvirt.VIR_ERR_OPERATION_ABORTED)
        self.done.set()


class FakeConn(object):
    def __init__(self, dom):
        self.dom = dom

    def lookupByName(self, name):
        if self.dom is None:
            raise FakeError("Domain not found: no domain with matching name '%s'" % name, code=libvirt.VIR_ERR_NO_DOMAIN)
        return self.dom


def test_flags_and_parameters_come_from_plain_options():
    flags, params = libvirt_adapter.migration_flags(MigrationOptions())
    assert flags & libvirt.VIR_MIGRATE_LIVE and flags & libvirt.VIR_MIGRATE_PEER2PEER
    assert flags & libvirt.VIR_MIGRATE_ABORT_ON_ERROR
    assert flags & libvirt.VIR_MIGRATE_PERSIST_DEST and flags & libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    for flag in ("TLS", "PAUSED", "AUTO_CONVERGE", "POSTCOPY", "NON_SHARED_DISK", "UNSAFE"):
        assert not flags & getattr(libvirt, "VIR_MIGRATE_" + flag), flag
    assert params == {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 0}

    flags, params = libvirt_adapter.migration_flags(MigrationOptions(
        tls=True, bandwidth_mib=40, auto_converge=True, auto_converge_initial=20, auto_converge_increment=10,
        postcopy=True, storage_copy=True, copy_disks=["vda"], unsafe=True, paused=True, persistent=False))
    for flag in ("TLS", "PAUSED", "AUTO_CONVERGE", "POSTCOPY", "NON_SHARED_DISK", "UNSAFE"):
        assert flags & getattr(libvirt, "VIR_MIGRATE_" + flag), flag
    assert not flags & libvirt.VIR_MIGRATE_PERSIST_DEST and not flags & libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    assert params == {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 40, libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL: 20,
                      libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT: 10,
                      libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS: ["vda"]}


def test_a_storage_copy_always_names_its_disks_and_one_that_names_none_is_refused():
    flags, params = libvirt_adapter.migration_flags(MigrationOptions(storage_copy=True, copy_disks=["vdb"]))
    assert flags & libvirt.VIR_MIGRATE_NON_SHARED_DISK and params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] == ["vdb"]
    # without the list libvirt would copy every writable disk, those on shared storage onto themselves too
    with pytest.raises(HostmaintError) as error:
        libvirt_adapter.migration_flags(MigrationOptions(storage_copy=True), "web1")
    assert error.value.message == ("cannot migrate web1 with a storage copy that names no disk: libvirt would copy "
                                   "every writable disk, those on shared storage too")
    dom = FakeDom()
    with pytest.raises(HostmaintError) as error:
        adapter_with(dom).start_migration("web1", "qemu+tls://hv2/system", MigrationOptions(storage_copy=True))
    assert error.value.message.startswith("cannot migrate web1 with a storage copy that names no disk")
    assert dom.calls == []  # nothing was started, not even the downtime limit set


@pytest.mark.parametrize("code, domain, cause", [
    (libvirt.VIR_ERR_OPERATION_ABORTED, libvirt.VIR_FROM_QEMU, "aborted"),
    (libvirt.VIR_ERR_SYSTEM_ERROR, libvirt.VIR_FROM_RPC, "destination"),  # unable to connect to server at hv2
    (libvirt.VIR_ERR_AUTH_FAILED, libvirt.VIR_FROM_REMOTE, "destination"),
    (libvirt.VIR_ERR_HOOK_SCRIPT_FAILED, libvirt.VIR_FROM_HOOK, "destination"),  # the destination refused
    (libvirt.VIR_ERR_OPERATION_FAILED, libvirt.VIR_FROM_QEMU, None),  # QEMU's own: the guest's, unless...
])
def test_what_a_migration_error_points_at(code, domain, cause):
    assert libvirt_adapter.error_cause(code, domain) == cause


def adapter_with(dom):
    return libvirt_adapter.LibvirtAdapter("qemu+tls://hv1/system", conn=FakeConn(dom))


def test_a_job_samples_steers_and_completes():
    dom = FakeDom()
    source = adapter_with(dom)
    job = source.start_migration("web1", "qemu+tls://hv2/system", MigrationOptions(downtime_ms=50, tls=True))
    assert job.wait(0.05) is False
    sample = job.sample()
    assert (sample.data_processed, sample.memory_iteration, sample.dirty_rate_bps) == (5 * 1048576, 2, 40960)
    job.set_downtime(100)
    with pytest.raises(HostmaintError) as error:
        job.postcopy()
    assert error.value.message == ("cannot switch the migration of web1 from qemu+tls://hv1/system to post-copy: "
                                   "Requested operation is not valid: post-copy migration was not enabled")
    dom.done.set()
    assert job.wait(1) is True and job.result().ok
    assert dom.calls[0] == ("downtime", 50) and dom.calls[1][:2] == ("migrate", "qemu+tls://hv2/system")
    assert dom.calls[1][3] & libvirt.VIR_MIGRATE_TLS and ("downtime", 100) in dom.calls
    # no completed statistics anywhere (the fake keeps none): the last sample's numbers
    stats = job.completed_stats()
    assert (stats.downtime_ms, stats.bytes_transferred, stats.iterations) == (None, 5 * 1048576, 2)


def test_an_aborted_job_says_so_and_a_failed_one_says_whose_fault_it_is():
    dom = FakeDom()
    job = adapter_with(dom).start_migration("web1", "qemu+tls://hv2/system", MigrationOptions())
    job.abort()
    assert job.wait(1)
    assert (job.result().ok, job.result().cause) == (False, "aborted")
    dom = FakeDom(error=FakeError("unable to connect to server at 'hv2:16514': Connection refused",
                                  code=libvirt.VIR_ERR_SYSTEM_ERROR, domain=libvirt.VIR_FROM_RPC))
    job = adapter_with(dom).start_migration("web1", "qemu+tls://hv2/system", MigrationOptions())
    with pytest.raises(HostmaintError):
        job.result()  # not finished yet
    dom.done.set()
    assert job.wait(1)
    assert job.result().error == "unable to connect to server at 'hv2:16514': Connection refused"
    assert job.result().cause == "destination"


def test_a_job_keeps_the_downtime_limit_the_guest_had_before_and_it_can_be_set_back():
    dom = FakeDom(limit=300)
    source = adapter_with(dom)
    job = source.start_migration("web1", "qemu+tls://hv2/system", MigrationOptions(downtime_ms=50))
    assert dom.limit == 50 and job.downtime_before == 300  # the first rung, set before the job starts
    job.abort()
    assert job.wait(1)
    source.set_downtime_limit("web1", job.downtime_before)
    assert dom.limit == 300 and dom.calls[-1] == ("downtime", 300)

    dom = FakeDom()  # a libvirt that cannot tell the limit: unknown, so nothing is set back
    job = adapter_with(dom).start_migration("web1", "qemu+tls://hv2/system", MigrationOptions(downtime_ms=50))
    assert job.downtime_before is None
    job.abort()
    assert job.wait(1)


IMAGES = "/var/lib/libvirt/images"
NO_VOLUME = libvirt.VIR_ERR_NO_STORAGE_VOL


class Volume(object):
    def __init__(self, path, capacity=0, allocation=0):
        self._path, self.capacity, self.allocation = path, capacity, allocation

    def info(self):
        return [0, self.capacity, self.allocation]

    def path(self):
        return self._path

    def name(self):
        return self._path.rpartition("/")[2]

    def XMLDesc(self, flags):
        fmt = self._path.rpartition(".")[2]
        return "<volume><target><format type='%s'/></target></volume>" % fmt

    def storagePoolLookupByVolume(self):
        return VolumePool(None)


class VolumePool(object):
    """A pool that lists the volumes it has not listed yet once it is refreshed; its volumes by name."""

    def __init__(self, conn):
        self.conn = conn

    def name(self):
        return "default"

    def refresh(self, flags):
        self.conn.refreshed += 1
        self.conn.listed.update(self.conn.unlisted)

    def storageVolLookupByName(self, name):
        if self.conn.pool_error is not None:
            raise self.conn.pool_error
        for path, volume in self.conn.listed.items():
            if path.rpartition("/")[2] == name:
                return volume
        raise FakeError("Storage volume not found: no storage vol with matching name '%s'" % name, code=NO_VOLUME)


class NamingDom(object):
    def __init__(self, name, active=True, persistent=True, live=None, inactive=None, gone=False):
        self._name, self.active, self.persistent, self.live, self.inactive = name, active, persistent, live, inactive
        self.gone = gone

    def name(self):
        return self._name

    def isActive(self):
        return self.active

    def isPersistent(self):
        return self.persistent

    def XMLDesc(self, flags):
        if self.gone:
            raise FakeError("Domain not found", code=libvirt.VIR_ERR_NO_DOMAIN)
        return self.inactive if flags & libvirt.VIR_DOMAIN_XML_INACTIVE or not self.active else self.live


class StorageConn(object):
    def __init__(self, listed=None, unlisted=None, doms=(), pool_error=None):
        self.listed, self.unlisted, self.doms, self.pool_error = dict(listed or {}), dict(unlisted or {}), doms, pool_error
        self.refreshed = 0

    def storageVolLookupByPath(self, path):
        if path in self.listed:
            return self.listed[path]
        raise FakeError("Storage volume not found: no storage vol with matching path '%s'" % path, code=NO_VOLUME)

    def listAllStoragePools(self, flags):
        return [VolumePool(self)]

    def storagePoolLookupByName(self, name):
        return VolumePool(self)

    def listAllDomains(self, flags):
        return list(self.doms)


def test_volume_sizes_are_each_volumes_capacity_and_allocation_and_an_unlisted_file_is_found_after_a_refresh():
    conn = StorageConn(listed={IMAGES + "/a.qcow2": Volume(IMAGES + "/a.qcow2", 20 << 30, 3 << 30)},
                       unlisted={IMAGES + "/b.raw": Volume(IMAGES + "/b.raw", 8 << 30, 8 << 30)})
    adapter = libvirt_adapter.LibvirtAdapter(URI, conn=conn)
    sizes = adapter.volume_sizes([IMAGES + "/a.qcow2"])
    assert sizes == {IMAGES + "/a.qcow2": dict(capacity=20 << 30, allocation=3 << 30)}
    assert conn.refreshed == 0  # every one found: no pool is refreshed
    assert adapter.volume_sizes([IMAGES + "/a.qcow2", IMAGES + "/b.raw", "/srv/none.qcow2"]) == {
        IMAGES + "/a.qcow2": dict(capacity=20 << 30, allocation=3 << 30),
        IMAGES + "/b.raw": dict(capacity=8 << 30, allocation=8 << 30)}
    assert conn.refreshed == 1


def disks_xml(name, *sources):
    """A domain XML whose disks have these <source .../> (and <backingStore> ...) elements, one disk each."""
    disks = "".join("<disk type='file' device='disk'>%s<target dev='vd%s'/></disk>" % (source, "abcdefgh"[i])
                    for i, source in enumerate(sources))
    return "<domain><name>%s</name><devices>%s</devices></domain>" % (name, disks)


def test_definitions_naming_reads_live_and_persistent_definitions_backing_files_and_volumes():
    a, base, c = IMAGES + "/a.qcow2", IMAGES + "/base.qcow2", IMAGES + "/c.qcow2"
    doms = [
        # running and persistent: its live definition names a and its backing file, its persistent one a
        NamingDom("web1", live=disks_xml("web1", "<source file='%s'/><backingStore type='file'><source file='%s'/>"
                                                 "</backingStore>" % (a, base)),
                  inactive=disks_xml("web1", "<source file='%s'/>" % a)),
        # shut off: a as a volume of the pool default
        NamingDom("web2", active=False, inactive=disks_xml("web2", "<source pool='default' volume='a.qcow2'/>")),
        # transient, its path written with a double slash; and a volume that its pool does not hold
        NamingDom("web3", persistent=False, live=disks_xml("web3", "<source file='%s//c.qcow2'/>" % IMAGES,
                                                           "<source pool='default' volume='gone.qcow2'/>")),
        NamingDom("left", gone=True),  # undefined between listing and reading
    ]
    conn = StorageConn(listed={a: Volume(a)}, doms=doms)
    found = libvirt_adapter.LibvirtAdapter(URI, conn=conn).definitions_naming([a, base, c, "/srv/none.qcow2"])
    assert found == {a: {"web1": ["inactive", "live"], "web2": ["inactive"]}, base: {"web1": ["live"]},
                     c: {"web3": ["live"]}, "/srv/none.qcow2": {}}
    # a volume whose pool cannot answer: what it names is not known, so the answer is an error, not "nothing"
    conn = StorageConn(doms=doms[1:2], pool_error=FakeError("Requested operation is not valid: storage pool "
                                                            "'default' is not active",
                                                            code=libvirt.VIR_ERR_OPERATION_INVALID))
    with pytest.raises(HostmaintError) as error:
        libvirt_adapter.LibvirtAdapter(URI, conn=conn).definitions_naming([a])
    assert error.value.message == ("cannot read which definitions of the guests of %s name their disks: Requested "
                                   "operation is not valid: storage pool 'default' is not active" % URI)


def test_an_unknown_guest_cannot_start_migrating():
    with pytest.raises(HostmaintError) as error:
        adapter_with(None).start_migration("ghost", "qemu+tls://hv2/system", MigrationOptions())
    assert error.value.message == "unknown guest ghost: qemu+tls://hv1/system has no such guest"


# -- events, for real: libvirt's test driver runs in this process ----------------------------------------------
GUEST_XML = """<domain type='test'><name>%s</name><memory>65536</memory><vcpu>1</vcpu>
<os><type>hvm</type></os></domain>"""


@pytest.fixture()
def test_driver():
    adapter = libvirt_adapter.LibvirtAdapter("test:///default")
    try:
        adapter.conn
    except HostmaintError as exc:
        pytest.skip("libvirt's test driver is not available: %s" % exc.message)
    yield adapter
    adapter.close()


def wait_for(predicate, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline and not predicate():
        time.sleep(0.02)
    return predicate()


def test_the_event_loop_runs_before_the_first_connection_and_keepalive_is_asked_for(test_driver):
    assert libvirt_adapter.EVENT_LOOP.running
    # the test driver has no keepalive; a remote connection would take it
    assert "not supported" in (test_driver.keepalive_error or "")
    assert test_driver.alive() is True


def test_a_watch_sees_its_guest_and_only_its_guest_even_before_the_guest_exists(test_driver):
    watch = test_driver.watch("watched", clock=time.monotonic)
    other = test_driver.watch("someone-else", clock=time.monotonic)
    dom = test_driver.conn.createXML(GUEST_XML % "watched", 0)  # defined and started after the watch began
    try:
        dom.suspend()
        dom.resume()
    finally:
        dom.destroy()
    assert wait_for(lambda: len(watch.events()) >= 4)
    seen = [(e.kind, e.detail) for e in watch.events()]
    assert seen == [("started", "booted"), ("suspended", "paused"), ("resumed", "unpaused"),
                    ("stopped", "destroyed")]
    assert other.events() == []
    events = watch.events()
    problem = settle_problem("watched", "hv2", events, events[0].at)
    assert problem.startswith("watched was paused (paused) 0.") and problem.endswith(" s after switchover on hv2")
    watch.close()
    other.close()


def test_active_memory_reads_every_active_domain_with_its_current_and_maximum_memory(test_driver):
    found = test_driver.active_memory()
    # the test driver's own running domain "test": 2 GiB current, 8 GiB maximum (what a declared capacity counts)
    assert [(g.name, g.state, g.persistent, g.memory_mib, g.max_memory_mib) for g in found] == [
        ("test", "running", True, 2048, 8192)]
    assert found[0].uuid == test_driver.conn.lookupByName("test").UUIDString()


def test_a_closed_adapter_has_no_callbacks_left(test_driver):
    test_driver.watch("x")
    assert len(test_driver._callbacks) == 2
    test_driver.close()
    assert test_driver._callbacks == [] and test_driver.close_error is None


class InterfacelessConn(object):
    """A libvirt without the interface driver (libvirt 10 and later, package not installed)."""

    def __init__(self, code=libvirt.VIR_ERR_NO_SUPPORT):
        self.code = code

    def listAllInterfaces(self, flags):
        raise FakeError("this function is not supported by the connection driver: virConnectListAllInterfaces",
                        code=self.code, domain=libvirt.VIR_FROM_NONE)


def test_a_host_without_the_interface_driver_has_unknown_bridges_and_other_errors_still_raise():
    adapter = libvirt_adapter.LibvirtAdapter("qemu+tls://hv1/system", conn=InterfacelessConn())
    assert adapter.bridges() is None
    adapter = libvirt_adapter.LibvirtAdapter("qemu+tls://hv1/system",
                                             conn=InterfacelessConn(code=libvirt.VIR_ERR_INTERNAL_ERROR))
    with pytest.raises(HostmaintError) as error:  # typed, no longer libvirt's own error
        adapter.bridges()
    assert error.value.message == ("cannot read the bridges of qemu+tls://hv1/system: this function is not supported "
                                   "by the connection driver: virConnectListAllInterfaces")


# -- typed errors: nothing libvirt raises leaves the adapter untyped -------------------------------------------
URI = "qemu+tls://hv1/system"
BROKEN = "internal error: client socket is closed"


class BrokenConn(object):
    """A connection whose every call fails, as one to a libvirtd that went away mid-run does."""

    def __getattr__(self, attribute):
        def call(*_args, **_kwargs):
            raise FakeError(BROKEN, code=libvirt.VIR_ERR_INTERNAL_ERROR, domain=libvirt.VIR_FROM_RPC)
        return call


CAPS = ET.fromstring("<capabilities><host><cpu><pages size='4'/><pages size='2048'/></cpu></host></capabilities>")
RECORD = MigrationRecord("hv1", "uuid-1", "run-1", "2026-11-25T18:00:00Z")

# (method, arguments, the guest its sentence names or None for a host call): every public method the modules'
# evacuate/restore/preflight paths call that may fail; each names the host's URI too.
RAISING = [
    ("host_identity", (), None),
    ("pools", (), None),
    ("guests", (), None),
    ("memory_mib", (), None),
    ("active_memory", (), None),
    ("bridges", (), None),
    ("networks", (), None),
    ("existing_paths", (["/srv/web1.qcow2"], []), None),
    ("local_volumes", (["/srv/web1.qcow2"],), None),
    ("delete_volumes", (["/srv/web1.qcow2"],), None),
    ("volume_sizes", (["/srv/web1.qcow2"],), None),
    ("definitions_naming", (["/srv/web1.qcow2"],), None),
    ("host_facts", ("hv1",), None),
    ("maintenance", (), None),
    ("set_maintenance", ({"run_id": "run-1", "since": "now"},), None),
    ("clear_maintenance", (), None),
    ("hold", (), None),
    ("take_hold", ({"run_id": "run-1"},), None),
    ("update_hold", ({"run_id": "run-1"},), None),
    ("release_hold", ("run-1",), None),
    ("migration_jobs", (), None),
    ("define", ("<domain><name>web1</name></domain>",), None),
    ("watch", ("web1",), None),  # names the guest when the event loop does not run, the host's guests when it does
    ("guest_cpu_xml", ("web1",), "web1"),
    ("abort_job", ("web1",), "web1"),
    ("domain", ("web1",), "web1"),
    ("has_domain", ("web1",), "web1"),
    ("guest_uuid", ("web1",), "web1"),
    ("guest_state", ("web1",), "web1"),
    ("set_record", ("web1", RECORD), "web1"),
    ("clear_record", ("web1",), "web1"),
    ("guest", ("web1",), "web1"),
    ("undefine", ("web1",), "web1"),
    ("inactive_xml", ("web1",), "web1"),
    ("shutdown", ("web1", 1), "web1"),
    ("start", ("web1",), "web1"),
    ("set_downtime_limit", ("web1", 300), "web1"),
    ("start_migration", ("web1", "qemu+tls://hv2/system", MigrationOptions()), "web1"),
    ("pool_space", (), None),
    ("volume_names", ("new",), None),
    ("pool_volumes", ("new",), None),
    ("volume_info", (["/srv/web1.qcow2"],), None),
    ("create_volume", ("new", "web1.qcow2", 1 << 30, "qcow2"), None),
    ("copy_volume", ("/srv/web1.qcow2", "new", "web1.qcow2", "qcow2"), None),
    ("block_jobs", ("web1",), "web1"),
    ("snapshot_count", ("web1",), "web1"),
    ("start_block_copy", ("web1", "vda", "/srv/new/web1.qcow2", "qcow2"), "web1"),
    ("block_copy_state", ("web1", "vda"), "web1"),
    ("end_block_copy", ("web1", "vda", True), "web1"),
    ("set_disk_source", ("web1", "vda", "/srv/new/web1.qcow2"), "web1"),
    ("disk_sources", ("web1", "vda"), "web1"),
    ("disk_move_record", ("web1",), "web1"),
    ("set_disk_move_record", ("web1", {"run_id": "run-1", "disks": []}), "web1"),
    ("clear_disk_move_record", ("web1",), "web1"),
]

# Calls whose failure is an answer by design: (method, arguments, what it answers on a broken connection).
VERDICTS = [
    ("alive", (), False),
    ("close", (), None),
    ("dirty_rates", (), {}),  # an estimate for ordering: none rather than an error
    ("hugepages_free_mib", (CAPS,), {}),
    ("compare_cpu", ("<cpu/>", "x86_64", "pc", "kvm"), (False, BROKEN)),
    ("unwatch", (libvirt_adapter.GuestWatch(None, "web1", time.time),), None),
]


def public_methods():
    return sorted(name for name, member in vars(libvirt_adapter.LibvirtAdapter).items()
                  if not name.startswith("_") and callable(member))


def test_every_public_method_is_judged_below():
    assert public_methods() == sorted([m for m, _a, _g in RAISING] + [m for m, _a, _v in VERDICTS])


@pytest.mark.parametrize("method, args, guest", RAISING, ids=[m for m, _a, _g in RAISING])
def test_a_libvirt_error_leaves_every_adapter_call_as_one_sentence_naming_its_object(method, args, guest):
    adapter = libvirt_adapter.LibvirtAdapter(URI, conn=BrokenConn())
    with pytest.raises(HostmaintError) as error:
        getattr(adapter, method)(*args)
    assert type(error.value) is HostmaintError  # pylint: disable=unidiomatic-typecheck
    message = error.value.message
    assert message.startswith("cannot ") and "\n" not in message, message
    assert URI in message, message
    if guest is not None:
        assert guest in message, message
    if method != "watch" or libvirt_adapter.EVENT_LOOP.running:
        assert message.endswith(": " + BROKEN), message


class AnsweringConn(BrokenConn):
    """Look-ups and listings answer, with objects (domains, pools, secrets) whose every call fails: each method
    gets one step further than on BrokenConn, into the calls it makes on what it looked up."""

    def getCapabilities(self):
        return "<capabilities><host><uuid>u-1</uuid><cpu><arch>x86_64</arch></cpu></host></capabilities>"

    def lookupByName(self, name):
        return BrokenConn()

    def secretLookupByUsage(self, usage, name):
        return BrokenConn()

    def storageVolLookupByPath(self, path):
        return BrokenConn()

    def listAllDomains(self, flags):
        return [BrokenConn()]

    def listAllStoragePools(self, flags):
        return [BrokenConn()]


@pytest.mark.parametrize("method, args", [(m, a) for m, a, _g in RAISING + VERDICTS],
                         ids=[m for m, _a, _g in RAISING + VERDICTS])
def test_what_a_look_up_returned_failing_leaves_no_untyped_error_either(method, args):
    adapter = libvirt_adapter.LibvirtAdapter(URI, conn=AnsweringConn())
    try:
        getattr(adapter, method)(*args)
    except HostmaintError as exc:
        assert type(exc) is HostmaintError and URI in exc.message, exc.message  # pylint: disable=unidiomatic-typecheck


@pytest.mark.parametrize("method, args, answer", VERDICTS, ids=[m for m, _a, _v in VERDICTS])
def test_calls_that_answer_a_broken_connection_with_a_verdict_do_not_raise(method, args, answer):
    adapter = libvirt_adapter.LibvirtAdapter(URI, conn=BrokenConn())
    assert getattr(adapter, method)(*args) == answer


class UnreadableDom(object):
    def name(self):
        return "web1"

    def state(self):
        return [libvirt.VIR_DOMAIN_RUNNING, 1]

    def isPersistent(self):
        return True

    def XMLDesc(self, flags):
        return "<domain"


class UnreadableConn(object):
    """A libvirt whose XML this module cannot read (truncated, or with a number that is none)."""

    def __init__(self, dom):
        self.dom = dom

    def listAllDomains(self, flags):
        return [self.dom]

    def listAllStoragePools(self, flags):
        return []

    def lookupByName(self, name):
        return self.dom

    def getCapabilities(self):
        return "<capabilities><host>"


def test_a_malformed_domain_xml_is_one_sentence_naming_the_guest_and_its_host():
    adapter = libvirt_adapter.LibvirtAdapter(URI, conn=UnreadableConn(UnreadableDom()))
    for call in (adapter.guests, lambda: adapter.guest("web1")):
        with pytest.raises(HostmaintError) as error:
            call()
        assert error.value.message.startswith("cannot read guest web1 on %s: unreadable domain XML: " % URI)
    with pytest.raises(HostmaintError) as error:
        adapter.host_identity()
    assert error.value.message.startswith("cannot read the identity (hostname, UUID) of %s: libvirt returned "
                                          "unreadable XML (" % URI)


def test_a_domain_xml_with_a_number_that_is_none_is_one_sentence_too():
    dom = UnreadableDom()
    dom.XMLDesc = lambda flags: "<domain><name>web1</name><memory>lots</memory></domain>"
    with pytest.raises(HostmaintError) as error:
        libvirt_adapter.LibvirtAdapter(URI, conn=UnreadableConn(dom)).guests()
    assert error.value.message == ("cannot read guest web1 on %s: the domain XML of web1 has a value that is not a "
                                   "number (could not convert string to float: 'lots')" % URI)


class Secret(object):
    def __init__(self, fails):
        self.fails, self.undefined = fails, False

    def setValue(self, value, flags):
        if self.fails:
            raise FakeError("internal error: cannot write secret value")

    def undefine(self):
        self.undefined = True


class MarkConn(object):
    def __init__(self, secret):
        self.secret = secret

    def secretLookupByUsage(self, usage, name):
        if self.secret.undefined or not hasattr(self, "defined"):
            raise FakeError("Secret not found", code=libvirt.VIR_ERR_NO_SECRET)
        return self.secret

    def secretDefineXML(self, xml, flags):
        self.defined = True  # pylint: disable=attribute-defined-outside-init
        return self.secret


def test_a_mark_whose_value_cannot_be_written_is_removed_again_and_the_error_says_so():
    secret = Secret(fails=True)
    adapter = libvirt_adapter.LibvirtAdapter(URI, conn=MarkConn(secret))
    with pytest.raises(HostmaintError) as error:
        adapter.set_maintenance({"run_id": "run-1"})
    assert error.value.message == "cannot mark %s in maintenance: internal error: cannot write secret value" % URI
    assert secret.undefined and adapter.maintenance() is None
    secret = Secret(fails=False)
    assert libvirt_adapter.LibvirtAdapter(URI, conn=MarkConn(secret)).set_maintenance({"run_id": "run-1"}) is True


class FactsConn(object):
    """A host with no pool, no guest, no network and no mark, that counts what it is asked."""

    def __init__(self):
        self.asked = []

    def __getattr__(self, attribute):
        answers = dict(getCapabilities="<capabilities><host><uuid>u-hv1</uuid><cpu><arch>x86_64</arch></cpu></host>"
                                       "</capabilities>",
                       getMemoryStats={"total": 8 << 20, "free": 4 << 20}, getHostname="hv1", getLibVersion=9000000,
                       getVersion=7002000, listAllInterfaces=[], listAllNetworks=[], listAllStoragePools=[],
                       listAllDomains=[])

        def call(*_args, **_kwargs):
            self.asked.append(attribute)
            if attribute == "secretLookupByUsage":
                raise FakeError("Secret not found", code=libvirt.VIR_ERR_NO_SECRET)
            return answers[attribute]
        return call


def test_host_facts_reads_the_pools_and_guests_only_when_the_caller_has_not():
    conn = FactsConn()
    facts = libvirt_adapter.LibvirtAdapter(URI, conn=conn).host_facts("hv1")
    assert (facts.uuid, facts.memory_free_mib, facts.maintenance) == ("u-hv1", 4096, False)
    assert conn.asked.count("listAllStoragePools") == 1 and conn.asked.count("listAllDomains") == 1
    assert conn.asked.count("secretLookupByUsage") == 1  # the mark, read once
    conn = FactsConn()
    libvirt_adapter.LibvirtAdapter(URI, conn=conn).host_facts("hv1", pools=[], resident=[])
    assert "listAllStoragePools" not in conn.asked and "listAllDomains" not in conn.asked
