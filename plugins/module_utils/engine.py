# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""EngineModule: what the migration modules share on top of LibvirtModule.

Options (argument specs in module_utils.options, documented in the hostmaint.libvirt.engine doc
fragment; judged once into inputs.EngineOptions), this host's identity, peers' URIs and the connections
(one adapter per host per run, which the survey, the executor and the aftercare share), the guard of a
run (hold, mark, settle) and the steps of its plan that are not the executor's.
Peers are reached through libvirt remote URIs built from ``uri_template``; a peer that does not
answer within ``connect_timeout`` is unreachable (a verdict, not a failure). Each peer's own
hostname is looked up here, on the source, within ``connect_timeout`` too (``resolves``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import time
import uuid
from typing import List, Optional

from ansible_collections.hostmaint.libvirt.plugins.module_utils import (
    generation,
    inputs,
    placement,
    preflight,
    probe,
    progress,
    runs,
    uris,
)
from ansible_collections.hostmaint.libvirt.plugins.module_utils.base import LibvirtModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.executor import Executor
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    DecisionError,
    Guest,
    HostFacts,
    MigrationRecord,
    with_capacity,
)

DEFAULT_PORTS = {"tls": 16514, "tcp": 16509, "ssh": 22, "libssh": 22, "libssh2": 22}


def scheme_port(uri):
    """The TCP port a libvirt remote URI connects to (explicit port, else the transport's default)."""
    scheme, _sep, rest = uri.partition("://")
    transport = scheme.partition("+")[2] or "tls"
    hostpart = rest.split("/", 1)[0].rpartition("@")[2]
    if hostpart.startswith("["):
        host, _sep, port = hostpart[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _sep, port = hostpart.partition(":")
    return host, int(port) if port.isdigit() else DEFAULT_PORTS.get(transport, 16514)


def resolves(hostname, timeout, lookup=socket.getaddrinfo):
    """Whether hostname resolves on this host: True, False, or None when unknown.

    None when there is no name, or when ``lookup`` (getaddrinfo, which has no timeout of its own)
    gives no answer within ``timeout`` seconds: the lookup runs in a daemon thread that is left
    behind then. Any resolver error (socket.gaierror, including "temporary failure") is False: the
    name does not resolve now, so a migration to it would fail now.
    """
    if not hostname:
        return None
    answer = []

    def look_up():
        try:
            lookup(hostname, None, 0, socket.SOCK_STREAM)
            answer.append(True)
        except (OSError, UnicodeError):  # socket.gaierror is an OSError; a bad name may be a UnicodeError
            answer.append(False)

    thread = threading.Thread(target=look_up, name="resolve %s" % hostname)
    thread.daemon = True
    thread.start()
    thread.join(timeout)
    return answer[0] if answer else None


def reach(host, address, port, timeout, resolver=resolves, connect=socket.create_connection):
    """Whether host's libvirt port answers within ``timeout`` seconds: returns, or raises HostmaintError naming the
    host, its address (from ``destinations``) and what went wrong.

    The address is looked up first with ``resolver`` (``resolves``: bounded by ``timeout``, where the look-up inside
    socket.create_connection has no bound of its own), then ``connect`` opens and closes a TCP connection.
    """
    known = resolver(address, timeout)
    if known is False:
        raise HostmaintError("cannot reach %s: its address %s (destinations) does not resolve on this host; give its "
                             "address in destinations or add the name to DNS or /etc/hosts" % (host, address),
                             host=host, address=address)
    if known is None:
        raise HostmaintError("cannot reach %s: looking up its address %s (destinations) gave no answer within %s s "
                             "(connect_timeout)" % (host, address, timeout), host=host, address=address)
    try:
        connect((address, port), timeout=timeout).close()
    except (OSError, socket.timeout) as exc:
        raise HostmaintError("cannot reach %s at %s port %d: %s" % (host, address, port, exc), host=host,
                             address=address)


reach_port = reach  # EngineModule's default ``reach`` (its constructor's argument of that name hides the function)


def local_release(root="/"):
    """What this host runs besides libvirt and QEMU: {kernel_release, os_version} (None when unknown).

    The OS version is Debian's point release (/etc/debian_version), else VERSION_ID of /etc/os-release.
    """
    found = dict(kernel_release=os.uname().release, os_version=None)
    try:
        with open(os.path.join(root, "etc", "debian_version")) as fh:
            found["os_version"] = fh.read().strip() or None
    except OSError:
        try:
            with open(os.path.join(root, "etc", "os-release")) as fh:
                for line in fh:
                    if line.startswith("VERSION_ID="):
                        found["os_version"] = line.split("=", 1)[1].strip().strip('"') or None
        except OSError:
            pass
    return found


def host_generation(facts, override=None, release=None):
    """The generation of the host whose facts these are: the operator's, else derived (module_utils.generation)."""
    if override:
        return override
    release = release or local_release()
    return generation.derive(facts.libvirt_version, facts.qemu_version, release["kernel_release"], release["os_version"])


@dataclasses.dataclass
class Guard:
    """What the guard of a run left (EngineModule.guard): this host's maintenance mark, whether this run set it,
    and what was under way here and was waited for or aborted (runs.HostRun.settle). The run fills in ``result``
    (kept on the host when the hold ends) and sets ``moving`` once its first move may start: from then on an error
    leaves the mark in place."""

    mark: Optional[dict] = None
    marked: bool = False
    under_way: List[dict] = dataclasses.field(default_factory=list)
    result: dict = dataclasses.field(default_factory=dict)
    moving: bool = False


class EngineModule(LibvirtModule):
    """Base of the modules that plan and move guests: their options (judged once into inputs.EngineOptions), this
    host's identity, and the connections (one adapter per host per run, shared by the survey, the executor and
    the aftercare); the guard around a run and the steps of its plan that are not the executor's.

    Collaborators a test replaces through the constructor: ``adapter_factory(uri)`` opens an adapter
    (base.open_adapter); ``resolver(hostname, timeout)`` looks peers' hostnames up (``resolves``);
    ``reach(host, address, port, timeout, resolver)`` probes a peer's libvirt port before its connection is
    opened (``reach``); ``stop_watch_install(watch)`` installs the stop watch's signal handlers and controller
    watch (runs.StopWatch.install); ``keep_log(result, run_id)`` keeps a run's result on its host (runs.keep_log).
    """

    def __init__(self, module=None, adapter_factory=None, resolver=None, reach=None, stop_watch_install=None,
                 keep_log=None):
        super(EngineModule, self).__init__(module=module, adapter_factory=adapter_factory)
        self._self_name = None
        self._identity = None
        self._run_id = None
        self._options = None
        self._resolver = resolver or resolves
        self._reach = reach or reach_port
        self._install_stop_watch = stop_watch_install or runs.StopWatch.install
        self._keep_log = keep_log or runs.keep_log
        self._host_run = None
        self._stop_watch = None
        self._stopping_said = False
        self._progress = None

    # -- options ------------------------------------------------------------------------------
    def validate(self):
        """Bad options: one sentence naming the option and the value, before anything is read or changed (the checks
        of module_utils.inputs; what needs the hosts' guests is judged on the survey: judge_named_guests,
        check_canary_guest). The options are judged once here into ``options``."""
        inputs.check_engine_options(self.params)
        try:
            self._options = inputs.engine_options(self.params)
        except DecisionError as exc:
            self.fail_early(exc.message)

    @staticmethod
    def fail_early(message):
        raise HostmaintError(message)

    @property
    def options(self):
        """The run's inputs.EngineOptions (limits, ladder), judged by validate()."""
        if self._options is None:
            self._options = inputs.engine_options(self.params)
        return self._options

    def limits(self):
        return self.options.limits

    def ladder(self):
        return self.options.ladder

    # -- identities ---------------------------------------------------------------------------
    @property
    def run_id(self):
        if self._run_id is None:
            self._run_id = "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), uuid.uuid4().hex[:6])
        return self._run_id

    def identity(self):
        """This host's libvirt identity (hostname, uuid, uri), read once per run."""
        if self._identity is None:
            self._identity = self.adapter().host_identity()
        return self._identity

    @property
    def self_name(self):
        if self._self_name is None:
            self._self_name = self.params["name"] or self.identity()["hostname"]
        return self._self_name

    def destinations(self):
        return [d for d in self.params["destinations"] if d["name"] != self.self_name]

    def address_of(self, host):
        if host == self.self_name:
            return self.params["address"] or host
        for dest in self.params["destinations"]:
            if dest["name"] == host:
                return dest.get("address") or host
        raise HostmaintError("unknown host %s: it is not among the destinations %s"
                             % (host, ", ".join(d["name"] for d in self.params["destinations"]) or "(none given)"))

    def peer_uri(self, host):
        """host's libvirt URI (uris.peer_uri: the roles' hostmaint.libvirt.peer_uri filter builds it the same way)."""
        return uris.peer_uri(self.params["uri_template"], self.address_of(host))

    def uri_of(self, host):
        """The URI this module reaches host at: ``uri`` for this host, the peer's URI for another."""
        return self.params["uri"] if host == self.self_name else self.peer_uri(host)

    # -- connections: one adapter per host per run --------------------------------------------
    def connection(self, host):
        """The run's one adapter for host (this host's, or a peer's), shared by the survey, the executor and the
        aftercare; closed when the module ends."""
        return self.adapter(self.uri_of(host))

    def connect(self, host):
        """A new adapter for host, for the executor to use instead of a connection that broke (its libvirtd
        restarted); the executor closes it when its run ends."""
        return self._factory(self.uri_of(host))

    def peer(self, host):
        """The shared adapter for a peer, after a bounded TCP probe of its libvirt port (``reach``)."""
        uri = self.peer_uri(host)
        address, port = scheme_port(uri)
        if address:
            self._reach(host, address, port, self.params["connect_timeout"], self._resolver)
        return self.adapter(uri)

    # -- facts --------------------------------------------------------------------------------
    def local_guests(self, pools, local=None):
        """This host's guests (read with ``pools``), each with the policy the ``policies`` option gives it."""
        guests = (local or self.adapter()).guests(pools=pools)
        for guest in guests:
            override = self.params["policies"].get(guest.name)
            if override:
                guest.policy = override
        return guests

    def cpu_xml(self, adapter, guests):
        return dict((g.name, adapter.guest_cpu_xml(g.name)) for g in guests)

    def facts(self, host, adapter_getter, guests=(), cpu_xml=None, pools=None, resident=None):
        """HostFacts of host; an unreachable host gives facts with reachable False and the reason.

        ``pools`` and ``resident`` are the host's pools and guests when the caller has read them already.
        For a peer (a destination of guests on this host) ``hostname_resolves`` says whether its own
        hostname resolves here; for this host itself it stays None: when this host is the destination
        (restore), the sources are the peers, and the lookup that matters happens there.
        """
        paths = sorted(set(filter(None, (preflight.disk_location(d) for g in guests for d in g.disks))))
        known = dict((key, value) for key, value in (("pools", pools), ("resident", resident)) if value is not None)
        try:
            adapter = adapter_getter(host)
            facts = adapter.host_facts(host, shared_names=self.params["shared_pools"], guests=guests,
                                       cpu_xml=cpu_xml, paths=paths, **known)
            facts = self.declared(host, facts, adapter)
        except HostmaintError as exc:
            return HostFacts(name=host, reachable=False, unreachable_reason=exc.message)
        facts.generation = self.generation_of(host, facts)
        if host != self.self_name and facts.hostname_resolves is None:
            facts.hostname_resolves = self._resolver(facts.hostname, self.params["connect_timeout"])
        return facts

    def capacity_of(self, host):
        """The memory ``host`` (this host or a destination) may give its guests in all, as declared (``capacity_mib``,
        hostmaint_libvirt_capacity_mib), or 0 when none is."""
        if host == self.self_name:
            return self.options.capacity_mib
        return self.options.capacities.get(host, 0)

    def capacities(self):
        """{host: declared capacity} of this host and the destinations that declare one (the executor judges their
        room again with it just before each move)."""
        found = dict(self.options.capacities)
        if self.options.capacity_mib:
            found[self.self_name] = self.options.capacity_mib
        return found

    def declared(self, host, facts, adapter):
        """``facts`` of ``host`` as every decision sees them: with its declared capacity counted (model.with_capacity,
        over the active domains ``adapter`` reads there, incoming migrations included); as they are when it declares
        none, without a read."""
        capacity = self.capacity_of(host)
        if not capacity or not facts.reachable:
            return facts
        return with_capacity(facts, capacity, adapter.active_memory())

    def generation_of(self, host, facts):
        """This host's generation (given or derived here), or a destination's as the inventory gave it (None: unknown)."""
        if host == self.self_name:
            return host_generation(facts, self.params.get("generation"))
        for dest in self.params.get("destinations") or []:
            if dest["name"] == host:
                return dest.get("generation") or None
        return None

    def unsafe_guests(self, guests, pools):
        """Guests with a disk on a pool shared only by the operator's word (libvirt cannot tell)."""
        listed = set(p["name"] for p in pools if p.get("shared_by") == "listed in shared_pools")
        return [g.name for g in guests if any(d.pool in listed for d in g.disks)]

    def record(self, identity):
        return MigrationRecord(origin_host=self.self_name, origin_host_uuid=identity.get("uuid"), run_id=self.run_id,
                               time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def probes(self, guests=()):
        """{guest: probe URL}: each guest's own (its settings metadata, judged here: a malformed one stops the
        module before it changes anything), then the ``probes`` option's (judged by validate())."""
        found = dict((g.name, g.probe) for g in guests if getattr(g, "probe", None))
        for guest, url in found.items():
            probe.parse(url, guest, source="its settings metadata")
        found.update(self.params.get("probes") or {})
        return found

    def executor(self, unsafe=(), ignore_marks=(), probes=None):
        """The executor of this run's moves, on the module's connections (``connection``; ``connect`` replaces one
        that broke)."""
        p = self.params
        return Executor(self.connection, self.peer_uri, policy=self.ladder(), limits=self.limits(),
                        bandwidth_mib=p["bandwidth_mib"], tls=p["tls"], shutdown_timeout_s=p["shutdown_timeout"],
                        unsafe_guests=unsafe, ignore_marks=ignore_marks, settle_s=p["settle_s"],
                        pause_target_ms=p["pause_target_ms"], probes=probes, stop=self.stop_reason,
                        reopen=self.connect, storage_copy_source=p["storage_copy_source"], progress=self.progress_recorder(),
                        capacities=self.capacities(), avoid=p.get("avoid") or ())

    # -- progress: the file the action plugin reads while the module runs (module_utils/progress.py) -----
    def progress_recorder(self):
        """This run's progress.Recorder, one per module run (its passes and late arrivals share it), or None: with
        ``progress`` off, without ``progress_file`` (the action plugin sets it) and in check mode, nothing is
        written. Its fixed cost per move, until moves of the run ended, is progress.FIXED_S and the settle period."""
        p = self.params
        if self._progress is None and p.get("progress") and p.get("progress_file") and not self.module.check_mode:
            self._progress = progress.Recorder(p["progress_file"], host=self.self_name,
                                               action=getattr(self.module, "_name", None),
                                               fixed_s=progress.FIXED_S + float(p.get("settle_s") or 0))
        return self._progress

    def finish(self, result, error):
        """The progress file goes; its last state rides on the result (or the failure) for the action plugin, which
        prints the events it did not read yet and takes it out (progress.RESULT_KEY)."""
        if self._progress is not None:
            last = self._progress.close()
            target = result if error is None else getattr(error, "details", None)
            if isinstance(target, dict):
                target[progress.RESULT_KEY] = last

    # -- the guard: the run's hold on its host, the mark, what was under way (module_utils/runs.py) -----
    @contextlib.contextmanager
    def held(self, local, action, mark_reason=None):
        """The hold as a context manager around a run's guard, survey, plan and apply::

            with self.held(local, "evacuate", mark_reason="evacuate") as guard:
                ...  # survey, plan; guard.moving = True before the first move; apply

        Entering runs guard(). Leaving, by any path: an error before ``guard.moving`` takes back the mark this run
        set (the host stays in service); the run's result (``guard.result``, the dict the run fills, or the error
        that ended it) is kept on its host for stop_run and the operator; then the hold is released. Check mode
        holds nothing, so it keeps nothing."""
        guard = Guard()
        error = None
        try:
            self.guard(local, action, guard, mark_reason=mark_reason)
            yield guard
        except Exception as exc:
            error = exc
            if guard.marked and not guard.moving:
                self.unmark(local, exc)
            raise
        finally:
            if self._host_run is not None and self._host_run.held is not None:
                if error is not None:
                    kept = dict(getattr(error, "details", {}) or {}, failed=True,
                                msg=getattr(error, "message", str(error)))
                else:
                    kept = guard.result
                self._keep_log(dict(kept, run_id=self.run_id, host=self.self_name), self.run_id)
            self.release_host()

    def guard(self, local, action, guard, mark_reason=None):
        """Layer 0 of a run, before its survey, in this order (entered through held()): hold this host for this
        run (a second run refuses here) and install the stop watch; mark it in maintenance when ``mark_reason`` is
        given (evacuate: so that no other evacuation picks this host while this run plans; the mark of an earlier
        run stays as it is); then let the migrations under way here land, or abort those a dead run left
        (settle_host). Check mode only judges the hold and reads the mark. Fills in ``guard`` (a Guard)."""
        self._host_run = runs.HostRun(local, self.self_name, self.run_id, action)
        if self.module.check_mode:
            self._host_run.check()
            guard.mark = local.maintenance() if mark_reason else None
            return
        self._host_run.take()
        self._stop_watch = runs.StopWatch(remote=self._host_run.stop_requested)
        self._install_stop_watch(self._stop_watch)
        if mark_reason:
            guard.mark = local.maintenance()
            if guard.mark is None:
                guard.marked = local.set_maintenance(dict(
                    since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), run_id=self.run_id,
                    reason=mark_reason))
                guard.mark = local.maintenance()
        # marked, the host refuses new incoming moves; those already under way land (or fail) before the survey
        guard.under_way = self.settle_host(local)

    def unmark(self, local, error):
        """Take back the mark this run set, before its first move; when that fails too, ``error`` (a HostmaintError)
        says the host stays in maintenance."""
        try:
            local.clear_maintenance()
        except HostmaintError as exc:
            if isinstance(error, HostmaintError):
                error.message += "; %s stays in maintenance: the mark this run set could not be removed (%s)" % (
                    self.self_name, exc.message)

    def settle_host(self, local, wait_s=runs.UNDER_WAY_WAIT_S):
        """Abort what a dead run left in flight here, wait (bounded) for every other migration under way."""
        def record_of(name):
            try:
                return local.guest(name).record
            except HostmaintError:
                return None
        return self._host_run.settle(record_of, wait_s=wait_s)

    def taken_over(self):
        """The stale hold this run took over (dict with ``why``), or None."""
        return self._host_run.took_over if self._host_run is not None else None

    def stop_reason(self):
        """Why this run must stop (a signal, the controller gone, an operator's request), or None."""
        if self._stop_watch is None:
            return None
        reason = self._stop_watch.reason()
        if reason and not self._stopping_said:
            self._stopping_said = True
            self._host_run.stopping(reason)
        return reason

    def release_host(self):
        if self._host_run is not None:
            self._host_run.release()

    def close(self):
        self.release_host()  # before the connections close: the hold is released through this host's
        super(EngineModule, self).close()

    # -- apply: the plan's steps before its moves ------------------------------------------------------------
    def remove_stale_copies(self, copies, survey):
        """The first step of a RunPlan: remove each stale copy it lists ({guest, uuid, host, runs_on}), the
        shut-off definition a migration left on one host while its guest runs on another. Each is read again on
        its host just before and removed only if placement.is_stale_copy still holds against the running copy
        the survey saw; its disks stay. Returns [{guest, host, runs_on, removed, note}]."""
        done = []
        for copy in copies:
            name = copy["guest"]
            entry = dict(guest=name, host=copy["host"], runs_on=copy["runs_on"], removed=False)
            running = [g for g in survey.guests_by_host.get(copy["runs_on"], []) if g.name == name]
            try:
                adapter = self.connection(copy["host"])
                state, persistent = adapter.guest_state(name)
                uuid_now = adapter.guest_uuid(name) if state == "shutoff" and persistent else None
                left = Guest(name=name, uuid=uuid_now, state=state, persistent=persistent)
                if not running or not placement.is_stale_copy(left, running[0]):
                    entry["note"] = "left alone: it changed since it was read"
                else:
                    adapter.undefine(name)
                    entry.update(removed=True, note="removed: %s runs on %s, and a migration's last step never "
                                                    "undefined it here" % (name, copy["runs_on"]))
            except HostmaintError as exc:
                entry["note"] = "could not be removed: %s" % exc.message
            done.append(entry)
        return done

    def avoided(self, destinations):
        """The ``avoid`` option for a plan on ``destinations`` (HostFacts, the unreachable ones too): as given, with a
        warning naming those that are none of them (ignored: a rolling upgrade may name hosts that are down)."""
        avoid = list(self.params.get("avoid") or [])
        names = sorted(set(facts.name for facts in destinations))
        unknown = sorted(set(name for name in avoid if name not in names))
        if unknown:
            self.module.warn("avoid names %s, which %s not %s of %s (%s): ignored" % (
                ", ".join(unknown), "are" if len(unknown) > 1 else "is",
                "destinations" if len(unknown) > 1 else "a destination", self.self_name, ", ".join(names) or "none"))
        return avoid

    # -- bad input that needs the hosts' guests (module_utils.inputs judges the options alone) --------------
    def judge_named_guests(self, survey):
        """Fail when ``policies`` or ``probes`` name a guest that no host of the survey has (a warning when only a
        host that did not answer might have it); judged on the survey, before anything after it changes."""
        known = set(g.name for guests in survey.guests_by_host.values() for g in guests)
        looked_on = [self.self_name] + [d["name"] for d in self.destinations() if d["name"] in survey.guests_by_host]
        unasked = [d["name"] for d in self.destinations() if d["name"] not in survey.guests_by_host]
        self._said_unknown(inputs.unknown_named(self.params, known, looked_on, unasked), unasked)

    def _said_unknown(self, unknown, unasked):
        for option, names, message in unknown:
            if unasked:
                self.module.warn(message)
                continue
            raise HostmaintError(message, option=option, guests=names)

    def check_named_guests(self, guests, known_elsewhere=()):
        """Fail when ``policies`` or ``probes`` name a guest that no host has, before anything changes.

        ``guests``: the guests this module has read on this host (Guest objects); ``known_elsewhere``: names of the
        guests the module has read on other hosts. A name found in neither is asked of this host (libvirt's lookup
        by name: a guest the module did not read, such as the other guests of live_migrate's host), then of each
        destination: a group-wide ``hostmaint_libvirt_policies`` may name the guests of every host of the cluster.
        A name that only a destination which did not answer might have is a warning, not a failure: nothing proves
        it wrong. Raises HostmaintError naming the option and the guests.
        """
        named = inputs.named_guests(self.params)
        if not named:
            return
        known = set(g.name for g in guests) | set(known_elsewhere or ())
        unknown = sorted(set(n for names in named.values() for n in names) - known)
        if unknown:
            local = self.adapter()
            unknown = [n for n in unknown if not local.has_domain(n)]
        looked_on, unasked = [self.self_name], []
        for dest in self.destinations():
            if not unknown:
                break
            try:
                peer = self.peer(dest["name"])
                unknown = [n for n in unknown if not peer.has_domain(n)]
                looked_on.append(dest["name"])
            except HostmaintError:
                unasked.append(dest["name"])
        everything = set(n for names in named.values() for n in names)
        self._said_unknown(inputs.unknown_named(self.params, everything - set(unknown), looked_on, unasked), unasked)

    def check_canary_guest(self, plan):
        """Restore: fail when ``canary_guest`` is not a guest of ``plan`` (a restore plan) that migrates home, before
        anything changes; a canary that is already home is no failure. Raises HostmaintError naming the guest."""
        problem = inputs.canary_problem(plan, self.params.get("canary_guest"))
        if problem:
            raise HostmaintError(problem, option="canary_guest", guest=self.params["canary_guest"])


def shifted(outcomes, offset_s):
    """Outcomes of a later executor run with their timelines moved onto the first run's clock (a run's
    timeline counts from its own start), so that one module's passes share one timeline."""
    for outcome in outcomes:
        outcome.timeline = dict((phase, None if at is None else round(at + offset_s, 3))
                                for phase, at in outcome.timeline.items())
    return outcomes


def summary(outcomes):
    """Counts and totals of a run (MigrationOutcomes), for reports and assertions."""
    moved = [o for o in outcomes if o.moved]
    downtimes = [o.downtime_ms for o in moved if o.downtime_ms is not None]
    return dict(
        moves=len(outcomes),
        moved=len(moved),
        failed=len([o for o in outcomes if o.failed]),
        blocked=len([o for o in outcomes if o.outcome == "blocked"]),
        not_run=len([o for o in outcomes if o.outcome == "not_run"]),
        bytes_transferred=sum(int(o.bytes_transferred or 0) for o in outcomes),
        max_downtime_ms=max(downtimes) if downtimes else None,
    )
