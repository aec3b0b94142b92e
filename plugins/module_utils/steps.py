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
   evacuation writes (the guests that have none);
3. restore: clear the records of the guests home (``records_to_clear``, judged on what home shows after the
   moves), then end the maintenance.
"""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import RunPlan


def _without_copies(guests, host, copies):
    """``guests`` of ``host`` less the stale copies found there (by name and UUID)."""
    gone = set((c["guest"], c["uuid"]) for c in copies if c["host"] == host)
    return [g for g in guests if (g.name, g.uuid) not in gone]


def evacuation(survey, limits, run_id=None, record=None, avoid=()):
    """The RunPlan of an evacuation of ``survey.source``: remove the stale copies, then move this host's other
    guests (placement.plan on the destinations' facts, those named in ``avoid`` last), writing ``record`` (a
    MigrationRecord naming this host) on every guest that has no record yet."""
    source = survey.source.name
    guests = _without_copies(survey.guests, source, survey.stale_copies)
    moves = placement.plan(guests, survey.source, survey.destinations, limits, run_id=run_id,
                           disk_bytes=survey.disk_bytes, avoid=avoid)
    records = dict((g.name, record) for g in guests if g.record is None) if record is not None else {}
    return RunPlan(kind="evacuate", stale_copies=list(survey.stale_copies), moves=moves, guests=guests,
                   records=records)


def restoration(survey, limits, run_id=None):
    """The RunPlan of a restore to ``survey.source`` (home): remove the stale copies, bring home the guests whose
    record names it (placement.restore_plan on every host's guests less those copies), then clear the records
    of the guests home and end the maintenance."""
    guests_by_host = dict((host, _without_copies(guests, host, survey.stale_copies))
                          for host, guests in survey.guests_by_host.items())
    hosts = dict((facts.name, facts) for facts in survey.destinations)
    moves = placement.restore_plan(guests_by_host, survey.source, hosts, limits, run_id=run_id,
                                   disk_bytes=survey.disk_bytes)
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
