# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roll's state on the controller: one JSON file per rolling upgrade, shared by the hosts' cycles, which run as
separate worker processes (the roll's play runs with the free strategy). Every read-decide-write holds an exclusive
lock on ``<file>.lock``, so two hosts never take the same turn; the decisions are module_utils.roll's."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import tempfile
import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import roll
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


# Seconds a decision keeps the lock before it writes (tests widen the window in which a missing lock would show).
CRITICAL_PAUSE_S = 0.0

# How often a host that waits for its turn looks again (the lock is held for milliseconds each time).
POLL_S = 1.0


@contextlib.contextmanager
def locked(path):
    """The roll file's state, read under an exclusive lock; ``box['state']`` set by the caller is written back
    (atomically: a temporary file renamed over it) before the lock is released."""
    with open(path + ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                with open(path) as handle:
                    state = json.load(handle)
            except (OSError, ValueError) as exc:
                raise HostmaintError("cannot read the roll's state %s: %s" % (path, exc))
            box = dict(state=state, changed=False)
            yield box
            if box["changed"]:
                write(path, box["state"])
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write(path, state):
    """Write ``state`` to ``path`` atomically (mode 0600)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, 0o750, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".roll-", dir=folder)
        with os.fdopen(handle, "w") as out:
            json.dump(state, out, indent=1, sort_keys=True)
        os.rename(temporary, path)
    except OSError as exc:
        raise HostmaintError("cannot write the roll's state %s: %s" % (path, exc))


def take_turn(path, host, action, timeout_s, say=None, poll_s=POLL_S, check_mode=False, clock=time.monotonic,
              sleep=time.sleep):
    """Wait, at most ``timeout_s``, until ``host`` may ``action`` (enter or drain), take the turn and return it
    (roll.decide's dict, with ``waited_s``). A final refusal (the roll stopped) returns at once, not granted.
    ``say`` gets each new reason to wait, once. Check mode decides without waiting or writing."""
    started = clock()
    last = None
    while True:
        with locked(path) as box:
            try:
                turn = roll.decide(box["state"], host, action)
                if CRITICAL_PAUSE_S:
                    sleep(CRITICAL_PAUSE_S)
                if turn["granted"] and not check_mode:
                    box["state"] = roll.apply(box["state"], host, action, turn=turn, at=_now())
                    box["changed"] = True
            except DecisionError as exc:
                raise HostmaintError(exc.message)
        waited = round(clock() - started, 1)
        if turn["granted"] or turn["final"] or check_mode:
            return dict(turn, waited_s=waited)
        if turn["why"] != last:
            last = turn["why"]
            if say:
                say(last)
        if waited >= timeout_s:
            raise HostmaintError("%s waited %d s for its turn to %s and did not get it: %s" % (
                host, timeout_s, "enter maintenance" if action == "enter" else "be emptied", turn["why"]))
        sleep(poll_s)


def report(path, host, event, moves=None, reason=None, check_mode=False):
    """Record ``event`` of ``host`` (drained, upgraded, restored, failed, released): {phase (the host's, after it),
    in_maintenance (the hosts of its cluster in maintenance now), down (those of them that may not answer)}."""
    with locked(path) as box:
        try:
            state = roll.apply(box["state"], host, event, moves=moves, reason=reason, at=_now())
            if CRITICAL_PAUSE_S:
                time.sleep(CRITICAL_PAUSE_S)
        except DecisionError as exc:
            raise HostmaintError(exc.message)
        if not check_mode:
            box["state"], box["changed"] = state, True
        return dict(phase=state["phase"][host], in_maintenance=roll.in_maintenance(state, host),
                    down=roll.down(state, host))
