# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's hold on its host, judged in plain Python (standard library only).

A run that changes a host (evacuate, restore) holds it for as long as it runs: a libvirt secret of that host
whose value is the hold below. libvirt allows one secret per usage, so taking a hold is atomic. A second run
on the same host refuses, naming the first run and since when, unless the first is provably gone:

- the hold names the machine and boot the run's process lived on, its pid and that process's start time
  (``/proc/<pid>/stat`` field 22); when this machine is the same and still in that boot, a pid that is gone
  or that belongs to a process started at another time proves the run gone;
- a hold written during another boot of this machine is gone with that boot;
- a hold taken on another machine (a module run against a remote URI) cannot be proven gone from here.

A hold also carries an operator's stop request (``stop``) and the run's own ``stopping`` once it acts on one.
"""

from __future__ import annotations

import os

# verdicts of judge()
FREE = "free"
LIVE = "live"
STALE = "stale"
MINE = "mine"


def this_process(root="/"):
    """(node, boot id, pid, start time) of the calling process, read from /proc (None where unreadable)."""
    node = os.uname()[1]
    boot_id = _read(os.path.join(root, "proc/sys/kernel/random/boot_id"))
    pid = os.getpid()
    return node, boot_id, pid, process_start(pid, root)


def process_start(pid, root="/"):
    """The start time (clock ticks since boot) of process pid, or None when there is no such process."""
    text = _read(os.path.join(root, "proc", str(int(pid)), "stat"))
    if not text:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: count from the last ')'
    fields = text.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])  # field 22 of stat, the 20th after the command name
    except (IndexError, ValueError):
        return None


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def make(run_id, action, since, node, boot_id, pid, started):
    """The hold a run writes on its host."""
    return dict(run_id=run_id, action=action, since=since, node=node, boot_id=boot_id, pid=pid, started=started)


def judge(hold, run_id, node, boot_id, start_of):
    """(verdict, why) of an existing hold seen by run ``run_id`` on machine ``node`` in boot ``boot_id``.

    ``start_of(pid)`` gives the start time of a process of this machine, or None when there is none.
    The verdict is FREE (no hold), MINE, LIVE (its run may still run: refuse) or STALE (its run is
    provably gone: the hold may be taken over); ``why`` says how it was judged.
    """
    if not hold:
        return FREE, "no run holds the host"
    if hold.get("run_id") == run_id:
        return MINE, "this run holds the host"
    if hold.get("node") != node:
        return LIVE, "it was taken on %s, where this run cannot see whether it still runs" % hold.get("node")
    if boot_id and hold.get("boot_id") and hold.get("boot_id") != boot_id:
        return STALE, "%s has rebooted since" % node
    pid = hold.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return LIVE, "it names no process"
    started = start_of(pid)
    if started is None:
        return STALE, "its process %d is gone" % pid
    if hold.get("started") is not None and started != hold.get("started"):
        return STALE, "its process %d is gone (the pid now belongs to another process)" % pid
    return LIVE, "its process %d still runs" % pid


def describe(hold):
    """'run R (action, since T, pid P on N)' for messages."""
    return "run %s (%s, since %s, pid %s on %s)" % (
        hold.get("run_id"), hold.get("action"), hold.get("since"), hold.get("pid"), hold.get("node"))


def stop_request(hold):
    """The stop request carried by a hold (a dict with ``at``, ``by``, ``reason``) or None."""
    if not hold:
        return None
    request = hold.get("stop")
    return request if isinstance(request, dict) else None
