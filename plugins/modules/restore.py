#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: restore
short_description: Bring home every guest whose migration record names this hypervisor
version_added: 0.1.0
description:
  - Runs on a host back from maintenance. Finds, on this host and on every other host, the guests whose
    migration record (left by M(hostmaint.libvirt.evacuate)) names this host, plans the way home as one
    capacity problem, and migrates them back with the same engine and limits.
  - Guests already home are skipped; guests shut down by policy are started; shut-off guests get their
    definition moved back. Each guest that comes home live is watched for O(settle_s) after switchover, as in
    M(hostmaint.libvirt.evacuate).
  - A guest that does not fit at home, or that preflight blocks, is reported in C(plan.not_home) and keeps
    running where it is, and the run fails naming it unless O(fail_on_not_home) is false.
  - Clears the record of each guest that is home again, and the host's maintenance mark.
  - An error (a host that stops answering, a guest whose definition cannot be read) fails the task with one
    sentence naming the host or guest; the host keeps its maintenance mark, and once guests began to come home
    the result says which did. Running it again finishes the job.
  - This host's own hostname is not checked (preflight code C(hostname_unresolvable)); the migrations start on the
    other hosts, which must resolve it.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.engine
  - hostmaint.libvirt.progress
  - hostmaint.libvirt.connection.attributes
attributes:
  check_mode:
    support: full
    details: Returns the exact plan and changes nothing (the maintenance mark stays).
options:
  canary:
    description:
      - Bring one guest home first, on its own (O(canary_guest), else the smallest), and start the others only once it
        has switched over and passed its settle check (O(settle_s), and its probe if it has one). When the canary
        does not come home, the others stay where they are (outcome C(not_run)).
      - Only when more than one guest migrates home, or O(canary_guest) is given.
    type: bool
    default: true
  canary_guest:
    description: The guest to bring home first (see O(canary)); it must be one that migrates home in this run.
    type: str
  fail_on_not_home:
    description:
      - Fail the task when a guest cannot come home (it keeps running where it is, and the message names it).
      - Set it to V(false) to accept a partial restore; the guests still away are in RV(plan) (C(not_home)).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Bring hv3's guests home
  hostmaint.libvirt.restore:

- name: Bring guests home and insist that all of them come
  hostmaint.libvirt.restore:
    fail_on_not_home: true
"""

RETURN = r"""
changed:
  description: Whether a guest came home, was started, or a record or the maintenance mark was cleared.
  returned: always
  type: bool
canary:
  description: The guest that came (or tried to come) home first, on its own; null without a canary.
  returned: always
  type: str
  sample: web2
home:
  description: Guests whose record names this host and that run here after the run.
  returned: always
  type: list
  elements: str
  sample: [web1, web2]
plan:
  description: The restore plan; C(plan.not_home) lists the guests that cannot come home, with reasons.
  returned: always
  type: dict
  sample:
    moves: [{guest: web1, action: migrate, source: hv2, destination: hv1, wave: 1, order: 1}]
    not_home: []
    skipped: []
outcomes:
  description: One entry per move carried out (same keys as M(hostmaint.libvirt.evacuate)).
  returned: when not in check mode
  type: list
  elements: dict
  sample: []
records_cleared:
  description: Guests whose migration record was removed because they are home.
  returned: when not in check mode
  type: list
  elements: str
  sample: [web1]
maintenance_cleared:
  description: Whether this run removed the host's maintenance mark.
  returned: always
  type: bool
  sample: true
summary:
  description: Counts and totals of the run.
  returned: when not in check mode
  type: dict
  sample: {moves: 2, moved: 2, failed: 0, blocked: 0, not_run: 0, bytes_transferred: 190000000, max_downtime_ms: 40}
under_way:
  description:
    - Migrations found under way on this host when the run began, before it planned. Each has C(guest), C(direction)
      (V(in) or V(out)), C(action) (V(aborted), for one left running by a run whose hold was taken over, the guest
      staying here; V(waited), for every other one, which was let land or fail, at most 300 s), C(run_id) and
      C(reason).
  returned: when not in check mode
  type: list
  elements: dict
  sample: [{guest: web2, direction: out, action: aborted, run_id: 20261125T170000Z-9f8e7d,
            reason: "the migration of web2 that run 20261125T170000Z-9f8e7d left running (its process 4242 is gone) was aborted; web2 keeps running on hv1"}]
stale_copies:
  description:
    - As in M(hostmaint.libvirt.evacuate), for this host and its peers; a copy on a peer whose record names
      this host as its origin counts too. Never brought home; removed as the plan's first step, listed in check
      mode.
  returned: always
  type: list
  elements: dict
  sample: [{guest: web2, host: hv1, runs_on: hv2, removed: true,
            note: "removed: web2 runs on hv2, and a migration's last step never undefined it here"}]
taken_over:
  description: The hold of an earlier run on this host that this run took over because that run is provably gone (with C(why)), or null.
  returned: always
  type: dict
  sample: {run_id: 20261125T170000Z-9f8e7d, action: evacuate, pid: 4242, node: hv1, why: its process 4242 is gone}
stopped:
  description: Why the run stopped before its end (an operator's stop request, a signal, the controller gone), or null.
  returned: when not in check mode
  type: str
  sample: an operator asked it to stop (window closed)
passes:
  description: How many passes the run made (a further one follows a pass that brought guests home while others lacked room).
  returned: when not in check mode
  type: int
  sample: 1
unreachable:
  description: The hosts that could not be searched for this host's guests, each with why; the run fails when there is one.
  returned: always
  type: dict
  sample: {hv3: "cannot reach hv3 at 192.0.2.13 port 16514: timed out"}
run_id:
  description: This run's id.
  returned: always
  type: str
  sample: 20261125T190000Z-4d5e6f
window_changes:
  description:
    - Every change of a host's number of concurrent migrations during the run (see O(pause_target_ms)), in order;
      empty when nothing changed.
    - Each entry names the host as C(source) (its outbound slots) or C(destination) (its inbound slots), and gives
      C(at) (seconds since the run started), the slots C(from) and C(to), the C(guest) whose pause caused it, that
      pause (C(downtime_ms)) and the C(reason) in one sentence.
  returned: when not in check mode
  type: list
  elements: dict
  sample:
    - at: 2.51
      destination: hv1
      from: 2
      to: 1
      guest: web1
      downtime_ms: 180
      reason: web1 paused 180 ms at switchover, at least 80 % of the 150 ms pause target
"""

import dataclasses
import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils import steps as run_steps
from ansible_collections.hostmaint.libvirt.plugins.module_utils import survey as surveys
from ansible_collections.hostmaint.libvirt.plugins.module_utils.engine import EngineModule, shifted, summary
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MigrationOutcome
from ansible_collections.hostmaint.libvirt.plugins.module_utils.options import RESTORE_SPEC

# Passes over the guests still away: a further one when the last moved guests and others could not come home.
RESTORE_PASSES = 3


class Restore(EngineModule):
    """Guard (hold, settle), survey (each host read once), plan (a RunPlan, pure), then apply (remove the stale
    copies, bring the guests home, clear their records, end the maintenance); check mode returns the plan between
    plan and apply."""

    argument_spec = RESTORE_SPEC

    def run(self):
        local = self.adapter()
        self.check_named_guests([])  # options naming guests no host has: before the hold, by-name lookups only
        with self.held(local, "restore") as guard:  # a second run on this host refuses here
            survey = surveys.restoration(self, local)
            plan = self.plan(survey)
            result = guard.result
            result.update(run_id=self.run_id, plan=plan.moves.as_dict(), under_way=guard.under_way,
                          taken_over=self.taken_over(), unreachable=survey.unreachable,
                          stale_copies=run_steps.would_remove(plan.stale_copies))
            if self.module.check_mode:
                already = [s.guest for s in plan.moves.skipped if s.code == "already_home"]
                first = self.canary_of(plan.moves)
                result.update(changed=bool(plan.moves.moves) or survey.mark is not None or bool(already)
                              or bool(plan.stale_copies), maintenance_cleared=False,
                              home=sorted(already), canary=first.guest if first else None)
                return result
            guard.moving = True  # restore sets no mark: an error from here on says what came home
            return self.apply(local, survey, plan, result)

    def apply(self, local, survey, plan, result):
        """Remove the stale copies, bring the guests home in passes, clear their records and end the maintenance;
        the result, or the HostmaintError that says who did not come home."""
        moves, unreachable = plan.moves, survey.unreachable
        stale = self.remove_stale_copies(plan.stale_copies, survey)
        result["stale_copies"] = stale
        outcomes, changes, canary, passes, first, executed, cleared = [], [], None, 0, moves, [], []
        started = time.time()
        try:  # an error from here on ends the run saying what came home; the mark stays until restore finishes
            while moves.moves and passes < RESTORE_PASSES and not self.stop_reason():
                # a further pass when the last one moved guests and others are still away: room may have come free
                passes += 1
                unsafe = self.unsafe_guests(plan.guests, survey.pools)
                executor = self.executor(unsafe, ignore_marks=[self.self_name], probes=self.probes(plan.guests))
                done, more, named = self.run_with_canary(executor, moves, canary=passes == 1)
                outcomes += shifted(done, time.time() - started) if passes > 1 else done
                executed += moves.moves
                changes += more
                canary = canary or named
                if not moves.not_home or not any(o.moved for o in done) or any(o.failed for o in done):
                    break
                survey = surveys.restoration(self, local)  # what every host shows now
                plan = run_steps.restoration(survey, self.limits(), run_id=self.run_id,
                                             came_home=[o.guest for o in outcomes if o.moved])
                stale += self.remove_stale_copies(plan.stale_copies, survey)
                unreachable = survey.unreachable
                moves = dataclasses.replace(plan.moves, moves=[m for m in plan.moves.moves
                                                               if m.guest not in set(o.guest for o in outcomes)])
            if plan.clear_records:
                home_now = local.guests(pools=survey.pools)
                for name in run_steps.records_to_clear(home_now, survey.source, [o.guest for o in outcomes if o.moved]):
                    local.clear_record(name)
                    cleared.append(name)
            maintenance_cleared = local.clear_maintenance() if plan.end_maintenance else False
        except HostmaintError as exc:
            raise self.ended_by(exc, result, outcomes, changes, cleared) from exc
        stopped = self.stop_reason()
        cleaned = any(s["removed"] for s in stale)
        result.update(changed=bool(cleared) or maintenance_cleared or cleaned or any(o.moved for o in outcomes),
                      outcomes=[o.as_dict() for o in outcomes], summary=summary(outcomes), records_cleared=cleared,
                      maintenance_cleared=maintenance_cleared, home=cleared, canary=canary,
                      window_changes=[c.as_dict() for c in changes], passes=passes,
                      # every move of every pass; what stayed away, as the last look found it
                      plan=dataclasses.replace(first, moves=executed, not_home=moves.not_home).as_dict(),
                      unreachable=unreachable, stopped=stopped, stale_copies=stale)
        failed = [o for o in outcomes if not (o.moved or o.outcome == "started")]
        moved = set(o.guest for o in outcomes if o.moved or o.outcome == "started")
        away = sorted(set([b.guest for b in moves.not_home] + [o.guest for o in failed]) - moved)
        if stopped:
            raise HostmaintError("the restore of %s stopped because %s: %s came home, %s did not" % (
                self.self_name, stopped, ", ".join(sorted(moved)) or "no guest", ", ".join(away) or "no guest"),
                **result)
        if unreachable:
            raise HostmaintError("the restore of %s is not complete: %s; guests of %s may still run there (run "
                                 "restore.yml -l %s again once they answer)" % (
                                     self.self_name, "; ".join("%s did not answer (%s)" % item
                                                               for item in sorted(unreachable.items())),
                                     self.self_name, self.self_name), **result)
        if self.params["fail_on_not_home"] and away:
            raise HostmaintError("%s: %s did not come home" % (self.self_name, ", ".join(away)), **result)
        return result

    def plan(self, survey):
        """The RunPlan of this restore (module_utils.steps), from the survey alone; raises on input the survey proves
        wrong (options naming no guest, a canary that does not migrate home), before anything after it changes."""
        self.judge_named_guests(survey)
        plan = run_steps.restoration(survey, self.limits(), run_id=self.run_id)
        self.check_canary_guest(plan.moves)
        return plan

    def ended_by(self, error, result, outcomes, changes, cleared):
        """The HostmaintError that ends a run on an error once it began to bring guests home (or to clear their
        records): the host keeps its mark, the result says what came home."""
        home = sorted(o.guest for o in outcomes if o.moved or o.outcome == "started")
        result.update(changed=bool(home) or bool(cleared), outcomes=[o.as_dict() for o in outcomes],
                      summary=summary(outcomes), records_cleared=cleared, maintenance_cleared=False, home=cleared,
                      window_changes=[c.as_dict() for c in changes])
        return HostmaintError("the restore of %s ended on an error: %s; %s came home; %s stays in maintenance (run "
                              "restore.yml -l %s again)" % (
                                  self.self_name, error.message, ", ".join(home) or "no guest", self.self_name,
                                  self.self_name), **dict(error.details, **result))

    def canary_of(self, plan):
        """The move to run first on its own (placement.canary), or None."""
        named = self.params["canary_guest"]
        if named and not any(move.guest == named for move in plan.moves):
            named = None  # home already (check_canary_guest judged the name): the others need no other canary
        if self.params["canary"] and (named or len(plan.moves) > 1):
            return placement.canary(plan.moves, named)[0]
        return None

    def run_with_canary(self, executor, plan, canary=True):
        """The plan's moves, the canary first on its own when asked (``canary``, ``canary_guest``): the others
        start only once it has come home and passed its settle check. Returns (outcomes, window changes,
        the canary's name or None)."""
        first = self.canary_of(plan) if canary else None
        rest = [move for move in plan.moves if move is not first]
        if first is None:
            return executor.run(plan), list(executor.window_changes), None
        executor.queued(plan.moves)
        started = time.time()
        outcomes = executor.run(dataclasses.replace(plan, moves=[first]))
        changes = list(executor.window_changes)
        if not outcomes[0].moved:
            held = "%s stays where it is: the canary %s did not come home" % ("%s", first.guest)
            outcomes += [MigrationOutcome.of(move, "not_run", held % move.guest, runs_on=[move.source]) for move in rest]
            executor.ended(outcomes[1:])
            return outcomes, changes, first.guest
        if rest:
            offset = time.time() - started
            outcomes += shifted(executor.run(dataclasses.replace(plan, moves=rest)), offset)
            changes += executor.window_changes
        return outcomes, changes, first.guest


def main():
    Restore().execute()


if __name__ == "__main__":
    main()
