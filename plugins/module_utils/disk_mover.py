# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live storage migration, carried out: the DiskPlans of module_utils/disk_moves.py, one guest at a time per
worker, through the host's adapter (no libvirt import here: tests drive it with a fake).

For each disk of a running guest, in this order:

1. the move is recorded in the guest's metadata (as vdsm does) before anything is created, so that a re-run
   finishes or undoes what a dead run left (``recover``);
2. the target volume is created (empty, the source's format and virtual size) and the copy starts into it: a
   transient job (a persistent guest needs one), a full copy (no backing chain), at most ``bandwidth_mib``;
3. the copy is watched until libvirt says READY (``<mirror ready='yes'>``; 100 % is not READY), bounded: no
   progress for ``stall_s``, or no READY within the bound (``ready_timeout_s``, else disk_moves.ready_bound_s),
   aborts it; with ``synchronous`` "auto" a copy that missed its bound starts once more with synchronous writes
   (the guest's writes then wait for both disks, so the copy converges whatever the guest writes);
4. the guest pivots to the copy; its live definition must name the new file, and its inactive one is made to
   name it too (a pivot of a transient job leaves it naming the old one), so that a guest started later boots
   from the new disk;
5. the record goes; ``source_after`` "delete" deletes the source only then, and only when no definition of this
   host (nor of ``others``, the hosts that see a shared pool) names it.

Every abort (a stop request, a signal, a bound, an error) ends the copy without a pivot: the guest stays on its
source, with every write there, and only the volume this run created is deleted. A shut-off guest's disks are
copied offline (libvirt's volume copy) and its definition then names the copy.
"""

from __future__ import annotations

import threading
import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import disk_moves
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

MIB = 1024 ** 2

# How long the mover keeps asking a host's libvirtd that stopped answering (it may be restarting) before it gives up.
RECONNECT_S = 60.0


class _Stopped(HostmaintError):
    """The run was asked to stop while a copy ran."""


class DiskMover(object):
    """Carries out DiskPlans on one host. ``adapter``: the host's; ``reopen()``: a new adapter for the host, for
    one whose connection broke (its libvirtd restarted); ``stop()``: why the run must stop, or None; ``others``:
    adapters of the hosts that see the host's shared pools (their definitions may name a source too)."""

    def __init__(self, adapter, run_id, bandwidth_mib=0, synchronous="auto", ready_timeout_s=0, stall_s=60,
                 source_after="keep", stop=None, reopen=None, others=(), unknown_hosts=(), shared_pools=(), poll_s=0.2,
                 clock=time.time, sleep=time.sleep, progress=None):
        self.adapter = adapter
        self.run_id = run_id
        self.bandwidth_mib = int(bandwidth_mib or 0)
        self.synchronous = synchronous
        self.ready_timeout_s = int(ready_timeout_s or 0)
        self.stall_s = float(stall_s)
        self.source_after = source_after
        self.stop = stop or (lambda: None)
        self.reopen = reopen
        self.others = list(others)
        self.unknown_hosts = list(unknown_hosts)
        self.shared_pools = set(shared_pools)
        self.poll_s = poll_s
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        self._lock = threading.Lock()

    # -- progress (module_utils/progress.py): one entry per disk, keyed guest/target -------------------
    def queued(self, plans):
        """Tell the run's progress of every disk these plans copy, before the first copy starts."""
        if self.progress is not None:
            self.progress.plan([dict(key=_key(x.guest, c.target), guest="%s %s" % (x.guest, c.target),
                                     action="disk" if x.live else "offline copy",
                                     route="%s->%s" % (c.source_pool, c.to_pool), total=int(c.capacity or 0))
                                for x in plans for c in x.copies])

    def _phase(self, plan, copy, phase):
        if self.progress is not None:
            self.progress.event(_key(plan.guest, copy.target), phase)

    def _ended(self, result):
        if self.progress is not None:
            self.progress.end(_key(result["guest"], result["target"]), result["outcome"], result["reason"],
                              failed=result["outcome"] in ("failed", "aborted"))

    # -- connection ---------------------------------------------------------------------------
    def _call(self, method, *args, **kwargs):
        """A call on the host's adapter; one that fails because libvirtd does not answer is retried on a new
        connection (libvirtd restarting: the guest and its block job keep running in QEMU), at most RECONNECT_S."""
        deadline = self.clock() + RECONNECT_S
        while True:
            adapter = self.adapter
            try:
                return getattr(adapter, method)(*args, **kwargs)
            except HostmaintError:
                if self.reopen is None or adapter.alive() or self.clock() >= deadline:
                    raise
                with self._lock:
                    if self.adapter is adapter:
                        adapter.close()
                        self.adapter = self.reopen()
                self.sleep(1.0)

    def _record(self, guest, plan, phases):
        return dict(run_id=self.run_id, time=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    source_after=self.source_after,
                    disks=[dict(target=c.target, source=c.source, dest=c.dest, created=True,
                                phase=phases.get(c.target, "planned")) for c in plan.copies])

    # -- a guest ------------------------------------------------------------------------------
    def move(self, plan):
        """Carry out one guest's DiskPlan; a list of per-disk results (dicts), in the plan's order."""
        results = []
        phases = {}
        for copy in plan.copies:
            if self.stop():
                results.append(self._result(plan, copy, "not_run", "not started: the run stopped (%s)" % self.stop()))
                self._ended(results[-1])
                continue
            phases[copy.target] = "copying"
            self._call("set_disk_move_record", plan.guest, self._record(plan.guest, plan, phases))
            if plan.live:
                result = self._live(plan, copy)
            else:
                result = self._offline(plan, copy)
            phases[copy.target] = "done" if result["outcome"] == "moved" else "undone"
            results.append(result)
            self._ended(result)
            if result["outcome"] != "moved" and result.get("record_stays"):
                return results  # its record stays for a re-run: nothing more moves on this guest
        try:
            self._call("clear_disk_move_record", plan.guest)
        except HostmaintError as exc:
            results[-1]["reason"] += "; its disk move record stays (%s): a re-run clears it" % exc.message
        for result in results:
            if result["outcome"] == "moved" and self.source_after == "delete":
                pool = [c.source_pool for c in plan.copies if c.target == result["target"]][0]
                result["source_after"], note = self._delete_source(result["source"], pool in self.shared_pools)
                result["reason"] += note
        return results

    def _result(self, plan, copy, outcome, reason, **extra):
        result = dict(guest=plan.guest, host=plan.host, target=copy.target, source=copy.source, dest=copy.dest,
                      to_pool=copy.to_pool, live=plan.live, outcome=outcome, reason=reason, bytes=None, job_bytes=None,
                      seconds=None,
                      rate_mib_s=None, synchronous=False, source_after="kept")
        result.update(extra)
        return result

    # -- a live copy --------------------------------------------------------------------------
    def _live(self, plan, copy):
        name = plan.guest
        started = self.clock()
        created = None
        synchronous = self.synchronous == "always"
        try:
            created = self._call("create_volume", copy.to_pool, copy.dest_name, copy.capacity, copy.format)
            if created != copy.dest:
                copy.dest = created
                self._call("set_disk_move_record", name, self._record(name, plan, {copy.target: "copying"}))
            self._call("start_block_copy", name, copy.target, created, copy.format, self.bandwidth_mib, synchronous)
            self._phase(plan, copy, "started")
            walked = self._wait_ready(plan, copy, synchronous)
            if walked == "again":
                synchronous = True
                self._end(name, copy.target, pivot=False)
                self._call("start_block_copy", name, copy.target, created, copy.format, self.bandwidth_mib, True)
                walked = self._wait_ready(plan, copy, True)
            if not self._end(name, copy.target, pivot=True):
                raise HostmaintError("the pivot of %s of %s to %s did not end within 30 s" % (copy.target, name, created))
            self._phase(plan, copy, "switchover")
            live, inactive = self._call("disk_sources", name, copy.target)
            if live != created:
                raise HostmaintError("after the pivot %s of %s still names %s, not %s" % (copy.target, name, live, created))
            fixed = False
            if inactive is not None and inactive != created:
                fixed = self._call("set_disk_source", name, copy.target, created, copy.format)
                inactive = self._call("disk_sources", name, copy.target)[1]
            if inactive is not None and inactive != created:
                raise HostmaintError("after the pivot the definition of %s still names %s for %s" % (
                    name, inactive, copy.target))
            self._phase(plan, copy, "checked")
            seconds = self.clock() - started
            # bytes: the data the disk held (its allocation); job_bytes: what the copy job walked, which is the whole
            # virtual size (holes too: a bandwidth cap paces them as well) plus what the guest wrote meanwhile
            moved, walked = int(copy.allocation or 0), int(walked or 0)
            return self._result(plan, copy, "moved", "%s of %s moved to %s (%s) while it ran: %s of data, the copy "
                                "job walked %s in %.1f s%s%s" % (
                                    copy.target, name, copy.to_pool, created, _mib(moved), _mib(walked), seconds,
                                    " with synchronous writes" if synchronous else "",
                                    "; its definition was updated to name the copy" if fixed else ""),
                                bytes=moved, job_bytes=walked, seconds=round(seconds, 2),
                                rate_mib_s=round(walked / MIB / seconds, 1) if seconds else None, synchronous=synchronous)
        except HostmaintError as exc:
            return self._undo_live(plan, copy, created, exc, started, synchronous)

    def _wait_ready(self, plan, copy, synchronous):
        """Watch the copy until READY: its bytes copied then; "again" when it missed its bound and may restart with
        synchronous writes. Raises HostmaintError (or _Stopped) to abort."""
        name, target = plan.guest, copy.target
        bound = self.ready_timeout_s or disk_moves.ready_bound_s(copy.allocation, copy.capacity)
        deadline = self.clock() + bound
        last, moved_at = None, self.clock()
        while True:
            reason = self.stop()
            if reason:
                raise _Stopped("the run stopped (%s)" % reason)
            state = self._call("block_copy_state", name, target)
            if not state["job"]:
                raise HostmaintError("the copy of %s of %s ended by itself before it was ready (was libvirtd or QEMU "
                                     "restarted?)" % (target, name))
            mirror = state["mirror"] or {}
            if mirror.get("ready"):
                return state["end"]
            if self.progress is not None:
                self.progress.copying(_key(name, target), int(state["cur"] or 0), int(state["end"] or 0),
                                      rung="synchronous writes" if synchronous else None)
            if state["cur"] != last:
                last, moved_at = state["cur"], self.clock()
            now = self.clock()
            if now - moved_at >= self.stall_s:
                raise HostmaintError("the copy of %s of %s made no progress for %d s (%s of %s copied)" % (
                    target, name, self.stall_s, _mib(last), _mib(state["end"])))
            if now >= deadline:
                if self.synchronous == "auto" and not synchronous:
                    return "again"
                raise HostmaintError("the copy of %s of %s was not ready within %d s (%s of %s copied)%s" % (
                    target, name, bound, _mib(state["cur"]), _mib(state["end"]),
                    "" if synchronous else "; synchronous writes would make it converge (synchronous_writes)"))
            self.sleep(self.poll_s)

    def _end(self, name, target, pivot):
        return self._call("end_block_copy", name, target, pivot)

    def _undo_live(self, plan, copy, created, error, started, synchronous):
        """End the copy without a pivot; the guest keeps its source. Delete what this run created."""
        name = plan.guest
        notes = []
        record_stays = False
        try:
            state = self._call("block_copy_state", name, copy.target)
            if state["job"]:
                if not self._end(name, copy.target, pivot=False):
                    raise HostmaintError("the copy of %s did not end within 30 s of its abort" % copy.target)
            live = self._call("block_copy_state", name, copy.target)["source"]
            if live == created and created:
                # it pivoted after all (an error came after the switch): the guest runs on the copy
                return self._result(plan, copy, "moved", "%s of %s runs on %s, although the move reported: %s" % (
                    copy.target, name, created, error.message), seconds=round(self.clock() - started, 2),
                    synchronous=synchronous)
            if created:
                self._call("delete_volumes", [created])
                notes.append("the copy %s was deleted" % created)
        except HostmaintError as exc:
            record_stays = True
            notes.append("cleaning up failed (%s): its disk move record stays, and a re-run finishes the cleanup"
                         % exc.message)
        outcome = "aborted" if isinstance(error, _Stopped) else "failed"
        return self._result(plan, copy, outcome, "%s of %s stays on %s: %s%s" % (
            copy.target, name, copy.source, error.message, "".join("; " + n for n in notes)),
            seconds=round(self.clock() - started, 2), synchronous=synchronous, record_stays=record_stays)

    # -- an offline copy ----------------------------------------------------------------------
    def _offline(self, plan, copy):
        name = plan.guest
        started = self.clock()
        created = None
        try:
            self._phase(plan, copy, "started")
            created = self._call("copy_volume", copy.source, copy.to_pool, copy.dest_name, copy.format)
            state, _persistent = self._call("guest_state", name)
            if state not in ("shutoff", "crashed", "nostate"):
                raise HostmaintError("%s was started while its disk %s was copied: the copy is stale" % (
                    name, copy.target))
            self._call("set_disk_source", name, copy.target, created, copy.format)
            inactive = self._call("disk_sources", name, copy.target)[1]
            if inactive != created:
                raise HostmaintError("the definition of %s still names %s for %s" % (name, inactive, copy.target))
            seconds = self.clock() - started
            return self._result(plan, copy, "moved", "%s of %s (shut off) copied to %s (%s), %s in %.1f s" % (
                copy.target, name, copy.to_pool, created, _mib(copy.allocation), seconds),
                bytes=copy.allocation, seconds=round(seconds, 2),
                rate_mib_s=round(copy.allocation / MIB / seconds, 1) if seconds else None)
        except HostmaintError as exc:
            note = ""
            if created:
                try:
                    self._call("delete_volumes", [created])
                    note = "; the copy %s was deleted" % created
                except HostmaintError as again:
                    note = "; the copy %s may remain (%s)" % (created, again.message)
            return self._result(plan, copy, "failed", "%s of %s stays on %s: %s%s" % (
                copy.target, name, copy.source, exc.message, note), seconds=round(self.clock() - started, 2))

    # -- after a verified move ----------------------------------------------------------------
    def _delete_source(self, path, shared):
        """("deleted"|"kept", note): the source of a verified move, deleted when no definition names it (on this host,
        and for a ``shared`` pool on every other host)."""
        if shared and self.unknown_hosts:
            return "kept", "; its source %s was kept: it is on a shared pool, and %s did not answer" % (
                path, ", ".join(self.unknown_hosts))
        users = []
        try:
            for adapter in [self.adapter] + (self.others if shared else []):
                users += [g for g in adapter.definitions_naming([path])[path] if g not in users]
        except HostmaintError as exc:
            return "kept", "; its source %s was kept: who uses it cannot be told (%s)" % (path, exc.message)
        if users:
            return "kept", "; its source %s was kept: %s still name%s it" % (
                path, ", ".join(sorted(users)), "s" if len(users) == 1 else "")
        try:
            self._call("delete_volumes", [path])
        except HostmaintError as exc:
            return "kept", "; its source %s could not be deleted (%s)" % (path, exc.message)
        return "deleted", "; its source %s was deleted" % path

    # -- what a dead run left -----------------------------------------------------------------
    def recover(self, guest, record):
        """Finish or undo the disk moves of ``record`` (left on ``guest`` by a run that is gone); a list of
        {guest, target, action, note}. The record goes once each disk is settled."""
        done = []
        sources, jobs = {}, {}
        for disk in record.get("disks") or []:
            state = self._call("block_copy_state", guest, disk["target"])
            live, inactive = self._call("disk_sources", guest, disk["target"])
            sources[disk["target"]] = live or inactive
            mirror = state.get("mirror") or {}
            jobs[disk["target"]] = mirror.get("dest") if state["job"] else None
        for disk, action in disk_moves.resume(record, sources, jobs):
            target = disk["target"]
            note = ""
            if action == "finish":
                if self._call("set_disk_source", guest, target, disk["dest"]):
                    note = "its definition now names %s" % disk["dest"]
                else:
                    note = "it runs on %s" % disk["dest"]
            elif action in ("abort", "undo"):
                if action == "abort" and not self._end(guest, target, pivot=False):
                    raise HostmaintError("cannot abort the copy of %s of %s that run %s left: it did not end within "
                                         "30 s" % (target, guest, record.get("run_id")))
                if disk.get("created") and self._exists(disk["dest"]) and not self._named(disk["dest"]):
                    self._call("delete_volumes", [disk["dest"]])
                    note = "the copy %s it had created was deleted" % disk["dest"]
                else:
                    note = "nothing of it was left"
            else:
                note = "it names neither %s nor %s now: left as it is" % (disk["source"], disk["dest"])
            done.append(dict(guest=guest, target=target, action=action, run_id=record.get("run_id"),
                             note="%s of %s, left by run %s: %s" % (target, guest, record.get("run_id"), note)))
        self._call("clear_disk_move_record", guest)
        return done

    def _exists(self, path):
        return bool(self._call("volume_info", [path]))

    def _named(self, path):
        return bool(self._call("definitions_naming", [path])[path])


def _mib(value):
    return "%d MiB" % (int(value or 0) // MIB)


def _key(guest, target):
    return "%s/%s" % (guest, target)
