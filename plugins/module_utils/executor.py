# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carries out a Plan with bounded parallelism; returns one MigrationOutcome per move and never exits.

It speaks only in the model's terms and the adapter's methods (``start_migration`` hands out a migration
job to sample, steer, abort and wait for); it never imports libvirt. Every wait is bounded.

The run's scheduling loop is a state machine (``Schedule``: no thread, no adapter, driven step by step, so a
simulator can drive it on its own clock); ``Executor.run`` drives it in the main thread, one worker thread a
move::

    queue = placement.window_order(moves)          # starts, then transfers longest first, then shutdowns
    windows = every source at max_outbound, every destination at max_inbound
    while moves are queued or in flight:
        start placement.startable(queue, holding, in_flight, limits, windows), each in its own thread
        wait for a worker's message:
          released   the move switched over: its source and destination slots are free again, and the pause
                     QEMU reported for it (its downtime) adjusts both hosts' windows (placement.adjust_window,
                     against ``pause_target_ms``); every change is kept in ``Executor.window_changes``.
                     The switchover is seen when the guest runs on its destination (its 'resumed' event
                     there), which is seconds before libvirt's migration call returns: the slots are freed
                     then, and the pause adjusts the windows when the call returns (message 'paused')
          left       its destination failed the check just before the move (unreachable, or marked in
                     maintenance since the plan): the destination leaves the run, the move goes back in
                     the queue, and every queued move bound there is placed again (placement.replace)
          stop       a guest released early was reset, crashed or stopped on its destination before its
                     migration call returned: the run stops at once (queued moves are reported not_run)
          done       its outcome; a destination at fault leaves the run as above, and a guest that did
                     not survive its settle period stops the run (queued moves are reported not_run)

One connection per host for the whole run, taken on first use from ``connect(host)`` and shared by the
moves (libvirt connections are thread-safe). Without ``reopen`` each is the run's own, closed when the run
ends; with it they are the caller's (the module's, shared with its survey and aftercare) and stay open, and
``reopen(host)`` opens the run's own new connection to a host whose connection broke.

A guest is never lost: a migration that fails or is aborted leaves the guest running on its source
(libvirt's peer-to-peer protocol only undefines the source once the destination runs it); after a
failed move the executor waits (bounded) until exactly one host defines the guest, and says where it is.
"""

from __future__ import annotations

import dataclasses
import queue as queues
import threading
import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import convergence, placement, probe
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    MIB,
    TRANSFER_ACTIONS,
    Guest,
    JobSample,
    LadderPolicy,
    Limits,
    MigrationOptions,
    MigrationOutcome,
    WindowChange,
    capacity_free_mib,
    memory_need_mib,
    record_for,
)

# After an abort, how long the migration call may take to return before we stop waiting for it.
ABORT_GRACE_S = 30.0

# After a failed move, how long to wait for exactly one host to define the guest.
DEFINITION_WAIT_S = 30.0

# How long each migrated guest is watched on its destination after its switchover, by default. From data
# (tests/bench/arrival.py on QEMU 7.2, whose TCG migrations break guests that dirty memory): every guest that
# faulted showed it as a reset or crash within 0.1 s of its switchover (see the README, "The settle period");
# 2 s is 20 times that, and with the slots freed at the switchover it mostly passes while libvirt's migration
# call has not returned yet. A lost write that does not crash the guest shows only to the guest itself.
SETTLE_S = 2.0

# A guest whose probe answered, with its events quiet, ends its settle period then, once this long has passed since
# its switchover (5 times the latest fault seen, 0.09 s; the probe is tried only once libvirt's call returned).
PROBED_QUIET_S = 0.5

# How long after its switchover a guest with a probe has to answer it, when its settle period is shorter: its
# network may still be announcing the move, and the probe is tried only once libvirt's call returned (1.7-2.7 s
# after the switchover on the lab).
PROBE_WAIT_S = 5.0

# The states of a guest that has a QEMU process on its host.
ACTIVE_STATES = ("running", "paused", "blocked")

# What becomes of the source's disks a storage copy left behind (Executor's storage_copy_source).
STORAGE_COPY_SOURCE = ("delete", "keep")

# What a guest may do on its destination without it counting against the move: the migration's own
# events (the incoming guest is defined, started and resumed by the migration; post-copy pauses and
# resumes it).
_MIGRATION_DETAILS = ("migrated", "postcopy")


# -- pure decisions ----------------------------------------------------------------------------------
def switchover_time(events, fallback):
    """When the guest started running on its destination: the destination's 'resumed' event of the
    migration (or of post-copy) if it was seen, else ``fallback`` (when the job was seen finished)."""
    for event in events:
        if event.kind == "resumed" and event.detail in _MIGRATION_DETAILS:
            return min(event.at, fallback)
    return fallback


def settle_problem(guest, host, events, switchover_at, paused=False):
    """The first event that says ``guest`` did not land well on ``host``, as one sentence; None if none did.

    A reset, a crash, a stop or a shutdown at any time, a guest OS suspend, and a pause the move did not
    ask for (``paused``: the guest was paused before and stays paused) are problems; the migration's own
    events are not. ``events`` are GuestEvents on the clock of ``switchover_at``.
    """
    for event in events:
        detail = " (%s)" % event.detail if event.detail else ""
        if event.kind == "reboot":
            what = "was reset"
        elif event.kind == "crashed":
            what = "crashed%s" % detail
        elif event.kind == "stopped" and event.detail != "migrated":
            what = "stopped%s" % detail
        elif event.kind == "shutdown":
            what = "shut down%s" % detail
        elif event.kind == "pmsuspended":
            what = "was suspended by its guest OS%s" % detail
        elif event.kind == "undefined":
            what = "was undefined%s" % detail
        elif event.kind == "suspended" and not paused and event.detail not in _MIGRATION_DETAILS:
            what = "was paused%s" % detail
        else:
            continue
        return "%s %s %.1f s after switchover on %s" % (guest, what, max(0.0, event.at - switchover_at), host)
    return None


def source_disks_to_delete(guest, paths, source, destination, still_on_source, running_there, existed_there,
                           volumes_there, named_there, named_here):
    """(paths to delete, [(path, why it stays)]) of the source disks ``paths`` a storage copy of ``guest`` from
    ``source`` to ``destination`` left behind, once the guest passed its settle period there.

    A local copy keeps each disk's path, so both hosts name one path. A disk is deleted only when all of this holds:
    the source defines the guest no more (``still_on_source``) and the guest runs on the destination
    (``running_there``); the destination's pools hold a volume at the path (``volumes_there``) that the copy made:
    none was there before it (``existed_there``; one that was may be this very file, on storage both hosts share
    unknown to libvirt); the guest's live and persistent definitions there both name it (``named_there``, as
    LibvirtAdapter.definitions_naming gives it); and no definition of any guest on the source names it
    (``named_here``, the same of the source)."""
    if still_on_source:
        return [], [(path, "%s is still defined on %s" % (guest, source)) for path in paths]
    if not running_there:
        return [], [(path, "%s does not run on %s" % (guest, destination)) for path in paths]
    delete, kept = [], []
    for path in paths:
        there = (named_there.get(path) or {}).get(guest) or []
        here = sorted(named_here.get(path) or {})
        if path in existed_there:
            why = "%s had a volume at that path before the copy (on storage both share, it is this one)" % destination
        elif path not in volumes_there:
            why = "no pool of %s holds a volume at that path" % destination
        elif "live" not in there or "inactive" not in there:
            missing = [word for kind, word in (("live", "live"), ("inactive", "persistent")) if kind not in there]
            both = len(missing) > 1
            why = "the %s definition%s of %s on %s do%s not name it" % (
                " and ".join(missing), "s" if both else "", guest, destination, "" if both else "es")
        elif here:
            why = "the definition of %s on %s names it" % (", ".join(here), source)
        else:
            delete.append(path)
            continue
        kept.append((path, why))
    return delete, kept


def committed(moves, guests_by_name=None):
    """({destination: MiB}, {destination: anti-affinity groups}) the given moves give their destinations."""
    guests_by_name = guests_by_name or {}
    memory, groups = {}, {}
    for move in moves:
        if move.action not in TRANSFER_ACTIONS or not move.destination:
            continue
        guest = guests_by_name.get(move.guest)
        need = memory_need_mib(guest) if guest is not None and guest.active else int(move.memory_mib or 0)
        memory[move.destination] = memory.get(move.destination, 0) + need
        if guest is not None and guest.anti_affinity:
            groups.setdefault(move.destination, set()).add(guest.anti_affinity)
    return memory, groups


def route_of(move):
    """'hv1->hv2' (a move without a destination: its host)."""
    return "%s->%s" % (move.source, move.destination) if move.destination else move.source


def progress_entries(moves):
    """The moves as module_utils.progress.Recorder.plan takes them: keyed by guest, with their route and the bytes
    a transfer copies (its plan's estimate, else its memory and the disks a storage copy copies)."""
    return [dict(key=m.guest, guest=m.guest, action=m.action, route=route_of(m),
                 total=int(m.expected_bytes or 0) or (int(m.memory_mib or 0) * MIB + int(m.disk_bytes or 0))
                 if m.action in TRANSFER_ACTIONS else 0) for m in moves]


class _DestinationLeft(HostmaintError):
    """The destination failed the check just before a move; the move has not touched the guest."""


class _Run(object):
    """What one run shares between its threads: the connections, the records, the timelines.

    ``records`` (guest -> MigrationRecord) are written with the moves, those of the guests in ``stays`` naming the
    host each attempt takes the guest to (model.record_for, with that host's UUID from ``uuids``); ``previous``
    (guest -> MigrationRecord) is the record a guest had, written back when its move fails."""

    def __init__(self, executor, records, stays=(), uuids=None, previous=None):
        self.executor = executor
        self.records = records
        self.stays = frozenset(stays)
        self.uuids = dict(uuids or {})
        self.previous = dict(previous or {})
        self.started = executor.clock()
        self.lock = threading.Lock()
        self.adapters = {}
        self.owned = []  # the connections this run opened (all, or those reopen() gave): closed when it ends
        self.broken = set()  # hosts whose connection broke (reconnect()): the next one is a new one
        self.opened = []
        self.timelines = {}
        self.notes = {}
        self.window_changes = []
        self.progress = executor.progress

    def record_for(self, move):
        """The record to write with this attempt of ``move``, or None (model.record_for)."""
        return record_for(move, self.records, self.stays, self.uuids)

    def at(self):
        """Seconds since the run started."""
        return round(self.executor.clock() - self.started, 3)

    def adapter(self, host):
        """The run's one adapter for host, taken on first use (``Executor.connect``), or a new one after
        reconnect(host) (``Executor.reopen`` when the connections are the caller's)."""
        with self.lock:
            if host not in self.adapters:
                reopen = self.executor.reopen
                if reopen is not None and host in self.broken:
                    adapter = reopen(host)
                else:
                    adapter = self.executor.connect(host)
                if reopen is None or host in self.broken:
                    self.owned.append(adapter)
                self.adapters[host] = adapter
                self.opened.append(host)
            return self.adapters[host]

    def reconnect(self, host):
        """The next adapter(host) is a new connection (the old one broke: its daemon restarted, say); the old
        one is closed when the run ends if it is the run's own, never while a move may still use it."""
        with self.lock:
            if self.adapters.pop(host, None) is not None:
                self.broken.add(host)

    def mark(self, move, phase):
        with self.lock:
            self.timelines.setdefault(move.guest, {})[phase] = self.at()
        if self.progress is not None and phase != "done":  # a move's end is told with its outcome (ended)
            self.progress.event(move.guest, phase, route=route_of(move))

    def ended(self, move, outcome):
        """Tell the run's progress how a move ended."""
        if self.progress is not None:
            self.progress.end(move.guest, outcome.outcome, outcome.reason, failed=outcome.failed)

    def copying(self, move, sample, state):
        """Tell the run's progress how far a migration's copy is (a job sample, its ladder state)."""
        if self.progress is not None:
            total = int(sample.data_total or 0)
            self.progress.copying(move.guest, max(0, total - int(sample.data_remaining or 0)), total,
                                  processed=sample.data_processed, rung=convergence.rung(self.executor.policy, state))

    def timeline(self, move):
        with self.lock:
            return dict(self.timelines.get(move.guest, {}))

    def close(self):
        """Close the connections this run opened; the caller's own (``reopen`` given) stay open for it."""
        with self.lock:
            adapters, self.owned, self.adapters = self.owned, [], {}
        for adapter in adapters:
            adapter.close()


class Schedule(object):
    """The scheduling loop of one run as a state machine: no thread, no adapter, no clock of its own.

    A driver asks ``starts()`` for the moves to start now and starts each (Executor._worker runs one move and
    sends its messages), hands every message a move sends to ``on(kind, move, payload)``, may end the run with
    ``stop_now(reason)``, until ``done``; ``outcomes()`` then gives one MigrationOutcome per move, in plan order.
    Executor.run drives it with one thread per move; a simulator can drive it with its own events, the
    Executor's injected clock timing the moves (``_Run.at``).

    The messages: ``released`` (the move switched over: its slots are free; with the pause QEMU reported, which
    adjusts its hosts' windows, placement.adjust_window), ``paused`` (the pause of a move released before its
    call returned), ``stop`` (a guest released early did not land well: nothing more starts), ``left`` (its
    destination failed the check just before the move: the destination leaves the run, the move goes back in
    the queue and every queued move bound there is placed again, placement.replace) and ``done`` (the move's
    (outcome, destination left because, run stops because)).
    """

    def __init__(self, executor, run, plan, survey=None, dirty_rates=None):
        self.executor, self.run, self.survey = executor, run, survey
        self.limits = executor.limits
        self.dirty_rates = dirty_rates or {}
        self.link = executor.bandwidth_mib * MIB if executor.bandwidth_mib else None
        self.order = dict((move.guest, move.order) for move in plan.moves)
        moves = [dataclasses.replace(move) for move in plan.moves]  # the plan itself is left as it was
        self.queue = placement.window_order(moves, self.dirty_rates, self.link)
        for move in self.queue:
            run.mark(move, "queued")
        self.results = {}
        self.holding, self.in_flight, self.gone = {}, {}, {}
        self.windows = dict((side, {}) for side in ("source", "destination"))  # side -> host -> [window, streak]
        self.landed = []  # moves whose guest is on its destination now: they hold its memory
        self.stop = None

    @property
    def done(self):
        return not (self.queue or self.in_flight)

    def stop_now(self, reason):
        """Nothing more starts: the queued moves are reported not_run, naming ``reason`` (the first one counts)."""
        if self.stop is None:
            self.stop = reason

    def starts(self):
        """The moves to start now, each counted in flight (and holding its slots when it is a transfer); the moves
        that will not run get their outcome here."""
        run, executor, started = self.run, self.executor, []
        if self.stop is not None:
            for move in self.queue:
                self._result(move, executor._not_run(run, move, "%s was not moved: the run stopped after %s"
                                                     % (move.guest, self.stop)))
            self.queue = []
        else:
            for move in placement.startable(
                    self.queue, list(self.holding.values()), list(self.in_flight.values()), self.limits,
                    source_windows=dict((host, w[0]) for host, w in self.windows["source"].items()),
                    destination_windows=dict((host, w[0]) for host, w in self.windows["destination"].items())):
                self.queue.remove(move)
                if move.action == "shutdown" and any(o.failed or o.outcome == "blocked" for o in self.results.values()):
                    # shutting a guest down only helps if the host can be emptied
                    self._result(move, executor._not_run(run, move, (
                        "%s stays running: migrations before it failed, so the host will not be emptied" % move.guest)))
                    continue
                self.in_flight[move.guest] = move
                if move.action in TRANSFER_ACTIONS:
                    self.holding[move.guest] = move
                started.append(move)
        if not self.in_flight:
            for move in self.queue:  # nothing runs and nothing can start: only moves of no known action get here
                run.mark(move, "done")
                self._result(move, executor._outcome(run, move, "failed", "unknown action %s for %s"
                                                     % (move.action, move.guest), runs_on=[move.source]))
            self.queue = []
        return started

    def on(self, kind, move, payload):
        """One message of a move (the class docstring says which)."""
        if kind == "released":
            self.holding.pop(move.guest, None)
            if payload is not None:
                self._react(move, payload)
            return
        if kind == "paused":  # a move released early: its pause is known now that its call returned
            self._react(move, payload)
            return
        if kind == "stop":  # a guest released early did not land well: nothing more starts
            self.stop_now(payload)
            return
        self.in_flight.pop(move.guest, None)
        self.holding.pop(move.guest, None)
        if kind == "left":
            self.gone[move.destination] = payload.message
            self.queue.append(move)
            if self.run.progress is not None:
                self.run.progress.event(move.guest, "queued", reason=payload.message)
        else:
            outcome, left, stops = payload
            note = self.run.notes.get(move.guest)
            if note:
                outcome.reason = "%s (%s)" % (outcome.reason, note) if outcome.reason else note
            self._result(move, outcome)
            if move.destination and move.destination in outcome.runs_on:
                self.landed.append(move)
            if left and move.destination not in self.gone:
                self.gone[move.destination] = left
            if stops:
                self.stop_now(stops)
        if self.gone and self.stop is None:
            self.queue = self._place_again(list(self.in_flight.values()) + self.landed)

    def _result(self, move, outcome):
        self.results[move.guest] = outcome
        self.run.ended(move, outcome)

    def outcomes(self):
        return sorted(self.results.values(), key=lambda o: (self.order.get(o.guest, 0), o.guest))

    def _react(self, move, downtime_ms):
        """A transfer switched over with a pause of ``downtime_ms`` (None: not known): its source's and its
        destination's windows react (``placement.adjust_window``); each change is recorded in the run."""
        run, windows = self.run, self.windows
        for side, host, limit in (("source", move.source, self.limits.max_outbound),
                                  ("destination", move.destination, self.limits.max_inbound)):
            window = windows[side].setdefault(host, [int(limit), 0])
            before = window[0]
            window[0], window[1], reason = placement.adjust_window(before, limit, downtime_ms, window[1],
                                                                   self.executor.pause_target_ms, guest=move.guest)
            if reason:
                run.window_changes.append(WindowChange(at=run.at(), side=side, host=host, before=before,
                                                       after=window[0], guest=move.guest, downtime_ms=downtime_ms,
                                                       reason=reason))

    def _place_again(self, taken):
        """The queue with every transfer bound for a destination that left the run placed again (or blocked).

        ``taken``: the moves whose guests are moving to or landed on their destinations (their memory is
        taken there, as is the memory of the moves still queued)."""
        run, queue, gone, survey = self.run, self.queue, self.gone, self.survey
        orphans = [m for m in queue if m.action in TRANSFER_ACTIONS and m.destination in gone]
        if not orphans:
            return queue
        keep = [m for m in queue if not any(m is orphan for orphan in orphans)]

        def why(move):
            return gone[move.destination]

        guests = dict((g.name, g) for g in (survey.guests if survey is not None else []))
        remaining = [h for h in (survey.destinations if survey is not None else []) if h.name not in gone]
        placed, reasons = {}, {}
        if remaining:
            memory, groups = committed(keep + list(taken), guests)
            try:
                again = placement.replace([guests[m.guest] for m in orphans if m.guest in guests], survey.source,
                                          remaining, survey.limits or self.limits, memory, groups,
                                          disk_bytes=survey.disk_bytes, avoid=self.executor.avoid)
            except HostmaintError as exc:
                again = None
                for move in orphans:
                    reasons[move.guest] = exc.message
            if again is not None:
                placed = dict((m.guest, m) for m in again.moves)
                for entry in again.blocked:
                    reasons[entry.guest] = "; ".join(sorted(set(r.message for r in entry.reasons)))
                for entry in again.skipped:
                    reasons[entry.guest] = entry.reason
        for move in orphans:
            new = placed.get(move.guest)
            if new is not None and new.action in TRANSFER_ACTIONS:
                note = "placed on %s instead of %s: %s" % (new.destination, move.destination, why(move))
                run.notes[move.guest] = note
                if move.guest in run.stays:  # its record names where it goes now (model.record_for)
                    move.home_after = new.destination
                move.destination, move.storage_copy = new.destination, new.storage_copy
                move.copy_disks, move.expected_bytes = list(new.copy_disks), new.expected_bytes
                move.disk_bytes = new.disk_bytes
                keep.append(move)
            elif new is not None:  # its policy: shut down where it is when it cannot move (the plan's rule)
                run.notes[move.guest] = "%s; no other destination can take %s" % (why(move), move.guest)
                move.action, move.destination = new.action, None
                keep.append(move)
            else:
                detail = reasons.get(move.guest) or "no other destination can take it"
                reason = "cannot move %s to %s: %s; %s stays on %s: %s" % (
                    move.guest, move.destination, why(move), move.guest, move.source, detail)
                run.mark(move, "done")
                self._result(move, self.executor._outcome(run, move, "blocked", reason, runs_on=[move.source]))
        return placement.window_order(keep, self.dirty_rates, self.link)


class Executor(object):
    """Runs plans.

    ``connect(host)`` returns the adapter for that host as this module reaches it (called once per host per
    run): a new one the run closes when it ends, or, with ``reopen``, the caller's own, which the run leaves
    open; ``reopen(host)`` then returns a new adapter for a host whose connection broke (the run closes
    those). ``peer_uri(host)`` is the URI a source host's libvirtd uses to reach that host (peer-to-peer).
    ``limits`` gives the slots (max_outbound per source, max_inbound per destination); ``settle_s`` how
    long each migrated guest is watched on its destination after switchover (0: not watched);
    ``pause_target_ms`` the pause the windows react to (``placement.adjust_window``; 0: they keep their
    limits). ``storage_copy_source`` says what becomes of the source's disks a storage copy left behind once its
    guest passed its settle period on the destination: 'delete' (when ``source_disks_to_delete`` allows it) or
    'keep'. After ``run()``, ``window_changes`` lists that run's WindowChanges, in order.
    ``stop()`` says why the run must stop (or None): queued moves are then not run and every migration in
    flight is aborted (within ABORT_GRACE_S); ``stopped`` holds that reason afterwards. ``progress`` (a
    module_utils.progress.Recorder, or None) is told every move's phases, its copy's samples and its end, for the
    lines the controller prints while the run runs. ``capacities`` maps a host to its declared capacity in MiB
    (model.capacity_free_mib): a destination's room is judged again within it just before each move. ``avoid`` names
    the destinations placed last when guests are placed again (placement.plan's ``avoid``).
    """

    def __init__(self, connect, peer_uri, policy=None, limits=None, bandwidth_mib=0, tls=False,
                 shutdown_timeout_s=120.0, unsafe_guests=(), ignore_marks=(), settle_s=SETTLE_S, probes=None,
                 definition_wait_s=DEFINITION_WAIT_S, probe_wait_s=PROBE_WAIT_S, clock=time.time, sleep=time.sleep,
                 pause_target_ms=placement.PAUSE_TARGET_MS, stop=None, reopen=None, storage_copy_source="delete",
                 progress=None, capacities=None, avoid=()):
        self.connect = connect
        self.capacities = dict(capacities or {})
        self.avoid = list(avoid or ())
        self.progress = progress
        self.reopen = reopen
        self.stop = stop or (lambda: None)
        self.peer_uri = peer_uri
        self.policy = (policy or LadderPolicy()).validate()
        self.limits = (limits or Limits()).validate()
        self.bandwidth_mib = int(bandwidth_mib)
        self.tls = tls
        self.shutdown_timeout_s = float(shutdown_timeout_s)
        self.unsafe_guests = set(unsafe_guests)
        self.ignore_marks = set(ignore_marks)
        self.settle_s = float(settle_s)
        self.probes = dict(probes or {})
        self.definition_wait_s = float(definition_wait_s)
        self.probe_wait_s = float(probe_wait_s)
        self.clock = clock
        self.sleep = sleep
        self.pause_target_ms = int(pause_target_ms)
        if self.pause_target_ms < 0:
            raise HostmaintError("invalid pause target %s ms: it must be 0 or more" % pause_target_ms)
        if storage_copy_source not in STORAGE_COPY_SOURCE:
            raise HostmaintError("invalid storage_copy_source %r: expected one of %s"
                                 % (storage_copy_source, ", ".join(STORAGE_COPY_SOURCE)))
        self.storage_copy_source = storage_copy_source
        self.window_changes = []
        self.stopped = None

    def queued(self, moves):
        """Tell the run's progress of moves before they run (restore's canary runs first on its own: the others
        count in the total from the start)."""
        if self.progress is not None:
            self.progress.plan(progress_entries(moves))

    def ended(self, outcomes):
        """Tell the run's progress of outcomes decided without running their moves (restore's moves held back when
        its canary did not come home)."""
        for outcome in outcomes if self.progress is not None else ():
            self.progress.end(outcome.guest, outcome.outcome, outcome.reason, failed=outcome.failed)

    def stopping(self):
        """Why the run must stop (it was asked to), or None; kept in ``stopped`` once seen."""
        if self.stopped is None:
            self.stopped = self.stop()
        return self.stopped

    # -- plan ---------------------------------------------------------------------------------
    def run(self, plan, records=None, survey=None, dirty_rates=None, stays=()):
        """Every move of the plan; outcomes in plan order.

        ``records`` maps guest -> MigrationRecord to write; the record of a guest in ``stays`` names the host each
        attempt of its move takes it to, with that host's UUID from the survey (model.record_for), and a guest whose
        move fails gets back the record it had (its survey's); ``survey`` (model.Survey) is what placing
        guests again needs when a destination leaves the run (without it, their moves are blocked);
        ``dirty_rates`` maps guest -> bytes per second, to order the queue.
        The run's window changes are in ``window_changes`` afterwards (WindowChanges, in order).
        """
        uuids, previous = {}, {}
        if survey is not None:
            uuids = dict((facts.name, facts.uuid) for facts in [survey.source] + list(survey.destinations)
                         if facts is not None)
            previous = dict((g.name, g.record) for g in survey.guests if g.record is not None)
        run = _Run(self, records or {}, stays, uuids, previous)
        self.window_changes = run.window_changes
        if self.progress is not None:
            self.progress.plan(progress_entries(plan.moves))
        try:
            return self._run(run, plan, survey, dirty_rates or {})
        finally:
            run.close()

    def _run(self, run, plan, survey, dirty_rates):
        """Drives the run's Schedule with one thread per move and a queue of their messages."""
        schedule = Schedule(self, run, plan, survey, dirty_rates)
        messages = queues.Queue()
        while not schedule.done:
            if self.stopping():
                schedule.stop_now("it was asked to stop: %s" % self.stopped)
            for move in schedule.starts():
                worker = threading.Thread(target=self._worker, args=(run, move, messages), name="move-%s" % move.guest)
                worker.daemon = True
                worker.start()
            if schedule.done:
                break
            try:
                kind, move, payload = messages.get(timeout=self.policy.poll_interval_s)
            except queues.Empty:
                continue  # nothing came: look at the stop request again
            schedule.on(kind, move, payload)
        return schedule.outcomes()

    # -- one move -----------------------------------------------------------------------------
    def _worker(self, run, move, messages):
        """Runs one move in its own thread and always posts exactly one 'done' or 'left' message."""
        message = None
        try:
            message = ("done", move, self.run_move(run, move, messages))
        except _DestinationLeft as exc:
            message = ("left", move, exc)
        finally:
            if message is None:  # only an exception that is not an Exception (the interpreter ends) gets here
                message = ("done", move, (self._outcome(run, move, "failed", "%s of %s was interrupted"
                                                        % (move.action, move.guest)), None, None))
            messages.put(message)

    def run_move(self, run, move, messages):
        """(outcome, destination left because, run stops because) of one move; raises _DestinationLeft."""
        started = self.clock()
        try:
            if move.action == "migrate":
                outcome, left, stops = self.migrate(run, move, messages)
            elif move.action == "move_definition":
                outcome, left, stops = self.move_definition(run, move), None, None
            elif move.action == "shutdown":
                outcome, left, stops = self.shutdown(run, move), None, None
            elif move.action == "start":
                outcome, left, stops = self.start(run, move), None, None
            else:
                outcome, left, stops = self._outcome(run, move, "failed", "unknown action %s for %s"
                                                     % (move.action, move.guest)), None, None
        except _DestinationLeft:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            # whatever a move raises is reported as its failure, never lost: the other moves go on
            if isinstance(exc, HostmaintError):
                message = exc.message
            else:
                message = "%s of %s failed unexpectedly: %s: %s" % (move.action, move.guest, type(exc).__name__, exc)
            left = None
            if move.action in TRANSFER_ACTIONS and isinstance(exc, HostmaintError) and not self._alive(run, move.destination):
                left = "%s does not answer after the %s of %s failed (%s)" % (
                    move.destination, move.action, move.guest, message)
            # a move that never started changed nothing: no definition to wait for
            started_move = run.timeline(move).get("started") is not None
            runs_on, note = self.where(run, move, wait=move.action in TRANSFER_ACTIONS and started_move)
            outcome = self._outcome(run, move, "failed", message + note, runs_on=runs_on)
            stops = None
        if not outcome.duration_s:
            outcome.duration_s = round(self.clock() - started, 2)
        run.mark(move, "done")
        outcome.timeline.update(run.timeline(move))
        return outcome, left, stops

    def _outcome(self, run, move, outcome, reason=None, **fields):
        result = MigrationOutcome.of(move, outcome, reason, **fields)
        result.timeline.update(run.timeline(move))
        return result

    def _not_run(self, run, move, reason):
        run.mark(move, "done")
        return self._outcome(run, move, "not_run", reason, runs_on=[move.source])

    def _alive(self, run, host):
        try:
            return bool(run.adapter(host).alive())
        except Exception:  # pylint: disable=broad-except
            return False  # an adapter that cannot even say whether its host answers: it does not

    def where(self, run, move, wait=False):
        """(hosts where the guest is defined, note) for the report, through the run's connections.

        With ``wait``, after a failed move: poll until exactly one of source and destination defines the
        guest and both answer, at most ``definition_wait_s``; a host that does not answer is asked again on a
        new connection (its libvirtd may have restarted), and the note says so when that bound passes. A host
        that does not answer is listed as unreachable and does not count. A source that keeps a shut-off
        definition of a guest that runs on the destination (libvirt undefines the source only in the
        migration's last step, which a source libvirtd restarted at that moment never runs) has that
        definition removed, once it is seen so twice: the guest is then defined on one host only.
        """
        hosts = [h for h in (move.source, move.destination) if h]
        hosts = [h for i, h in enumerate(hosts) if h not in hosts[:i]]
        deadline = self.clock() + self.definition_wait_s
        seen_left, removed, tried = 0, "", False
        while True:
            found, unknown = [], []
            for host in hosts:
                try:
                    if run.adapter(host).has_domain(move.guest):
                        found.append(host)
                except HostmaintError:
                    unknown.append(host)
                    if wait:
                        run.reconnect(host)
            runs_on = found + ["%s (unreachable)" % host for host in unknown]
            if not wait:
                return runs_on, ""
            if len(found) == 2 and not tried:
                seen_left = seen_left + 1 if self._left_on_source(run, move) else 0
                if seen_left >= 2:
                    tried = True
                    removed = self._remove_left_definition(run, move)
                    continue
            if (len(found) == 1 and not unknown) or (unknown and not found):
                return runs_on, removed
            if found == [move.source] and self._active_on(run, move.source, move.guest):
                return runs_on, removed  # still running where it was: the destination never took it over
            if self.clock() >= deadline:
                if unknown:
                    return runs_on, removed + "; after %g s %s still did not answer" % (
                        self.definition_wait_s, " and ".join(unknown))
                if found:
                    return runs_on, removed + "; after %g s %s is still defined on both %s" % (
                        self.definition_wait_s, move.guest, " and ".join(found))
                return runs_on, "; after %g s neither %s defines %s" % (
                    self.definition_wait_s, " nor ".join(hosts), move.guest)
            self.sleep(self.policy.poll_interval_s)

    @staticmethod
    def _active_on(run, host, guest):
        try:
            return run.adapter(host).guest_state(guest)[0] in ACTIVE_STATES
        except HostmaintError:
            return False

    @staticmethod
    def _left_on_source(run, move):
        """Whether the source keeps a stale copy of the guest that runs on the destination
        (placement.is_stale_copy): what a migration whose last step never ran leaves."""
        def read(adapter):
            state, persistent = adapter.guest_state(move.guest)
            return Guest(name=move.guest, uuid=adapter.guest_uuid(move.guest), state=state, persistent=persistent)
        try:
            running = read(run.adapter(move.destination))
            return placement.is_stale_copy(read(run.adapter(move.source)), running)
        except HostmaintError:
            return False

    @staticmethod
    def _remove_left_definition(run, move):
        """Undefine the source's stale copy (its disks stay); returns the note for the report."""
        try:
            run.adapter(move.source).undefine(move.guest)
        except HostmaintError as exc:
            return "; the definition %s kept on %s could not be removed: %s" % (move.guest, move.source, exc.message)
        return ("; %s kept a shut-off definition of %s while the guest ran on %s (the migration's last step never "
                "ran there): that definition was removed" % (move.source, move.guest, move.destination))

    def arrival_mark(self, move, dest):
        """(arrived, why not welcome) once the guest's incoming QEMU runs on its destination.

        The destination is checked against the maintenance mark just before the move starts, but a run that
        marks that host a moment later would not see this migration yet. So the mark is read again once the
        incoming guest is active there, which is when that run's look for migrations under way
        (runs.HostRun.settle) finds it: either that run saw it and waits for it, or this move sees the mark and
        is aborted (the guest keeps running on its source). (False, None) while it has not arrived."""
        try:
            if dest.guest_state(move.guest)[0] not in ACTIVE_STATES:
                return False, None
            mark = dest.maintenance()
        except HostmaintError:
            return False, None  # not there yet (or no answer now): asked again at the next poll
        if mark is None:
            return True, None
        return True, "%s went into maintenance (run %s) while %s was migrating there" % (
            move.destination, mark.get("run_id"), move.guest)

    @staticmethod
    def switched_over(move, dest, watch, paused):
        """Whether the guest already runs on its destination while its migration call has not returned: the
        destination's 'resumed' event of the migration, or (not watched) its state there. A guest that was
        paused stays paused: its move holds its slots until the call returns. Post-copy's 'resumed' does not
        count: the source still sends memory then."""
        if paused:
            return False
        if watch is not None:
            return any(e.kind == "resumed" and e.detail == "migrated" for e in watch.events())
        try:
            return dest.guest_state(move.guest)[0] == "running"
        except HostmaintError:
            return False  # no answer now: asked again at the next poll

    def check_destination(self, run, move, dest, watch=False):
        """Just before a move: the destination answers and is not marked in maintenance since the plan was
        made, else _DestinationLeft. With ``watch``, the guest's watch on the destination (or None)."""
        try:
            mark = None if move.destination in self.ignore_marks else dest.maintenance()
        except HostmaintError as exc:
            raise _DestinationLeft("%s does not answer (%s)" % (move.destination, exc.message))
        if mark is not None:
            raise _DestinationLeft("%s went into maintenance (run %s) after the plan was made"
                                   % (move.destination, mark.get("run_id")))
        if move.action in TRANSFER_ACTIONS and move.memory_mib:
            # its memory may have been taken since the plan (a guest started there): the room is judged again,
            # within its declared capacity when it has one (the guests there now, those arriving included)
            capacity = int(self.capacities.get(move.destination) or 0)
            try:
                _total, available = dest.memory_mib()
                if capacity:
                    available = capacity_free_mib(available, capacity, dest.active_memory())
            except HostmaintError:
                available = None  # not known: the plan's word stands
            reserve = int(self.limits.reserve_mib or 0)
            if available is not None and available - reserve < int(move.memory_mib):
                raise _DestinationLeft(
                    "%s no longer has room for %s: %d MiB available%s less the %d MiB reserve, %d MiB needed (its "
                    "memory was taken after the plan was made)" % (
                        move.destination, move.guest, available,
                        " within its declared capacity of %d MiB" % capacity if capacity else "", reserve,
                        int(move.memory_mib)))
        if not watch:
            return None, None
        try:
            return dest.watch(move.guest, self.clock), None
        except HostmaintError as exc:
            if not dest.alive():
                raise _DestinationLeft("%s does not answer (%s)" % (move.destination, exc.message))
            return None, exc.message  # the move goes on; only its end state is checked

    # -- actions ------------------------------------------------------------------------------
    def migrate(self, run, move, messages):
        source = run.adapter(move.source)
        dest = run.adapter(move.destination)
        state, persistent = source.guest_state(move.guest)
        paused = state == "paused"
        watch, unwatched = self.check_destination(run, move, dest, watch=self.settle_s > 0)
        try:
            return self._migrate(run, move, messages, source, dest, watch, unwatched, paused, persistent)
        finally:
            if watch is not None:
                watch.close()

    def _options(self, move, start, paused, persistent):
        return MigrationOptions(
            downtime_ms=int(start.downtime_ms), tls=bool(self.tls), bandwidth_mib=self.bandwidth_mib,
            auto_converge=start.auto_converge, auto_converge_initial=start.auto_converge_initial,
            auto_converge_increment=start.auto_converge_increment, postcopy=start.postcopy,
            storage_copy=bool(move.storage_copy), copy_disks=list(move.copy_disks or []),
            unsafe=move.guest in self.unsafe_guests, paused=paused, persistent=persistent)

    def _migrate(self, run, move, messages, source, dest, watch, unwatched, paused, persistent):
        start = convergence.start_flags(self.policy, paused=paused)
        options = self._options(move, start, paused, persistent)
        record = run.record_for(move)
        wrote_record, job, finished = False, None, False
        copies, existed = self._copies(source, dest, move)
        try:
            if record is not None:
                source.set_record(move.guest, record)
                wrote_record = True
            run.mark(move, "started")
            started = self.clock()
            job = source.start_migration(move.guest, self.peer_uri(move.destination), options, destination=dest)
            state = convergence.new_state(self.policy, move.guest, move.memory_mib, start, paused=paused,
                                          disk_bytes=move.disk_bytes if move.storage_copy else 0)
            aborted, abort_at, last, finished, unwelcome = None, None, None, False, None
            arrived = move.destination in self.ignore_marks  # restore: its home is marked by its own run
            released = None  # when the guest was seen running on its destination before the call returned
            troubled = False  # a problem on arrival was seen (and the run told) before the call returned
            while True:
                if watch is not None and abort_at is None:
                    # the destination's events wake this loop at once: its 'resumed' is the switchover, and a
                    # reset or crash after it is a problem on arrival
                    watch.wait(self.policy.poll_interval_s, seen=len(watch.events()))
                    finished = job.wait(0)
                else:
                    finished = job.wait(self.policy.poll_interval_s)
                if finished:
                    break
                elapsed = self.clock() - started
                if abort_at is None and not arrived:
                    arrived, unwelcome = self.arrival_mark(move, dest)
                    if unwelcome:
                        aborted, abort_at = unwelcome, elapsed
                if abort_at is None and released is None and self.switched_over(move, dest, watch, paused):
                    # libvirt's finish and confirm steps still run (seconds on the lab), but the copy is over:
                    # its slots go to the next moves now; its pause adjusts the windows once the call returns
                    released = self.clock()
                    run.mark(move, "switchover")
                    messages.put(("released", move, None))
                if released is not None:
                    # past its switchover there is nothing to steer or abort: wait for the call, bounded. A guest
                    # that already did not land well stops the run now, not when the call returns
                    if watch is not None and not troubled:
                        problem = settle_problem(move.guest, move.destination, watch.events(), released,
                                                 paused=paused)
                        if problem:
                            troubled = True
                            messages.put(("stop", move, problem))
                    if self.clock() - released > ABORT_GRACE_S:
                        break
                    continue
                if abort_at is None and self.stopping():
                    aborted, abort_at = "the run was asked to stop (%s)" % self.stopped, elapsed
                if abort_at == elapsed:
                    try:
                        job.abort()
                    except HostmaintError as exc:
                        aborted = "%s; abort failed: %s" % (aborted, exc.message)
                    continue
                if abort_at is not None:
                    if elapsed - abort_at > ABORT_GRACE_S:
                        break  # bounded: report below from what libvirt shows
                    continue
                sample = job.sample()
                if sample is None:
                    # no job (yet): time still counts, so the timeout and no-progress rungs can fire
                    sample = JobSample(elapsed_s=max(elapsed, state.elapsed_s))
                else:
                    sample = dataclasses.replace(sample, elapsed_s=max(elapsed, state.elapsed_s))
                    last = sample
                convergence.observe(state, sample)
                if sample is last:
                    run.copying(move, sample, state)
                action = convergence.next_action(self.policy, state)
                if action.kind == "wait":
                    continue
                try:
                    if action.kind == "set_downtime":
                        job.set_downtime(int(action.value))
                    elif action.kind == "postcopy":
                        job.postcopy()
                    elif action.kind == "abort":
                        aborted, abort_at = action.reason, elapsed
                        job.abort()
                except HostmaintError as exc:
                    if action.kind == "abort":
                        aborted = "%s; abort failed: %s" % (action.reason, exc.message)
                    continue
                convergence.applied(state, action)
            duration = round(self.clock() - started, 2)
            steps = [step.as_dict() for step in state.steps]
            result = job.result() if finished else None
        except Exception:
            if job is not None and not finished:
                self._abandon(job)
            if wrote_record:
                self._clear_record(source, move, run.previous.get(move.guest))
            raise
        if result is not None and result.ok:
            stats = job.completed_stats()
            if released is None:
                switchover = self.clock()
                run.mark(move, "switchover")
                # the copy is over: its slots go to the next moves, after its pause adjusted the windows
                messages.put(("released", move, stats.downtime_ms))
            else:
                switchover = released
                messages.put(("paused", move, stats.downtime_ms))
            outcome = self._outcome(run, move, "migrated", None, duration_s=duration, downtime_ms=stats.downtime_ms,
                                    bytes_transferred=stats.bytes_transferred, iterations=stats.iterations,
                                    ladder_steps=steps, runs_on=[move.destination])
            problem, state_after, left = self.settle(run, move, dest, watch, switchover, paused)
            outcome.state_after = state_after
            if problem:
                outcome.outcome, outcome.reason = "failed", problem
                return outcome, left, problem
            if unwatched:
                outcome.reason = ("%s was not watched after switchover (%s); only its state at the end of its settle "
                                  "period was checked" % (move.guest, unwatched))
            outcome.source_disks_deleted, note = self._delete_source_disks(run, move, copies, existed, state_after)
            if note:
                outcome.reason = "%s; %s" % (outcome.reason, note) if outcome.reason else note
            return outcome, None, None
        clear_note = self._clear_record(source, move, run.previous.get(move.guest)) if wrote_record else ""
        left = None
        if aborted:
            reason = "aborted: %s; %s keeps running on %s" % (aborted, move.guest, move.source)
            kind = "aborted"
        else:
            error = result.error if result is not None else (
                "the migration did not return within %.0f s of its abort" % ABORT_GRACE_S)
            reason = "cannot live-migrate %s to %s: %s" % (move.guest, move.destination, error)
            kind = "failed"
            if result is not None and result.cause == "destination" and source.alive():
                left = "%s failed the migration of %s (%s)" % (move.destination, move.guest, error)
            elif result is not None and result.cause is None and not dest.alive():
                left = "%s does not answer after the migration of %s failed (%s)" % (
                    move.destination, move.guest, error)
        runs_on, note = self.where(run, move, wait=True)
        if finished and runs_on != [move.destination]:
            note += self._restore_downtime(run, move, job)
        if copies and runs_on == [move.source]:
            note += self._remove_partial_copies(dest, move, copies, existed)
        if runs_on == [move.destination] and move.destination != move.source:
            # libvirt reported a failure (or took the abort) after the switchover: the guest runs there, and the
            # report says so rather than what the call returned
            kind, left = "migrated", None
            reason = "%s runs on %s, defined there only, although the migration reported: %s" % (
                move.guest, move.destination, reason)
            if copies:  # no settle period was watched: nothing of the source is deleted
                reason += "; its disks copied to %s stay on %s too: %s" % (
                    move.destination, move.source, ", ".join(copies))
            clear_note = ""
        elif unwelcome and runs_on == [move.source] and not clear_note:
            # the destination was marked while the guest was on its way: the destination leaves the run and the
            # move is placed again, like one whose destination failed the check before it started
            raise _DestinationLeft(unwelcome + note)
        return self._outcome(run, move, kind, reason + clear_note + note, duration_s=duration, ladder_steps=steps,
                             bytes_transferred=last.data_processed if last else None,
                             iterations=last.memory_iteration if last else None, runs_on=runs_on), left, None

    @staticmethod
    def _copies(source, dest, move):
        """(disk paths a storage copy creates on the destination, those of them already there before)."""
        if not move.storage_copy:
            return [], []
        try:
            disks = source.guest(move.guest).disks
            paths = [d.path for d in disks if d.path and d.path.startswith("/") and d.target in move.copy_disks]
            return paths, dest.local_volumes(paths)
        except HostmaintError:
            return [], []  # unknown: nothing is removed afterwards

    @staticmethod
    def _remove_partial_copies(dest, move, copies, existed):
        """After a failed storage copy (the guest still on its source): remove what the copy created on the
        destination, as libvirt leaves it there. A note for the report."""
        try:
            if dest.has_domain(move.guest):
                return ""
            left = [p for p in dest.local_volumes(copies) if p not in existed]
            if not left:
                return ""
            return "; the partial copy on %s was removed (%s)" % (move.destination, ", ".join(dest.delete_volumes(left)))
        except HostmaintError as exc:
            return "; the partial copy on %s may remain: %s" % (move.destination, exc.message)

    def _delete_source_disks(self, run, move, copies, existed, state_after):
        """After a storage copy whose guest passed its settle period on its destination: its disks on the source
        (``copies``; ``existed``: those the destination had before the copy) deleted as ``storage_copy_source`` and
        ``source_disks_to_delete`` say, each read again on both hosts just before. (paths deleted, '' or a note for
        the report saying which stay and why); a failure is a note, never the move's."""
        if not copies:
            return [], ""
        if self.storage_copy_source != "delete":
            return [], "its disks copied to %s stay on %s too (storage_copy_source is keep): %s" % (
                move.destination, move.source, ", ".join(copies))
        deleted, notes = [], []
        try:
            source, dest = run.adapter(move.source), run.adapter(move.destination)
            delete, kept = source_disks_to_delete(
                move.guest, copies, move.source, move.destination, source.has_domain(move.guest),
                state_after in ACTIVE_STATES, existed, dest.local_volumes(copies), dest.definitions_naming(copies),
                source.definitions_naming(copies))
        except HostmaintError as exc:
            return [], "its disks copied to %s stay on %s: %s" % (move.destination, move.source, exc.message)
        for path in delete:
            try:
                deleted.extend(source.delete_volumes([path]))
            except HostmaintError as exc:
                kept.append((path, exc.message))
        notes = ["%s stays on %s: %s" % (path, move.source, why) for path, why in kept]
        if deleted:
            notes.insert(0, "its disks copied to %s were deleted on %s: %s" % (
                move.destination, move.source, ", ".join(deleted)))
        return deleted, "; ".join(notes)

    def _restore_downtime(self, run, move, job):
        """After a migration that ended without moving the guest: where it still runs on its source, its
        downtime limit back to what it had before, so that the next migration (ours or an operator's) starts
        from it. A source that does not answer (its libvirtd restarting) is asked again on a new connection,
        at most ``definition_wait_s``. '' or a note for the report."""
        before = job.downtime_before
        if before is None:
            return ""
        deadline = self.clock() + self.definition_wait_s
        while True:
            try:
                source = run.adapter(move.source)
                if not source.has_domain(move.guest) or source.guest_state(move.guest)[0] not in ACTIVE_STATES:
                    return ""  # not running there: no QEMU of it on the source to set
                source.set_downtime_limit(move.guest, before)
                return ""
            except HostmaintError as exc:
                if self.clock() >= deadline:
                    return "; its downtime limit may stay at the run's first one, not %d ms: %s" % (before, exc.message)
                run.reconnect(move.source)
                self.sleep(self.policy.poll_interval_s)

    @staticmethod
    def _abandon(job):
        """Something unexpected broke the loop that steers a running job: abort it rather than leave it
        running unattended (bounded; the guest stays on its source unless it already switched over)."""
        try:
            job.abort()
        except HostmaintError:
            return  # it may have finished meanwhile; where() says where the guest is
        job.wait(ABORT_GRACE_S)

    @staticmethod
    def _clear_record(source, move, previous=None):
        """The guest stayed where it was: no record, or the one it had before (``previous``) written back. '' or a
        note when that could not be done."""
        try:
            if source.has_domain(move.guest):
                if previous is not None:
                    source.set_record(move.guest, previous)
                else:
                    source.clear_record(move.guest)
            return ""
        except HostmaintError as exc:
            return "; its migration record stays: %s" % exc.message

    @staticmethod
    def check_probe(url, timeout):
        """None when the guest answered its probe, else what went wrong (tests replace this)."""
        return probe.check(url, timeout)

    def settle(self, run, move, dest, watch, switchover, paused):
        """(problem or None, state on the destination, destination left because) after a switchover.

        For ``settle_s`` after the switchover the guest's events on the destination are read as they come;
        the first that says it did not land well (``settle_problem``) ends the period early. A guest with a
        probe must also answer it, within ``settle_s`` or ``probe_wait_s`` after the switchover, whichever is
        longer; once it answered with its events quiet, its period ends (at the earliest PROBED_QUIET_S after
        the switchover). A guest without a probe is watched for the whole ``settle_s``. At the end the guest
        must run there (or be paused, when it was paused before the move).
        """
        expected = "paused" if paused else "running"
        problem = None
        url = self.probes.get(move.guest) if self.settle_s > 0 and not paused else None
        answered, last_error = url is None, None
        probe_within = max(self.settle_s, self.probe_wait_s)
        if self.settle_s > 0:
            deadline = switchover + self.settle_s
            probe_deadline = switchover + probe_within
            while True:
                events = watch.events() if watch is not None else []
                problem = settle_problem(move.guest, move.destination, events, switchover_time(events, switchover),
                                         paused=paused)
                if not problem and not answered:
                    # the guest's own service, where its users reach it (bounded: 1 s an attempt)
                    last_error = self.check_probe(url, min(1.0, max(0.2, probe_deadline - self.clock())))
                    answered = last_error is None
                if url is not None and answered:
                    deadline = min(deadline, switchover + PROBED_QUIET_S)  # it answered, its events quiet: done
                remaining = (deadline if answered else probe_deadline) - self.clock()
                if problem or remaining <= 0:
                    break
                if watch is not None:
                    watch.wait(min(remaining, self.policy.poll_interval_s), seen=len(events))
                else:
                    self.sleep(min(remaining, self.policy.poll_interval_s))
            if problem is None and watch is not None:  # what came while the probe was tried counts too
                events = watch.events()
                problem = settle_problem(move.guest, move.destination, events, switchover_time(events, switchover),
                                         paused=paused)
            if problem is None and not answered:
                problem = "%s did not answer %s within %g s after switchover on %s (%s)" % (
                    move.guest, url, probe_within, move.destination, last_error)
            run.mark(move, "checked")
        try:
            state_after, _persistent = dest.guest_state(move.guest)
        except HostmaintError as exc:
            problem = problem or "cannot check %s on %s after switchover: %s" % (
                move.guest, move.destination, exc.message)
            return problem, None, "%s does not answer after %s switched over (%s)" % (
                move.destination, move.guest, exc.message)
        if problem is None and self.settle_s > 0 and state_after != expected:
            problem = "%s is %s on %s at the end of its %g s settle period" % (
                move.guest, state_after, move.destination, self.settle_s)
        return problem, state_after, None

    def move_definition(self, run, move):
        """A shut-off persistent guest: define it on the destination, then undefine it on the source."""
        source = run.adapter(move.source)
        dest = run.adapter(move.destination)
        xml = source.inactive_xml(move.guest)
        self.check_destination(run, move, dest)
        run.mark(move, "started")
        if dest.has_domain(move.guest):
            raise HostmaintError("cannot move %s to %s: the destination already has a guest of that name"
                                 % (move.guest, move.destination))
        dest.define(xml)
        try:
            record = run.record_for(move)
            if record is not None:
                dest.set_record(move.guest, record)
            source.undefine(move.guest)
        except HostmaintError:
            dest.undefine(move.guest)  # keep exactly one definition: the source's
            raise
        return self._outcome(run, move, "moved_definition", None, runs_on=[move.destination], state_after="shutoff")

    def shutdown(self, run, move):
        """A guest that cannot move and whose policy is shutdown: clean shutdown, bounded wait."""
        source = run.adapter(move.source)
        record = run.record_for(move)
        if record is not None:
            source.set_record(move.guest, record)
        run.mark(move, "started")
        if source.shutdown(move.guest, self.shutdown_timeout_s):
            return self._outcome(run, move, "shut_down", None, runs_on=[move.source], state_after="shutoff")
        return self._outcome(run, move, "failed", "%s did not shut down within %.0f s and keeps running on %s"
                             % (move.guest, self.shutdown_timeout_s, move.source), runs_on=[move.source])

    def start(self, run, move):
        home = run.adapter(move.destination)
        run.mark(move, "started")
        home.start(move.guest)
        return self._outcome(run, move, "started", None, runs_on=[move.destination], state_after="running")
