# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan of a run, as a value: (Survey, limits) -> RunPlan, every write the run makes after its survey.

Standard library only (and the collection's model and placement modules), so plain pytest tests it. A run of
evacuate or restore is guard -> survey -> plan -> apply (CONTRIBUTING.md, "The layers"): the guard holds and
marks the host, the survey reads every host once (module_utils.survey), this module decides, and the module
applies the RunPlan (check mode stops before, with the same plan). The steps, in order:

1. remove the stale copies the survey found (placement.stale_copies): a copy is never planned, so it is never
   moved nor started as a second instance of its guest, and the plan does not wait for its removal;
2. the moves (placement.plan, placement.restore_plan) of the guests less those copies, with the records an
   evacuation writes: naming this host, for the guests that have none (their home is this host; the others keep
   theirs), or, with ``return_home`` false, naming where each guest lands, whatever it had (it stays there), except
   for the guests whose settings demand their home (``return="home"``), which are treated as with return_home true;
3. restore: clear the records of the guests home (``records_to_clear``, judged on what home shows after the
   moves), then end the maintenance.
"""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import RETURNS, DecisionError, RunPlan


def _without_copies(guests, host, copies):
    """``guests`` of ``host`` less the stale copies found there (by name and UUID)."""
    gone = set((c["guest"], c["uuid"]) for c in copies if c["host"] == host)
    return [g for g in guests if (g.name, g.uuid) not in gone]


def check_returns(guests):
    """Raise DecisionError, one sentence naming the guest and the value, for the first guest (by name) whose settings
    metadata's ``return`` attribute is none of model.RETURNS: a guest nobody can say where it belongs is not moved
    (evacuate judges it on the survey, before anything after it changes, as a malformed probe there)."""
    for guest in sorted(guests, key=lambda g: g.name):
        if guest.return_to is not None and guest.return_to not in RETURNS:
            raise DecisionError('return %r of guest %s in its settings metadata must be "home" (it demands its home) '
                                'or left out' % (guest.return_to, guest.name), guest=guest.name,
                                value=guest.return_to)


def home_after(move, guest, record, stays):
    """The host ``guest``'s migration record names once ``move`` is done (``Move.home_after``): where it lands for a
    guest that stays (``stays``), else the record it has, else ``record``'s (this host), else None."""
    if guest.name in stays:
        return move.destination or move.source
    if guest.record is not None:
        return guest.record.origin_host
    return record.origin_host if record is not None else None


def evacuation(survey, limits, run_id=None, record=None, avoid=(), return_home=True):
    """The RunPlan of an evacuation of ``survey.source``: remove the stale copies, then move this host's other
    guests (placement.plan on the destinations' facts, those named in ``avoid`` last), writing ``record`` (a
    MigrationRecord naming this host) on every guest that has no record yet.

    With ``return_home`` false, the guests stay where they land (``RunPlan.stays``): each gets ``record`` with its move
    whatever it had, and the executor makes it name the host the move takes it to (model.record_for), so that no
    restore brings it back; but a guest whose settings demand its home (``return="home"``) is treated as with
    ``return_home`` true. Each move's ``home_after`` says which host the record names afterwards. A ``return`` that is
    not "home" raises DecisionError (``check_returns``)."""
    source = survey.source.name
    guests = _without_copies(survey.guests, source, survey.stale_copies)
    check_returns(guests)
    moves = placement.plan(guests, survey.source, survey.destinations, limits, run_id=run_id,
                           disk_bytes=survey.disk_bytes, avoid=avoid)
    stays = [] if return_home else sorted(g.name for g in guests if not g.home_demanded)
    records = {}
    if record is not None:
        records = dict((g.name, record) for g in guests if g.record is None or g.name in stays)
    by_name = dict((g.name, g) for g in guests)
    for move in moves.moves:
        move.home_after = home_after(move, by_name[move.guest], record, stays)
    return RunPlan(kind="evacuate", stale_copies=list(survey.stale_copies), moves=moves, guests=guests,
                   records=records, stays=stays)


def restoration(survey, limits, run_id=None, came_home=()):
    """The RunPlan of a restore to ``survey.source`` (home): remove the stale copies, bring home the guests whose
    record names it (placement.restore_plan on every host's guests less those copies), then clear the records
    of the guests home and end the maintenance. ``came_home``: the guests earlier passes of the run brought home
    (a shut-off one among them is home, not a guest to start)."""
    guests_by_host = dict((host, _without_copies(guests, host, survey.stale_copies))
                          for host, guests in survey.guests_by_host.items())
    hosts = dict((facts.name, facts) for facts in survey.destinations)
    moves = placement.restore_plan(guests_by_host, survey.source, hosts, limits, run_id=run_id,
                                   disk_bytes=survey.disk_bytes, came_home=came_home)
    returning = [g for host, guests in sorted(guests_by_host.items()) if host != survey.source.name for g in guests
                 if placement.record_names(g.record, survey.source)]
    return RunPlan(kind="restore", stale_copies=list(survey.stale_copies), moves=moves, guests=returning,
                   clear_records=True, end_maintenance=True)


def would_remove(copies):
    """What check mode says of the stale copies a run would remove: the entries of the result's stale_copies."""
    return [dict(guest=c["guest"], host=c["host"], runs_on=c["runs_on"], removed=False,
                 note="a run removes it: %s runs on %s" % (c["guest"], c["runs_on"])) for c in copies]


def records_to_clear(home_guests, home, moved=()):
    """The guests of home (``home_guests``, as home shows them after the moves) whose migration record names it
    (``home``: its HostFacts) and that run there or came home in this run (``moved``: names), sorted: their
    records are cleared. A guest home but shut off that did not come home now keeps its record."""
    moved = set(moved)
    return sorted(g.name for g in home_guests if g.record is not None and placement.record_names(g.record, home)
                  and (g.active or g.name in moved))
