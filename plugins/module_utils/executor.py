# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carries out a Plan: wave by wave, the moves of a wave in parallel threads, one libvirt connection
each. Returns one outcome per move and never exits; every wait is bounded.

A guest is never lost: a migration that fails or is aborted leaves the guest running on its source
(libvirt's peer-to-peer protocol only undefines the source once the destination runs it), and the
executor checks afterwards where the guest runs and is defined, and says so in the outcome.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import convergence
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.libvirt_adapter import LIBVIRT_ERRORS, libvirt
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import JobSample, LadderPolicy

# After an abort, how long the migration call may take to return before we stop waiting for it.
ABORT_GRACE_S = 30.0


def _now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def outcome_dict(move, outcome, reason=None, **extra):
    data = dict(guest=move.guest, action=move.action, source=move.source, destination=move.destination,
                wave=move.wave, outcome=outcome, moved=outcome in ("migrated", "moved_definition"),
                duration_s=0.0, downtime_ms=None, bytes_transferred=None, iterations=None, ladder_steps=[],
                reason=reason, runs_on=None)
    data.update(extra)
    return data


class Executor(object):
    """Runs plans.

    ``connect(host)`` returns a fresh adapter connected to that host as this module reaches it;
    ``peer_uri(host)`` is the URI a source host's libvirtd uses to reach that host (peer-to-peer).
    """

    def __init__(self, connect, peer_uri, policy=None, bandwidth_mib=0, tls=False, shutdown_timeout_s=120.0,
                 unsafe_guests=(), ignore_marks=(), clock=time.time):
        self.connect = connect
        self.peer_uri = peer_uri
        self.policy = (policy or LadderPolicy()).validate()
        self.bandwidth_mib = int(bandwidth_mib)
        self.tls = tls
        self.shutdown_timeout_s = float(shutdown_timeout_s)
        self.unsafe_guests = set(unsafe_guests)
        self.ignore_marks = set(ignore_marks)
        self.clock = clock

    # -- plan ---------------------------------------------------------------------------------
    def run(self, plan, records=None, on_done=None):
        """Every move of the plan, wave by wave. ``records`` maps guest -> MigrationRecord to write."""
        records = records or {}
        outcomes = []
        waves = sorted(set(move.wave for move in plan.moves))
        for wave in waves:
            moves = [m for m in sorted(plan.moves, key=lambda m: m.order) if m.wave == wave]
            results = [None] * len(moves)

            failed_before = any(o["outcome"] in ("failed", "aborted") for o in outcomes)

            def work(index, move):
                if move.action == "shutdown" and failed_before:
                    return  # shutting a guest down only helps if the host can be emptied
                results[index] = self.run_move(move, records.get(move.guest))

            threads = [threading.Thread(target=work, args=(i, m), name="move-%s" % m.guest) for i, m in enumerate(moves)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for move, result in zip(moves, results):
                if result is None:  # a shutdown held back, see work()
                    result = outcome_dict(move, "not_run", "%s stays running: migrations before it failed, so the "
                                          "host will not be emptied" % move.guest, runs_on=[move.source])
                outcomes.append(result)
                if on_done is not None:
                    on_done(move, result)
        return outcomes

    def run_move(self, move, record=None):
        started = self.clock()
        try:
            if move.action == "migrate":
                result = self.migrate(move, record)
            elif move.action == "move_definition":
                result = self.move_definition(move, record)
            elif move.action == "shutdown":
                result = self.shutdown(move, record)
            elif move.action == "start":
                result = self.start(move)
            else:
                result = outcome_dict(move, "failed", "unknown action %s" % move.action)
        except HostmaintError as exc:
            result = outcome_dict(move, "failed", exc.message, runs_on=self.where(move))
        except LIBVIRT_ERRORS as exc:
            result = outcome_dict(move, "failed", "%s of %s failed: %s" % (move.action, move.guest, exc.get_error_message()),
                                  runs_on=self.where(move))
        result["duration_s"] = round(self.clock() - started, 2)
        return result

    def where(self, move):
        """Hosts (source/destination) where the guest is now defined, for the report."""
        found = []
        for host in (move.source, move.destination):
            if not host or host in found:
                continue
            adapter = self.connect(host)
            try:
                if adapter.has_domain(move.guest):
                    found.append(host)
            except HostmaintError:
                found.append("%s (unreachable)" % host)
            finally:
                adapter.close()
        return found

    # -- actions ------------------------------------------------------------------------------
    def check_destination(self, move):
        """Just before a move: a destination marked in maintenance since the plan was made takes nothing."""
        if move.destination in self.ignore_marks:
            return
        dest = self.connect(move.destination)
        try:
            mark = dest.maintenance()
        finally:
            dest.close()
        if mark is not None:
            raise HostmaintError("cannot move %s to %s: %s went into maintenance (run %s) after the plan was made; "
                                 "%s stays on %s" % (move.guest, move.destination, move.destination,
                                                     mark.get("run_id"), move.guest, move.source))

    def _flags(self, dom, move, options):
        flags = (libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER | libvirt.VIR_MIGRATE_ABORT_ON_ERROR)
        params = {libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: self.bandwidth_mib}
        if dom.isPersistent():
            flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
        if self.tls:
            flags |= libvirt.VIR_MIGRATE_TLS
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            flags |= libvirt.VIR_MIGRATE_PAUSED
        if options.auto_converge:
            flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL] = int(options.auto_converge_initial)
            params[libvirt.VIR_MIGRATE_PARAM_AUTO_CONVERGE_INCREMENT] = int(options.auto_converge_increment)
        if options.postcopy:
            flags |= libvirt.VIR_MIGRATE_POSTCOPY
        if move.storage_copy:
            flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
            if move.copy_disks:
                params[libvirt.VIR_MIGRATE_PARAM_MIGRATE_DISKS] = list(move.copy_disks)
        if move.guest in self.unsafe_guests:
            # its disks sit on a pool the operator declared shared, which libvirt cannot see as such
            flags |= libvirt.VIR_MIGRATE_UNSAFE
        return flags, params

    def migrate(self, move, record):
        source = self.connect(move.source)
        dest_uri = self.peer_uri(move.destination)
        wrote_record = False
        try:
            dom = source.domain(move.guest)
            self.check_destination(move)
            paused = dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED
            options = convergence.start_flags(self.policy, paused=paused)
            flags, params = self._flags(dom, move, options)
            if record is not None:
                source.set_record(move.guest, record)
                wrote_record = True
            dom.migrateSetMaxDowntime(int(options.downtime_ms), 0)
            state = convergence.new_state(self.policy, move.guest, move.memory_mib, options, paused=paused)
            box = {}

            def call():
                try:
                    dom.migrateToURI3(dest_uri, params, flags)
                    box["ok"] = True
                except LIBVIRT_ERRORS as exc:
                    box["error"] = exc.get_error_message()

            worker = threading.Thread(target=call, name="migrate-%s" % move.guest)
            started = self.clock()
            worker.start()
            aborted = None
            abort_at = None
            last_stats = {}
            while worker.is_alive():
                worker.join(self.policy.poll_interval_s)
                if not worker.is_alive():
                    break
                elapsed = self.clock() - started
                if abort_at is not None:
                    if elapsed - abort_at > ABORT_GRACE_S:
                        break  # bounded: report below from what libvirt shows
                    continue
                try:
                    stats = dom.jobStats(0)
                except LIBVIRT_ERRORS:
                    stats = {}  # the job may be finishing; the worker tells
                if stats.get("type", 0) == 0:
                    # no job (yet): time still counts, so the timeout and no-progress rungs can fire
                    sample = JobSample(elapsed_s=max(elapsed, state.elapsed_s))
                else:
                    last_stats = stats
                    sample = JobSample.from_job_stats(stats, elapsed_s=max(elapsed, state.elapsed_s))
                convergence.observe(state, sample)
                action = convergence.next_action(self.policy, state)
                if action.kind == "wait":
                    continue
                try:
                    if action.kind == "set_downtime":
                        dom.migrateSetMaxDowntime(int(action.value), 0)
                    elif action.kind == "postcopy":
                        dom.migrateStartPostCopy(0)
                    elif action.kind == "abort":
                        aborted = action.reason
                        abort_at = elapsed
                        dom.abortJob()
                except LIBVIRT_ERRORS as exc:
                    if action.kind == "abort":
                        aborted = "%s; abort failed: %s" % (action.reason, exc.get_error_message())
                    continue
                convergence.applied(state, action)
            duration = self.clock() - started
            steps = [s.as_dict() for s in state.steps]
            if box.get("ok"):
                dest = self.connect(move.destination)
                try:
                    completed = self._completed_stats(dest, move.guest)
                    runs = dest.domain(move.guest)
                    running = runs.isActive()
                finally:
                    dest.close()
                stats = completed or last_stats
                return outcome_dict(
                    move, "migrated", None, duration_s=round(duration, 2),
                    downtime_ms=stats.get("downtime"), bytes_transferred=stats.get("data_processed"),
                    iterations=stats.get("memory_iteration"), ladder_steps=steps,
                    runs_on=[move.destination], state_after="running" if running else "stopped")
            if wrote_record and source.has_domain(move.guest):
                source.clear_record(move.guest)  # it stayed home: no record
            if aborted:
                reason = "aborted: %s; %s keeps running on %s" % (aborted, move.guest, move.source)
                return outcome_dict(move, "aborted", reason, duration_s=round(duration, 2), ladder_steps=steps,
                                    bytes_transferred=last_stats.get("data_processed"),
                                    iterations=last_stats.get("memory_iteration"), runs_on=self.where(move))
            error = box.get("error") or "the migration did not return within %.0f s of its abort" % ABORT_GRACE_S
            return outcome_dict(move, "failed", "cannot live-migrate %s to %s: %s" % (move.guest, move.destination, error),
                                duration_s=round(duration, 2), ladder_steps=steps, runs_on=self.where(move))
        finally:
            source.close()

    @staticmethod
    def _completed_stats(adapter, name):
        try:
            return adapter.domain(name).jobStats(libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except LIBVIRT_ERRORS:
            return {}

    def move_definition(self, move, record):
        """A shut-off persistent guest: define it on the destination, then undefine it on the source."""
        source = self.connect(move.source)
        dest = self.connect(move.destination)
        try:
            xml = source.inactive_xml(move.guest)
            self.check_destination(move)
            if dest.has_domain(move.guest):
                raise HostmaintError("cannot move %s to %s: the destination already has a guest of that name"
                                     % (move.guest, move.destination))
            dest.define(xml)
            try:
                if record is not None:
                    dest.set_record(move.guest, record)
                source.undefine(move.guest)
            except (HostmaintError,) + LIBVIRT_ERRORS:
                dest.undefine(move.guest)  # keep exactly one definition: the source's
                raise
            return outcome_dict(move, "moved_definition", None, runs_on=[move.destination], state_after="shutoff")
        finally:
            source.close()
            dest.close()

    def shutdown(self, move, record):
        """A guest that cannot move and whose policy is shutdown: clean shutdown, bounded wait."""
        source = self.connect(move.source)
        try:
            if record is not None:
                source.set_record(move.guest, record)
            if source.shutdown(move.guest, self.shutdown_timeout_s):
                return outcome_dict(move, "shut_down", None, runs_on=[move.source], state_after="shutoff")
            return outcome_dict(move, "failed", "%s did not shut down within %.0f s and keeps running on %s"
                                % (move.guest, self.shutdown_timeout_s, move.source), runs_on=[move.source])
        finally:
            source.close()

    def start(self, move):
        home = self.connect(move.destination)
        try:
            home.start(move.guest)
            return outcome_dict(move, "started", None, runs_on=[move.destination], state_after="running")
        finally:
            home.close()
