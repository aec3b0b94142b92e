# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Placement: a whole-host plan before anything moves.

``plan`` empties one source host onto destinations; ``restore_plan`` brings guests back home.
Both are pure and return a Plan: moves (with wave and order), blocked guests with every reason per
destination, skipped guests, and (restore) guests that cannot come home. Nothing raises for a
guest that cannot move; only bad input raises DecisionError.

Evacuation, per guest (a guest lands in exactly one of moves, blocked, skipped):

- running, paused (stays paused) or otherwise active: live-migrated, needs memory on the destination;
- shut off and persistent: its definition moves (action move_definition), no memory needed, but
  it still goes only where preflight says it could run (CPU, machine type, networks, disks);
- shut off and transient: does not exist for libvirt; skipped (not_defined).

A guest that can move is always moved, whatever its policy. Its policy decides what happens when
it cannot (preflight problems everywhere, no room left, or anti-affinity):

- ``migrate`` (default): blocked; with ``allow_partial`` the rest may still move;
- ``fail``: blocked, and the plan may not proceed even with ``allow_partial``;
- ``shutdown``: a shutdown move on its own host, in the last wave (the guest is down for the
  shortest time, and not at all if the migrations before it fail); shut-off guests just stay;
- ``skip``: skipped, it stays where it is.

A guest whose policy is none of these (its settings metadata says ``policy="teleport"``, say) is blocked
with preflight's unknown_policy, whether or not it could move: nobody chose what happens to it. As for any
blocked guest, the rest moves only with ``allow_partial``. Restore brings such a guest home all the same.

Packing takes the guests biggest first (running ones by memory, then shut-off ones). Each goes to
the destination with the most room left among those with no preflight problem (worst fit: it
spreads load and leaves every host headroom). Worst fit can strand a guest that best fit would place, so when it leaves a guest out the
packing is redone best fit (least room that still fits) and the result that places more guests wins.
Anti-affinity: guests sharing a non-empty group never share a destination, nor join a destination
whose resident guests (``HostFacts.resident_groups``) carry that group.

Rolling upgrades: when destinations carry a generation (``HostFacts.generation``, ordered by
``generation.compare``), each guest tries its destinations in tiers, and worst or best fit chooses only
within the first tier that has room:

1. the newest generation among the destinations preflight lets the guest go to (a guest that lands
   there will not have to move again when the older hosts are upgraded), if not older than the source;
2. any other generation not older than the source's;
3. destinations with no generation (unknown: allowed, as before generations existed);
4. generations older than the source's: only when nothing above has room; the move says so in its
   reasons (code older_generation, then the problems of the destinations not older than the source).

Preferring the newest concentrates guests on fewer hosts, so the waves may use fewer inbound slots.
If the tiers leave a guest out that packing without them would place, the packing without them is
used (more guests moved wins, as between worst and best fit), and any move it sends to an older host
carries the older_generation reason. With no generation on any destination nothing changes.

Soft avoidance (``avoid``: the destinations a rolling upgrade empties next): an avoided destination comes after
every tier above, the older generations included. A guest goes to one only when no other destination can take it, and
the move says so in its reasons (code avoided, after older_generation when the host is older too, then the problems of
the destinations not avoided). As with the tiers, when keeping guests off avoided hosts would leave out a guest that
packing without that preference places, the packing without it is used, and its moves to avoided hosts say that too.
Names in ``avoid`` that are no destination are ignored (the caller warns). Without ``avoid`` nothing changes.

Placement adds three codes to preflight's: capacity (room used up by guests planned earlier),
anti_affinity, no_destination; and older_generation and avoided, notes on a move, never a block.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation, preflight
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    MIB,
    TRANSFER_ACTIONS,
    Blocked,
    DecisionError,
    HostFacts,
    Limits,
    Move,
    Plan,
    Problem,
    Skipped,
    memory_need_mib,
)

# The link a migration is assumed to have when no bandwidth cap says otherwise: 10 GbE (about 1190 MiB/s),
# only used to weigh a guest's dirty rate against its size when ordering the executor's queue.
DEFAULT_LINK_BPS = 1250 * 1000 * 1000


def _check_names(items, kind, label):
    """Every item (guest or host facts) has a name, and no name comes twice."""
    seen = set()
    for item in items:
        if not getattr(item, "name", None):
            raise DecisionError("invalid %s: a %s has no name" % (label, kind), **{kind: repr(item)})
        if item.name in seen:
            raise DecisionError("duplicate %s %s in the %s list" % (kind, item.name, kind))
        seen.add(item.name)


def _check_inputs(guests, hosts, limits):
    limits = (limits or Limits()).validate()
    _check_names(guests, "guest", "guest")
    for guest in guests:
        if memory_need_mib(guest) < 0:
            raise DecisionError("invalid guest %s: memory cannot be negative" % guest.name)
    _check_names(hosts, "host", "host facts")
    return limits


class _Tiers(object):
    """The generations of one plan's destinations, reduced to what packing compares.

    ``levels`` maps a destination name to (level, older): level ranks its generation among the
    destinations' known ones (0 the oldest, None unknown); older says it is older than the source's
    (False when either is unknown).
    """

    def __init__(self, source, destinations):
        unknown = generation.key(None)
        keys = dict((host.name, generation.key(host.generation)) for host in destinations)
        ranks = dict((k, index) for index, k in enumerate(sorted(set(k for k in keys.values() if k != unknown))))
        source_key = generation.key(source.generation if source is not None else None)
        self.source_name = source.name if source is not None else None
        self.source_generation = source.generation if source is not None else None
        self.levels = dict((name, (ranks.get(k), source_key != unknown and k != unknown and k < source_key))
                           for name, k in keys.items())
        self.active = bool(ranks)


# A destination's tier for one guest when hosts carry generations (see the module docstring), best first.
_NEWEST, _NEWER, _UNKNOWN, _OLDER = 0, 1, 2, 3


def _tier(room, newest):
    if room.older:
        return _OLDER
    if room.level is None:
        return _UNKNOWN
    return _NEWEST if room.level == newest else _NEWER


class _Room(object):
    """What is left on one destination while packing; ``tiers`` (a _Tiers) gives its generation's place, ``avoided``
    says the plan takes it last (``plan``'s ``avoid``)."""

    def __init__(self, host, limits, tiers=None, avoided=False):
        self.host = host
        self.avoided = avoided
        self.level, self.older = tiers.levels[host.name] if tiers is not None else (None, False)
        self.reserve = int(limits.reserve_mib)
        self.memory = int(host.memory_free_mib) - self.reserve
        self.hugepages = dict((int(size), int(free)) for size, free in (host.hugepages_free_mib or {}).items())
        self.groups = dict((group, None) for group in (host.resident_groups or []) if group)
        self.planned_mib = 0
        self.planned_hugepages_mib = 0

    def planned_for(self, guest):
        """MiB already planned from the pool this guest would use (hugepages or plain memory)."""
        return self.planned_hugepages_mib if guest.hugepages else self.planned_mib

    def free_for(self, guest):
        if guest.hugepages:
            return max(list(self.hugepages.values()) or [0])
        return self.memory

    def fits(self, guest, need):
        """Whether ``guest`` (needing ``need`` MiB) fits in what is left: no problem from ``_room_problems``."""
        if guest.anti_affinity and guest.anti_affinity in self.groups:
            return False
        return not guest.active or self.free_for(guest) >= need

    def contested(self, guest, need):
        """Whether this room refuses ``guest`` only because of guests planned before it (another packing
        might not): a planned guest holds its anti-affinity group, or planned guests took the memory."""
        if guest.anti_affinity and self.groups.get(guest.anti_affinity):
            return True
        return guest.active and self.free_for(guest) < need and self.planned_for(guest) > 0

    def take(self, guest):
        need = memory_need_mib(guest)
        if guest.active and guest.hugepages:
            # the smallest page size with room: the host default (2 MiB on x86) in practice
            for size in sorted(self.hugepages):
                if self.hugepages[size] >= need:
                    self.hugepages[size] -= need
                    break
            self.planned_hugepages_mib += need
        elif guest.active:
            self.memory -= need
            self.planned_mib += need
        if guest.anti_affinity:
            self.groups[guest.anti_affinity] = guest.name


def _room_problems(guest, room, verb_sentence):
    """Capacity and anti-affinity problems of one guest against one destination's remaining room.

    Code 'memory' when the destination never had the room, 'capacity' when guests planned before
    this one took it.
    """
    problems = []
    name = room.host.name
    group = guest.anti_affinity
    if group and group in room.groups:
        holder = room.groups[group]
        where = ("guest %s is planned there" % holder) if holder else "a guest of that group already runs there"
        problems.append(Problem(code="anti_affinity", guest=guest.name, destination=name,
                                message=verb_sentence(guest, name, "anti-affinity group %s: %s" % (group, where))))
    need = memory_need_mib(guest)
    free = room.free_for(guest)
    if guest.active and free < need:
        if guest.hugepages:
            have = "%d MiB of free hugepages" % max(free, 0)
        else:
            have = "%d MiB free after the %d MiB reserve" % (max(free, 0), room.reserve)
        planned = room.planned_for(guest)
        if planned:
            problems.append(Problem(code="capacity", guest=guest.name, destination=name, message=verb_sentence(
                guest, name, "destination has %s once %d MiB of guests planned before it are placed, guest needs "
                "%d MiB" % (have, planned, need))))
        else:
            problems.append(Problem(code="memory", guest=guest.name, destination=name, message=verb_sentence(
                guest, name, "destination has %s, guest needs %d MiB" % (have, need))))
    return problems


def _refusals(guest, rooms, statics, verb_sentence):
    """Every problem of ``guest`` with ``rooms`` as they are now (a room's preflight problems, else its room
    problems), and whether another packing might clear one (``_Room.contested``)."""
    need = memory_need_mib(guest)
    reasons = []
    contested = False
    for room in rooms:
        problems = statics.get(room.host.name)
        if not problems:
            problems = _room_problems(guest, room, verb_sentence)
            contested = contested or room.contested(guest, need)
        reasons.extend(problems)
    return reasons, contested


def _older_note(guest, chosen, tiers, better_fit, reasons, only_avoided=False):
    """The reasons of a move to a destination older than its source: the older_generation note first, then
    ``reasons``, the problems of the destinations that are not older (why the guest did not go there).
    ``only_avoided``: the destinations not older that had room for it are all avoided."""
    text = "%s goes to %s (generation %s), older than its source %s (generation %s): " % (
        guest.name, chosen.host.name, chosen.host.generation, tiers.source_name, tiers.source_generation)
    if better_fit:
        text += "a destination of generation %s or newer had room for it, but keeping guests off older hosts " \
                "would leave more guests without a destination" % tiers.source_generation
    elif only_avoided:
        text += "the destinations of generation %s or newer that have room for it are to be emptied next " \
                "(avoid)" % tiers.source_generation
    else:
        text += "no destination of generation %s or newer can take it" % tiers.source_generation
    return [Problem(code="older_generation", guest=guest.name, destination=chosen.host.name, message=text)] + reasons


def _avoided_note(guest, chosen, better_fit):
    """The note of a move to an avoided destination (one a rolling upgrade empties next), one sentence."""
    text = "%s goes to %s, a host to be emptied next (avoid): " % (guest.name, chosen.host.name)
    if better_fit:
        text += "another destination had room for it, but keeping guests off the hosts to be emptied next would " \
                "leave more guests without a destination"
    else:
        text += "no other destination can take it"
    return Problem(code="avoided", guest=guest.name, destination=chosen.host.name, message=text)


def _unique(problems):
    """``problems`` without repeats (by code, destination and message), in order."""
    seen, kept = set(), []
    for problem in problems:
        key = (problem.code, problem.destination, problem.message)
        if key not in seen:
            seen.add(key)
            kept.append(problem)
    return kept


def _pack(order, destinations, static, limits, tight, verb_sentence, tiers=None, prefer=True, avoid=frozenset()):
    """Place ``order`` (guests) greedily.

    Returns ({guest: destination}, {guest: [problems]} of the guests left out, {guest: [notes]} of the
    moves to older or avoided hosts, whether another packing might place a guest left out). With ``tiers`` (a
    _Tiers), each guest goes to the first tier that has room, and a destination named in ``avoid`` only when no
    other has room (when ``prefer``; without it the tiers and ``avoid`` only decide which moves get the
    older_generation and avoided notes). Problems are written only for the guests that need them.
    """
    rooms = [_Room(host, limits, tiers, host.name in avoid) for host in destinations]
    placed = {}  # type: Dict[str, str]
    failed = {}  # type: Dict[str, List[Problem]]
    notes = {}  # type: Dict[str, List[Problem]]
    contested = False
    pick = min if tight else max
    for guest in order:
        statics = static[guest.name]
        need = memory_need_mib(guest)
        fits = []
        newest = -1  # the newest level among the destinations preflight lets this guest go to, not older
        for room in rooms:
            if statics.get(room.host.name):
                continue
            if room.level is not None and not room.older and room.level > newest:
                newest = room.level
            if room.fits(guest, need):
                fits.append(room)
        if not fits:
            failed[guest.name], could = _refusals(guest, rooms, statics, verb_sentence)
            contested = contested or could
            continue
        # avoided destinations come last, after every tier: only when no other one has room
        welcome = [room for room in fits if not room.avoided] or fits
        pool = welcome if prefer else fits
        if tiers is None:
            chosen = pick(pool, key=lambda r: r.free_for(guest))
        else:
            ranks = [_tier(room, newest) for room in pool]
            best = min(ranks)
            within = [room for room, rank in zip(pool, ranks) if rank == best] if prefer else pool
            chosen = pick(within, key=lambda r: r.free_for(guest))
            if chosen.older:
                reasons = _refusals(guest, [room for room in rooms if not room.older], statics, verb_sentence)[0]
                newer = [room for room in fits if _tier(room, newest) in (_NEWEST, _NEWER)]
                notes[guest.name] = _older_note(guest, chosen, tiers, any(not room.avoided for room in newer),
                                                reasons, only_avoided=bool(newer))
        if chosen.avoided:
            reasons = _refusals(guest, [room for room in rooms if not room.avoided], statics, verb_sentence)[0]
            older = notes.get(guest.name, [])[:1]
            notes[guest.name] = _unique(older + [_avoided_note(guest, chosen, any(not r.avoided for r in fits))]
                                        + notes.get(guest.name, [])[1:] + reasons)
        chosen.take(guest)
        placed[guest.name] = chosen.host.name
    return placed, failed, notes, contested


def _packing_order(guests):
    """Active guests biggest first, then shut-off ones; names break ties so plans are stable."""
    return sorted(guests, key=lambda g: (not g.active, -memory_need_mib(g), g.name))


def _best_packing(order, destinations, static, limits, verb_sentence, tiers=None, avoid=frozenset()):
    """Worst fit; while a guest is left out, best fit, then (with generation tiers or avoided destinations) both
    without the tiers and the avoidance.

    The first packing that places the most guests wins; returns (placed, failed, notes) as ``_pack``. It
    stops early once the best so far leaves out only guests no packing could place (their every problem is
    preflight's, or the room or a resident group they would never have).
    """
    attempts = [(False, True), (True, True)]
    if tiers is not None or avoid:
        attempts += [(False, False), (True, False)]
    best = None
    for tight, prefer in attempts:
        result = _pack(order, destinations, static, limits, tight, verb_sentence, tiers, prefer, avoid)
        if best is None or len(result[0]) > len(best[0]):
            best = result
        if not best[3]:
            break
    return best[:3]


def _transfer_move(guest, source_name, destination, limits, disk_bytes):
    move = Move(guest=guest.name, uuid=guest.uuid, state=guest.state, source=source_name,
                destination=destination.name, action="migrate" if guest.active else "move_definition")
    if guest.active:
        move.memory_mib = memory_need_mib(guest)
        move.expected_bytes = move.memory_mib * MIB
    if limits.storage_copy_allowed(guest.name):
        copy = preflight.disks_to_copy(guest, destination)
        if copy:
            move.storage_copy = True
            move.copy_disks = [disk.target for disk in copy]
            if guest.active:  # a definition move copies no disk: only a live migration sends them
                sizes = (disk_bytes or {}).get(guest.name) or {}
                move.disk_bytes = sum(int(sizes.get(disk.path) or 0) for disk in copy)
                move.expected_bytes += move.disk_bytes
    return move


def _cannot_move(plan, guest, source_name, reasons):
    """Apply the guest's policy to a guest that cannot move."""
    if not guest.active:
        if guest.policy in ("shutdown", "skip"):
            reason = "%s cannot be moved and stays %s on %s (policy %s)" % (guest.name, guest.state, source_name,
                                                                            guest.policy)
            plan.skipped.append(Skipped(guest=guest.name, code="stays_off", problems=reasons, reason=reason))
        else:
            plan.blocked.append(Blocked(guest=guest.name, policy=guest.policy, state=guest.state, reasons=reasons))
        return
    if guest.policy == "shutdown":
        plan.moves.append(Move(guest=guest.name, uuid=guest.uuid, state=guest.state, source=source_name,
                               destination=None, action="shutdown", reasons=reasons))
    elif guest.policy == "skip":
        plan.skipped.append(Skipped(guest=guest.name, code="policy_skip", problems=reasons, reason=(
            "%s cannot live-migrate and stays on %s (policy skip)" % (guest.name, source_name))))
    else:
        plan.blocked.append(Blocked(guest=guest.name, policy=guest.policy, state=guest.state, reasons=reasons))


def schedule(moves, limits):
    """Give each move a wave and an order; returns the moves in order.

    Transfers (migrate, move_definition) go biggest first (longest processing time first). A wave
    holds at most ``max_outbound`` transfers per source and ``max_inbound`` per destination, and
    fills first with moves whose source and destination it does not use yet, then with moves to
    destinations it does not use yet, then with anything the limits allow, so large guests spread
    over the links. Starts (restore) need no link and join the first wave; shutdowns form the last
    wave. An executor that starts the next move in ``order`` as soon as the limits allow is never
    slower than running wave by wave.
    """
    limits = (limits or Limits()).validate()
    transfers = sorted([m for m in moves if m.action in TRANSFER_ACTIONS],
                       key=lambda m: (-m.expected_bytes, -m.memory_mib, m.guest))
    starts = sorted([m for m in moves if m.action == "start"], key=lambda m: m.guest)
    shutdowns = sorted([m for m in moves if m.action == "shutdown"], key=lambda m: m.guest)

    waves = []  # type: List[List[Move]]
    # One pass per wave over the moves not yet given a wave, from the first of them (head): O(n) per
    # wave at worst, and a wave ends as soon as every source's outbound slots are used.
    remaining = transfers
    done = [False] * len(remaining)
    left = {}  # type: Dict[str, int]
    for move in remaining:
        left[move.source] = left.get(move.source, 0) + 1
    head = 0
    while head < len(remaining):
        wave = []  # type: List[Move]
        outbound = {}  # type: Dict[str, int]
        inbound = {}  # type: Dict[Optional[str], int]
        sources = sum(1 for count in left.values() if count)
        full = 0  # sources whose outbound slots this wave has used up: then nothing more fits
        for rule in ("new_source_and_destination", "new_destination", "any"):
            for index in range(head, len(remaining)):
                if full >= sources or (rule == "new_source_and_destination" and len(outbound) >= sources):
                    break
                move = remaining[index]
                if done[index]:
                    continue
                if outbound.get(move.source, 0) >= limits.max_outbound:
                    continue
                if inbound.get(move.destination, 0) >= limits.max_inbound:
                    continue
                if rule != "any" and inbound.get(move.destination, 0):
                    continue
                if rule == "new_source_and_destination" and outbound.get(move.source, 0):
                    continue
                wave.append(move)
                done[index] = True
                left[move.source] -= 1
                outbound[move.source] = outbound.get(move.source, 0) + 1
                inbound[move.destination] = inbound.get(move.destination, 0) + 1
                if outbound[move.source] == limits.max_outbound:
                    full += 1
        while head < len(remaining) and done[head]:
            head += 1
        wave.sort(key=lambda m: (-m.expected_bytes, -m.memory_mib, m.guest))
        waves.append(wave)
    if starts:
        if waves:
            waves[0] = starts + waves[0]
        else:
            waves.append(starts)
    if shutdowns:
        waves.append(shutdowns)

    ordered = []
    for number, wave in enumerate(waves, 1):
        for move in wave:
            move.wave = number
            move.order = len(ordered) + 1
            ordered.append(move)
    return ordered


def plan(guests, source, destinations, limits=None, run_id=None, disk_bytes=None, avoid=()):
    """The evacuation plan for every guest of ``source`` onto ``destinations``.

    ``disk_bytes`` (optional, the survey's) maps a guest name to {disk path: bytes}: a storage-copy migration
    counts the disks it copies in ``Move.disk_bytes`` and ``expected_bytes`` (a disk not there counts 0).
    The generations of ``source`` and ``destinations`` (``HostFacts.generation``) order the destinations in tiers
    (module docstring); when no destination has one, the tiers play no part. ``avoid`` names destinations taken
    last, only for a guest no other destination can take (module docstring); other names in it are ignored.
    """
    destinations = list(destinations)
    limits = _check_inputs(guests, destinations, limits)
    source_name = source.name if source is not None else None
    result = Plan(kind="evacuate", source=source_name, run_id=run_id, allow_partial=bool(limits.allow_partial))

    movable = []
    static = {}  # type: Dict[str, Dict[str, List[Problem]]]
    for guest in guests:
        guest_problems = preflight.check_guest(guest)
        if any(problem.code == "not_defined" for problem in guest_problems):
            result.skipped.append(Skipped(guest=guest.name, code="not_defined", problems=guest_problems, reason=(
                "%s is transient and not running: libvirt holds nothing to move" % guest.name)))
            continue
        if guest_problems:
            _cannot_move(result, guest, source_name, guest_problems)
            continue
        static[guest.name] = dict((host.name, preflight.destination_problems(guest, source, host, limits))
                                  for host in destinations)
        movable.append(guest)

    tiers = _Tiers(source, destinations)
    avoided = frozenset(name for name in (avoid or ()) if name in set(host.name for host in destinations))
    placed, failed, notes = _best_packing(_packing_order(movable), destinations, static, limits, preflight.sentence,
                                          tiers if tiers.active else None, avoided)
    by_name = dict((host.name, host) for host in destinations)
    for guest in movable:
        if guest.name in placed:
            move = _transfer_move(guest, source_name, by_name[placed[guest.name]], limits, disk_bytes)
            move.reasons = notes.get(guest.name, [])
            result.moves.append(move)
            continue
        reasons = failed.get(guest.name) or [Problem(
            code="no_destination", guest=guest.name, destination=None,
            message=preflight.sentence(guest, None, "no destination host was given"))]
        _cannot_move(result, guest, source_name, reasons)

    result.moves = schedule(result.moves, limits)
    result.blocked.sort(key=lambda entry: entry.guest)
    result.skipped.sort(key=lambda entry: entry.guest)
    return result


def record_names(record, host):
    """Whether a migration record names ``host`` as the guest's origin (by UUID or by name)."""
    if record is None:
        return False
    if record.origin_host_uuid and host.uuid and record.origin_host_uuid == host.uuid:
        return True
    return record.origin_host in [name for name in (host.name, host.hostname) if name]


def is_stale_copy(left, running):
    """Whether ``left``, a definition of a guest on one host, is a stale copy of ``running``, the same guest on another
    host: ``left`` is shut off and persistent, ``running`` is active and persistent (defined there), and both have
    the same UUID. The one rule of what may be removed as such a copy: the survey's ``stale_copies``, the re-read just
    before a removal, and the executor's look at a failed move's two hosts all apply it. Both are Guests (anything
    with ``state``, ``persistent``, ``uuid`` and ``active``)."""
    return (left.state == "shutoff" and bool(left.persistent) and bool(left.uuid) and left.uuid == running.uuid
            and running.active and bool(running.persistent))


def stale_copies(guests_by_host, identities):
    """Definitions a migration left behind when its last step never ran: [{guest, uuid, host, runs_on}].

    libvirt undefines a migrated guest on its source only in the migration's last step, on the source's
    libvirtd; when that daemon restarts (or its connection drops) at that moment, the guest runs on the
    destination and its source keeps a shut-off definition of it. A copy is stale when ``is_stale_copy`` says
    so of it and of the same guest (name and UUID) on another host, and a migration record ties the two
    hosts: the running copy's record names the shut-off copy's host as its origin (an evacuation), or the
    shut-off copy's record names the running copy's host (a restore). Copies that no record of ours ties
    together are left alone (an operator's own standby definitions, say).
    ``identities`` maps host names to HostFacts (name, uuid, hostname) to match records against."""
    active = {}
    for host_name, guests in guests_by_host.items():
        for guest in guests:
            if guest.active and guest.uuid:
                active.setdefault((guest.name, guest.uuid), []).append((host_name, guest))
    found = []
    for host_name in sorted(guests_by_host):
        for guest in guests_by_host[host_name]:
            for other_host, running in active.get((guest.name, guest.uuid), []):
                if other_host == host_name or not is_stale_copy(guest, running):
                    continue
                here = identities.get(host_name) or HostFacts(name=host_name)
                there = identities.get(other_host) or HostFacts(name=other_host)
                if record_names(running.record, here) or record_names(guest.record, there):
                    found.append(dict(guest=guest.name, uuid=guest.uuid, host=host_name, runs_on=other_host))
                    break
    return found


def _home_sentence(guest, home_name, reason):
    return "cannot bring %s home to %s: %s" % (guest.name, home_name, reason)


def _start_sentence(guest, home_name, reason):
    return "cannot start %s on %s: %s" % (guest.name, home_name, reason)


def _pick_copies(guests_by_host, home):
    """One (host name, guest) per guest whose record names home: the running copy wins, then home's."""
    chosen = {}  # type: Dict[str, tuple]
    for host_name in sorted(guests_by_host):
        for guest in guests_by_host[host_name]:
            if not record_names(guest.record, home):
                continue
            key = guest.uuid or guest.name
            rank = (guest.active, host_name == home.name)
            if key not in chosen or rank > chosen[key][0]:
                chosen[key] = (rank, host_name, guest)
    return sorted([(host_name, guest) for rank, host_name, guest in chosen.values()], key=lambda pair: pair[1].name)


def restore_plan(guests_by_host, home, current_hosts, limits=None, run_id=None, disk_bytes=None, came_home=()):
    """Bring home every guest whose migration record names ``home``, from wherever it is.

    ``guests_by_host`` maps a host name to the guests found on it (home included); ``current_hosts``
    maps those host names to their facts. Guests without a record naming home are left out. ``disk_bytes``
    sizes the disks a storage copy brings home, as in ``plan``. ``came_home`` names the guests an earlier pass of
    the same restore brought home (their records are cleared at its end).

    - on home and running: skipped (already_home); the executor clears its record;
    - on home, shut off and in ``came_home``: its definition came home in an earlier pass: skipped (already_home),
      never started;
    - on home and shut off otherwise: it was shut down by policy; a start move (needs memory on home);
    - elsewhere and running or paused: migrated home; elsewhere and shut off: its definition moves.

    Home's room (free memory less the reserve, hugepages) goes to starts first, then to the
    smallest guests first, which brings the most guests home. A guest that does not fit, or that
    preflight blocks, is reported in ``not_home`` and stays where it is. Home's own maintenance mark
    is ignored: restore is what ends it.
    """
    all_guests = [guest for name in guests_by_host for guest in guests_by_host[name]]
    limits = (limits or Limits()).validate()
    for guest in all_guests:
        if not getattr(guest, "name", None):
            raise DecisionError("invalid guest: a guest has no name", guest=repr(guest))
    for host_name in guests_by_host:
        if host_name != home.name and host_name not in current_hosts:
            raise DecisionError("no host facts for %s, where guests to bring home to %s are" % (host_name, home.name))
    result = Plan(kind="restore", home=home.name, run_id=run_id, allow_partial=True)

    def not_home(guest, reasons):
        result.not_home.append(Blocked(guest=guest.name, policy=guest.policy, state=guest.state, reasons=reasons))

    def problem(code, guest, reason):
        return Problem(code=code, guest=guest.name, destination=home.name,
                       message=_home_sentence(guest, home.name, reason))

    needs_room = []
    for host_name, guest in _pick_copies(guests_by_host, home):
        if host_name == home.name:
            if guest.active:
                result.skipped.append(Skipped(guest=guest.name, code="already_home",
                                              reason="%s already runs on %s" % (guest.name, home.name)))
            elif guest.name in came_home:
                result.skipped.append(Skipped(guest=guest.name, code="already_home", reason=(
                    "%s came home shut off in an earlier pass of this restore" % guest.name)))
            else:
                needs_room.append((host_name, guest))
            continue
        current = current_hosts[host_name]
        if not current.reachable:
            reason = "its current host %s is unreachable" % host_name
            if current.unreachable_reason:
                reason += " (%s)" % current.unreachable_reason
            not_home(guest, [problem("unreachable", guest, reason)])
            continue
        # home's mark is what restore ends, its room is judged below, and a policy says what evacuation does
        problems = [p for p in preflight.check(guest, current, home, limits)
                    if p.code not in ("maintenance", "memory", "unknown_policy")]
        if problems:
            not_home(guest, problems)
            continue
        needs_room.append((host_name, guest))

    # starts first (those guests have been down the whole time), then the smallest guests first
    needs_room.sort(key=lambda pair: (pair[0] != home.name, memory_need_mib(pair[1]), pair[1].name))
    room = _Room(home, limits)
    for host_name, guest in needs_room:
        starting = host_name == home.name
        # a shut-off guest that is to start needs its memory like a running one
        seen_as = dataclasses.replace(guest, state="running") if starting else guest
        problems = _room_problems(seen_as, room, _start_sentence if starting else _home_sentence)
        if problems:
            not_home(guest, problems)
            continue
        room.take(seen_as)
        if starting:
            result.moves.append(Move(guest=guest.name, uuid=guest.uuid, state=guest.state, source=home.name,
                                     destination=home.name, action="start", memory_mib=memory_need_mib(guest)))
        else:
            result.moves.append(_transfer_move(guest, host_name, home, limits, disk_bytes))

    result.moves = schedule(result.moves, limits)
    result.not_home.sort(key=lambda entry: entry.guest)
    result.skipped.sort(key=lambda entry: entry.guest)
    return result


def canary(moves, named=None):
    """(first, rest): the migration to run on its own before the others, and the other moves in their order.

    The canary is the migrate move of the guest ``named`` (the operator's choice), else the smallest
    guest's migrate move (``memory_mib``, then name): the cheapest proof that the way home works. Other
    actions (start, move_definition, shutdown) are never the canary and stay in ``rest``. With no migrate
    move and no name, first is None. DecisionError when ``named`` is not a migrate move of ``moves``.
    """
    moves = list(moves)
    migrations = [move for move in moves if move.action == "migrate"]
    if named:
        chosen = [move for move in migrations if move.guest == named]
        if not chosen:
            other = [move.action for move in moves if move.guest == named]
            why = ("its move is %s, not a live migration" % other[0]) if other else "it is not among the planned moves"
            raise DecisionError("cannot take %s as the canary: %s" % (named, why), guest=named,
                                migrations=[move.guest for move in migrations])
        first = chosen[0]
    elif migrations:
        first = min(migrations, key=lambda move: (int(move.memory_mib or 0), move.guest))
    else:
        return None, moves
    return first, [move for move in moves if move is not first]


# ---------------------------------------------------------------------------------------------
# The executor's sliding window: which move to start next, and where a guest goes when its
# destination leaves the run. Pure: the executor calls these with what it knows now.
# ---------------------------------------------------------------------------------------------

def move_cost(move, dirty_rate_bps=0, link_bps=None):
    """Bytes a move is expected to send, weighted up for a guest that dirties memory while it is copied.

    Pre-copy sends a guest's memory about ``link / (link - dirty)`` times over when the guest rewrites
    ``dirty`` bytes per second of a ``link`` bytes-per-second stream (the rate is capped at 90 % of the
    link: beyond that only the convergence ladder ends the migration). ``expected_bytes`` (memory plus
    copied disks) or else the memory counts; a shut-off guest's definition costs nothing.
    """
    size = int(move.expected_bytes or 0) or int(move.memory_mib or 0) * MIB
    link = float(link_bps or DEFAULT_LINK_BPS)
    dirty = min(max(float(dirty_rate_bps or 0), 0.0), 0.9 * link)
    return size * link / (link - dirty)


def window_order(moves, dirty_rates=None, link_bps=None):
    """The executor's queue, to finish soonest: starts first (those guests have been down the whole time),
    then the transfers longest first (``move_cost``: size weighted by the guest's dirty rate when
    ``dirty_rates`` maps its name to bytes per second), then the shutdowns; plan order breaks ties."""
    dirty_rates = dirty_rates or {}

    def key(move):
        if move.action == "start":
            return (0, 0.0, move.order, move.guest)
        if move.action in TRANSFER_ACTIONS:
            return (1, -move_cost(move, dirty_rates.get(move.guest, 0), link_bps), move.order, move.guest)
        return (2, 0.0, move.order, move.guest)

    return sorted(moves, key=key)


def startable(queue, holding, in_flight, limits=None, source_windows=None, destination_windows=None):
    """The moves of ``queue`` to start now, in queue order (the sliding window).

    ``holding``: the transfers that hold their slots now (started, not yet switched over);
    ``in_flight``: every move started and not yet done. A transfer starts as soon as its source has fewer
    than ``max_outbound`` and its destination fewer than ``max_inbound`` transfers holding slots, counting
    the ones started just before it in this same call; a transfer that does not fit is passed over, not
    waited for, so a long migration never holds up shorter ones behind it on other hosts. A start needs
    no slot. A shutdown starts only when no transfer is queued or in flight (it only helps once the host
    can be emptied; the executor holds it back when a migration failed).

    ``source_windows`` / ``destination_windows`` (optional) map a host to its effective window
    (``adjust_window``): that host gets that many slots instead of its limit, never more than the limit
    and never fewer than 1. A host they do not name gets its limit.
    """
    limits = (limits or Limits()).validate()
    source_windows = source_windows or {}
    destination_windows = destination_windows or {}

    def slots(windows, host, limit):
        return max(1, min(int(limit), int(windows.get(host, limit))))

    outbound = {}  # type: Dict[str, int]
    inbound = {}  # type: Dict[Optional[str], int]
    for move in holding:
        if move.action in TRANSFER_ACTIONS:
            outbound[move.source] = outbound.get(move.source, 0) + 1
            inbound[move.destination] = inbound.get(move.destination, 0) + 1
    picks = []
    for move in queue:
        if move.action == "start":
            picks.append(move)
        elif move.action in TRANSFER_ACTIONS:
            if outbound.get(move.source, 0) >= slots(source_windows, move.source, limits.max_outbound):
                continue
            if inbound.get(move.destination, 0) >= slots(destination_windows, move.destination, limits.max_inbound):
                continue
            picks.append(move)
            outbound[move.source] = outbound.get(move.source, 0) + 1
            inbound[move.destination] = inbound.get(move.destination, 0) + 1
    transfers_left = any(m.action in TRANSFER_ACTIONS for m in list(queue) + list(in_flight))
    if not transfers_left:
        picks.extend(move for move in queue if move.action == "shutdown")
    return picks


# The pause QEMU reports for a finished migration (its downtime) grows with the migrations that share the
# link and the hosts' CPUs with it: on the lab, 3 at a time instead of 2 saved 6 % of the time and nearly
# tripled the worst pause. So the window of each source and each destination reacts to the pauses it sees.
#
# PAUSE_TARGET_MS: 150 ms, an operator's notion of an acceptable pause (not a measurement): above the
#   13-98 ms the lab measured with the ladder's 50 ms first downtime step (LadderPolicy), so that a quiet
#   run keeps its configured window, and well below the 342 ms measured at QEMU's own 300 ms default.
# PAUSE_NARROW_AT: a pause of 80 % of the target or more narrows the window by one at once (one such pause
#   is enough: the next ones would be as long, and a guest's pause is what its clients notice).
# PAUSE_WIDEN_AT / PAUSE_WIDEN_AFTER: the window widens by one again only after 2 pauses in a row of at
#   most half the target; widening is slower than narrowing so that the window does not flap.
PAUSE_TARGET_MS = 150
PAUSE_NARROW_AT = 0.8
PAUSE_WIDEN_AT = 0.5
PAUSE_WIDEN_AFTER = 2


def adjust_window(window, limit, downtime_ms, streak, target_ms, guest=None):
    """(new window, new streak, reason or None) after a migration that used this window switched over.

    ``window`` is the host's effective number of slots now (1 to ``limit``, its configured max_outbound or
    max_inbound), ``downtime_ms`` the pause QEMU reported for the finished migration (None: not known,
    nothing changes), ``streak`` how many pauses in a row so far were at most PAUSE_WIDEN_AT of the target,
    ``target_ms`` the pause target (0: the window never moves), ``guest`` the guest, named in the reason.

    - a pause of at least PAUSE_NARROW_AT of the target narrows the window by one (never below 1) and
      ends the streak;
    - a pause of at most PAUSE_WIDEN_AT of the target adds to the streak, and PAUSE_WIDEN_AFTER of them
      widen the window by one (never above ``limit``) and start a new streak; at the limit there is
      nothing to widen, so the streak stays 0;
    - a pause in between ends the streak.

    The reason is one sentence naming the guest and its pause; it is None when the window did not change.
    """
    if int(limit) < 1 or not 1 <= int(window) <= int(limit):
        raise DecisionError("invalid window %s: it must be from 1 to its limit %s" % (window, limit))
    if int(target_ms) < 0:
        raise DecisionError("invalid pause target %s ms: it must be 0 or more" % target_ms)
    window, limit, streak, target_ms = int(window), int(limit), int(streak), int(target_ms)
    if not target_ms or downtime_ms is None:
        return window, streak, None
    downtime_ms = int(downtime_ms)
    who = guest or "a migration"
    if downtime_ms >= PAUSE_NARROW_AT * target_ms:
        if window == 1:
            return window, 0, None
        return window - 1, 0, "%s paused %d ms at switchover, at least %d %% of the %d ms pause target" % (
            who, downtime_ms, round(PAUSE_NARROW_AT * 100), target_ms)
    if downtime_ms > PAUSE_WIDEN_AT * target_ms or window == limit:
        return window, 0, None
    streak += 1
    if streak < PAUSE_WIDEN_AFTER:
        return window, streak, None
    return window + 1, 0, "%s paused %d ms at switchover, the last of %d pauses in a row of at most %d %% of the " \
        "%d ms pause target" % (who, downtime_ms, streak, round(PAUSE_WIDEN_AT * 100), target_ms)


def replace(guests, source, destinations, limits=None, committed_mib=None, committed_groups=None, disk_bytes=None,
            avoid=()):
    """Place ``guests`` again on ``destinations`` (the ones still in the run), under the rules of ``plan`` (``avoid``
    too).

    The destinations' facts are those gathered before the run; ``committed_mib`` maps a destination to
    the memory the run already gave it (guests moved there, moving there or still queued for it) and
    ``committed_groups`` to the anti-affinity groups of those guests, so the room and the groups count
    as they will be. Returns a Plan of the guests alone: moves (with their new destinations), blocked
    and skipped guests, as ``plan`` would give them. The hosts' generations (``HostFacts.generation`` of
    ``source`` and ``destinations``) order the destinations in tiers as in ``plan``; ``disk_bytes`` sizes the disks
    of storage copies as in ``plan``.
    """
    committed_mib = committed_mib or {}
    committed_groups = committed_groups or {}
    remaining = []
    for host in destinations:
        remaining.append(dataclasses.replace(
            host, memory_free_mib=int(host.memory_free_mib) - int(committed_mib.get(host.name, 0)),
            resident_groups=sorted(set(host.resident_groups or []) | set(committed_groups.get(host.name, ())))))
    return plan(guests, source, remaining, limits, disk_bytes=disk_bytes, avoid=avoid)
