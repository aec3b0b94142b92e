# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of a run while it runs: what the module writes on its host, and the lines the controller prints.

A module cannot stream output: Ansible reads its result when it ends, twenty minutes later for a large host.
So the module keeps a small progress file on its host (``Recorder``: JSON, replaced atomically, written on every
event and at most every WRITE_INTERVAL_S while data is copied), and the action plugin on the controller, which
runs the module in a worker thread, reads that file every POLL_S (``cat``) and prints what changed
(``Follower``): a line per event (a move started, switched over, was checked, failed) and, while anything is in
flight, a heartbeat at least every HEARTBEAT_S: moves done of the total, each move in flight (guest, route, %
copied, rate, convergence rung) and an estimate of the time left (``estimate``). The module's result carries the
last state (RESULT_KEY, taken out by the plugin), so that events after the last read are printed too.

The file, version 1::

    {version, host, action, at (s since the run's start), moves: [{key, guest, action, route, phase, total,
     copied, processed, rate_bps, rung, outcome, reason}], totals: {moves, done, failed, in_flight, queued,
     rate_bps, bytes_left}, eta_s, seq, events: [{seq, at, key, phase, reason}]}

``phase`` is one of PHASES. Standard library only: the module writes it, the controller reads it, unit tests
drive both with their own clock.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
import threading
import time

VERSION = 1

# The phases of a move, in order; the last two are final.
PHASES = ("queued", "started", "switchover", "checked", "done", "failed")
FINAL = ("done", "failed")
IN_FLIGHT = ("started", "switchover", "checked")

# The key of a module's result that carries its last progress to the action plugin (which removes it).
RESULT_KEY = "_hostmaint_progress"

# Where the action plugin has a module write its file: a name nobody can guess, in a directory every user can write
# (the file is created 0600 beside its final name, then renamed over it).
DIRECTORY = "/tmp"

# The plugin reads the file this long after the module started (a run on an empty host ends before: it pays
# nothing), then every POLL_S; it prints a heartbeat when HEARTBEAT_S have passed since the last one: with a read
# every 2 s, one every third read, so that the longest gap between two lines while something is in flight is 6 s
# and a read's own time (an ssh command, well under a second) leaves it under 10 s.
FIRST_POLL_S = 2.0
POLL_S = 2.0
HEARTBEAT_S = 6.0

# Reads scheduled HEARTBEAT_S apart are that far apart, though their sums of floats may differ in the last digits.
BEAT_SLACK_S = 0.05

# The module writes at most this often while data is copied (events are written at once).
WRITE_INTERVAL_S = 1.0

# A move's rate is what it copied over its last RATE_WINDOW_S.
RATE_WINDOW_S = 5.0

# Seconds of a migration that copy nothing (libvirt's and QEMU's start-up, the switchover's finish and confirm
# steps), before the settle period: the lab measured about 2.0 s of wall time for a guest QEMU copies in 0.4-0.8 s,
# and 1.2 s of fixed cost per guest in a serial loop (docs: LAB). The estimate uses this until moves of the run
# itself have ended, then their own mean.
FIXED_S = 1.5

# Events kept in the file (the plugin says how many it did not see).
MAX_EVENTS = 500

MIB = 1024 ** 2


def path_for(token, directory=DIRECTORY):
    """The progress file of the run the plugin knows by ``token``."""
    return os.path.join(directory, "hostmaint-progress-%s.json" % token)


def write_atomic(path, data):
    """Write ``data`` (a dict) as JSON at ``path``: a 0600 temporary file beside it, renamed over it, so that a
    reader sees the whole old file or the whole new one."""
    directory, name = os.path.split(path)
    handle, temporary = tempfile.mkstemp(prefix=".%s." % name, dir=directory or ".")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(data, stream, sort_keys=True, separators=(",", ":"))
        os.rename(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# -- the estimate ------------------------------------------------------------------------------------
def wire_ratio(moves):
    """Bytes sent per byte of memory copied, over the moves that copied something (from 0.05 to 1; 1 before any):
    zero pages and pages sent twice make what a guest sends differ from its memory size."""
    copied = sum(int(m.get("copied") or 0) for m in moves if m.get("processed"))
    sent = sum(int(m.get("processed") or 0) for m in moves if m.get("copied"))
    return min(1.0, max(0.05, sent / float(copied))) if copied and sent else 1.0


def estimate(moves, rate_bps, fixed_s=FIXED_S, slots=1):
    """Seconds left for ``moves`` (the file's move dicts), or None when data is left and no rate is known yet.

    The bytes left (a queued move's whole ``total``, an in-flight one's ``total - copied``), scaled by the run's
    ``wire_ratio`` so far, over ``rate_bps``, the
    recent aggregate rate of the run (every move copying at once shares the link); plus the fixed cost of a move
    (``fixed_s``, what a move takes that copies nothing) for each queued move and half of it for each move in flight
    (part of theirs is behind them), shared by the ``slots`` moves that run at once. Final moves count nothing.
    """
    left, fixed = 0, 0.0
    for move in moves:
        phase = move.get("phase")
        if phase in FINAL:
            continue
        total = int(move.get("total") or 0)
        if phase == "queued":
            left += total
            fixed += 1.0
        else:
            if phase == "started":
                left += max(0, total - int(move.get("copied") or 0))
            fixed += 0.5
    if left and not rate_bps:
        return None
    return (left * wire_ratio(moves) / float(rate_bps) if left else 0.0) + fixed_s * fixed / max(1, int(slots or 1))


class Recorder(object):
    """What a module's run writes about its moves (thread-safe: every move's thread calls it).

    ``plan(moves)`` lists the moves (dicts with ``key``, ``guest``, ``action``, ``route``, ``total`` bytes);
    ``event(key, phase, reason)`` records a phase (written at once); ``copying(key, copied, total, processed,
    rung)`` a sample of a move's copy (written at most every ``interval_s``); ``end(key, outcome, reason)`` its
    end (phase done, or failed when ``outcome`` is a failure); ``close()`` removes the file and returns the last
    state. A file that cannot be written is given up, never the run's failure.
    """

    def __init__(self, path, host=None, action=None, fixed_s=FIXED_S, clock=time.monotonic, write=write_atomic,
                 interval_s=WRITE_INTERVAL_S):
        self.path = path
        self.host = host
        self.action = action
        self.fixed_s = float(fixed_s)
        self.clock = clock
        self._write = write
        self.interval_s = float(interval_s)
        self._started = clock()
        self._lock = threading.Lock()
        self._moves = collections.OrderedDict()
        self._history = {}
        self._times = {}
        self._events = collections.deque(maxlen=MAX_EVENTS)
        self._seq = 0
        self._written = None
        self._slots = 1
        self._rate = None
        self._broken = path is None

    def _at(self):
        return round(self.clock() - self._started, 2)

    # -- what the run tells it -------------------------------------------------------------------
    def plan(self, moves):
        """The moves of a plan, queued: new ones are added, those that ended are queued again (a later pass moves
        them once more), those under way are left as they are."""
        with self._lock:
            for move in moves:
                known = self._moves.get(move["key"])
                if known is not None and known["phase"] not in FINAL:
                    continue
                entry = dict(dict(action=None, route=None, total=0), **move)
                entry.update(phase="queued", copied=0, processed=0, rate_bps=None, rung=None, outcome=None,
                             reason=None)
                self._moves[entry["key"]] = entry
                self._history.pop(entry["key"], None)
                self._times.pop(entry["key"], None)
            if moves:  # a run with nothing to move writes nothing
                self._flush(force=True)

    def event(self, key, phase, reason=None, route=None):
        """A move reached ``phase`` (a queued one again when its destination left the run)."""
        with self._lock:
            move = self._moves.get(key)
            if move is None:
                return
            if route:
                move["route"] = route
            if phase == "queued":
                if move["phase"] == "queued":
                    return  # queued it is (the executor marks every move of its run so)
                move.update(copied=0, rate_bps=None, rung=None)
                self._history.pop(key, None)
            move["phase"] = phase
            if reason is not None:
                move["reason"] = reason
            self._times.setdefault(key, {})[phase] = self.clock()
            self._log(key, phase, reason)
            self._slots = max(self._slots, len([m for m in self._moves.values() if m["phase"] in IN_FLIGHT]))
            self._flush(force=True)

    def copying(self, key, copied, total, processed=None, rung=None):
        with self._lock:
            move = self._moves.get(key)
            if move is None or move["phase"] in FINAL:
                return
            now = self.clock()
            processed = int(processed if processed is not None else copied)
            history = self._history.setdefault(key, collections.deque())
            history.append((now, processed))
            while len(history) > 2 and now - history[0][0] > RATE_WINDOW_S:
                history.popleft()
            first_at, first = history[0]
            if now - first_at >= 0.5:
                move["rate_bps"] = int(max(0, processed - first) / (now - first_at))
            move.update(copied=max(0, int(copied)), total=max(int(total or 0), int(copied)), processed=processed,
                        rung=rung)
            self._times.setdefault(key, {}).setdefault("copying", now)
            self._times[key]["copied"] = now
            self._flush()

    def end(self, key, outcome, reason=None, failed=False):
        """A move ended with ``outcome`` (the report's word); ``failed``: it did not do what it should."""
        with self._lock:
            move = self._moves.get(key)
            if move is None:
                return
            phase = "failed" if failed else "done"
            move.update(phase=phase, outcome=outcome, reason=reason, rate_bps=None)
            self._times.setdefault(key, {})[phase] = self.clock()
            self._log(key, phase, reason, outcome=outcome)
            self._flush(force=True)

    def close(self):
        """The last state (for the module's result); the file is removed."""
        with self._lock:
            state = self._state()
            if not self._broken and self._written is not None:
                remove(self.path)
            self._broken = True
            return state

    # -- the file --------------------------------------------------------------------------------
    def _log(self, key, phase, reason, outcome=None):
        self._seq += 1
        entry = dict(seq=self._seq, at=self._at(), key=key, phase=phase)
        if reason:
            entry["reason"] = reason
        if outcome:
            entry["outcome"] = outcome
        self._events.append(entry)

    def _fixed_cost(self):
        """The mean, over the run's migrations that ended well, of their time that copied nothing (from start to
        end, less the time from their first copy sample to their last); FIXED_S-based ``fixed_s`` before."""
        costs = []
        for key, move in self._moves.items():
            times = self._times.get(key, {})
            if move["phase"] != "done" or "started" not in times or move.get("action") not in (None, "migrate", "disk"):
                continue
            copying = times.get("copied", 0) - times.get("copying", 0)
            costs.append(max(0.0, times["done"] - times["started"] - copying))
        return sum(costs) / len(costs) if costs else self.fixed_s

    def _state(self):
        moves = [dict(m) for m in self._moves.values()]
        flying = [m for m in moves if m["phase"] in IN_FLIGHT]
        rates = [m["rate_bps"] for m in flying if m.get("rate_bps") is not None and m["phase"] == "started"]
        if rates:
            self._rate = sum(rates)
        bytes_left = sum(int(m["total"] or 0) if m["phase"] == "queued" else max(0, int(m["total"] or 0) - m["copied"])
                         for m in moves if m["phase"] in ("queued", "started"))
        totals = dict(moves=len(moves), done=len([m for m in moves if m["phase"] in FINAL]),
                      failed=len([m for m in moves if m["phase"] == "failed"]), in_flight=len(flying),
                      queued=len([m for m in moves if m["phase"] == "queued"]), rate_bps=self._rate,
                      bytes_left=bytes_left)
        eta = estimate(moves, self._rate, self._fixed_cost(), self._slots)
        return dict(version=VERSION, host=self.host, action=self.action, at=self._at(), moves=moves, totals=totals,
                    eta_s=None if eta is None else round(eta, 1), seq=self._seq, events=list(self._events))

    def _flush(self, force=False):
        if self._broken:
            return
        now = self.clock()
        if not force and self._written is not None and now - self._written < self.interval_s:
            return
        try:
            self._write(self.path, self._state())
            self._written = now
        except (IOError, OSError, TypeError, ValueError):
            self._broken = True  # progress is a courtesy: the run goes on without it


# -- the controller's lines --------------------------------------------------------------------------
def duration(seconds):
    """'45s', '3m05s', '1h02m'."""
    seconds = int(round(max(0.0, float(seconds))))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % (seconds // 60, seconds % 60)
    return "%dh%02dm" % (seconds // 3600, (seconds % 3600) // 60)


def rate(bps):
    return "%.1f MiB/s" % (float(bps) / MIB)


def percent(move):
    total = int(move.get("total") or 0)
    if not total:
        return None
    return min(100, int(100 * int(move.get("copied") or 0) / total))


def event_line(host, event, move):
    """The line for one event (the file's event dict; ``move`` its move dict), or None for an event that needs none
    (a migration's end after its check, which said it already)."""
    name = move.get("guest") or event["key"]
    what = name + (" " + move["route"] if move.get("route") else "")
    phase = event["phase"]
    reason = event.get("reason")
    outcome = event.get("outcome")
    if phase == "queued":
        text = "queued again%s" % (": %s" % reason if reason else "")
    elif phase == "started":
        text = "started" + (" (%s)" % move["action"] if move.get("action") not in (None, "migrate") else "")
    elif phase == "switchover":
        text = "pivoted to its copy" if move.get("action") == "disk" else "switched over"
    elif phase == "checked":
        text = ("checked: both definitions name the copy" if move.get("action") == "disk"
                else "checked: settle check passed")
    elif phase == "failed":
        text = "%s: %s" % (outcome or "failed", reason or "no reason given")
    elif outcome in ("not_run", "blocked"):
        text = "%s: %s" % (outcome.replace("_", " "), reason or "no reason given")
    elif outcome in ("migrated", "moved"):
        if not reason:
            return None  # its switchover and check said it
        text = "done: %s" % reason
    else:
        text = "done: %s%s" % ((outcome or "").replace("_", " "), ("; %s" % reason) if reason else "")
    return "[%s] %s: %s (at %s)" % (host, what, text, duration(event.get("at") or 0))


def move_text(move):
    """'g4 hv1->hv2 63% 95.3 MiB/s downtime 100 ms (2/5)' for a move in flight."""
    parts = [move.get("guest") or move["key"]]
    if move.get("route"):
        parts.append(move["route"])
    if move["phase"] == "started":
        done = percent(move)
        parts.append("%d%%" % done if done is not None else "starting")
        if move.get("rate_bps") is not None:
            parts.append(rate(move["rate_bps"]))
        if move.get("rung"):
            parts.append(move["rung"])
    else:
        parts.append("switched over" if move["phase"] == "switchover" else "checked")
    return " ".join(parts)


def heartbeat_line(host, state):
    """'[hv1] 3/8 moves done, 2 in flight, about 1m20s left (after 2m10s) | g4 hv1->hv2 63% ... | ...'."""
    totals = state.get("totals") or {}
    flying = [m for m in state.get("moves") or [] if m.get("phase") in IN_FLIGHT]
    failed = " (%d failed)" % totals["failed"] if totals.get("failed") else ""
    eta = state.get("eta_s")
    left = "about %s left" % duration(eta) if eta is not None else "time left not known yet"
    head = "[%s] %d/%d moves done%s, %d in flight, %s (after %s)" % (
        host, totals.get("done", 0), totals.get("moves", 0), failed, len(flying), left, duration(state.get("at") or 0))
    return " | ".join([head] + [move_text(m) for m in flying])


def final_line(host, state):
    totals = state.get("totals") or {}
    failed = " (%d failed)" % totals["failed"] if totals.get("failed") else ""
    return "[%s] %d/%d moves done%s in %s" % (host, totals.get("done", 0), totals.get("moves", 0), failed,
                                              duration(state.get("at") or 0))


class Follower(object):
    """What the controller prints of one run: ``lines(state, now)`` for each file read (``state``: its dict, or None
    when there is none yet) gives the lines of the events not printed yet and, while anything is in flight, a
    heartbeat when none was printed for ``heartbeat_s`` (at once the first time); ``lines(state, now, final=True)``
    for the last state (the module's result) gives the remaining events and one closing line."""

    def __init__(self, host, heartbeat_s=HEARTBEAT_S):
        self.host = host
        self.heartbeat_s = float(heartbeat_s)
        self.seq = 0
        self.beat = None
        self.printed = False

    def lines(self, state, now, final=False):
        if not isinstance(state, dict) or state.get("version") != VERSION:
            return []
        moves = dict((m.get("key"), m) for m in state.get("moves") or [])
        events = [e for e in state.get("events") or [] if e.get("seq", 0) > self.seq]
        out = []
        if events and events[0]["seq"] > self.seq + 1:
            out.append("[%s] (%d earlier events not shown)" % (self.host, events[0]["seq"] - self.seq - 1))
        for event in events:
            line = event_line(self.host, event, moves.get(event.get("key"), {}))
            if line:
                out.append(line)
        if events:
            self.seq = events[-1]["seq"]
        flying = any(m.get("phase") in IN_FLIGHT for m in moves.values())
        if not final and flying and (self.beat is None or now - self.beat >= self.heartbeat_s - BEAT_SLACK_S):
            out.append(heartbeat_line(self.host, state))
            self.beat = now
        if final and (self.printed or out) and moves:
            out.append(final_line(self.host, state))
        self.printed = self.printed or bool(out)
        return out
