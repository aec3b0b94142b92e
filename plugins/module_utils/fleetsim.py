# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet simulator: a rolling upgrade of a whole fleet, on a clock of its own, driving the collection's own
decisions. Pure, standard library only, deterministic per seed; ``make sim`` prints its table and a rolling
upgrade's check mode forecasts a roll with it (``forecast``).

What it drives (the collection's code, not a copy of it)
--------------------------------------------------------
- the roll (``module_utils.roll``): each host's cycle is a process that asks ``roll.decide`` for its turns
  (``enter``, ``drain``) and reports its events with ``roll.apply`` (drained, upgraded, restored with their moves;
  failed; released), as the maintain role does through the roll_turn action; a turn is asked and applied in one
  step, as the action does under its lock, and a waiting host asks again half a poll interval after each change
  (``turn_poll_s``, the action's POLL_S, on average); ``roll.refusal`` refuses a roll before anything moves;
- evacuations: ``placement.plan`` on the destinations' facts (free memory = capacity less the guests committed
  there, incoming ones included; ``maintenance`` true for the hosts the roll marked, so they are never
  destinations; generation "2" for upgraded hosts and "1" for the others, so placement's generation tiers send
  guests to upgraded hosts first; ``avoid`` = the turn's ``avoid`` when placement.plan takes that argument);
- restores: ``placement.restore_plan`` of the guests whose record names the host (home mode: every guest
  evacuated from it; stay mode: those that demand home), ``placement.canary`` first on its own, then the rest;
- both run through the executor's own scheduling loop, ``executor.Schedule`` (its queue in
  ``placement.window_order``, moves started by ``placement.startable``, windows narrowed and widened by
  ``placement.adjust_window`` from each switchover's pause), messages ``released`` at the switchover and ``done``
  after the settle period, on the simulator's clock;
- the convergence ladder, ``convergence.observe`` / ``next_action`` / ``applied``, fed one ``JobSample`` at the end
  of each pre-copy round (the executor feeds it every ``poll_interval_s``; per round it sees fewer samples on long
  rounds and more on short ones, and a ladder step still waits ``step_interval_s``).

The model
---------
Events on a heap (time, then insertion order): move starts, round ends, switchovers, ends of libvirt's call, ends
of settle periods, the steps of each host's cycle.

- Network: each host's NIC has a rate out and a rate in, each shared equally between its flows; a flow's rate is
  the smaller of its source's out share and its destination's in share, also capped by the calibration's
  ``stream_bps`` (one migration's copy thread) and by the equal share of ``machine_bps`` among the flows of its
  machine (hosts on one machine share its CPUs: the lab's three hosts are one 2-core machine). Rates are
  recomputed at every flow start and end, for the flows that share a NIC (or the machine) with it.
- A migration: a fixed start cost (``start_s``, holding its slots), pre-copy rounds, the switchover, then libvirt's
  finish (``finish_s``; the slots are free from the switchover on, as the executor frees them on the guest's
  ``resumed`` event). Both fixed costs, and the switchover's, grow by ``fixed_cost_growth`` for each other
  migration in flight on the same machine. Round 1 sends the non-zero memory (zero pages cost no link time) and the local disks a storage
  copy must send; each next round sends what the guest dirtied during the one before (dirty rate x round time,
  capped by its working set). At each round's end the guest switches over when that round's bytes at the flow's
  current rate fit the downtime limit; the blackout is that time plus ``switchover_s``. Otherwise the ladder
  observes the round and may raise the limit; QEMU's auto-converge (requested at start by the ladder policy)
  throttles the guest by ``auto_converge_initial`` %, then ``auto_converge_increment`` % more, after two rounds in
  a row that dirtied more than half of what they sent. The ladder aborts at its time limit.
- Memory: a move commits its guest's memory on the destination when it starts and frees it on the source when it
  is done (or on the destination when it fails). The capacity invariant is checked whenever memory is committed:
  a host's committed memory never above its capacity less its reserve; every breach counts as a violation.
- Faults (per guest and host, drawn per seed by ``fleet``): a guest whose first migration fails after its first
  round (it stays on its source; the cycle's evacuation or restore runs again, ``Options.retries`` times, as a
  second run of the playbook would resume it, else the cycle fails); a guest that stops in the middle of its
  first migration (it stays shut off on its source and its definition moves in the next pass); a host that does
  not come back from its reboot (its cycle fails: ``roll.apply(failed)`` and the roll stops, as the real one does).
  A migration that starts for a guest another run is moving, or that is no longer on its source, fails at once
  (libvirt refuses a second job), counted in ``conflicts``: a drain and its guests' home's restore can meet so.
- Ansible: ``step_overhead_s`` per step of a cycle (the turns, preflight, the gates, evacuate, each event, patch,
  restore), ``engine_overhead_s`` per engine module run, beside the gates and the reboot.

Reference planners (``serial``: Nova, one live migration at a time; ``ovirt22``: 2 out and 2 in per host;
``vmware8``: 8 per host) run on the same fleet, network and migration model, one host at a time with every
guest returning home (today's roll), worst-fit placement, each migration holding its slots until libvirt's call
returns, no canary and no adaptive window.

The lower bound of a case (``lower_bound``) is the largest of: the hosts' reboots and gates over the hosts that
may be in reboot at once, the bytes the case must send over the fleet's aggregate bandwidth, and the slowest
single host's own sequence (gate, drain at its NIC rate, reboot, gate, and in home mode its restore). The roll's
own bound (``slot_bound``) also puts each host's drain at its NIC rate in the maintenance slot it holds.
"""

from __future__ import annotations

import dataclasses
import heapq
import inspect
import math
import random
from typing import List, Optional

from ansible_collections.hostmaint.libvirt.plugins.module_utils import convergence, placement, report, roll
from ansible_collections.hostmaint.libvirt.plugins.module_utils import executor as executing
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    MIB,
    DecisionError,
    Guest,
    HostFacts,
    JobSample,
    LadderPolicy,
    Limits,
    MigrationOutcome,
    MigrationRecord,
    Move,
    Plan,
)

PLANNERS = ("collection", "serial", "ovirt22", "vmware8")
# The references' slots per host (out and in); None: one live migration in the whole fleet at a time.
REFERENCE_SLOTS = {"serial": None, "ovirt22": 2, "vmware8": 8}
RETURN_MODES = roll.RETURN_MODES

# Whether placement.plan takes the hosts a roll's next turns will empty (``avoid``: used last).
PLAN_AVOIDS = "avoid" in inspect.signature(placement.plan).parameters

# The generations the simulator gives hosts: before and after their upgrade.
OLD, NEW = "1", "2"

GBIT = 1e9 / 8  # bytes per second of one Gbit/s


# ---------------------------------------------------------------------------------------------
# Calibration: every constant of the model, and where it comes from.
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Calibration:
    """The constants of the model. ``fleet()`` gives a link-bound fleet's, ``lab()`` the lab's, ``from_reports`` fits
    them from run reports; ``source`` says which.

    nic_bps: a host's NIC rate, each direction, bytes/s (for fleets built by ``from_cluster``; ``fleet`` takes its
      own). stream_bps: one migration's own cap (QEMU's copy thread), None: no cap. machine_bps: the cap of all the
      flows of one machine together (its CPUs), None: no cap; shared_machine: every host is on one machine (the lab).
    start_s / finish_s: fixed costs of a migration before its copy (it holds its slots) and after its switchover
      until libvirt's call returns; fixed_cost_growth: how much both grow (relative) for each other migration in
      flight on the same machine. switchover_s: the part of a blackout beside the last round's bytes.
    settle_s: the executor's settle period after each switchover (a move is done at the switchover plus the
      longer of it and finish_s).
    reboot_s, gate_before_s, gate_after_s: a host's patch and reboot, and its gates (for ``from_cluster``).
    step_overhead_s: Ansible's own seconds per task of a cycle (each turn, each event, the report of an engine
      step); engine_overhead_s: an engine module's seconds outside its executor (survey, plan, guard);
      playbook_overhead_s: a playbook's own seconds around one engine run (start-up, the report: evacuate.yml);
      preflight_s: the preflight step (one migration_preflight run);
      turn_poll_s: how often a host waiting for its turn asks again (plugin_utils.roll_state.POLL_S): a turn
      the roll can grant is taken half of it later, on average.
    zero_fraction, dirty_bps, working_set_fraction: the guests' zero pages, dirty rate (mean of a uniform draw
      from 0 to twice it, per seed) and working set, for guests whose own figures are not known.
    spread: the relative spread of the migration fit (``from_reports``), widening a forecast's range.
    """

    nic_bps: float = 10 * GBIT
    stream_bps: Optional[float] = None
    machine_bps: Optional[float] = None
    shared_machine: bool = False
    start_s: float = 1.0
    finish_s: float = 1.2
    fixed_cost_growth: float = 0.0
    switchover_s: float = 0.04
    settle_s: float = executing.SETTLE_S
    reboot_s: float = 600.0
    gate_before_s: float = 30.0
    gate_after_s: float = 30.0
    step_overhead_s: float = 0.5
    engine_overhead_s: float = 1.2
    playbook_overhead_s: float = 2.1
    preflight_s: float = 2.0
    turn_poll_s: float = 1.0
    zero_fraction: float = 0.5
    dirty_bps: float = 0.0
    working_set_fraction: float = 0.1
    spread: float = 0.0
    source: str = "defaults"

    @classmethod
    def fleet(cls, nic_gbit=10.0, **changes):
        """A link-bound fleet: NICs of ``nic_gbit``, no CPU cap (each host its own machine, a migration stream
        faster than its share of the NIC), the lab's fixed costs without their growth (real hosts are likely
        faster: it would shorten each migration by about a second), the lab's switchover cost, step and engine
        overheads; 10-minute reboots and a minute of gates, half zero pages (issue 19's reference fleets)."""
        values = dict(nic_bps=nic_gbit * GBIT, stream_bps=None, machine_bps=None, shared_machine=False,
                      fixed_cost_growth=0.0, source="fleet defaults (%g GbE, the lab's fixed costs)" % nic_gbit)
        values.update(changes)
        return cls(**values)

    @classmethod
    def lab(cls, **changes):
        """The lab: three hosts on one 2-core machine, TCG guests, TLS for control and data (README "The lab" and
        "Performance"; /work/shared/LAB.md). CPU-bound, not link-bound. Where each figure comes from:

        - nic_bps 1,259 MiB/s: the TCP throughput between two lab hosts over the migration network that
          ``make bench`` measured (README, Performance: "Bound: 765 MiB over 1,259 MiB/s"); it never binds.
        - stream_bps 160 MiB/s: QEMU reports 0.4-0.8 s of copying per idle 256 MiB guest (LAB.md), which sends
          about 95 MiB (757 MiB for 8 guests, README): 95 MiB / 0.6 s.
        - machine_bps 180 MiB/s, start_s 0.6 s, finish_s 1.4 s, fixed_cost_growth 0.1: fitted (least squares of
          the log ratios, on a grid) to the bench of 2026-12-08 (README, Performance: A 24.3 s, B 7.5 s, P2 12.4 s,
          C 10.6 s, M 10.8 s, M11 14.4 s, W 8.6 s for 8 idle guests of 256 MiB), against ``predict_evacuation``
          of the same runs; each is predicted within 16 % (docs/SIMULATOR.md). Their meaning: the machine copies
          at most 180 MiB/s in all, a migration costs 2.0 s beside its copy (LAB.md: "about 1.2 s of fixed cost per
          guest" in a serial loop that waits for the finish, 2.0 s wall per migration through libvirt-python), and
          both parts grow by a tenth for every other migration in flight on the machine (its two cores are shared
          by every QEMU and libvirtd). The bench of 2026-12-02 (C 15.6 s) had fitted 160 MiB/s, 1.0 s, 1.2 s and
          0.2, and predicted this run's C 37 % too long.
        - switchover_s 0.04 (growing as the fixed costs): the engine's pauses of idle guests at the 50 ms first
          step (M11 p50 42 ms; C p50 52 ms at 3.6 migrations in flight).
        - engine_overhead_s 1.2, playbook_overhead_s 0.8: the fixed parts of M (1.26 s) and of C (2.0 s) in the
          bench of 2026-12-08; E, the module on an emptied host, took 1.04 s.
        - step_overhead_s 0.4, preflight_s 0.8, gate_before_s 2.8, gate_after_s 2.4, reboot_s 13: the lab's
          rolling upgrade of 3 hosts of 2026-12-07 (its report: the turns and events took 0.3-0.7 s each, the
          preflight steps 0.6-1.2 s, the gates 2.5-3.4 s and 2.2-2.5 s, patch and reboot 12.5-13.6 s with the lab's
          stand-ins).
        - zero_fraction 0.63: 757 MiB sent for 8 x 256 MiB.
        - spread 0.15: every bench row above is predicted within 16 % (a forecast's range widens by it).
        ``from_reports`` of the fleet's own reports replaces what they hold."""
        values = dict(nic_bps=1259 * MIB, stream_bps=160 * MIB, machine_bps=180 * MIB, shared_machine=True,
                      start_s=0.6, finish_s=1.4, fixed_cost_growth=0.1, switchover_s=0.04,
                      settle_s=executing.SETTLE_S, reboot_s=13.0, gate_before_s=2.8, gate_after_s=2.4,
                      step_overhead_s=0.4, engine_overhead_s=1.2, playbook_overhead_s=0.8, preflight_s=0.8, zero_fraction=0.63, dirty_bps=0.0,
                      working_set_fraction=0.1, spread=0.15, source="the lab's figures (make bench, 2026-12-08)")
        values.update(changes)
        return cls(**values)

    @classmethod
    def from_reports(cls, reports, base=None):
        """Fitted from run reports (report.build's JSON, or the run dict the run_report module takes): hosts ->
        {steps: [{name, started, ended, status}], moves (or evacuate / restore: {outcomes}), ...}.

        - reboot_s, gate_before_s, gate_after_s: the medians of the ok steps' durations ("patch" and "reboot"
          together make the reboot);
        - start_s and stream_bps: a least-squares fit of duration_s = start_s + bytes_transferred / stream_bps over
          the migrated outcomes (their duration runs from the start to the switchover); ``spread`` is the fit's
          relative root-mean-square error. The fitted figures are those of one migration at the concurrency the
          reported runs had, so the fitted calibration drops the machine cap and the growth of the fixed costs;
        - settle_s: the median of done - switchover (the settle period or libvirt's finish, the longer);
        - zero_fraction: 1 - bytes sent per byte of memory, where the plans give the guests' memory.

        What the reports lack comes from ``base`` (``lab()`` by default); ``source`` says how many of each."""
        base = base or cls.lab()
        steps, points, tails, sent = {}, [], [], []
        count = 0
        for one in reports or []:
            if not isinstance(one, dict):
                continue
            count += 1
            for host in (one.get("hosts") or {}).values():
                if not isinstance(host, dict):
                    continue
                for step in host.get("steps") or []:
                    seconds = _step_seconds(step)
                    if seconds is not None and str(step.get("status") or "ok").lower() in ("ok", "changed"):
                        steps.setdefault(str(step.get("name")), []).append(seconds)
                memory = _plan_memory(host)
                for move in _report_moves(host):
                    _fit_point(move, memory, points, tails, sent)
        values = dict((field.name, getattr(base, field.name)) for field in dataclasses.fields(base))
        found = []
        if steps.get("patch") or steps.get("reboot"):
            values["reboot_s"] = _median(steps.get("patch") or [0.0]) + _median(steps.get("reboot") or [0.0])
            found.append("reboot")
        for name, key in (("preflight", "preflight_s"), ("gate_before", "gate_before_s"), ("gate_after", "gate_after_s")):
            if steps.get(name):
                values[key] = _median(steps[name])
                found.append(name)
        fit = least_squares(points)
        if fit is not None:
            values.update(start_s=fit["fixed_s"], stream_bps=fit["rate_bps"], spread=fit["spread"],
                          machine_bps=None, fixed_cost_growth=0.0)
            found.append("%d migrations" % len(points))
        if tails:
            values["settle_s"] = _median(tails)
        if sent:
            ratio = sum(b for b, _m in sent) / float(sum(m for _b, m in sent))
            values["zero_fraction"] = min(0.99, max(0.0, 1.0 - ratio))
        values["source"] = "%d run report(s) (%s), %s otherwise" % (
            count, ", ".join(found) or "nothing usable", base.source)
        return cls(**values)


def _median(values):
    ordered = sorted(values)
    if not ordered:
        return 0.0
    middle = len(ordered) // 2
    return float(ordered[middle]) if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


def _step_seconds(step):
    if not isinstance(step, dict):
        return None
    if isinstance(step.get("duration_s"), (int, float)):
        return float(step["duration_s"])
    return report.seconds_between(step.get("started"), step.get("ended"))


def _plan_memory(host):
    """{guest: memory MiB} from the plans a host's engine results carry."""
    memory = {}
    for kind in ("evacuate", "restore"):
        plan = (host.get(kind) or {}).get("plan") if isinstance(host.get(kind), dict) else None
        for move in (plan or {}).get("moves") or []:
            if isinstance(move, dict) and move.get("memory_mib"):
                memory[move.get("guest")] = float(move["memory_mib"])
    return memory


def _report_moves(host):
    """A host's moves: the built report's ``moves``, else the outcomes of its engine results."""
    if isinstance(host.get("moves"), list):
        return [m for m in host["moves"] if isinstance(m, dict)]
    moves = []
    for kind in ("evacuate", "restore"):
        result = host.get(kind)
        if isinstance(result, dict):
            moves += [m for m in result.get("outcomes") or [] if isinstance(m, dict)]
    return moves


def _fit_point(move, memory, points, tails, sent):
    if move.get("outcome") != "migrated":
        return
    duration, size = move.get("duration_s"), move.get("bytes_transferred")
    if isinstance(duration, (int, float)) and isinstance(size, (int, float)) and duration > 0 and size > 0:
        points.append((float(size), float(duration)))
        if memory.get(move.get("guest")):
            sent.append((float(size), memory[move["guest"]] * MIB))
    timeline = move.get("timeline") or {}
    done, switchover = timeline.get("done"), timeline.get("switchover")
    if isinstance(done, (int, float)) and isinstance(switchover, (int, float)) and done >= switchover:
        tails.append(float(done - switchover))


def least_squares(points):
    """{fixed_s, rate_bps, spread, count} of duration = fixed + bytes / rate over ``points`` [(bytes, seconds)], or
    None with fewer than 2 points. A fit with a negative fixed cost or slope is refitted through the origin (or
    with a flat rate); ``spread`` is the root-mean-square error over the mean duration."""
    if len(points) < 2:
        return None
    n = float(len(points))
    mean_x = sum(x for x, _y in points) / n
    mean_y = sum(y for _x, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _y in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    slope = sxy / sxx if sxx > 0 else 0.0
    fixed = mean_y - slope * mean_x
    if slope <= 0:  # sizes that do not explain durations: all of it is fixed cost at the mean rate
        slope, fixed = (mean_y / mean_x if mean_x else 0.0), 0.0
        if slope <= 0:
            return None
    elif fixed < 0:
        slope, fixed = sum(x * y for x, y in points) / sum(x * x for x, _y in points), 0.0
    rms = math.sqrt(sum((y - fixed - slope * x) ** 2 for x, y in points) / n)
    return dict(fixed_s=round(fixed, 4), rate_bps=1.0 / slope, spread=round(rms / mean_y, 4) if mean_y else 0.0,
                count=len(points))


# ---------------------------------------------------------------------------------------------
# Fleets
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class HostSpec:
    """One hypervisor: what it can give guests in all (``capacity_mib``; the reserve is kept free of that), its NIC,
    its cycle's times, whether it comes back from its reboot, the machine whose CPUs it shares (None: its own) and
    the roll's phase it starts in (None: queued; ``skipped``: at its target)."""

    name: str
    cluster: str = roll.DEFAULT_CLUSTER
    capacity_mib: int = 0
    reserve_mib: int = 1024
    nic_out_bps: float = 10 * GBIT
    nic_in_bps: float = 10 * GBIT
    reboot_s: float = 600.0
    gate_before_s: float = 30.0
    gate_after_s: float = 30.0
    returns: bool = True
    machine: Optional[str] = None
    phase: Optional[str] = None


@dataclasses.dataclass
class GuestSpec:
    """One guest: where it runs, its memory, the share of it that is zero pages, how fast it dirties memory and how
    much (its working set), the bytes of local disks a storage copy sends with it, its migration record's host
    (``home``) and whether it demands to go home; faults: ``fails`` (its first migration fails) and ``stops`` (it
    shuts down in the middle of its first migration)."""

    name: str
    host: str
    memory_mib: int
    zero_fraction: float = 0.5
    dirty_bps: float = 0.0
    working_set_bytes: float = 0.0
    disk_bytes: float = 0.0
    home: Optional[str] = None
    home_demanded: bool = False
    active: bool = True
    anti_affinity: Optional[str] = None
    fails: bool = False
    stops: bool = False


@dataclasses.dataclass
class Fleet:
    hosts: List[HostSpec]
    guests: List[GuestSpec]
    seed: int = 0


def fleet(hosts=50, guests_per_host=100, memory_mib=8192, host_memory_mib=None, reserve_mib=1024, nic_gbit=10.0,
          reboot_s=600.0, gate_s=60.0, zero_fraction=0.5, dirty_mib_s=(0.0, 200.0), working_set=(0.02, 0.2),
          disk_bytes=0.0, seed=0, fail_rate=0.0, stop_rate=0.0, lost_hosts=0, lost_rate=0.0, clusters=1,
          home_demanded_rate=0.0, spare_hosts=2):
    """A random fleet, deterministic per seed: ``hosts`` hosts (hv01...) in ``clusters`` clusters of consecutive
    hosts, each with ``guests_per_host`` guests of ``memory_mib``; dirty rates uniform in ``dirty_mib_s`` (MiB/s),
    working sets uniform in ``working_set`` (fractions of the memory); ``gate_s`` split evenly before and after.

    Host memory: ``host_memory_mib``, else sized so that ``spare_hosts`` hosts of a cluster may be out at once
    (N+2 by default: the guests of two hosts spread over the others, whole guests, with the reserve on each).
    Faults: each guest's first migration fails with ``fail_rate``, it stops during it with ``stop_rate``; the last
    ``lost_hosts`` hosts, and each other host with ``lost_rate``, do not come back from their reboot."""
    rng = random.Random(seed)
    draw = random.Random("%s hosts" % seed)  # the hosts' own draws: the guests' stay those of their seed
    lost = [draw.random() < lost_rate or index >= hosts - lost_hosts for index in range(hosts)]
    per_cluster = max(1, int(math.ceil(hosts / float(max(1, clusters)))))
    if host_memory_mib is None:
        others = max(1, per_cluster - spare_hosts)
        extra = int(math.ceil(spare_hosts * guests_per_host / float(others)))
        host_memory_mib = (guests_per_host + extra) * memory_mib + reserve_mib
    width = len(str(hosts))
    specs = []
    for index in range(hosts):
        specs.append(HostSpec(name="hv%0*d" % (max(2, width), index + 1), cluster="c%d" % (index // per_cluster + 1),
                              capacity_mib=int(host_memory_mib), reserve_mib=reserve_mib, nic_out_bps=nic_gbit * GBIT,
                              nic_in_bps=nic_gbit * GBIT, reboot_s=reboot_s, gate_before_s=gate_s / 2.0,
                              gate_after_s=gate_s / 2.0, returns=not lost[index]))
    guests = []
    for host in specs:
        for number in range(guests_per_host):
            memory = memory_mib
            guests.append(GuestSpec(
                name="%s-g%03d" % (host.name, number), host=host.name, memory_mib=memory, zero_fraction=zero_fraction,
                dirty_bps=rng.uniform(*dirty_mib_s) * MIB, working_set_bytes=memory * MIB * rng.uniform(*working_set),
                disk_bytes=disk_bytes, fails=rng.random() < fail_rate, stops=rng.random() < stop_rate,
                home_demanded=rng.random() < home_demanded_rate))
    return Fleet(hosts=specs, guests=guests, seed=seed)


def from_cluster(hosts, guests, calibration=None, seed=0):
    """A fleet from what a roll knows of a real cluster, for the forecast.

    ``hosts``: [{name, cluster, capacity_mib, reserve_mib?, phase?, nic_bps?}], ``guests``: [{name, host, memory_mib,
    home?, home_demanded?, dirty_bps?, zero_fraction?, active?}]. The NICs, reboot and gate times come from the
    calibration; a guest without a dirty rate gets one drawn per seed (uniform from 0 to twice the calibration's),
    its working set is the calibration's fraction of its memory."""
    calibration = calibration or Calibration.lab()
    rng = random.Random(seed)
    specs = []
    for host in hosts:
        nic = float(host.get("nic_bps") or calibration.nic_bps)
        specs.append(HostSpec(
            name=host["name"], cluster=host.get("cluster") or roll.DEFAULT_CLUSTER,
            capacity_mib=int(host.get("capacity_mib") or 0), reserve_mib=int(host.get("reserve_mib", 1024) or 0),
            nic_out_bps=nic, nic_in_bps=nic, reboot_s=calibration.reboot_s, gate_before_s=calibration.gate_before_s,
            gate_after_s=calibration.gate_after_s, machine="machine" if calibration.shared_machine else None,
            phase=host.get("phase")))
    specs_guests = []
    for guest in guests:
        dirty = guest.get("dirty_bps")
        if dirty is None:
            dirty = rng.uniform(0.0, 2.0 * calibration.dirty_bps)
        memory = int(guest.get("memory_mib") or 0)
        specs_guests.append(GuestSpec(
            name=guest["name"], host=guest["host"], memory_mib=memory,
            zero_fraction=float(guest.get("zero_fraction", calibration.zero_fraction)), dirty_bps=float(dirty),
            working_set_bytes=memory * MIB * calibration.working_set_fraction, home=guest.get("home") or None,
            home_demanded=bool(guest.get("home_demanded")), active=guest.get("active", True) is not False,
            anti_affinity=guest.get("anti_affinity") or None))
    return Fleet(hosts=specs, guests=specs_guests, seed=seed)


def from_state(state, calibration=None, seed=0):
    """A fleet from a roll's state (``roll.new``), for the forecast of that roll: its hosts with their capacity and
    phase, its guests where they run."""
    reserve = state["options"]["reserve_mib"]
    hosts = [dict(name=h, cluster=state["clusters"][h], capacity_mib=state["capacity_mib"][h], reserve_mib=reserve,
                  phase=state["phase"][h]) for h in state["order"]]
    guests = [dict(name=name, host=g["host"], memory_mib=g["memory_mib"], home=g["home"],
                   home_demanded=g["home_demanded"], active=g["active"], anti_affinity=g["anti_affinity"])
              for name, g in sorted(state["guests"].items())]
    return from_cluster(hosts, guests, calibration, seed=seed)


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Options:
    """How the roll runs. ``planner``: the collection's (``collection``) or a reference; the rest applies to the
    collection's roll: ``parallel_hosts`` (k), ``return_mode``, ``overlap``, ``parallel_clusters``, ``batch_size``
    (the play's serial batches: a batch's hosts all finish before the next batch's start; None: one batch),
    the executor's ``max_outbound`` / ``max_inbound`` and ``pause_target_ms``, ``canary`` (restore), ``retries``
    (further passes of an evacuation or restore that left guests behind, as a second run of the playbook would),
    and the ladder ``policy``."""

    planner: str = "collection"
    parallel_hosts: int = 1
    return_mode: str = "home"
    overlap: bool = False
    parallel_clusters: bool = False
    batch_size: Optional[int] = None
    max_outbound: int = 2
    max_inbound: int = 2
    pause_target_ms: int = placement.PAUSE_TARGET_MS
    canary: bool = True
    retries: int = 1
    policy: Optional[LadderPolicy] = None

    def validate(self):
        if self.planner not in PLANNERS:
            raise DecisionError("unknown planner %r: expected one of %s" % (self.planner, ", ".join(PLANNERS)))
        if self.return_mode not in RETURN_MODES:
            raise DecisionError("invalid return mode %r: expected home or stay" % (self.return_mode,))
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise DecisionError("invalid batch_size %r: expected 1 or more, or None" % (self.batch_size,))
        if int(self.parallel_hosts) < 1:
            raise DecisionError("invalid parallel_hosts %r: expected 1 or more" % (self.parallel_hosts,))
        return self

    @property
    def label(self):
        if self.planner != "collection":
            return self.planner
        text = "collection k=%d %s" % (self.parallel_hosts, self.return_mode)
        if self.overlap:
            text += " overlap"
        if self.parallel_clusters:
            text += " clusters"
        if self.batch_size:
            text += " batch=%d" % self.batch_size
        return text


# ---------------------------------------------------------------------------------------------
# The lower bound
# ---------------------------------------------------------------------------------------------

def _sent_bytes(guest):
    return guest.memory_mib * MIB * (1.0 - guest.zero_fraction) + guest.disk_bytes if guest.active else 0.0


def lower_bound(fleet_, options=None, hosts=None):
    """The least time the case can take, in seconds: the largest of
    - the hosts' reboots and gates over the hosts that may be in reboot at once (k, times the clusters when they
      roll in parallel; a restoring host is past its reboot, so overlap does not add any);
    - the bytes the case must send (each guest's non-zero memory and disks once when guests stay, twice when they
      return home) over the fleet's aggregate bandwidth (its NICs out, and the machines' caps);
    - the slowest host's own sequence: gate, its drain at its NIC rate, reboot, gate, and its restore when guests
      return home.
    ``hosts``: the names of the hosts the roll takes (default: every host not skipped)."""
    options = options or Options()
    home = options.planner != "collection" or options.return_mode == "home"
    k = 1 if options.planner != "collection" else int(options.parallel_hosts)
    clusters = sorted(set(h.cluster for h in fleet_.hosts))
    at_once = k * (len(clusters) if options.planner == "collection" and options.parallel_clusters else 1)
    taken = [h for h in fleet_.hosts if (h.name in hosts if hosts is not None else h.phase != roll.SKIPPED)]
    if not taken:
        return 0.0
    per_host = {}
    for guest in fleet_.guests:
        per_host[guest.host] = per_host.get(guest.host, 0.0) + _sent_bytes(guest)
    names = set(h.name for h in taken)
    demanded = {}
    for guest in fleet_.guests:
        if guest.home_demanded and guest.host in names:
            demanded[guest.host] = demanded.get(guest.host, 0.0) + _sent_bytes(guest)
    cycles = sum(h.reboot_s + h.gate_before_s + h.gate_after_s for h in taken)
    total = 0.0
    slowest = 0.0
    for host in taken:
        out = per_host.get(host.name, 0.0)
        back = out if home else demanded.get(host.name, 0.0)
        total += out + back
        own = host.gate_before_s + out / host.nic_out_bps + host.reboot_s + host.gate_after_s + back / host.nic_in_bps
        slowest = max(slowest, own)
    aggregate = sum(h.nic_out_bps for h in fleet_.hosts)
    return max(cycles / float(at_once), total / aggregate, slowest)


def slot_bound(fleet_, options=None, hosts=None):
    """The least time the roll's own rule allows, in seconds: a host holds one of the k maintenance slots (k per
    cluster with parallel clusters; one for a reference) from its turn to enter until its gate after the reboot, and
    its restore too when guests return home without overlap, so the hosts' slot times over the slots: each slot time
    its gates, its reboot, its drain at its NIC rate (and its restore at its NIC rate). Never below ``lower_bound``;
    the gap between the two is the drains (and restores) that cannot overlap their own host's reboot."""
    options = options or Options()
    reference = options.planner != "collection"
    home = reference or options.return_mode == "home"
    k = 1 if reference else int(options.parallel_hosts)
    clusters = sorted(set(h.cluster for h in fleet_.hosts))
    at_once = k * (len(clusters) if not reference and options.parallel_clusters else 1)
    taken = [h for h in fleet_.hosts if (h.name in hosts if hosts is not None else h.phase != roll.SKIPPED)]
    per_host = {}
    for guest in fleet_.guests:
        per_host[guest.host] = per_host.get(guest.host, 0.0) + _sent_bytes(guest)
    total = 0.0
    for host in taken:
        out = per_host.get(host.name, 0.0)
        total += host.gate_before_s + out / host.nic_out_bps + host.reboot_s + host.gate_after_s
        if home and (reference or not options.overlap):
            total += out / host.nic_in_bps
    return max(total / float(at_once), lower_bound(fleet_, options, hosts))


# ---------------------------------------------------------------------------------------------
# One migration in flight
# ---------------------------------------------------------------------------------------------

class _Migration(object):
    """A move in flight: its phase, its flow on the network and its pre-copy rounds."""

    __slots__ = ("move", "job", "guest", "src", "dst", "memory", "machines", "started", "left", "t",
                 "rate", "version", "round", "round_start", "round_bytes", "sent", "ladder", "downtime_ms", "throttle",
                 "stalls", "fault", "switchover", "blackout", "flowing", "failure", "busy")

    def __init__(self, move, job, guest, now):
        self.move, self.job, self.guest = move, job, guest
        self.src, self.dst = move.source, move.destination
        self.memory = guest.memory_mib if move.action == "migrate" else 0
        self.machines = ()
        self.started = now
        self.left = self.t = self.rate = 0.0
        self.version = 0
        self.round, self.round_start, self.round_bytes, self.sent = 0, now, 0.0, 0.0
        self.ladder, self.downtime_ms, self.throttle, self.stalls = None, 0, 0, 0
        self.fault, self.switchover, self.blackout, self.failure = None, None, None, None
        self.flowing, self.busy = False, False


class _SimRun(object):
    """What executor.Schedule asks of a run, on the simulator's clock: the moves' timelines (``mark``), notes and
    window changes; no progress."""

    def __init__(self, sim):
        self.sim = sim
        self.started = sim.now
        self.timelines = {}
        self.notes = {}
        self.window_changes = []
        self.progress = None

    def at(self):
        return round(self.sim.now - self.started, 3)

    def mark(self, move, phase):
        self.timelines.setdefault(move.guest, {})[phase] = self.at()

    def ended(self, move, outcome):
        """Schedule tells the run how a move ended; the simulator keeps its own account."""

    def timeline(self, move):
        return dict(self.timelines.get(move.guest, {}))


class _EngineJob(object):
    """One run of the engine's executor (an evacuation or a restore, or one canary): executor.Schedule driven by the
    simulator's events."""

    settles = True

    def __init__(self, sim, moves, kind, host, kind_label=None):
        self.sim, self.kind, self.host = sim, kind, host
        self.label = kind_label or kind
        self.run = _SimRun(sim)
        dirty = dict((m.guest, sim.guests[m.guest].dirty_bps) for m in moves)
        self.schedule = executing.Schedule(sim.executor, self.run, Plan(kind=kind, moves=list(moves)),
                                           dirty_rates=dirty)
        self.callback = None

    def start(self, callback):
        self.callback = callback
        self.pump()

    def pump(self):
        for move in self.schedule.starts():
            self.run.mark(move, "started")
            self.sim.start_move(move, self)
        if self.schedule.done and self.callback is not None:
            callback, self.callback = self.callback, None
            self.sim.at(self.sim.now, callback, self.schedule.outcomes())

    def released(self, move, downtime_ms):
        self.run.mark(move, "switchover")
        self.schedule.on("released", move, downtime_ms)
        self.pump()

    def finished(self, move, outcome):
        self.run.mark(move, "done")
        outcome.timeline = dict((phase, self.run.timelines.get(move.guest, {}).get(phase))
                                for phase in outcome.timeline)
        self.schedule.on("done", move, (outcome, None, None))
        self.pump()


class _ReferenceJob(object):
    """A reference planner's run of moves: ``slots`` per host out and in (None: one migration at a time), each
    migration holding its slots until libvirt's call returns; no settle period, no adaptive window."""

    settles = False

    def __init__(self, sim, moves, kind, host, slots):
        self.sim, self.kind, self.host, self.label = sim, kind, host, kind
        self.queue = list(moves)
        self.slots = slots
        self.limits = Limits(max_inbound=slots or 1, max_outbound=slots or 1)
        self.flight = []
        self.outcomes = []
        self.callback = None

    def start(self, callback):
        self.callback = callback
        self.pump()

    def pump(self):
        if self.slots is None:
            picks = self.queue[:1] if not self.flight else []
        else:
            picks = placement.startable(self.queue, self.flight, self.flight, self.limits)
        for move in picks:
            self.queue.remove(move)
            self.flight.append(move)
            self.sim.start_move(move, self)
        if not self.queue and not self.flight and self.callback is not None:
            callback, self.callback = self.callback, None
            self.sim.at(self.sim.now, callback, self.outcomes)

    def released(self, move, downtime_ms):
        """The slots are held until libvirt's call returns."""

    def finished(self, move, outcome):
        self.flight.remove(move)
        self.outcomes.append(outcome)
        self.pump()


class _Process(object):
    """A host's cycle (or a reference roll) as a generator of commands: ("sleep", seconds), ("turn", action),
    ("job", job or None); it is sent back the turn, or the job's outcomes."""

    def __init__(self, sim, host, generator):
        self.sim, self.host, self.generator = sim, host, generator

    def step(self, value=None):
        try:
            command = self.generator.send(value)
        except StopIteration:
            self.sim.process_ended(self)
            return
        kind = command[0]
        if kind == "sleep":
            self.sim.at(self.sim.now + max(0.0, command[1]), self.step)
        elif kind == "turn":
            self.sim.ask(self, command[1])
        elif command[1] is None:
            self.sim.at(self.sim.now, self.step, [])
        else:
            command[1].start(self.step)


# ---------------------------------------------------------------------------------------------
# The simulation
# ---------------------------------------------------------------------------------------------

class Sim(object):
    """One roll of one planner over one fleet: ``run()`` returns the result (``result``)."""

    def __init__(self, fleet_, options=None, calibration=None, trace=False):
        self.fleet = fleet_
        self.options = (options or Options()).validate()
        self.cal = calibration or Calibration.fleet()
        self.policy = (self.options.policy or LadderPolicy()).validate()
        self.trace = trace
        self.hosts = dict((h.name, h) for h in fleet_.hosts)
        self.order = [h.name for h in fleet_.hosts]
        self.guests = dict((g.name, g) for g in fleet_.guests)
        for guest in fleet_.guests:
            if guest.host not in self.hosts:
                raise DecisionError("invalid fleet: guest %s runs on %r, which is not a host of the fleet" % (
                    guest.name, guest.host))
        reserve = max([h.reserve_mib for h in fleet_.hosts] or [0])
        self.limits = Limits(reserve_mib=reserve, max_inbound=self.options.max_inbound,
                             max_outbound=self.options.max_outbound).validate()
        self.executor = executing.Executor(None, None, policy=self.policy, limits=self.limits,
                                           settle_s=self.cal.settle_s, pause_target_ms=self.options.pause_target_ms,
                                           clock=self.clock)
        self.where = dict((g.name, g.host) for g in fleet_.guests)
        self._grouped = [g.name for g in fleet_.guests if g.anti_affinity]
        self.active = dict((g.name, g.active) for g in fleet_.guests)
        self.homes = dict((g.name, g.home) for g in fleet_.guests)
        self.committed = dict((h, 0) for h in self.hosts)
        for guest in fleet_.guests:
            if guest.active:
                self.committed[guest.host] += guest.memory_mib
        self.generation = dict((h.name, NEW if h.phase in (roll.SKIPPED, roll.DONE) else OLD) for h in fleet_.hosts)
        self.machine = dict((h.name, h.machine or ("machine" if self.cal.shared_machine else h.name))
                            for h in fleet_.hosts)
        self.marked = set(h.name for h in fleet_.hosts if h.phase in roll.IN_MAINTENANCE)
        self.down = set()
        self.now = 0.0
        self._heap = []
        self._seq = 0
        self._out = dict((h, []) for h in self.hosts)
        self._in = dict((h, []) for h in self.hosts)
        self._on_machine = {}
        self._busy = {}
        self._attempts = {}
        self._moving = {}  # guest -> its migration in flight
        self.conflicts = 0
        # results
        self.blackouts = []
        self.moved = 0
        self.failed_moves = 0
        self.bytes = 0.0
        self.violations = 0
        self.min_headroom = min([h.capacity_mib - h.reserve_mib - self.committed[h.name] for h in fleet_.hosts] or [0])
        self.phases = dict((h, []) for h in self.hosts)
        self.moves = []
        self.placed = {}
        self.max_in_maintenance = 0
        self.max_busy = 0
        self.state = None
        self.waiting = []
        self.processes = []
        self.batches = []
        self.refused = None
        self.stopped = None
        self._poll_pending = False
        self._rank = dict((name, index) for index, name in enumerate(self.order))

    # -- the clock ----------------------------------------------------------------------------------------------
    def clock(self):
        return self.now

    def at(self, when, function, *args):
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, function, args))

    def _loop(self):
        heap = self._heap
        while heap:
            when, _seq, function, args = heapq.heappop(heap)
            self.now = when
            function(*args)

    # -- memory -------------------------------------------------------------------------------------------------
    def _commit(self, host, mib):
        self.committed[host] += mib
        spec = self.hosts[host]
        room = spec.capacity_mib - spec.reserve_mib - self.committed[host]
        if room < self.min_headroom:
            self.min_headroom = room
        if room < 0:
            self.violations += 1

    def facts(self, host):
        spec = self.hosts[host]
        groups = []
        if self._grouped:
            groups = sorted(set(self.guests[n].anti_affinity for n in self._grouped
                                if self.where[n] == host and self.active[n]))
        return HostFacts(name=host, memory_total_mib=spec.capacity_mib,
                         memory_free_mib=max(0, spec.capacity_mib - self.committed[host]),
                         maintenance=host in self.marked, generation=self.generation[host], resident_groups=groups)

    def guest_object(self, name, record=None):
        spec = self.guests[name]
        return Guest(name=name, uuid=name, state="running" if self.active[name] else "shutoff",
                     memory_mib=spec.memory_mib, anti_affinity=spec.anti_affinity,
                     record=MigrationRecord(origin_host=record) if record else None)

    # -- the network --------------------------------------------------------------------------------------------
    def _rate(self, m):
        rate = self.hosts[m.src].nic_out_bps / len(self._out[m.src])
        inward = self.hosts[m.dst].nic_in_bps / len(self._in[m.dst])
        if inward < rate:
            rate = inward
        stream = self.cal.stream_bps
        if stream and stream < rate:
            rate = stream
        if self.cal.machine_bps:
            for machine in m.machines:
                share = self.cal.machine_bps / len(self._on_machine[machine])
                if share < rate:
                    rate = share
        return rate

    def _affected(self, m):
        flows = self._out[m.src] + self._in[m.dst]
        if self.cal.machine_bps:
            for machine in m.machines:
                flows = flows + self._on_machine[machine]
        return flows

    def _reshare(self, flows):
        now = self.now
        for f in flows:
            rate = self._rate(f)
            if rate != f.rate:
                f.left -= f.rate * (now - f.t)
                if f.left < 0:
                    f.left = 0.0
                f.t, f.rate = now, rate
                f.version += 1
                self.at(now + f.left / rate, self._round_end, f, f.version)

    def _flow_add(self, m):
        m.flowing = True
        m.t, m.rate = self.now, 0.0
        self._out[m.src].append(m)
        self._in[m.dst].append(m)
        for machine in m.machines:
            self._on_machine.setdefault(machine, []).append(m)
        self._reshare(self._affected(m))

    def _flow_remove(self, m):
        if not m.flowing:
            return
        m.flowing = False
        m.left -= m.rate * (self.now - m.t)
        m.t = self.now
        m.version += 1
        self._out[m.src].remove(m)
        self._in[m.dst].remove(m)
        for machine in m.machines:
            self._on_machine[machine].remove(m)
        self._reshare(self._affected(m))

    # -- a migration --------------------------------------------------------------------------------------------
    def _grown(self, seconds, m):
        others = max([self._busy.get(machine, 0) for machine in m.machines] or [0]) - 1
        return seconds * (1.0 + self.cal.fixed_cost_growth * max(0, others))

    def start_move(self, move, job):
        guest = self.guests[move.guest]
        m = _Migration(move, job, guest, self.now)
        m.machines = tuple(sorted(set([self.machine[m.src], self.machine[m.dst]])))
        m.busy = True
        for machine in m.machines:
            self._busy[machine] = self._busy.get(machine, 0) + 1
            if self._busy[machine] > self.max_busy:
                self.max_busy = self._busy[machine]
        other = self._moving.get(guest.name)
        if other is not None or self.where[guest.name] != m.src:
            # two runs move one guest (a drain and its home's restore): libvirt refuses the second job, or the
            # guest is no longer where this run's survey saw it
            self.conflicts += 1
            m.memory = 0
            m.failure = ("another migration job of %s is running (%s to %s)" % (guest.name, other.src, other.dst)
                         if other is not None else "%s no longer runs on %s" % (guest.name, m.src))
            self.at(self.now + self._grown(self.cal.start_s, m), self._failed, m, "failed")
            return
        self._moving[guest.name] = m
        if m.memory:
            self._commit(m.dst, m.memory)
        attempt = self._attempts.get(guest.name, 0) + 1
        self._attempts[guest.name] = attempt
        if attempt == 1 and move.action == "migrate":
            m.fault = "stops" if guest.stops else ("fails" if guest.fails else None)
        self.at(self.now + self._grown(self.cal.start_s, m), self._begin_copy, m)

    def _begin_copy(self, m):
        if m.move.action != "migrate":  # a definition moves (or a guest starts): no memory to copy
            m.switchover = self.now
            self._release(m, None)
            return
        guest = m.guest
        m.round, m.round_start = 1, self.now
        m.round_bytes = m.left = guest.memory_mib * MIB * (1.0 - guest.zero_fraction) + guest.disk_bytes
        m.ladder = convergence.new_state(self.policy, guest.name, guest.memory_mib,
                                         disk_bytes=int(guest.disk_bytes))
        m.downtime_ms = m.ladder.downtime_ms
        if m.left <= 0:
            m.left = 1.0
        self._flow_add(m)

    def _round_end(self, m, version):
        if version != m.version or not m.flowing:
            return
        now = self.now
        guest = m.guest
        round_time = now - m.round_start
        m.sent += m.round_bytes
        m.left, m.t = 0.0, now
        if m.fault is not None:
            self._fail(m, "failed", "the guest shut down during its migration" if m.fault == "stops" else (
                "operation failed: migration out job: unexpectedly failed"))
            return
        dirty = guest.dirty_bps * (1.0 - m.throttle / 100.0)
        dirtied = min(dirty * round_time, guest.working_set_bytes)
        rate = m.rate
        if dirtied * 1000.0 <= m.downtime_ms * rate:
            self._switch(m, dirtied)
            return
        if self.policy.auto_converge:  # QEMU throttles a guest that dirties over half of what a round sends
            m.stalls = m.stalls + 1 if dirtied > 0.5 * m.round_bytes else 0
            if m.stalls >= 2:
                m.throttle = int(self.policy.auto_converge_initial) if not m.throttle else min(
                    99, m.throttle + int(self.policy.auto_converge_increment))
        sample = JobSample(elapsed_s=now - m.started, data_processed=int(m.sent), memory_processed=int(m.sent),
                           memory_remaining=int(dirtied), memory_bps=int(rate), dirty_rate_bps=int(dirty),
                           memory_iteration=m.round + 1, auto_converge_throttle=int(m.throttle))
        convergence.observe(m.ladder, sample)
        action = convergence.next_action(self.policy, m.ladder)
        if action.kind == "abort":
            self._fail(m, "aborted", action.reason)
            return
        if action.kind != "wait":
            if action.kind == "set_downtime":
                m.downtime_ms = int(action.value)
            convergence.applied(m.ladder, action)
        m.round += 1
        m.round_start = now
        m.round_bytes = m.left = max(dirtied, 1.0)
        m.version += 1
        self.at(now + m.left / rate, self._round_end, m, m.version)

    def _switch(self, m, final):
        rate = m.rate
        self._flow_remove(m)
        m.sent += final
        blackout = final / rate + self._grown(self.cal.switchover_s, m)
        self.at(self.now + blackout, self._switched, m, blackout)

    def _switched(self, m, blackout):
        m.blackout = blackout
        self.blackouts.append(blackout)
        self._release(m, int(round(blackout * 1000)))

    def _release(self, m, downtime_ms):
        """The guest runs on its destination: the slots are free; libvirt's call returns after finish_s, and the
        move is done after the settle period (the longer of the two)."""
        m.switchover = self.now
        self.where[m.guest.name] = m.dst
        m.job.released(m.move, downtime_ms)
        finish = self._grown(self.cal.finish_s, m)
        self.at(self.now + finish, self._returned, m)
        tail = max(finish, self.cal.settle_s) if m.job.settles else finish
        self.at(self.now + tail, self._done, m)

    def _returned(self, m):
        if m.busy:
            m.busy = False
            for machine in m.machines:
                self._busy[machine] -= 1

    def _done(self, m):
        self._moving.pop(m.guest.name, None)
        if m.memory:
            self.committed[m.src] -= m.memory
        self.moved += 1
        self.bytes += m.sent
        outcome = "migrated" if m.move.action == "migrate" else (
            "moved_definition" if m.move.action == "move_definition" else "started")
        self._record(m, outcome)
        result = MigrationOutcome.of(m.move, outcome, duration_s=round(m.switchover - m.started, 3),
                                     downtime_ms=int(round(m.blackout * 1000)) if m.blackout is not None else None,
                                     bytes_transferred=int(m.sent), iterations=m.round,
                                     runs_on=[m.dst], state_after="running" if self.active[m.guest.name] else "shutoff")
        m.job.finished(m.move, result)

    def _fail(self, m, outcome, reason):
        """The migration ends without its guest moving (faults and the ladder's abort come at a round's end, so
        every byte it sent is counted already); libvirt's cleanup takes finish_s."""
        self._flow_remove(m)
        self._moving.pop(m.guest.name, None)
        if m.memory:
            self.committed[m.dst] -= m.memory
        name = m.guest.name
        if m.fault == "stops":
            self.active[name] = False
            self.committed[m.src] -= m.memory
        m.failure = reason
        self.at(self.now + self._grown(self.cal.finish_s, m), self._failed, m, outcome)

    def _failed(self, m, outcome):
        self._returned(m)
        self.failed_moves += 1
        self.bytes += m.sent
        self._record(m, outcome)
        result = MigrationOutcome.of(m.move, outcome, "cannot live-migrate %s to %s: %s" % (
            m.guest.name, m.dst, m.failure), duration_s=round(self.now - m.started, 3), bytes_transferred=int(m.sent),
            iterations=m.round, runs_on=[m.src], state_after="running" if self.active[m.guest.name] else "shutoff")
        m.job.finished(m.move, result)

    def _record(self, m, outcome):
        if not self.trace:
            return
        self.moves.append(dict(
            guest=m.guest.name, source=m.src, destination=m.dst, kind=m.job.label, host=m.job.host,
            start=round(m.started, 3), switchover=round(m.switchover, 3) if m.switchover is not None else None,
            end=round(self.now, 3), bytes=int(m.sent),
            blackout_ms=round(m.blackout * 1000.0, 1) if m.blackout is not None else None, outcome=outcome))

    # -- processes and turns ------------------------------------------------------------------------------------
    def phase(self, host, name, start, end=None):
        end = self.now if end is None else end
        self.phases[host].append(dict(phase=name, start=round(start, 3), end=round(end, 3)))

    def ask(self, process, action):
        """A host asks for its turn: granted (applied at once, as the roll_turn action applies it under its lock) or
        final, it goes on; else it waits and asks again at the roll's next poll after a change."""
        turn = roll.decide(self.state, process.host, action)
        if turn["granted"] or turn["final"]:
            self._grant(process, action, turn)
        else:
            self.waiting.append((process, action))

    def _grant(self, process, action, turn):
        if turn["granted"]:
            self._apply(process.host, action, turn=turn)
            if action == "enter":
                self.marked.update(turn["mark"])
            self._poll()
        self.at(self.now, process.step, turn)

    def _poll(self):
        """The waiting hosts ask again half a poll interval after a change (their next poll, on average)."""
        if self.waiting and not self._poll_pending:
            self._poll_pending = True
            self.at(self.now + self.cal.turn_poll_s / 2.0, self.recheck)

    def recheck(self):
        """Every waiting host asks again, in the roll's order, each on the state the ones before it left."""
        self._poll_pending = False
        for entry in sorted(self.waiting, key=lambda e: self._rank[e[0].host]):
            process, action = entry
            turn = roll.decide(self.state, process.host, action)
            if turn["granted"] or turn["final"]:
                self.waiting.remove(entry)
                self._grant(process, action, turn)

    def _apply(self, host, action, **data):
        self.state = roll.apply(self.state, host, action, **data)
        counts = {}
        for name, phase in self.state["phase"].items():
            if phase in roll.IN_MAINTENANCE:
                cluster = self.state["clusters"][name]
                counts[cluster] = counts.get(cluster, 0) + 1
        self.max_in_maintenance = max([self.max_in_maintenance] + list(counts.values()))

    def event(self, host, action, **data):
        self._apply(host, action, **data)
        self._poll()

    def process_ended(self, process):
        self.processes.remove(process)
        if not self.processes and self.batches:
            self._start_batch()

    def _start_batch(self):
        for host in self.batches.pop(0):
            process = _Process(self, host, self._cycle(host))
            self.processes.append(process)
            self.at(self.now, process.step)

    # -- the collection's cycle ---------------------------------------------------------------------------------
    def _cycle(self, host):
        """One host's maintenance cycle, as roles/maintain runs it in a roll."""
        cal, spec = self.cal, self.hosts[host]
        began = self.now
        turn = yield ("turn", "enter")
        if not turn["granted"]:
            self._leave(host, turn)
            return
        self.phase(host, "wait_enter", began)
        yield ("sleep", cal.step_overhead_s * len(turn["mark"] or [host]))  # the turn's task, then each mark
        start = self.now
        turn = yield ("turn", "drain")
        self.phase(host, "wait_drain", start)
        if not turn["granted"]:
            self._leave(host, turn)
            return
        # the checks run once the host's turn to be emptied came: they judge the cluster it will be emptied into
        start = self.now
        yield ("sleep", cal.step_overhead_s + cal.preflight_s)  # the turn's task, then preflight
        self.phase(host, "preflight", start)
        start = self.now
        yield ("sleep", spec.gate_before_s)
        self.phase(host, "gate_before", start)
        turn = yield ("turn", "drain")  # once more, just before the evacuation: has the roll stopped meanwhile?
        if not turn["granted"]:
            self._leave(host, turn)
            return
        yield ("sleep", cal.step_overhead_s)
        start = self.now
        outcomes = []
        for attempt in range(1 + max(0, int(self.options.retries))):
            if not self._on(host):
                break
            yield ("sleep", cal.step_overhead_s + cal.engine_overhead_s)  # the module's task and its own work
            job, blocked = self.evacuation(host, turn["avoid"], attempt)
            if blocked:
                break
            done = yield ("job", job)
            outcomes += done
            if not any(o.moved for o in done):
                break
        self.phase(host, "drain", start)
        yield ("sleep", cal.step_overhead_s)  # each event the cycle reports is a task of its own
        left = self._on(host)
        if left:
            self.event(host, "failed", reason="%s could not be emptied: %s still run there" % (host, ", ".join(left)))
            return
        self.event(host, "drained", moves=[dict(guest=o.guest, destination=o.destination, outcome=o.outcome)
                                           for o in outcomes])
        start = self.now
        yield ("sleep", cal.step_overhead_s + spec.reboot_s)
        self.phase(host, "reboot", start)
        if not spec.returns:
            self.down.add(host)
            self.event(host, "failed", reason="%s did not come back from its reboot" % host)
            return
        self.generation[host] = NEW
        start = self.now
        yield ("sleep", spec.gate_after_s + cal.step_overhead_s)
        self.phase(host, "gate_after", start)
        yield ("sleep", cal.step_overhead_s)
        self.event(host, "upgraded")
        start = self.now
        moved = []
        for attempt in range(1 + max(0, int(self.options.retries))):
            yield ("sleep", cal.step_overhead_s + cal.engine_overhead_s)
            first, rest = self.restoration(host, canary=attempt == 0)
            if first is None:
                break
            done = yield ("job", first)
            moved += done
            if rest is not None and any(o.moved for o in done):
                done = yield ("job", rest)
                moved += done
            if not self._away(host) or not any(o.moved for o in done):
                break
        self.phase(host, "restore", start)
        yield ("sleep", cal.step_overhead_s)
        away = self._away(host)
        if away:
            self.event(host, "failed", reason="%s: %s did not come home" % (host, ", ".join(away)))
            return
        self.marked.discard(host)
        self.event(host, "restored", moves=[dict(guest=o.guest, destination=o.destination, outcome=o.outcome)
                                            for o in moved])

    def _leave(self, host, turn):
        """A host the roll lets go without its cycle: a marked one leaves maintenance untouched."""
        if self.state["phase"][host] in (roll.ENTERED, roll.DRAINING):
            self.marked.discard(host)
            self.event(host, "released", reason=turn["why"])

    def _on(self, host):
        return sorted(name for name, where in self.where.items() if where == host)

    def _away(self, host):
        return sorted(name for name, guest in self.state["guests"].items()
                      if guest["home"] == host and self.where[name] != host)

    def evacuation(self, host, avoid, attempt=0):
        """(job, blocked): the engine's evacuation of ``host`` as placement.plan plans it on the cluster's hosts."""
        cluster = self.hosts[host].cluster
        names = self._on(host)
        guests = [self.guest_object(name) for name in names]
        destinations = [self.facts(h) for h in self.order if h != host and self.hosts[h].cluster == cluster
                        and h not in self.down]
        extra = dict(avoid=list(avoid or [])) if PLAN_AVOIDS else {}
        plan = placement.plan(guests, self.facts(host), destinations, self.limits, **extra)
        self.placed.setdefault(host, []).append(dict((m.guest, m.destination) for m in plan.moves))
        if not plan.proceed:
            self.failed_moves += len(plan.blocked)
            return None, True
        return _EngineJob(self, plan.moves, "evacuate", host, "evacuate" if not attempt else "evacuate again"), False

    def restoration(self, host, canary=True):
        """(first job, job of the rest or None): the engine's restore of ``host``: its guests away, planned by
        placement.restore_plan, the canary first on its own."""
        away = self._away(host)
        if not away:
            return None, None
        by_host = {host: []}
        for name in away:
            by_host.setdefault(self.where[name], []).append(self.guest_object(name, record=host))
        current = dict((h, self.facts(h)) for h in by_host if h != host)
        plan = placement.restore_plan(by_host, self.facts(host), current, self.limits)
        if not plan.moves:
            return None, None
        first = placement.canary(plan.moves)[0] if canary and self.options.canary and len(plan.moves) > 1 else None
        if first is None:
            return _EngineJob(self, plan.moves, "restore", host), None
        rest = [move for move in plan.moves if move is not first]
        return _EngineJob(self, [first], "restore", host, "restore canary"), _EngineJob(self, rest, "restore", host)

    # -- the references' roll -----------------------------------------------------------------------------------
    def _reference_roll(self):
        """Today's roll with a reference planner: one host at a time, every guest home, worst fit."""
        cal, slots = self.cal, REFERENCE_SLOTS[self.options.planner]
        for host in roll.order(self.order, lambda h: self.hosts[h].cluster):
            spec = self.hosts[host]
            if spec.phase == roll.SKIPPED:
                continue
            start = self.now
            yield ("sleep", cal.step_overhead_s + cal.engine_overhead_s + spec.gate_before_s + cal.step_overhead_s)
            self.phase(host, "gate_before", start)
            start = self.now
            self.marked.add(host)
            self.max_in_maintenance = max(self.max_in_maintenance, len(self.marked))
            for _attempt in range(1 + max(0, int(self.options.retries))):
                moves = self._worst_fit(host)
                if not moves:
                    break
                yield ("sleep", cal.step_overhead_s)
                yield ("job", _ReferenceJob(self, moves, "evacuate", host, slots))
            self.phase(host, "drain", start)
            if self._on(host):
                self.stopped = "%s could not be emptied" % host
                return
            start = self.now
            yield ("sleep", cal.step_overhead_s + spec.reboot_s)
            self.phase(host, "reboot", start)
            if not spec.returns:
                self.down.add(host)
                self.stopped = "%s did not come back from its reboot" % host
                return
            self.generation[host] = NEW
            start = self.now
            yield ("sleep", spec.gate_after_s + cal.step_overhead_s)
            self.phase(host, "gate_after", start)
            start = self.now
            for _attempt in range(1 + max(0, int(self.options.retries))):
                back = [Move(guest=n, action="migrate" if self.active[n] else "move_definition",
                             source=self.where[n], destination=host, memory_mib=self.guests[n].memory_mib)
                        for n in sorted(self.guests) if self.homes.get(n) == host and self.where[n] != host]
                if not back:
                    break
                yield ("sleep", cal.step_overhead_s)
                yield ("job", _ReferenceJob(self, back, "restore", host, slots))
            self.phase(host, "restore", start)
            self.marked.discard(host)
            for name in sorted(self.guests):
                if self.homes.get(name) == host and self.where[name] == host:
                    self.homes[name] = None
            if any(self.homes.get(n) == host for n in self.guests):
                self.stopped = "guests of %s did not come home" % host
                return

    def _worst_fit(self, host):
        cluster = self.hosts[host].cluster
        names = sorted(self._on(host), key=lambda n: (-self.guests[n].memory_mib, n))
        destinations = [h for h in self.order if h != host and self.hosts[h].cluster == cluster
                        and h not in self.down and h not in self.marked]
        room = dict((h, self.hosts[h].capacity_mib - self.hosts[h].reserve_mib - self.committed[h])
                    for h in destinations)
        moves = []
        for name in names:
            need = self.guests[name].memory_mib if self.active[name] else 0
            best = max(destinations, key=lambda h: (room[h], h), default=None)
            if best is None or room[best] < need:
                continue
            room[best] -= need
            if not self.homes.get(name):
                self.homes[name] = host
            moves.append(Move(guest=name, action="migrate" if self.active[name] else "move_definition", source=host,
                              destination=best, memory_mib=need))
        return moves

    # -- running ------------------------------------------------------------------------------------------------
    def run(self):
        options = self.options
        if options.planner != "collection":
            process = _Process(self, None, self._reference_roll())
            self.processes.append(process)
            self.at(0.0, process.step)
            self._loop()
            return self.result()
        hosts = [dict(name=h.name, cluster=h.cluster, capacity_mib=h.capacity_mib, phase=h.phase)
                 for h in self.fleet.hosts]
        guests = [dict(name=g.name, host=g.host, memory_mib=g.memory_mib, home=g.home,
                       home_demanded=g.home_demanded, active=g.active, anti_affinity=g.anti_affinity)
                  for g in self.fleet.guests]
        self.state = roll.new(hosts, guests, parallel_hosts=options.parallel_hosts, return_mode=options.return_mode,
                              overlap=options.overlap, parallel_clusters=options.parallel_clusters,
                              reserve_mib=self.limits.reserve_mib)
        self.refused = roll.refusal(self.state)
        if self.refused:
            return self.result()
        ordered = roll.order(self.order, lambda h: self.hosts[h].cluster, options.parallel_clusters)
        size = int(options.batch_size or len(ordered) or 1)
        self.batches = [ordered[i:i + size] for i in range(0, len(ordered), size)]
        self._start_batch()
        self._loop()
        if self.waiting:
            self.stopped = "the roll never granted %s" % ", ".join(
                "%s its %s turn" % (p.host, a) for p, a in self.waiting)
        elif self.state["stopped"]:
            self.stopped = self.state["stopped"]
        return self.result()

    def result(self):
        """The run's figures (see ``simulate``)."""
        options = self.options
        makespan = self.now
        taken = [h for h in self.order if any(p["phase"] == "restore" for p in self.phases[h])]
        complete = not self.refused and not self.stopped
        bound = lower_bound(self.fleet, options, hosts=None if complete else taken)
        slots = slot_bound(self.fleet, options, hosts=None if complete else taken)
        blackouts = sorted(self.blackouts)
        if options.planner == "collection" and self.state is not None:
            empty = roll.empty_at_end(self.state) if complete else []
        else:
            empty = [h for h in self.order if h not in set(self.where.values())]
        drains = [p["end"] - p["start"] for h in self.order for p in self.phases[h] if p["phase"] == "drain"]
        restores = [p["end"] - p["start"] for h in self.order for p in self.phases[h] if p["phase"] == "restore"]
        result = dict(
            planner=options.label, makespan_s=round(makespan, 1), bound_s=round(bound, 1),
            efficiency=round(bound / makespan, 4) if makespan > 0 else (1.0 if not self.refused else 0.0),
            slot_bound_s=round(slots, 1), slot_efficiency=round(slots / makespan, 4) if makespan > 0 else 0.0,
            blackout_p50_ms=round(_quantile(blackouts, 0.5) * 1000, 1),
            blackout_p99_ms=round(_quantile(blackouts, 0.99) * 1000, 1),
            blackout_max_ms=round(blackouts[-1] * 1000, 1) if blackouts else 0.0,
            moves=self.moved, moves_per_guest=round(self.moved / float(len(self.guests) or 1), 3),
            bytes_sent=int(self.bytes), min_headroom_mib=int(self.min_headroom), failed_moves=self.failed_moves,
            violations=self.violations, empty_at_end=len(empty), hosts_empty=empty,
            hosts_done=len(taken),
            conflicts=self.conflicts, stopped=self.stopped, refused=self.refused,
            max_in_maintenance=self.max_in_maintenance,
            drain_s=dict(total=round(sum(drains), 1), median=round(_median(drains), 1)),
            restore_s=dict(total=round(sum(restores), 1), median=round(_median(restores), 1)),
            overlap_s=round(overlapping(self.phases, "restore", "drain"), 1), calibration=self.cal.source)
        if self.trace:
            result["trace"] = dict(hosts=self.phases, moves=self.moves, batches=batches_of(self.state))
        return result


def _quantile(ordered, q):
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def overlapping(phases, first, second):
    """Seconds during which a ``first`` phase of one host and a ``second`` phase of another run at once."""
    spans_a = sorted((p["start"], p["end"], h) for h, items in phases.items() for p in items if p["phase"] == first)
    spans_b = sorted((p["start"], p["end"], h) for h, items in phases.items() for p in items if p["phase"] == second)
    total = 0.0
    for a_start, a_end, a_host in spans_a:
        cuts = []
        for b_start, b_end, b_host in spans_b:
            if b_host != a_host and b_start < a_end and b_end > a_start:
                cuts.append((max(a_start, b_start), min(a_end, b_end)))
        cuts.sort()
        reach = None
        for start, end in cuts:
            if reach is None or start > reach:
                total += end - start
                reach = end
            elif end > reach:
                total += end - reach
                reach = end
    return total


def simulate(fleet_, options=None, calibration=None, trace=False):
    """One roll over ``fleet_``: {planner, makespan_s, bound_s, efficiency, slot_bound_s and slot_efficiency (against
    ``slot_bound``), blackout_p50_ms, blackout_p99_ms,
    blackout_max_ms, moves, moves_per_guest, bytes_sent, min_headroom_mib, failed_moves, violations, empty_at_end,
    hosts_empty, hosts_done, stopped (why the roll stopped, or None), refused (roll.refusal's sentence, or None),
    max_in_maintenance, drain_s and restore_s ({total, median}), overlap_s (a restore beside another host's drain),
    calibration, and with ``trace`` the trace: {hosts: {host: [{phase, start, end}]}, moves: [{guest, source,
    destination, kind, host, start, switchover, end, bytes, blackout_ms, outcome}]}}."""
    return Sim(fleet_, options, calibration, trace=trace).run()


# ---------------------------------------------------------------------------------------------
# The forecast and the lab's check
# ---------------------------------------------------------------------------------------------

def _scaled(fleet_, calibration, faster):
    """(fleet, calibration) with every calibrated figure faster (``faster``) or slower by the calibration's spread:
    the migrations (fixed costs, and the stream cap, or the hosts' NICs when no stream cap binds), the steps of a
    cycle (Ansible's and the engine's overheads, preflight) and each host's reboot and gates."""
    factor = (1.0 + calibration.spread) if faster else max(0.05, 1.0 - calibration.spread)
    changes = dict((name, getattr(calibration, name) / factor) for name in (
        "start_s", "finish_s", "step_overhead_s", "engine_overhead_s", "playbook_overhead_s", "preflight_s"))
    nic = 1.0
    if calibration.stream_bps:
        changes["stream_bps"] = calibration.stream_bps * factor
    else:
        nic = factor
    hosts = [dataclasses.replace(h, nic_out_bps=h.nic_out_bps * nic, nic_in_bps=h.nic_in_bps * nic,
                                 reboot_s=h.reboot_s / factor, gate_before_s=h.gate_before_s / factor,
                                 gate_after_s=h.gate_after_s / factor) for h in fleet_.hosts]
    return Fleet(hosts=hosts, guests=fleet_.guests, seed=fleet_.seed), dataclasses.replace(calibration, **changes)


def forecast(fleet_, calibration=None, options=None, seeds=5):
    """The forecast of a roll: {makespan_s (median over the seeds), range_s [low, high] (over the seeds, and over
    the calibration's spread: the median seed again with every figure faster and slower by it), trace (the median
    run's), bytes, moves, blackout_p99_ms, calibration (where its figures come from), steps (one line per host:
    when it enters, drains, reboots and restores, where its guests go, what it sends), runs: every makespan}.

    ``fleet_`` is a Fleet, or a function of the seed that builds one (``from_cluster`` draws the dirty rates it
    is not given per seed)."""
    calibration = calibration or Calibration.lab()
    build = fleet_ if callable(fleet_) else (lambda seed: fleet_)
    runs = []
    for seed in range(max(1, int(seeds))):
        runs.append((simulate(build(seed), options, calibration, trace=True), seed))
    runs.sort(key=lambda item: item[0]["makespan_s"])
    median, seed = runs[(len(runs) - 1) // 2]
    spans = [r["makespan_s"] for r, _s in runs]
    if calibration.spread > 0:
        for faster in (True, False):
            scaled_fleet, scaled = _scaled(build(seed), calibration, faster)
            spans.append(simulate(scaled_fleet, options, scaled)["makespan_s"])
    return dict(makespan_s=median["makespan_s"], range_s=[min(spans), max(spans)], trace=median["trace"],
                batches=median["trace"].get("batches") or [],
                bytes=median["bytes_sent"], moves=median["moves"], blackout_p99_ms=median["blackout_p99_ms"],
                stopped=median["stopped"], refused=median["refused"], calibration=calibration.source,
                steps=trace_lines(median["trace"]), runs=[r["makespan_s"] for r, _s in runs])


def _clock(seconds):
    seconds = int(round(seconds))
    if seconds < 3600:
        return "%d:%02d" % (seconds // 60, seconds % 60)
    return "%d:%02d:%02d" % (seconds // 3600, (seconds % 3600) // 60, seconds % 60)


def batches_of(state):
    """The hosts marked in maintenance together, in the order they entered: [[hv1, hv2], [hv3]] (a roll's history:
    the host that entered first, then those it marked with it)."""
    batches = []
    for entry in state.get("history") or []:
        if entry.get("what") != "entered":
            continue
        note = entry.get("note") or ""
        if note.startswith("marked by ") and batches and note[len("marked by "):] in batches[-1]:
            batches[-1].append(entry["host"])
        else:
            batches.append([entry["host"]])
    return batches


def trace_lines(trace):
    """One line per host of a trace: its phases on the roll's clock, and where its guests went with the bytes."""
    by_host = {}
    for move in trace["moves"]:
        if move["outcome"] in ("migrated", "moved_definition"):
            by_host.setdefault((move["host"], move["kind"].split()[0]), []).append(move)
    lines = []
    for host in sorted(trace["hosts"], key=lambda h: (min([p["start"] for p in trace["hosts"][h]] or [0]), h)):
        phases = [p for p in trace["hosts"][host] if not p["phase"].startswith("wait")]
        if not phases:
            continue
        parts = []
        for phase in phases:
            text = "%s %s-%s" % (phase["phase"], _clock(phase["start"]), _clock(phase["end"]))
            kind = "evacuate" if phase["phase"] == "drain" else ("restore" if phase["phase"] == "restore" else None)
            moves = by_host.get((host, kind), []) if kind else []
            if moves:
                where = {}
                for move in moves:
                    key = move["destination"] if kind == "evacuate" else move["source"]
                    where[key] = where.get(key, 0) + 1
                text += " (%d guest(s), %.1f GiB sent, %s %s)" % (
                    len(moves), sum(m["bytes"] for m in moves) / float(1 << 30), "to" if kind == "evacuate" else "from",
                    ", ".join("%s %d" % item for item in sorted(where.items())))
            parts.append(text)
        lines.append("%s: %s" % (host, "; ".join(parts)))
    return lines


def predict_evacuation(guests=8, memory_mib=256, calibration=None, destinations=2, max_outbound=2, max_inbound=2,
                       pause_target_ms=placement.PAUSE_TARGET_MS, settle_s=None, playbook=False, planner="collection",
                       dirty_bps=0.0, zero_fraction=None, slots=None):
    """The simulated seconds of one host's evacuation of ``guests`` guests of ``memory_mib`` onto ``destinations``
    hosts, as the lab runs it: {seconds, moving_s, fixed_s, blackout_p50_ms, blackout_max_ms, in_flight_max}.

    ``planner`` collection: the engine (placement.plan, the executor's Schedule and window; ``settle_s`` None: the
    calibration's), its module's overhead, and with ``playbook`` Ansible's around it (evacuate.yml); a reference
    (``slots`` per host, None: one at a time): virsh-style migrations holding their slots until libvirt's call
    returns, no module. For the check against the lab's own evacuation of 8 guests (``make bench``); also gives
    the bytes sent and the moves that moved and failed."""
    calibration = calibration or Calibration.lab()
    if settle_s is not None:
        calibration = dataclasses.replace(calibration, settle_s=float(settle_s))
    names = ["hv%d" % (index + 1) for index in range(destinations + 1)]
    hosts = [HostSpec(name=name, cluster="lab", capacity_mib=1 << 30, reserve_mib=0, nic_out_bps=calibration.nic_bps,
                      nic_in_bps=calibration.nic_bps, machine="machine" if calibration.shared_machine else None)
             for name in names]
    zero = calibration.zero_fraction if zero_fraction is None else zero_fraction
    specs = [GuestSpec(name="g%02d" % (index + 1), host=names[0], memory_mib=memory_mib, zero_fraction=zero,
                       dirty_bps=dirty_bps, working_set_bytes=memory_mib * MIB * calibration.working_set_fraction)
             for index in range(guests)]
    options = Options(planner="collection", max_outbound=max_outbound, max_inbound=max_inbound,
                      pause_target_ms=pause_target_ms)
    sim = Sim(Fleet(hosts=hosts, guests=specs), options, calibration, trace=True)
    overhead = 0.0
    if planner == "collection":
        overhead = calibration.engine_overhead_s + (calibration.playbook_overhead_s if playbook else 0.0)
        job = _EngineJob(sim, placement.plan([sim.guest_object(g.name) for g in specs], sim.facts(names[0]),
                                             [sim.facts(n) for n in names[1:]], sim.limits).moves, "evacuate", names[0])
    else:
        moves = [Move(guest=g.name, action="migrate", source=names[0], destination=names[1 + i % destinations],
                      memory_mib=memory_mib) for i, g in enumerate(specs)]
        job = _ReferenceJob(sim, moves, "evacuate", names[0], slots)
    sim.at(overhead, job.start, lambda outcomes: None)
    sim._loop()  # pylint: disable=protected-access
    blackouts = sorted(sim.blackouts)
    return dict(seconds=round(sim.now, 3), moving_s=round(sim.now - overhead, 3), fixed_s=round(overhead, 3),
                blackout_p50_ms=round(_quantile(blackouts, 0.5) * 1000, 1),
                blackout_max_ms=round(blackouts[-1] * 1000, 1) if blackouts else 0.0, in_flight_max=sim.max_busy,
                bytes=int(sim.bytes), moved=sim.moved, failed=sim.failed_moves)
