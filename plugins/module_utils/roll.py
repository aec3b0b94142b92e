# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The decisions of a rolling upgrade: which host goes when, how many at once, and whether a host is skipped or
resumes. Pure, standard library only: the playbooks ask it (through the roll_turn action and the filters), and the
fleet simulator (module_utils.fleetsim) drives the very same functions at the scale of a fleet.

The order
---------
Hosts keep their inventory order within their cluster (the inventory group its ``hostmaint_libvirt_cluster_group``
names). Clusters roll one after another, or all at once with ``parallel_clusters``.

A host's cycle, as a roll sees it
---------------------------------
``queued`` -> (turn ``enter``: it is marked in maintenance) ``entered`` -> (turn ``drain``) ``draining`` ->
(``drained``) ``upgrading`` (patch, reboot, gate) -> (``upgraded``) ``restoring`` -> (``restored``) ``done``.
A host at its target is ``skipped``; a host whose cycle failed is ``failed``, and then the roll stops: no host
enters after it, hosts marked but not drained leave maintenance untouched, hosts already past their drain finish
their cycle.

The turns (``decide``)
----------------------
- ``enter``: a host enters maintenance when it is the next queued host of its cluster, its cluster is rolling (the
  first unfinished one, or every cluster with ``parallel_clusters``), fewer than ``parallel_hosts`` (k) hosts of the
  cluster are in maintenance, and the hosts left in service can hold every guest that has to leave the hosts in
  maintenance, with the reserve on each (N+k; ``fits``). With ``overlap``, a host that is restoring does not count
  against k: its restore may run beside the next host's drain. The host that enters marks, in the same turn, the
  next queued hosts of its cluster as long as k and the room allow: a batch is marked before any host of it plans,
  so no guest is placed on a host that is about to be emptied.
- ``drain``: one evacuation at a time per cluster (each plans on what the previous one left: two plans never
  compete for one host's memory), in order; and not while a guest whose home is upgrading or restoring runs on the
  host: that home's restore, which needs no turn, would move the same guest (libvirt refuses the second migration
  of a guest, and a run would fail).
- ``restore`` needs no turn: a host's guests come home as soon as it passed its gate.

A host's checks (preflight, gate) run after its drain turn, so that they judge the cluster it will be emptied
into; it asks for the drain turn once more just before its evacuation, and leaves the roll untouched if the roll
stopped meanwhile.

Room is memory: each host's ``capacity_mib`` (what it can give guests in all: its free memory and what its own
guests use when the roll was planned, or the capacity its inventory declares) less the guests on it. ``fits``
packs biggest first, each on the host with the most room left, and keeps anti-affinity groups apart, as placement
does; it is the roll's own check, cheap enough to ask at every turn of a fleet of thousands of guests.

The state is a plain dict (JSON), kept by the controller in one file for the whole roll (the roll_turn action)
and by the simulator in memory.
"""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError

DEFAULT_CLUSTER = "hypervisors"
VERSION = 1

QUEUED, ENTERED, DRAINING, UPGRADING, RESTORING = "queued", "entered", "draining", "upgrading", "restoring"
DONE, SKIPPED, FAILED = "done", "skipped", "failed"
IN_MAINTENANCE = (ENTERED, DRAINING, UPGRADING, RESTORING)
FINISHED = (DONE, SKIPPED, FAILED)
PHASES = (QUEUED,) + IN_MAINTENANCE + FINISHED
RETURN_MODES = ("home", "stay")
ACTIONS = ("enter", "drain")
EVENTS = ("drained", "upgraded", "restored", "failed", "released")


def clusters(hosts, cluster_of):
    """[(cluster, [hosts in order])], clusters in the order of their first host."""
    found = {}
    for host in hosts:
        found.setdefault(cluster_of(host) or DEFAULT_CLUSTER, []).append(host)
    return list(found.items())


def order(hosts, cluster_of, parallel=False):
    """The hosts in the order a roll takes them: cluster after cluster, or interleaved (one of each cluster in turn)
    when the clusters roll in parallel."""
    groups = [members for _name, members in clusters(hosts, cluster_of)]
    if not parallel:
        return [host for members in groups for host in members]
    ordered = []
    for index in range(max((len(m) for m in groups), default=0)):
        ordered += [members[index] for members in groups if index < len(members)]
    return ordered


def skip(host, unfinished, marked, found, target="", pending=True):
    """(skipped, sentence): whether the roll leaves ``host`` alone because it is at its target already.

    A host with an unfinished maintenance cycle (``unfinished``: its state file exists) or in maintenance
    (``marked``) is never skipped: the cycle resumes there. Otherwise, with a ``target`` generation, a host whose
    generation (``found``) is at least the target is skipped; without one, a host with no update pending.
    """
    if unfinished or marked:
        why = "an unfinished maintenance cycle" if unfinished else "its maintenance mark"
        return False, "%s has %s: its cycle resumes" % (host, why)
    if target:
        if generation.compare(found, target) >= 0:
            return True, "%s is at the target (%s, target %s): skipped" % (host, found, target)
        return False, "%s is below the target (%s, target %s)" % (host, found, target)
    if not pending:
        return True, "%s is at the target (no update pending, %s): skipped" % (host, found)
    return False, "%s has updates pending" % host


# ---------------------------------------------------------------------------------------------
# One host's maintenance cycle (roles/maintain): which steps run, and what a stop says.
# ---------------------------------------------------------------------------------------------

# maintain's steps, in order; only those that change the host are kept as done in its state file, so that a run
# that stopped resumes after them (the checks run again: what they judged may have changed).
CYCLE = ("preflight", "gate_before", "evacuate", "patch", "gate_after", "restore")
KEPT = ("evacuate", "patch")


def cycle(host, done, state_file=""):
    """What maintain runs on ``host`` given the steps a stopped run finished (``done``, from its state file):
    {run: [steps in order], done: [kept steps], resume: the sentence that says so, or ''}."""
    unknown = [str(step) for step in (done or []) if step not in CYCLE]
    if unknown:
        raise DecisionError("%s's maintenance state names steps no cycle has: %s" % (host, ", ".join(unknown)))
    done = [step for step in done or [] if step in KEPT]
    run = [step for step in CYCLE if step not in done and not (
        step in ("preflight", "gate_before") and "evacuate" in done)]
    resume = ""
    if done:
        resume = "%s: resuming after %s%s" % (host, ", ".join(done), (" (from %s)" % state_file) if state_file else "")
    return dict(run=run, done=done, resume=resume)


def step_done(done, step):
    """The kept steps after ``step`` finished: only the steps that change the host are kept."""
    done = list(done or [])
    if step in KEPT and step not in done:
        done.append(step)
    return done


def stopped(host, step, message, done):
    """The sentence that ends a cycle stopped at ``step``: where the host stands, and how to resume."""
    done = list(done or [])
    if "evacuate" not in done:
        where = "was not touched"
    elif step == "restore":
        where = "may have guests still away (see the report)"
    else:
        where = "stays in maintenance"
    resume = ("after " + ", ".join(done)) if done else "from the start"
    return ("maintenance of %s stopped at step %s: %s. %s %s; fix the cause and run the same playbook again: it "
            "resumes %s." % (host, step or "unknown", message or "failed", host, where, resume))


# ---------------------------------------------------------------------------------------------
# A roll of many hosts: the shared state and the turns.
# ---------------------------------------------------------------------------------------------

def _int(value, label, least=0):
    if isinstance(value, bool):
        raise DecisionError("invalid %s %r: expected a whole number" % (label, value))
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise DecisionError("invalid %s %r: expected a whole number" % (label, value))
    if number < least or float(value) != number:
        raise DecisionError("invalid %s %r: expected a whole number of %d or more" % (label, value, least))
    return number


def new(hosts, guests, parallel_hosts=1, return_mode="home", overlap=False, parallel_clusters=False,
        reserve_mib=1024, run_id=None):
    """The state of a roll before its first turn.

    ``hosts``: dicts in inventory order with ``name``, ``cluster``, ``capacity_mib`` and optionally ``phase`` (a
    host at its target: ``skipped``; one whose cycle stopped after its drain: ``upgrading``; one marked in
    maintenance: ``entered``; else ``queued``) and ``reason``. ``guests``: dicts with ``name``, ``host`` (where it
    runs), ``memory_mib``, and optionally ``home`` (the host its migration record names), ``anti_affinity``,
    ``home_demanded`` (its settings say return="home") and ``active`` (default true; a shut-off guest needs no
    room). Raises DecisionError, one sentence, on bad input.
    """
    k = _int(parallel_hosts, "rolling_upgrade_parallel_hosts", 1)
    if return_mode not in RETURN_MODES:
        raise DecisionError("invalid rolling_upgrade_return %r: expected home or stay" % (return_mode,))
    reserve = _int(reserve_mib, "reserve_mib")
    names, by_cluster, phases, capacity, reasons = [], {}, {}, {}, {}
    for host in hosts:
        name = host.get("name")
        if not name or name in phases:
            raise DecisionError("invalid roll: a host has no name or is named twice (%r)" % (name,))
        phase = host.get("phase") or QUEUED
        if phase not in PHASES:
            raise DecisionError("invalid roll: host %s has the unknown phase %r" % (name, phase))
        names.append(name)
        by_cluster[name] = host.get("cluster") or DEFAULT_CLUSTER
        phases[name] = phase
        capacity[name] = _int(host.get("capacity_mib") or 0, "capacity of %s in MiB" % name)
        if host.get("reason"):
            reasons[name] = host["reason"]
    table = {}
    for guest in guests:
        name = guest.get("name")
        if not name or name in table:
            raise DecisionError("invalid roll: a guest has no name or is named twice (%r)" % (name,))
        if guest.get("host") not in phases:
            raise DecisionError("invalid roll: guest %s runs on %r, which is not a host of the roll" % (
                name, guest.get("host")))
        table[name] = dict(host=guest["host"], memory_mib=_int(guest.get("memory_mib") or 0, "memory of %s" % name),
                           home=guest.get("home") or None, anti_affinity=guest.get("anti_affinity") or None,
                           home_demanded=bool(guest.get("home_demanded")), active=guest.get("active", True) is not False)
    return dict(version=VERSION, run_id=run_id, order=names, clusters=by_cluster, phase=phases, capacity_mib=capacity,
                guests=table, reasons=reasons, stopped=None, history=[],
                options=dict(parallel_hosts=k, return_mode=return_mode, overlap=bool(overlap),
                             parallel_clusters=bool(parallel_clusters), reserve_mib=reserve))


def cluster_hosts(state, cluster):
    return [h for h in state["order"] if state["clusters"][h] == cluster]


def load_mib(state):
    """{host: memory of the active guests on it}."""
    load = dict((h, 0) for h in state["order"])
    for guest in state["guests"].values():
        if guest["active"]:
            load[guest["host"]] += guest["memory_mib"]
    return load


def _names(hosts):
    hosts = list(hosts)
    if len(hosts) <= 1:
        return "".join(hosts)
    return "%s and %s" % (", ".join(hosts[:-1]), hosts[-1])


def fits(state, cluster, out):
    """(True, None), or (False, the sentence that says why) when the hosts of ``cluster`` that are neither in
    ``out`` nor in maintenance cannot hold every active guest on the hosts of ``out`` (with the reserve on each).
    Biggest guest first, each on the host with the most room left; a guest never joins a host where a guest of
    its anti-affinity group runs or was put."""
    out = set(out)
    reserve = state["options"]["reserve_mib"]
    load = load_mib(state)
    members = cluster_hosts(state, cluster)
    open_hosts = [h for h in members if h not in out and state["phase"][h] not in IN_MAINTENANCE]
    room = dict((h, state["capacity_mib"][h] - reserve - load[h]) for h in open_hosts)
    groups = dict((h, set()) for h in open_hosts)
    movers = []
    for name, guest in state["guests"].items():
        if guest["host"] in open_hosts:
            if guest["active"] and guest["anti_affinity"]:
                groups[guest["host"]].add(guest["anti_affinity"])
        elif guest["host"] in out and guest["active"]:
            movers.append((name, guest))
    movers.sort(key=lambda item: (-item[1]["memory_mib"], item[0]))
    for name, guest in movers:
        group = guest["anti_affinity"]
        candidates = [h for h in open_hosts if not (group and group in groups[h])]
        best = max(candidates, key=lambda h: (room[h], h), default=None)
        if best is None or room[best] < guest["memory_mib"]:
            if not open_hosts:
                why = "no host of the cluster would be left in service"
            elif best is None:
                why = "every other host runs a guest of its anti-affinity group %s" % group
            else:
                why = "the most room left is %d MiB, on %s" % (max(room[best], 0), best)
            return False, ("without %s, cluster %s cannot hold every guest with the %d MiB reserve on each host: %s "
                           "needs %d MiB, and %s" % (_names(sorted(out, key=state["order"].index)), cluster, reserve,
                                                     name, guest["memory_mib"], why))
        room[best] -= guest["memory_mib"]
        if group:
            groups[best].add(group)
    return True, None


def _rolling(state, cluster):
    """Whether ``cluster`` may take a turn now: every cluster with parallel_clusters, else the first one with a
    host not finished."""
    if state["options"]["parallel_clusters"]:
        return True
    for host in state["order"]:
        if state["phase"][host] not in FINISHED:
            return state["clusters"][host] == cluster
    return True


def _busy(state, cluster):
    """The hosts of ``cluster`` that count against k: in maintenance, less the restoring ones with overlap."""
    overlap = state["options"]["overlap"]
    return [h for h in cluster_hosts(state, cluster)
            if state["phase"][h] in IN_MAINTENANCE and not (overlap and state["phase"][h] == RESTORING)]


def _next_queued(state, cluster, after=()):
    return [h for h in cluster_hosts(state, cluster) if state["phase"][h] == QUEUED and h not in after]


def _turn(granted, why, final=False, mark=(), avoid=(), in_maintenance=()):
    return dict(granted=bool(granted), why=why, final=bool(final), mark=list(mark), avoid=list(avoid),
                in_maintenance=list(in_maintenance))


def in_maintenance(state, host):
    """The hosts of ``host``'s cluster in maintenance (its gates leave them out: they may be rebooting)."""
    return _maintained(state, state["clusters"][host])


def down(state, host):
    """The other hosts of ``host``'s cluster that may not answer now: emptied and upgrading (patch, reboot, gate).
    They hold no guest (their evacuation moved every one), so an evacuation or a restore leaves them out of its
    hosts rather than wait for one that reboots."""
    return [h for h in cluster_hosts(state, state["clusters"][host]) if h != host and state["phase"][h] == UPGRADING]


def _maintained(state, cluster):
    return [h for h in cluster_hosts(state, cluster) if state["phase"][h] in IN_MAINTENANCE]


def _leaving(state, cluster):
    """The hosts of ``cluster`` in maintenance whose guests must be elsewhere: all but the restoring ones (their
    guests are on their way home, and stay)."""
    return [h for h in _maintained(state, cluster) if state["phase"][h] != RESTORING]


def decide(state, host, action):
    """The answer to ``host`` asking for its turn to ``action`` (enter or drain), from ``state`` alone:
    {granted, why (a sentence), final (true: it will never be granted; the host leaves the roll), mark (the hosts
    the caller marks in maintenance now, itself first), avoid (hosts its evacuation should use last: the next ones
    to be emptied), in_maintenance (the hosts of its cluster in maintenance, for its gates), down (``down``),
    phase (the host's phase when it asked)}."""
    turn = _decide(state, host, action)
    turn["phase"] = state["phase"][host]
    turn["down"] = down(state, host)
    return turn


def _decide(state, host, action):
    if action not in ACTIONS:
        raise DecisionError("invalid roll turn %r: expected enter or drain" % (action,))
    if host not in state["phase"]:
        raise DecisionError("%s is not a host of this roll" % host)
    cluster = state["clusters"][host]
    phase = state["phase"][host]
    k = state["options"]["parallel_hosts"]
    maintained = _maintained(state, cluster)
    if state["stopped"] and (phase in (QUEUED, ENTERED) or (phase == DRAINING and action == "drain")):
        return _turn(False, "%s leaves the roll untouched: %s" % (host, state["stopped"]), final=True,
                     in_maintenance=maintained)
    if action == "enter":
        if phase in IN_MAINTENANCE or phase in FINISHED:
            return _turn(phase in IN_MAINTENANCE, "%s is %s already" % (host, phase), final=phase in FINISHED,
                         avoid=_next_queued(state, cluster)[:1], in_maintenance=maintained)
        if not _rolling(state, cluster):
            return _turn(False, "%s waits: cluster %s rolls after the one before it" % (host, cluster),
                         in_maintenance=maintained)
        queued = _next_queued(state, cluster)
        if queued[0] != host:
            return _turn(False, "%s waits: %s goes first" % (host, queued[0]), in_maintenance=maintained)
        busy = _busy(state, cluster)
        if len(busy) >= k:
            return _turn(False, "%s waits: %d host(s) of cluster %s in maintenance (%s), at most %d at once" % (
                host, len(busy), cluster, _names(busy), k), in_maintenance=maintained)
        leaving = _leaving(state, cluster)
        ok, why = fits(state, cluster, leaving + [host])
        if not ok and maintained:
            return _turn(False, "%s waits: %s" % (host, why), in_maintenance=maintained)
        # not ok with nothing in maintenance: its own preflight says which guests cannot go, in its own words
        mark = [host]
        for other in queued[1:]:
            if len(busy) + len(mark) >= k or not fits(state, cluster, leaving + mark + [other])[0]:
                break
            mark.append(other)
        return _turn(True, "%s enters maintenance%s" % (host, (" with %s" % _names(mark[1:])) if mark[1:] else ""),
                     mark=mark, avoid=_next_queued(state, cluster, mark)[:1], in_maintenance=maintained + mark)
    # drain
    if phase in (DRAINING, UPGRADING, RESTORING):  # asked again before its evacuation, or a resumed cycle
        return _turn(True, "%s is %s already" % (host, phase), avoid=_next_queued(state, cluster)[:1],
                     in_maintenance=maintained)
    if phase != ENTERED:
        return _turn(False, "%s cannot be emptied: it is %s" % (host, phase), final=True, in_maintenance=maintained)
    draining = [h for h in cluster_hosts(state, cluster) if state["phase"][h] == DRAINING]
    if draining:
        return _turn(False, "%s waits: %s is being emptied (one evacuation at a time in cluster %s)" % (
            host, draining[0], cluster), in_maintenance=maintained)
    entered = [h for h in cluster_hosts(state, cluster) if state["phase"][h] == ENTERED]
    if entered[0] != host:
        return _turn(False, "%s waits: %s is emptied first" % (host, entered[0]), in_maintenance=maintained)
    for name, guest in sorted(state["guests"].items()):
        home = guest["home"]
        if guest["host"] == host and home and home != host and state["phase"].get(home) in (UPGRADING, RESTORING):
            # its restore (which needs no turn) would move the same guest as this drain: one of them would fail
            return _turn(False, "%s waits: %s, whose guest %s runs here, brings its guests home first" % (
                host, home, name), in_maintenance=maintained)
    return _turn(True, "%s is emptied now" % host, avoid=_next_queued(state, cluster)[:1], in_maintenance=maintained)


def _log(state, host, what, note=None):
    entry = dict(host=host, what=what, at=state.get("_now"))
    if note:
        entry["note"] = note
    state["history"].append(entry)


def apply(state, host, action, turn=None, moves=None, reason=None, at=None):
    """The state after ``host`` took a granted turn (``action`` enter or drain, with the ``turn`` decide gave) or
    reported an event (drained, upgraded, restored with its ``moves``; failed with its ``reason``; released: a
    host the roll marked that leaves it untouched). ``at`` (the caller's clock, any JSON value) is kept with each
    entry of the state's history. A new dict; ``state`` is not changed."""
    # a new state that shares what it does not change (a fleet's guest table is copied only entry by entry, for the
    # guests that moved): the simulator applies thousands of events to states of thousands of guests
    state = dict(state, phase=dict(state["phase"]), reasons=dict(state["reasons"]), history=list(state["history"]),
                 guests=dict(state["guests"]) if moves else state["guests"])
    state["_now"] = at
    phase = state["phase"].get(host)
    if phase is None:
        raise DecisionError("%s is not a host of this roll" % host)
    mode = state["options"]["return_mode"]
    if action == "enter":
        for name in (turn or {}).get("mark") or [host]:
            if state["phase"][name] == QUEUED:
                state["phase"][name] = ENTERED
                _log(state, name, ENTERED, "marked by %s" % host if name != host else None)
    elif action == "drain":
        if phase == ENTERED:
            state["phase"][host] = DRAINING
            _log(state, host, DRAINING)
    elif action in ("drained", "restored"):
        for move in moves or []:
            guest = state["guests"].get(move.get("guest"))
            if guest is None or not move.get("destination") or move.get("outcome") not in (
                    "migrated", "moved_definition", "started"):
                continue
            guest = state["guests"][move["guest"]] = dict(guest)
            guest["host"] = move["destination"]
            if action == "drained":
                if mode == "stay" and not guest["home_demanded"]:
                    guest["home"] = move["destination"]
                elif not guest["home"]:
                    guest["home"] = host
            elif guest["home"] == move["destination"]:
                guest["home"] = None
        state["phase"][host] = UPGRADING if action == "drained" else DONE
        _log(state, host, state["phase"][host])
    elif action == "upgraded":
        state["phase"][host] = RESTORING
        _log(state, host, RESTORING)
    elif action == "failed":
        state["phase"][host] = FAILED
        state["reasons"][host] = reason or "failed"
        if not state["stopped"]:
            state["stopped"] = "the roll stopped after %s failed" % host
        _log(state, host, FAILED, reason)
    elif action == "released":
        state["phase"][host] = SKIPPED
        state["reasons"][host] = reason or "left the roll untouched"
        _log(state, host, SKIPPED, reason)
    else:
        raise DecisionError("invalid roll event %r" % (action,))
    del state["_now"]
    return state


def refusal(state):
    """The sentence that refuses a roll before anything moves, or None: with k > 1, the first k hosts of each
    cluster (its first batch) must be able to leave at once (N+k), or the roll would not run as asked."""
    k = state["options"]["parallel_hosts"]
    if k < 2:
        return None
    for cluster in sorted(set(state["clusters"].values()), key=lambda c: state["order"].index(
            cluster_hosts(state, c)[0])):
        members = cluster_hosts(state, cluster)
        first = (_leaving(state, cluster) + _next_queued(state, cluster))[:k]
        if len(first) < 2:
            continue
        ok, why = fits(state, cluster, first)
        if not ok:
            return ("rolling_upgrade_parallel_hosts=%d cannot hold in cluster %s (%d hosts): %s; roll fewer hosts "
                    "at once, or make room" % (k, cluster, len(members), why))
    return None


def empty_at_end(state):
    """The hosts of the roll that end it with no guest (a roll whose guests stay leaves the last hosts empty)."""
    load = dict((h, 0) for h in state["order"])
    for guest in state["guests"].values():
        load[guest["host"]] += 1
    return [h for h in state["order"] if load[h] == 0 and state["phase"][h] == DONE]


def summary(state):
    """Counts by phase, the hosts in each, and whether the roll stopped."""
    phases = {}
    for host in state["order"]:
        phases.setdefault(state["phase"][host], []).append(host)
    return dict(phases=phases, stopped=state["stopped"], failed=dict((h, state["reasons"].get(h))
                                                                     for h in phases.get(FAILED, [])))
