# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The adapter's side of migrations and events: flags from plain options, the migration job over a small fake
domain, what a libvirt error points at, and guest events through libvirt's own test driver (in process, no
libvirtd), with the default event loop the adapter registers before it opens a connection."""

from __future__ import annotations

import threading
import time

import pytest

libvirt = pytest.importorskip("libvirt")

from ansible_collections.hostmaint.libvirt.plugins.module_utils import libvirt_adapter  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.executor import settle_problem  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MigrationOptions  # noqa: E402


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
    adapter = object.__new__(libvirt_adapter.LibvirtAdapter)
    adapter._lock = threading.Lock()  # pylint: disable=protected-access
    adapter._conn = InterfacelessConn()  # pylint: disable=protected-access
    assert adapter.bridges() is None
    adapter._conn = InterfacelessConn(code=libvirt.VIR_ERR_INTERNAL_ERROR)  # pylint: disable=protected-access
    with pytest.raises(libvirt.libvirtError):
        adapter.bridges()
