# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A discrete-event fleet simulator for rolling hypervisor upgrades (issue 19, first piece).

Deterministic per seed, pure Python. One roll: host after host is emptied, reboots (``reboot_s``), passes its
gates (``gate_s``) and takes its guests back, one host in maintenance at a time (today's roll).

Network: each host NIC's rate is shared equally among its flows out and, separately, among its flows in;
a flow's rate is the smaller of its source's out share and its destination's in share, recomputed on every
flow start and end. Migration: pre-copy rounds; round 1 sends the non-zero memory, each next round the bytes
dirtied during the previous round (dirty rate x round time, capped by the working set). The guest switches
over when a round's bytes at the current rate fit the downtime limit; the blackout is that time plus
``SWITCH_COST_S``. The downtime limit starts at the first of LadderPolicy's steps and takes the next step
after every round that does not converge (an approximation of convergence.next_action, which decides on
polls); after the steps a migration that still does not converge within ``MAX_ROUNDS`` rounds fails.

Planners: ``collection`` places every evacuation with placement.plan and starts moves with
placement.startable, windows adjusted by placement.adjust_window (the executor's loop); guests go home with
the same startable. ``serial`` (1 migration in the fleet at a time, Nova), ``ovirt22`` (2 out, 2 in per host)
and ``vmware8`` (8 per host) place worst fit and only differ in their concurrency.
"""

from __future__ import annotations

import dataclasses
import random
from typing import List

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    MIB, Guest, HostFacts, LadderPolicy, Limits, Move)

SWITCH_COST_S = 0.05  # fixed cost of a switchover beside the last round (not calibrated on the lab yet)
MAX_ROUNDS = 30
PLANNERS = ("collection", "serial", "ovirt22", "vmware8")


@dataclasses.dataclass
class HostSpec:
    name: str
    memory_mib: int
    reserve_mib: int = 1024
    nic_bps: float = 25e9 / 8
    reboot_s: float = 600.0
    gate_s: float = 60.0
    returns: bool = True  # False: the host does not come back after its reboot (a fault)


@dataclasses.dataclass
class GuestSpec:
    name: str
    home: str
    memory_mib: int
    zero_fraction: float = 0.5
    dirty_bps: float = 0.0
    working_set_bytes: float = 0.0
    fails: bool = False  # its first migration fails (aborted after round 1)
    stops: bool = False  # the guest shuts down in the middle of its first migration


@dataclasses.dataclass
class Fleet:
    hosts: List[HostSpec]
    guests: List[GuestSpec]


def fleet(hosts=6, guests_per_host=10, memory_mib=8192, host_memory_mib=None, nic_gbit=25.0, reboot_s=600.0,
          gate_s=60.0, zero_fraction=0.5, seed=0, fail_rate=0.0, stop_rate=0.0, lost_hosts=0):
    """A random fleet (deterministic per seed): hosts with room for one more host's guests spread over them."""
    rng = random.Random(seed)
    if host_memory_mib is None:
        per_host = guests_per_host * memory_mib
        host_memory_mib = int(per_host * (1 + 1.5 / max(1, hosts - 1))) + 1024 + memory_mib
    specs = [HostSpec("hv%02d" % i, host_memory_mib, nic_bps=nic_gbit * 1e9 / 8, reboot_s=reboot_s,
                      gate_s=gate_s, returns=i >= lost_hosts) for i in range(hosts)]
    guests = []
    for host in specs:
        for j in range(guests_per_host):
            ws = memory_mib * MIB * rng.uniform(0.02, 0.2)
            guests.append(GuestSpec("%s-g%03d" % (host.name, j), host.name, memory_mib, zero_fraction,
                                    dirty_bps=rng.uniform(0, 200) * MIB, working_set_bytes=ws,
                                    fails=rng.random() < fail_rate, stops=rng.random() < stop_rate))
    return Fleet(specs, guests)


class _Flow(object):
    def __init__(self, guest, move, now, downtime_ms):
        self.guest, self.move, self.started = guest, move, now
        self.left = guest.memory_mib * MIB * (1.0 - guest.zero_fraction)
        self.round, self.round_start, self.rate, self.sent = 1, now, 0.0, 0.0
        self.downtime_ms, self.step = downtime_ms, 0


class Sim(object):
    """One run of one planner over one fleet."""

    def __init__(self, fleet_, planner="collection", policy=None, limits=None):
        if planner not in PLANNERS:
            raise ValueError("unknown planner %s" % planner)
        self.fleet, self.planner = fleet_, planner
        self.policy = policy or LadderPolicy()
        self.limits = limits or Limits()
        self.hosts = dict((h.name, h) for h in fleet_.hosts)
        self.guests = dict((g.name, g) for g in fleet_.guests)
        self.where = dict((g.name, g.home) for g in fleet_.guests)
        self.used = dict((h.name, 0) for h in fleet_.hosts)
        for g in fleet_.guests:
            self.used[g.home] += g.memory_mib
        self.now, self.flows, self.queue = 0.0, [], []
        self.windows = {}  # (host, "out"/"in") -> [window, streak]
        self.blackouts, self.moves, self.failed, self.bytes, self.violations = [], 0, 0, 0.0, 0
        self.tried = set()
        self.skipped_hosts = []
        self.min_headroom = min(self._headroom(h) for h in self.hosts)
        self.placed = {}  # host -> {guest: destination} of its evacuation (the collection's plan)

    # -- state
    def _headroom(self, host):
        spec = self.hosts[host]
        return spec.memory_mib - spec.reserve_mib - self.used[host]

    def _check(self):
        for host in self.hosts:
            room = self._headroom(host)
            self.min_headroom = min(self.min_headroom, room)
            if room < 0:
                self.violations += 1

    def _rates(self):
        out, inn = {}, {}
        for f in self.flows:
            out[f.move.source] = out.get(f.move.source, 0) + 1
            inn[f.move.destination] = inn.get(f.move.destination, 0) + 1
        for f in self.flows:
            f.rate = min(self.hosts[f.move.source].nic_bps / out[f.move.source],
                         self.hosts[f.move.destination].nic_bps / inn[f.move.destination])

    def _advance(self, dt):
        for f in self.flows:
            sent = min(f.left, f.rate * dt)
            f.left -= sent
            f.sent += sent
        self.now += dt

    # -- planning
    def _facts(self, host, exclude):
        spec = self.hosts[host]
        return HostFacts(name=host, memory_total_mib=spec.memory_mib, memory_free_mib=max(0, spec.memory_mib - self.used[host]),
                         maintenance=host in exclude)

    def _evacuation(self, source, down):
        names = sorted(n for n, h in self.where.items() if h == source)
        destinations = [h for h in sorted(self.hosts) if h != source and h not in down]
        if self.planner == "collection":
            guests = [Guest(name=n, uuid=n, state="running", memory_mib=self.guests[n].memory_mib) for n in names]
            plan = placement.plan(guests, self._facts(source, ()), [self._facts(h, ()) for h in destinations],
                                  self.limits)
            self.placed[source] = dict((m.guest, m.destination) for m in plan.moves)
            self.failed += len(plan.blocked)  # no room left (a host lost earlier): they stay
            return plan.moves
        room = dict((h, self._headroom(h)) for h in destinations)
        moves = []
        for n in sorted(names, key=lambda n: (-self.guests[n].memory_mib, n)):
            best = max(destinations, key=lambda h: (room[h], h), default=None)
            if best is None or room[best] < self.guests[n].memory_mib:
                self.failed += 1
                continue
            room[best] -= self.guests[n].memory_mib
            moves.append(Move(guest=n, action="migrate", source=source, destination=best,
                              memory_mib=self.guests[n].memory_mib))
        return moves

    def _startable(self):
        if self.planner == "collection":
            out = dict((h, w[0]) for (h, k), w in self.windows.items() if k == "out")
            inn = dict((h, w[0]) for (h, k), w in self.windows.items() if k == "in")
            return placement.startable(self.queue, [f.move for f in self.flows], [f.move for f in self.flows],
                                       self.limits, out, inn)
        cap = {"serial": None, "ovirt22": 2, "vmware8": 8}[self.planner]
        if cap is None:
            return self.queue[:1] if not self.flows else []
        return placement.startable(self.queue, [f.move for f in self.flows], [], Limits(max_inbound=cap, max_outbound=cap))

    def _start(self):
        for move in self._startable():
            guest = self.guests[move.guest]
            if self._headroom(move.destination) < guest.memory_mib:
                continue  # the collection's own plan never gets here; counted as not started
            self.queue.remove(move)
            self.used[move.destination] += guest.memory_mib
            self.flows.append(_Flow(guest, move, self.now, int(self.policy.downtime_steps_ms[0])))
        self._rates()
        self._check()

    def _finish(self, flow, ok, blackout=None):
        self.flows.remove(flow)
        guest = flow.guest
        self.bytes += flow.sent
        if ok:
            self.used[flow.move.source] -= guest.memory_mib
            self.where[guest.name] = flow.move.destination
            self.moves += 1
            self.blackouts.append(blackout)
            if self.planner == "collection":
                ms = int(blackout * 1000)
                for host, kind, limit in ((flow.move.source, "out", self.limits.max_outbound),
                                          (flow.move.destination, "in", self.limits.max_inbound)):
                    w = self.windows.setdefault((host, kind), [limit, 0])
                    w[0], w[1], _why = placement.adjust_window(w[0], limit, ms, w[1], placement.PAUSE_TARGET_MS)
        else:
            self.used[flow.move.destination] -= guest.memory_mib
        self._rates()
        self._check()

    def _round_end(self, f):
        g = f.guest
        f.round += 1
        dirtied = min(g.dirty_bps * (self.now - f.round_start), g.working_set_bytes)
        f.round_start = self.now
        if g.stops and g.name not in self.tried:
            self.tried.add(g.name)
            self.failed += 1
            self._finish(f, False)
            self.used[f.move.source] -= g.memory_mib  # shut off: its memory is free, its definition stays
            del self.where[g.name]
            return
        if g.fails and g.name not in self.tried:
            self.tried.add(g.name)
            self.failed += 1
            self._finish(f, False)
            self.queue.insert(0, f.move)  # retried once
            return
        if f.rate > 0 and dirtied / f.rate * 1000.0 <= f.downtime_ms:
            self.bytes += dirtied
            self._finish(f, True, dirtied / f.rate + SWITCH_COST_S)
            return
        if f.round > MAX_ROUNDS:
            self.failed += 1
            self._finish(f, False)
            return
        steps = self.policy.downtime_steps_ms
        if f.round > 2 and f.step + 1 < len(steps):
            f.step += 1
            f.downtime_ms = int(steps[f.step])
        f.left = dirtied

    def _drain(self):
        """Run until the queue and the flows are empty."""
        self._start()
        while self.flows:
            f = min(self.flows, key=lambda x: (x.left / x.rate if x.rate else float("inf"), x.guest.name))
            self._advance(f.left / f.rate)
            self._round_end(f)
            self._start()
        self.failed += len(self.queue)  # moves that never found room
        self.queue = []

    def run(self):
        down = set()
        for host in sorted(self.hosts):
            self.queue = list(self._evacuation(host, down))
            self._drain()
            if any(h == host for h in self.where.values()):
                self.skipped_hosts.append(host)  # guests left on it: it is not taken down (not upgraded)
                continue
            spec = self.hosts[host]
            self.now += spec.reboot_s
            if not spec.returns:
                down.add(host)
                continue
            self.now += spec.gate_s
            back = [Move(guest=n, action="migrate", source=h, destination=g.home, memory_mib=g.memory_mib)
                    for n, h in sorted(self.where.items()) for g in [self.guests[n]] if g.home == host and h != host]
            self.queue = sorted(back, key=lambda m: (-m.memory_mib, m.guest))
            self._drain()
        return self.result()

    def result(self):
        b = sorted(self.blackouts)

        def pick(q):
            return b[min(len(b) - 1, int(q * len(b)))] if b else 0.0
        bound = lower_bound(self.fleet)
        return dict(planner=self.planner, makespan_s=round(self.now, 3), bound_s=round(bound, 3),
                    efficiency=round(bound / self.now, 4) if self.now else 1.0,
                    blackout_p50_ms=round(pick(0.5) * 1000, 1), blackout_p99_ms=round(pick(0.99) * 1000, 1),
                    blackout_max_ms=round(b[-1] * 1000, 1) if b else 0.0,
                    moves_per_guest=round(self.moves / float(len(self.guests)), 3), bytes_sent=int(self.bytes),
                    min_headroom_mib=self.min_headroom, failed_moves=self.failed, violations=self.violations,
                    skipped_hosts=len(self.skipped_hosts))


def lower_bound(fleet_, in_maintenance=1):
    """max(all host cycles / hosts in maintenance at once, total bytes / aggregate bandwidth, slowest host)."""
    per_host = {}
    for g in fleet_.guests:
        per_host[g.home] = per_host.get(g.home, 0.0) + g.memory_mib * MIB * (1 - g.zero_fraction)
    cycles = sum(h.reboot_s + (h.gate_s if h.returns else 0.0) for h in fleet_.hosts)
    total = sum(2 * per_host.get(h.name, 0.0) if h.returns else per_host.get(h.name, 0.0) for h in fleet_.hosts)
    aggregate = sum(h.nic_bps for h in fleet_.hosts)
    slowest = max(h.reboot_s + (h.gate_s + per_host.get(h.name, 0.0) / h.nic_bps if h.returns else 0.0)
                  + per_host.get(h.name, 0.0) / h.nic_bps for h in fleet_.hosts)
    return max(cycles / float(in_maintenance), total / aggregate, slowest)


def simulate(fleet_, planner):
    return Sim(fleet_, planner).run()
