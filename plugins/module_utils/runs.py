# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run that changes a host does around its plan: it holds the host, settles what was under way there
before it plans, and stops cleanly when asked.

- ``HostRun.take()``: the hold (module_utils/hold.py). A live hold of another run refuses, naming it; a hold
  whose run is stopping is waited for (bounded); a stale one is taken over and its run named.
- ``HostRun.settle()``: migrations under way on the host before the plan. Outbound ones left by the run whose
  stale hold was taken over are aborted (the guest stays here; its stale record is cleared); every other one
  (an operator's virsh, another host's restore) and every inbound one is waited for, bounded, so that no
  guest lands on the host after its plan was made.
- ``StopWatch``: the run is asked to stop by SIGTERM, SIGINT or SIGHUP, by the controller going away (the
  module's stdout, the SSH channel, is hung up: Ctrl-C or a killed ansible-playbook), or by an operator's
  stop request written into the hold (module ``stop_run``). ``reason()`` says which, or None; the executor
  asks it while it runs and aborts every migration in flight.
"""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import hold as holds
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

# How long a new run waits for the hold of a run that is stopping to be released.
STOPPING_WAIT_S = 60.0

# How long a run waits for migrations already under way on its host (inbound, or outbound by someone else).
UNDER_WAY_WAIT_S = 300.0

# Seconds with no migration under way before the host counts as settled. None: a move that another run
# checked against the mark just before it was set, and that starts a moment later, reads the mark again
# once its guest is active here (executor.Executor.arrival_mark), which is when this look would find it,
# and is aborted then. Waiting a second here for it (as runs before 2.0 did) cost every evacuation 1 s.
QUIET_S = 0.0

# How long a run tries to release its hold when its host's libvirtd does not answer (it may be restarting).
RELEASE_WAIT_S = 15.0

# How often the hold is read for a stop request.
REMOTE_CHECK_S = 1.0

# Where a run on its own host keeps its last result, for the stop_run module and the operator.
RUN_LOG_DIR = "/var/lib/libvirt/hostmaint/runs"

SIGNALS = dict((getattr(signal, name), name) for name in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, name))


class StopWatch(object):
    """Whether the run was asked to stop, and why (``reason()``). ``install()`` sets the signal handlers and
    the controller watch (a real module run only); ``remote`` (callable -> reason or None) reads the hold."""

    def __init__(self, remote=None, clock=time.time):
        self.remote = remote
        self.clock = clock
        self._reason = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def request(self, reason):
        with self._lock:
            if self._reason is None:
                self._reason = reason

    def install(self, watch_stdout=True):
        for number, name in SIGNALS.items():
            try:
                signal.signal(number, self._on_signal)
            except (ValueError, OSError):
                pass  # not the main thread: signals stay as they were
        if watch_stdout:
            thread = threading.Thread(target=self._watch_stdout, name="controller-watch")
            thread.daemon = True
            thread.start()

    def _on_signal(self, number, _frame):
        self.request("%s was received" % SIGNALS.get(number, "signal %d" % number))

    def _watch_stdout(self, fd=1, interval_ms=500):
        """The controller is gone when the channel our result would go to is hung up."""
        try:
            poller = select.poll()
            poller.register(fd, select.POLLERR | select.POLLHUP)
        except (OSError, ValueError):
            return
        while self._reason is None:
            try:
                events = poller.poll(interval_ms)
            except (OSError, ValueError):
                return
            if any(mask & (select.POLLERR | select.POLLHUP) for _fd, mask in events):
                self.request("the controller went away (its connection to this host was closed)")
                return

    def reason(self):
        """Why the run must stop, or None."""
        if self._reason is None and self.remote is not None and self.clock() - self._checked >= REMOTE_CHECK_S:
            self._checked = self.clock()
            try:
                found = self.remote()
            except HostmaintError:
                found = None  # the hold cannot be read this time: the next check may
            if found:
                self.request(found)
        return self._reason


class HostRun(object):
    """The hold and the settling of one run on its host, through that host's adapter ``local``."""

    def __init__(self, local, host, run_id, action, clock=time.time, sleep=time.sleep, me=None,
                 start_of=holds.process_start):
        self.local = local
        self.host = host
        self.run_id = run_id
        self.action = action
        self.clock = clock
        self.sleep = sleep
        self.me = me or holds.this_process()
        self.start_of = start_of
        self.held = None
        self.took_over = None  # the stale hold taken over, if any

    # -- the hold -----------------------------------------------------------------------------
    def check(self):
        """Check mode: raise as take() would, change nothing."""
        current = self.local.hold()
        verdict, why = self._judge(current)
        if verdict == holds.LIVE:
            raise HostmaintError(self._refusal(current, why))

    def _judge(self, current):
        node, boot_id, _pid, _started = self.me
        return holds.judge(current, self.run_id, node, boot_id, self.start_of)

    def _refusal(self, current, why):
        return ("%s is held by %s, and %s: another run is working on %s; wait for it to end or stop it "
                "(playbooks/stop.yml -l %s), then run this again" % (
                    self.host, holds.describe(current), why, self.host, self.host))

    def take(self):
        """Hold the host; returns the stale hold taken over (or None). Raises when another run holds it."""
        node, boot_id, pid, started = self.me
        mine = holds.make(self.run_id, self.action, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), node,
                          boot_id, pid, started)
        deadline = self.clock() + STOPPING_WAIT_S
        while True:
            if self.clock() > deadline + STOPPING_WAIT_S:
                raise HostmaintError("cannot take the run hold on %s within %g s: it kept changing hands"
                                     % (self.host, 2 * STOPPING_WAIT_S))
            if self.local.take_hold(mine):
                self.held = mine
                return self.took_over
            current = self.local.hold()
            if current == {}:
                # defined by another run this moment, its value not written yet (or unreadable): a pause, bounded
                self.sleep(0.5)
                continue
            verdict, why = self._judge(current)
            if verdict == holds.STALE:
                self.local.release_hold(current.get("run_id"))
                self.took_over = dict(current, why=why)
                continue
            if verdict == holds.FREE:
                continue  # released meanwhile
            stopping = current.get("stopping") or holds.stop_request(current)
            if stopping and self.clock() < deadline:
                self.sleep(0.5)  # its run is stopping: it releases the host within its abort bound
                continue
            raise HostmaintError(self._refusal(current, why), held_by=current)

    def release(self):
        if self.held is None:
            return
        deadline = self.clock() + RELEASE_WAIT_S
        while True:
            try:
                self.local.release_hold(self.run_id)
                break
            except HostmaintError:
                if self.clock() >= deadline:
                    break  # a host that does not answer keeps a hold the next run finds stale, or names
                # this host's libvirtd restarted under the run: its connection is gone, a new one is opened
                self.local.close()
                self.sleep(1.0)
        self.held = None

    def stopping(self, reason):
        """Say in the hold that this run is stopping (a new run waits for it rather than refuse)."""
        if self.held is not None:
            try:
                self.local.update_hold(dict(self.held, stopping=reason))
            except HostmaintError:
                pass

    def stop_requested(self):
        """The reason of an operator's stop request in the hold, or None."""
        request = holds.stop_request(self.local.hold())
        if request is None:
            return None
        return "an operator asked it to stop%s" % (
            (" (%s)" % request.get("reason")) if request.get("reason") else "")

    # -- what was under way ---------------------------------------------------------------------
    def settle(self, record_of, wait_s=UNDER_WAY_WAIT_S):
        """Abort the migrations the run taken over left here; wait for every other one to end (bounded).

        ``record_of(guest)`` gives a guest's migration record (or None). Returns the list of what was done,
        each {guest, direction, action: aborted or waited, run_id, reason}. Raises when something is still
        under way after ``wait_s``.
        """
        dead = (self.took_over or {}).get("run_id")
        done, seen = [], {}
        deadline = self.clock() + wait_s
        quiet_since = self.clock()
        while True:
            jobs = self.local.migration_jobs()
            for guest, direction in sorted(jobs.items()):
                if (guest, direction) in seen:
                    continue
                record = record_of(guest) if direction == "out" else None
                owner = getattr(record, "run_id", None)
                if direction == "out" and dead is not None and owner == dead:
                    ended = self.local.abort_job(guest)
                    if not ended:
                        raise HostmaintError("cannot stop the migration of %s that run %s left running on %s: it "
                                             "did not end within 30 s of its abort" % (guest, dead, self.host))
                    note = self._clear_stale_record(guest, dead)
                    done.append(dict(guest=guest, direction=direction, action="aborted", run_id=dead, reason=(
                        "the migration of %s that run %s left running (%s) was aborted; %s keeps running on %s%s"
                        % (guest, dead, self.took_over.get("why"), guest, self.host, note))))
                else:
                    done.append(dict(guest=guest, direction=direction, action="waited", run_id=owner, reason=(
                        "waited for the %s migration of %s already under way %s %s" % (
                            "inbound" if direction == "in" else "outbound", guest,
                            "into" if direction == "in" else "from", self.host))))
                seen[(guest, direction)] = True
            if jobs:
                quiet_since = self.clock()
            elif self.clock() - quiet_since >= QUIET_S or self.clock() >= deadline:
                return done
            if self.clock() >= deadline:
                raise HostmaintError(
                    "cannot plan for %s: %s still under way after %g s; nothing was moved" % (
                        self.host, ", ".join("the %s migration of %s" % (
                            "inbound" if d == "in" else "outbound", g) for g, d in sorted(jobs.items())), wait_s))
            self.sleep(0.5)

    def _clear_stale_record(self, guest, dead):
        try:
            self.local.clear_record(guest)
            return "; its record from run %s was cleared" % dead
        except HostmaintError as exc:
            return "; its record from run %s stays (%s)" % (dead, exc.message)


def keep_log(result, run_id, directory=RUN_LOG_DIR):
    """Write a run's result where stop_run and the operator find it; best effort (None or the path)."""
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o700)
        path = os.path.join(directory, "%s.json" % run_id)
        with open(path + ".tmp", "w") as handle:
            json.dump(result, handle, default=str, sort_keys=True)
        os.rename(path + ".tmp", path)
        return path
    except (IOError, OSError, TypeError, ValueError):
        return None


def read_log(run_id, directory=RUN_LOG_DIR):
    try:
        with open(os.path.join(directory, "%s.json" % run_id)) as handle:
            return json.load(handle)
    except (IOError, OSError, ValueError):
        return None
