# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One fake of the libvirt adapter for the unit tests of the modules: a small cluster of hosts in memory.

``FakeCluster`` holds the hosts, their guests (model.Guest, with their migration records), maintenance marks and
run holds; ``cluster.factory`` is what a module takes as ``adapter_factory``: it maps a libvirt URI to a
``FakeAdapter`` of one host. A FakeAdapter has the methods of LibvirtAdapter the modules and the executor call,
with the same parameters (tests/unit/plugins/test_fake_adapter.py holds it to that), and speaks only in the
model's terms: no libvirt here. A migration job finishes as soon as it is waited for: the guest lands on its
destination with its record, unless ``cluster.migration_error`` says how it fails. The volumes of each host's pools
are ``cluster.volumes`` ({host: {path: {capacity, allocation}}}); a storage copy makes the copied disks' volumes on the
destination and leaves the source's where they are, as libvirt does. ``cluster.arriving`` ({host: {name: Guest}}) holds
guests on their way into a host by a migration of another run: ``active_memory`` counts them, ``guests`` does not.

Every call is logged in ``cluster.calls`` as (host, method, guest or None). ``cluster.fail(method, host, at=N)``
makes the N-th call of that method on that host raise a HostmaintError, as the real adapter raises every
libvirt error: one sentence naming the host's URI (a failing ``alive()`` answers False, as the real one does).
A host in ``cluster.down`` fails every call that way.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import threading
import time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.libvirt_adapter import GuestWatch
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    CompletedStats,
    Disk,
    Guest,
    HostFacts,
    JobResult,
    JobSample,
    Nic,
)

SHARED = "/var/lib/libvirt/shared"
LOCAL = "/var/lib/libvirt/images"  # the target of each host's pool "default", which no other host shares
LOCAL_URI = "qemu:///system"
URI_TEMPLATE = "qemu+tls://{host}/system"

# What never fails, as in the real adapter: closing (its errors are kept in close_error) and forgetting a watch.
NEVER_FAILS = ("close", "unwatch")


def _logged(method):
    """Log the call and raise the fault injected for it (a FakeAdapter method's first argument after self is
    the guest's name when the method is about a guest)."""
    name = method.__name__

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        guest = args[0] if args and isinstance(args[0], str) and name in GUEST_METHODS else kwargs.get("name")
        fault = self.cluster.enter(self.host, name, guest)
        if fault is not None:
            if name == "alive":
                return False
            raise fault
        return method(self, *args, **kwargs)
    return call


# The methods whose first argument names a guest.
GUEST_METHODS = ("abort_job", "guest", "guest_cpu_xml", "guest_state", "guest_uuid", "has_domain", "inactive_xml",
                 "set_downtime_limit", "set_record", "clear_record", "shutdown", "start", "start_migration",
                 "undefine", "watch")


class FakeCluster(object):
    """Hosts, their guests, marks and holds; what every FakeAdapter of it reads and changes."""

    def __init__(self, *hosts, local="hv1", memory_mib=16384):
        self.hosts = dict((host, {}) for host in hosts)  # host -> {guest name: Guest}
        self.local = local
        self.memory_mib = dict((host, memory_mib) for host in hosts)
        self.marks = {}  # host -> maintenance mark (dict)
        self.holds = {}  # host -> run hold (dict)
        self.down = set()
        self.calls = []  # (host, method, guest or None), in order
        self.opened = []  # the host of each adapter made, in order
        self.faults = {}  # (host, method) -> (call number that fails, HostmaintError)
        self.counts = {}  # (host, method) -> calls so far
        self.fired = []  # where in ``calls`` an injected fault was raised
        self.downtime_ms = {}  # guest -> the pause its migration reports (42 ms when not given)
        self.migration_error = {}  # guest -> the error its migration fails with (it stays on its source)
        self.limits = {}  # (host, guest) -> downtime limit set back after a failed migration
        self.definitions = {}  # inactive XML handed out -> the Guest it defines
        self.volumes = dict((host, {}) for host in hosts)  # host -> {path: {capacity, allocation}} of its pools
        self.landing_events = {}  # guest -> [(kind, detail)] its destination's watch sees after the guest lands
        self.arriving = dict((host, {}) for host in hosts)  # host -> {name: Guest} on its way in by another migration
        self.watches = {}  # (host, guest) -> [GuestWatch]
        self.lock = threading.RLock()
        self.uris = dict((URI_TEMPLATE.format(host=host), host) for host in hosts)
        self.uris[LOCAL_URI] = local

    # -- building the cluster -----------------------------------------------------------------
    def add(self, host, name, state="running", memory_mib=512, **fields):
        """Put guest ``name`` on ``host`` (its disk on shared storage, its NIC on bridge br0); returns it."""
        base = dict(uuid="uuid-%s" % name, state=state, memory_mib=memory_mib, max_memory_mib=memory_mib,
                    disks=[Disk(target="vda", path="%s/%s.qcow2" % (SHARED, name), pool="shared", shared=True)],
                    interfaces=[Nic(type="bridge", source="br0")])
        base.update(fields)
        guest = Guest(name=name, **base)
        self.hosts[host][name] = guest
        return guest

    def uri(self, host):
        return LOCAL_URI if host == self.local else URI_TEMPLATE.format(host=host)

    def factory(self, uri):
        """A new adapter for the host ``uri`` names (a module's ``adapter_factory``); ``opened`` lists those hosts."""
        self.opened.append(self.uris[uri])
        return FakeAdapter(self, self.uris[uri])

    # -- what a test injects and reads ----------------------------------------------------------
    def fail(self, method, host=None, at=1, message=None):
        """The ``at``-th call of ``method`` on ``host`` (the local host by default) raises a HostmaintError (every
        call from then on when ``at`` is None)."""
        host = host or self.local
        text = message or "cannot %s on %s: injected fault" % (method, self.uri(host))
        self.faults[(host, method)] = (at, HostmaintError(text, uri=self.uri(host)))

    def enter(self, host, method, guest):
        """Log one call; the HostmaintError it raises (injected, or its host is down), else None."""
        with self.lock:
            self.calls.append((host, method, guest))
            if method in NEVER_FAILS:
                return None
            count = self.counts[(host, method)] = self.counts.get((host, method), 0) + 1
            if host in self.down:
                return HostmaintError("cannot connect to libvirt at %s: Connection refused" % self.uri(host))
            fault = self.faults.get((host, method))
            if fault is not None and fault[0] in (count, None):
                self.fired.append(len(self.calls) - 1)
                return fault[1]
            return None

    def placement(self):
        """{host: sorted names of its guests}: where every guest is defined."""
        return dict((host, sorted(guests)) for host, guests in self.hosts.items())

    def states(self, host):
        return dict((name, guest.state) for name, guest in self.hosts[host].items())

    def records(self):
        """{guest: origin host of its migration record} for every guest that has one."""
        return dict((name, guest.record.origin_host) for guests in self.hosts.values()
                    for name, guest in guests.items() if guest.record is not None)

    def changes(self):
        """The calls that changed something, as (host, method, guest)."""
        changing = ("set_maintenance", "clear_maintenance", "set_record", "clear_record", "define", "undefine",
                    "shutdown", "start", "start_migration", "delete_volumes", "abort_job", "set_downtime_limit")
        return [call for call in self.calls if call[1] in changing]

    # -- the world's own moves ------------------------------------------------------------------
    def land(self, source, destination, name, paused, copy_disks=()):
        """The guest runs on ``destination``; the volumes of its disks ``copy_disks`` (targets) are copied there."""
        with self.lock:
            guest = self.hosts[source].pop(name)
            if paused:
                guest.state = "paused"
            self.hosts[destination][name] = guest  # its record is its own metadata: it travels with it
            for disk in guest.disks:
                if disk.target in copy_disks and disk.path in self.volumes[source]:
                    self.volumes[destination][disk.path] = dict(self.volumes[source][disk.path])
            watches = list(self.watches.get((destination, name), []))
        for watch in watches:
            watch.add("resumed", "migrated")
            for kind, detail in self.landing_events.get(name, []):
                watch.add(kind, detail)


class FakeJob(object):
    """A migration that finishes the first time it is waited for."""

    def __init__(self, cluster, source, name, destination, options):
        self.cluster, self.source, self.name, self.destination = cluster, source, name, destination
        self.options = options
        self.downtime_before = 300
        self.aborted = False
        self.outcome = None

    def sample(self):
        return JobSample(memory_remaining=1, memory_iteration=1)

    def set_downtime(self, ms):
        pass

    def postcopy(self):
        raise HostmaintError("cannot switch the migration of %s to post-copy: post-copy is not enabled" % self.name)

    def abort(self):
        self.aborted = True

    def wait(self, timeout):
        if self.outcome is None:
            error = self.cluster.migration_error.get(self.name)
            if self.aborted:
                self.outcome = JobResult(ok=False, error="operation aborted: migration out: canceled by client",
                                         cause="aborted")
            elif error:
                self.outcome = JobResult(ok=False, error=error)
            else:
                self.outcome = JobResult(ok=True)
                self.cluster.land(self.source, self.destination, self.name, self.options.paused,
                                  copy_disks=self.options.copy_disks if self.options.storage_copy else ())
        return True

    def result(self):
        return self.outcome

    def completed_stats(self):
        return CompletedStats(downtime_ms=self.cluster.downtime_ms.get(self.name, 42), bytes_transferred=1000,
                              iterations=2)


class FakeAdapter(object):
    """One host of a FakeCluster through the adapter's interface (the methods the modules and the executor call)."""

    def __init__(self, cluster, host):
        self.cluster, self.host = cluster, host
        self.uri = cluster.uri(host)
        self.close_error = None
        self.closed = False

    def _guests(self):
        return self.cluster.hosts[self.host]

    def _guest(self, name):
        try:
            return self._guests()[name]
        except KeyError:
            raise HostmaintError("unknown guest %s: %s has no such guest" % (name, self.uri), guest=name)

    # -- connection ---------------------------------------------------------------------------
    @_logged
    def close(self):
        self.closed = True

    @_logged
    def alive(self):
        return True

    # -- host -----------------------------------------------------------------------------------
    @_logged
    def host_identity(self):
        return dict(hostname=self.host, uuid="uuid-%s" % self.host, uri=self.uri)

    @_logged
    def pools(self, shared_names=()):
        return [dict(name="shared", type="netfs", path=SHARED, active=True, shared=True, shared_by="pool type netfs"),
                dict(name="default", type="dir", path=LOCAL, active=True, shared=False, shared_by=None)]

    @_logged
    def memory_mib(self):
        used = sum(g.memory_mib for g in self._guests().values() if g.active)
        total = self.cluster.memory_mib[self.host]
        return total, total - used

    @_logged
    def active_memory(self):
        guests = list(self._guests().values()) + list(self.cluster.arriving[self.host].values())
        return [Guest(name=g.name, uuid=g.uuid, state=g.state, persistent=g.persistent, memory_mib=g.memory_mib,
                      max_memory_mib=g.max_memory_mib) for g in sorted(guests, key=lambda g: g.name) if g.active]

    @_logged
    def host_facts(self, name, shared_names=(), guests=(), cpu_xml=None, paths=(), pools=None, resident=None):
        total, available = self.memory_mib()
        pools = pools if pools is not None else self.pools(shared_names)
        resident = resident if resident is not None else self.guests(pools=pools)
        mark = self.maintenance()
        resident = [g for g in resident if g.anti_affinity and g.active]
        return HostFacts(name=name, uri=self.uri, uuid="uuid-%s" % self.host, hostname=self.host,
                         libvirt_version=9000000, qemu_version=7002000, arch="x86_64", memory_total_mib=total,
                         memory_free_mib=available, bridges=["br0"], networks=["default"], pools=pools,
                         volume_paths=list(paths), maintenance=mark is not None, maintenance_info=copy.deepcopy(mark),
                         resident_groups=sorted(set(g.anti_affinity for g in resident)))

    @_logged
    def dirty_rates(self):
        return {}

    @_logged
    def local_volumes(self, paths):
        return [path for path in paths if path in self.cluster.volumes[self.host]]

    @_logged
    def delete_volumes(self, paths):
        for path in paths:
            if path not in self.cluster.volumes[self.host]:
                raise HostmaintError("cannot delete %s on %s: Storage volume not found" % (path, self.uri))
            del self.cluster.volumes[self.host][path]
        return list(paths)

    @_logged
    def volume_sizes(self, paths):
        volumes = self.cluster.volumes[self.host]
        return dict((path, dict(volumes[path])) for path in paths if path in volumes)

    @_logged
    def definitions_naming(self, paths):
        found = dict((path, {}) for path in paths)
        for name, guest in self._guests().items():
            kinds = [kind for kind, has in (("inactive", guest.persistent), ("live", guest.active)) if has]
            for disk in guest.disks:
                if disk.path in found and kinds:
                    found[disk.path][name] = kinds
        return found

    # -- maintenance mark and run hold ------------------------------------------------------------
    @_logged
    def maintenance(self):
        return copy.deepcopy(self.cluster.marks.get(self.host))

    @_logged
    def set_maintenance(self, info):
        if self.host in self.cluster.marks:
            return False
        self.cluster.marks[self.host] = copy.deepcopy(info)
        return True

    @_logged
    def clear_maintenance(self):
        return self.cluster.marks.pop(self.host, None) is not None

    @_logged
    def hold(self):
        return copy.deepcopy(self.cluster.holds.get(self.host))

    @_logged
    def take_hold(self, info):
        if self.host in self.cluster.holds:
            return False
        self.cluster.holds[self.host] = copy.deepcopy(info)
        return True

    @_logged
    def update_hold(self, info):
        if self.host not in self.cluster.holds:
            return False
        self.cluster.holds[self.host] = copy.deepcopy(info)
        return True

    @_logged
    def release_hold(self, run_id=None):
        current = self.cluster.holds.get(self.host)
        if current is None or (run_id is not None and current.get("run_id") != run_id):
            return False
        del self.cluster.holds[self.host]
        return True

    @_logged
    def migration_jobs(self):
        return {}

    @_logged
    def abort_job(self, name, wait_s=30.0):
        self._guest(name)
        return True

    # -- guests -------------------------------------------------------------------------------
    @_logged
    def guests(self, pools=None):
        return [copy.deepcopy(self._guests()[name]) for name in sorted(self._guests())]

    @_logged
    def guest(self, name, pools=None):
        return copy.deepcopy(self._guest(name))

    @_logged
    def has_domain(self, name):
        return name in self._guests()

    @_logged
    def guest_uuid(self, name):
        return self._guest(name).uuid

    @_logged
    def guest_state(self, name):
        guest = self._guest(name)
        return guest.state, guest.persistent

    @_logged
    def guest_cpu_xml(self, name):
        self._guest(name)
        return None

    @_logged
    def set_record(self, name, record):
        self._guest(name).record = copy.deepcopy(record)

    @_logged
    def clear_record(self, name):
        self._guest(name).record = None

    @_logged
    def inactive_xml(self, name):
        xml = "<domain><name>%s</name></domain>" % name
        self.cluster.definitions[xml] = copy.deepcopy(self._guest(name))
        return xml

    @_logged
    def define(self, xml):
        guest = copy.deepcopy(self.cluster.definitions[xml])
        guest.state, guest.record = "shutoff", None
        self._guests()[guest.name] = guest

    @_logged
    def undefine(self, name):
        self._guest(name)
        del self._guests()[name]

    @_logged
    def shutdown(self, name, timeout_s):
        self._guest(name).state = "shutoff"
        return True

    @_logged
    def start(self, name):
        self._guest(name).state = "running"

    # -- events and migrations ----------------------------------------------------------------
    @_logged
    def watch(self, name, clock=time.time):
        watch = GuestWatch(self, name, clock)
        with self.cluster.lock:
            self.cluster.watches.setdefault((self.host, name), []).append(watch)
        return watch

    @_logged
    def unwatch(self, watch):
        with self.cluster.lock:
            watches = self.cluster.watches.get((self.host, watch.name), [])
            if watch in watches:
                watches.remove(watch)

    @_logged
    def set_downtime_limit(self, name, ms):
        self._guest(name)
        self.cluster.limits[(self.host, name)] = ms

    @_logged
    def start_migration(self, name, dest_uri, options, destination=None):
        self._guest(name)
        if options.storage_copy and not options.copy_disks:  # as libvirt_adapter.migration_flags refuses it
            raise HostmaintError("cannot migrate %s with a storage copy that names no disk" % name, guest=name)
        return FakeJob(self.cluster, self.host, name, self.cluster.uris[dest_uri], options)


# -- running a module on the cluster ------------------------------------------------------------------------
def reached(host, address, port, timeout, resolver):
    """A module's ``reach`` on the cluster: every peer's libvirt port answers (a host in ``cluster.down`` fails at its
    first adapter call instead, as a peer whose libvirtd is gone)."""


def not_installed(watch):
    """A module's ``stop_watch_install`` in a test: no signal handler, no watch of the test's stdout."""


def not_kept(result, run_id):
    """A module's ``keep_log`` in a test: the run's result is not written under /var/lib/libvirt."""


def run_module(capsys, module_class, cluster, check=False, inject=None, **args):
    """(exit code, the JSON result) of ``module_class`` run on ``cluster`` from its local host, hv1, with the other
    hosts as destinations; ``args`` add to or replace the module arguments. The module's collaborators are the
    test's: the cluster's adapters, every peer reached and its hostname resolved, no stop watch installed, no log
    kept (``inject`` replaces any of them, by constructor argument). ``capsys`` may be None: the module's output is
    read from its own stdout (outside a test too, as when a test module lists the calls of a run)."""
    del capsys  # the JSON is caught below, with or without pytest's capture
    base = dict(name=cluster.local, settle_s=0, _ansible_check_mode=check,
                destinations=[{"name": host} for host in sorted(cluster.hosts) if host != cluster.local])
    base.update(args)
    collaborators = dict(adapter_factory=cluster.factory, resolver=lambda name, timeout: True, reach=reached,
                         stop_watch_install=not_installed, keep_log=not_kept)
    collaborators.update(inject or {})
    output = io.StringIO()
    with patch_module_args(base), contextlib.redirect_stdout(output):
        with pytest.raises(SystemExit) as exit_info:
            module_class(**collaborators).execute()
    return exit_info.value.code, json.loads(output.getvalue())


MOVES_BEGIN = ("-", "moves begin", None)


def check_then_real(capsys, module_class, cluster):
    """Check mode, then a real run, of ``module_class`` on ``cluster``: (check result, real result), after asserting
    that check mode changed nothing, that both succeeded and that both return the same plan (but for the run id)
    with moves in it."""
    code, check = run_module(capsys, module_class, cluster, check=True)
    assert code == 0 and cluster.changes() == [], check
    code, real = run_module(capsys, module_class, cluster)
    assert code == 0, real

    def without_run_id(plan):
        return dict((key, value) for key, value in plan.items() if key != "run_id")
    assert without_run_id(check["plan"]) == without_run_id(real["plan"]) and check["plan"]["moves"] != []
    return check, real


def observed(module_class, cluster):
    """``module_class`` that notes in ``cluster.calls`` (MOVES_BEGIN) when it builds an executor: its moves begin.

    The modules have no seam of their own for this (the executor is built inside run()), so the test's subclass
    wraps EngineModule.executor."""
    class Observed(module_class):
        def executor(self, *args, **kwargs):
            built = super(Observed, self).executor(*args, **kwargs)
            cluster.calls.append(MOVES_BEGIN)
            return built
    Observed.__name__ = module_class.__name__
    return Observed


def before_the_moves(calls):
    """The calls of a call log up to the first move (MOVES_BEGIN), or all of them when no move began."""
    return calls[:calls.index(MOVES_BEGIN)] if MOVES_BEGIN in calls else list(calls)


def call_counts(calls):
    """{(host, method): number of calls} of a call log, the calls that never fail and MOVES_BEGIN left out."""
    counts = {}
    for host, method, _guest in calls:
        if (host, method, _guest) != MOVES_BEGIN and method not in NEVER_FAILS:
            counts[(host, method)] = counts.get((host, method), 0) + 1
    return counts


def clean_calls(module_class, make_cluster, check=False):
    """{(host, method): calls} of a clean run of ``module_class`` on ``make_cluster()``: where faults go."""
    cluster = make_cluster()
    code, result = run_module(None, observed(module_class, cluster), cluster, check=check)
    assert code == 0, result
    return call_counts(cluster.calls)


def each_fault(counts, host, method, make_cluster):
    """A new ``make_cluster()`` for each call of ``method`` on ``host`` in ``counts``, failing at that call."""
    for at in range(1, counts[(host, method)] + 1):
        cluster = make_cluster()
        cluster.fail(method, host=host, at=at)
        yield cluster
