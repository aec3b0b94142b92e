# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""EngineModule: what the migration modules share on top of LibvirtModule.

Options (argument specs in module_utils.options, documented in the hostmaint.libvirt.engine doc
fragment), this host's identity, peers' URIs, gathering HostFacts from every peer, and the executor.
Peers are reached through libvirt remote URIs built from ``uri_template``; a peer that does not
answer within ``connect_timeout`` is unreachable (a verdict, not a failure). Each peer's own
hostname is looked up here, on the source, within ``connect_timeout`` too (``resolves``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation, inputs, placement, preflight, probe, runs, uris
from ansible_collections.hostmaint.libvirt.plugins.module_utils.base import LibvirtModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.executor import Executor
from ansible_collections.hostmaint.libvirt.plugins.module_utils.libvirt_adapter import LibvirtAdapter
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    DecisionError,
    HostFacts,
    LadderPolicy,
    Limits,
    MigrationRecord,
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


class EngineModule(LibvirtModule):
    """Base of the modules that plan and move guests.

    ``resolver(hostname, timeout)`` looks peers' hostnames up (``resolves`` by default); tests give their own.
    """

    def __init__(self, module=None, adapter_factory=None, resolver=None):
        super(EngineModule, self).__init__(module=module, adapter_factory=adapter_factory)
        self._self_name = None
        self._run_id = None
        self._resolver = resolver or resolves
        self._host_run = None
        self._stop_watch = None
        self._stopping_said = False

    # -- options ------------------------------------------------------------------------------
    def validate(self):
        """Bad options: one sentence naming the option and the value, before anything is read or changed (the checks
        of module_utils.inputs; the modules' checks that need the host's guests are check_named_guests and
        check_canary_guest)."""
        inputs.check_engine_options(self.params)
        try:
            self.ladder()
            self.limits()
        except DecisionError as exc:
            self.fail_early(exc.message)

    @staticmethod
    def fail_early(message):
        raise HostmaintError(message)

    def limits(self):
        p = self.params
        return Limits(reserve_mib=p["reserve_mib"], max_inbound=p["max_inbound"], max_outbound=p["max_outbound"],
                      allow_storage_copy=p["allow_storage_copy"], allow_partial=p["allow_partial"]).validate()

    def ladder(self):
        p = self.params
        return LadderPolicy(downtime_steps_ms=list(p["downtime_steps_ms"]), auto_converge=p["auto_converge"],
                            postcopy=p["postcopy"], timeout_s_per_gib=float(p["timeout_per_gib"]),
                            timeout_floor_s=float(p["min_timeout"]),
                            no_progress_timeout_s=min(60.0, float(p["min_timeout"]))).validate()

    # -- identities ---------------------------------------------------------------------------
    @property
    def run_id(self):
        if self._run_id is None:
            self._run_id = "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), uuid.uuid4().hex[:6])
        return self._run_id

    @property
    def self_name(self):
        if self._self_name is None:
            self._self_name = self.params["name"] or self.adapter().host_identity()["hostname"]
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

    def connect(self, host):
        """A new adapter for host: the executor opens one per host per run and closes it when the run ends."""
        uri = self.params["uri"] if host == self.self_name else self.peer_uri(host)
        if self._factory is not None:
            return self._factory(uri)
        return LibvirtAdapter(uri)

    def peer(self, host):
        """The shared (cached) adapter for a peer, after a bounded TCP probe of its libvirt port."""
        uri = self.peer_uri(host)
        address, port = scheme_port(uri)
        if self._factory is None and address:
            reach(host, address, port, self.params["connect_timeout"], self._resolver)
        return self.adapter(uri)

    # -- facts --------------------------------------------------------------------------------
    def local_guests(self, pools):
        guests = self.adapter().guests(pools=pools)
        for guest in guests:
            override = self.params["policies"].get(guest.name)
            if override:
                guest.policy = override
        return guests

    def cpu_xml(self, adapter, guests):
        return dict((g.name, adapter.guest_cpu_xml(g.name)) for g in guests)

    def facts(self, host, adapter_getter, guests=(), cpu_xml=None):
        """HostFacts of host; an unreachable host gives facts with reachable False and the reason.

        For a peer (a destination of guests on this host) ``hostname_resolves`` says whether its own
        hostname resolves here; for this host itself it stays None: when this host is the destination
        (restore), the sources are the peers, and the lookup that matters happens there.
        """
        paths = sorted(set(filter(None, (preflight.disk_location(d) for g in guests for d in g.disks))))
        try:
            adapter = adapter_getter(host)
            facts = adapter.host_facts(host, shared_names=self.params["shared_pools"], guests=guests,
                                       cpu_xml=cpu_xml, paths=paths)
        except HostmaintError as exc:
            return HostFacts(name=host, reachable=False, unreachable_reason=exc.message)
        facts.generation = self.generation_of(host, facts)
        if host != self.self_name and facts.hostname_resolves is None:
            facts.hostname_resolves = self._resolver(facts.hostname, self.params["connect_timeout"])
        return facts

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
        p = self.params
        return Executor(self.connect, self.peer_uri, policy=self.ladder(), limits=self.limits(),
                        bandwidth_mib=p["bandwidth_mib"], tls=p["tls"], shutdown_timeout_s=p["shutdown_timeout"],
                        unsafe_guests=unsafe, ignore_marks=ignore_marks, settle_s=p["settle_s"],
                        pause_target_ms=p["pause_target_ms"], probes=probes, stop=self.stop_reason)

    # -- the run's hold on its host, what was under way there, stopping (module_utils/runs.py) ---
    def hold_host(self, local, action):
        """Hold this host for this run (check mode: only judge the hold) and install the stop watch; the caller
        then settles what was under way here (settle_host)."""
        self._host_run = runs.HostRun(local, self.self_name, self.run_id, action)
        if self.module.check_mode:
            self._host_run.check()
            return []
        self._host_run.take()
        self._stop_watch = runs.StopWatch(remote=self._host_run.stop_requested)
        if self._factory is None:
            self._stop_watch.install()

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

    def finish(self, result, error):
        """A run that held its host leaves its result there (runs.keep_log) for stop_run and the operator."""
        if self._host_run is None or self._host_run.held is None or self._factory is not None:
            return
        if error is not None:
            result = dict(getattr(error, "details", {}) or {}, failed=True, msg=getattr(error, "message", str(error)))
        runs.keep_log(dict(result, run_id=self.run_id, host=self.self_name), self.run_id)

    def release_host(self):
        if self._host_run is not None:
            self._host_run.release()

    def close(self):
        self.release_host()  # before the connections close: the hold is released through this host's
        super(EngineModule, self).close()

    # -- definitions a migration left behind ------------------------------------------------------------------
    def home_stub(self):
        """Enough of this host's facts to match migration records before the full facts are read."""
        identity = self.adapter().host_identity()
        return HostFacts(name=self.self_name, uuid=identity.get("uuid"), hostname=identity.get("hostname"))

    def remove_stale_copies(self, guests_by_host, adapter_of):
        """Remove the shut-off definitions a migration left on one host while its guest runs on another
        (placement.stale_copies: a migration record ties the two hosts), before anything is planned: planned,
        such a copy would be moved or started as a second instance of its guest. Each copy is read again on
        its host just before (still shut off, persistent, the same UUID); its disks stay. Check mode only
        lists them. Removed copies (and, in check mode, those a run would remove) leave ``guests_by_host``.
        Returns [{guest, host, runs_on, removed, note}]."""
        found = placement.stale_copies(guests_by_host, {self.self_name: self.home_stub()})
        done = []
        for copy in found:
            entry = dict(guest=copy["guest"], host=copy["host"], runs_on=copy["runs_on"], removed=False)
            if self.module.check_mode:
                entry["note"] = "a run removes it: %s runs on %s" % (copy["guest"], copy["runs_on"])
            else:
                try:
                    adapter = adapter_of(copy["host"])
                    state, persistent = adapter.guest_state(copy["guest"])
                    if state != "shutoff" or not persistent or adapter.guest_uuid(copy["guest"]) != copy["uuid"]:
                        entry["note"] = "left alone: it changed since it was read"
                    else:
                        adapter.undefine(copy["guest"])
                        entry.update(removed=True, note="removed: %s runs on %s, and a migration's last step never "
                                                        "undefined it here" % (copy["guest"], copy["runs_on"]))
                except HostmaintError as exc:
                    entry["note"] = "could not be removed: %s" % exc.message
            done.append(entry)
            if entry["removed"] or self.module.check_mode:
                guests_by_host[copy["host"]] = [g for g in guests_by_host[copy["host"]]
                                                if not (g.name == copy["guest"] and g.uuid == copy["uuid"])]
        return done

    # -- bad input that needs the hosts' guests (module_utils.inputs judges the options alone) --------------
    def check_named_guests(self, guests, known_elsewhere=()):
        """Fail when ``policies`` or ``probes`` name a guest that no host has, before anything changes.

        ``guests``: the guests this module has read on this host (Guest objects); ``known_elsewhere``: names of the
        guests the module has read on other hosts (restore reads its peers' guests). A name found in neither is
        asked of this host (libvirt's lookup by name: a guest the module did not read, such as the other guests of
        live_migrate's host), then of each destination: a group-wide ``hostmaint_libvirt_policies`` may name the
        guests of every host of the cluster. A name that only a destination which did not answer might have is a
        warning, not a failure: nothing proves it wrong. Raises HostmaintError naming the option and the guests.
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
        for option in sorted(named):
            names = [n for n in named[option] if n in unknown]
            if not names:
                continue
            message = inputs.unknown_guests_message(option, names, looked_on, unasked)
            if unasked:
                self.module.warn(message)
                continue
            raise HostmaintError(message, option=option, guests=names)

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
