#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: evacuate
short_description: Empty a libvirt hypervisor by live-migrating every guest to the other hosts
version_added: 0.1.0
description:
  - Runs on the host to empty. Marks it in maintenance (a libvirt secret on the host itself, so no other
    evacuation sends it guests), plans every guest's destination before the first move, then migrates with a
    per-guest convergence ladder, several at a time - a migration starts as soon as its source and destination
    each have a free slot (O(max_outbound), O(max_inbound)), the longest first.
  - A destination that fails a move (unreachable, its libvirtd gone, refusing the move, or marked in maintenance
    since the plan was made) leaves the run; the guests still queued for it are placed again on the other
    destinations under the same rules, or reported V(blocked).
  - Each migrated guest is watched on its destination for O(settle_s) after switchover; a guest that is reset,
    crashes, stops or pauses then is reported V(failed), and nothing more starts.
  - The plan is a bin-packing over the destinations' free memory less O(reserve_mib), with per-destination
    and per-source concurrency limits, anti-affinity groups and CPU, machine type, network, bridge, storage,
    version and destination hostname checks (the checks of M(hostmaint.libvirt.migration_preflight)). If any
    guest cannot be placed nothing moves (unless O(allow_partial)).
  - Each migrated guest carries a migration record (origin host, its UUID, run id, time) in its own libvirt
    metadata, which M(hostmaint.libvirt.restore) uses to bring it home, whenever that is. A guest that already has
    one keeps it (its home is where it came from first); with O(return_home=false) the record names where the guest
    lands instead (see there).
  - Fails when the host is not empty at the end (a guest blocked, aborted or failed), with the full report.
    A guest whose migration is aborted or fails keeps running on this host.
  - An error before the first move (a host that stops answering, a guest whose definition cannot be read) fails
    the task with one sentence naming the host or guest, and takes back the maintenance mark this run set. An
    error once moves began ends the run with the host still in maintenance and a result that says what moved.
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
    details: Returns the exact plan (guest, destination, wave, order, expected bytes) and changes nothing.
      The plan's waves are for reading; the run itself starts each move as soon as its hosts have a free slot.
options:
  avoid:
    description:
      - Destinations to use last, by name - the hosts a rolling upgrade empties next, so that the guests moved now do
        not have to move again soon.
      - A guest goes to one only when no other destination can take it, after every generation, the older ones
        included; such a move is kept, with a note in its C(reasons) (code C(avoided)) saying why. A note, never a
        block. When keeping guests off these hosts would leave a guest without a destination that a plan without the
        preference places, the plan without it is used, and the note says so.
      - A name that is not among the destinations is ignored, with a warning.
    type: list
    elements: str
    default: []
  return_home:
    description:
      - Whether the guests moved keep a home to come back to. V(true) - each guest without a migration record gets one
        naming this host, so that M(hostmaint.libvirt.restore) of this host brings it back; a guest that has one keeps
        it.
      - V(false) - the guests stay where they land, and a guest moved once during a rolling upgrade does not move
        back. The record written with each move names the host the guest lands on (its name and UUID), replacing any
        record the guest had, so that no restore of this host or of an earlier one pulls it back. A move placed again
        on another destination during the run names that one; a guest whose move fails keeps the record it had.
      - A guest whose settings metadata (C(urn:hostmaint:libvirt:settings:1)) says C(return="home") demands its home -
        it is treated as with V(true). Any other value of C(return) fails the run, naming the guest and the value,
        before anything moves (the mark this run set is taken back).
      - The plan's moves say which host each guest's record names afterwards (C(home_after)), in check mode too.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Empty hv3 onto the other hosts of its inventory groups
  hostmaint.libvirt.evacuate:

- name: Empty hv3 for good during a rolling upgrade - its guests stay where they land, hv4 is emptied next
  hostmaint.libvirt.evacuate:
    return_home: false
    avoid: [hv4]

- name: Empty a host onto two given hosts over SSH, three migrations at a time
  hostmaint.libvirt.evacuate:
    destinations:
      - {name: hv1, address: 10.0.0.11}
      - {name: hv2, address: 10.0.0.12}
    uri_template: qemu+ssh://root@{host}/system
    max_outbound: 3
    policies:
      licence-server: shutdown
  register: evacuation
"""

RETURN = r"""
changed:
  description: Whether a guest moved or the maintenance mark was set.
  returned: always
  type: bool
empty:
  description: Whether no guest runs on the host any more (guests shut down or skipped by policy aside).
  returned: always
  type: bool
  sample: true
maintenance:
  description: The host's maintenance mark after the run.
  returned: always
  type: dict
  sample: {since: "2026-11-25T18:00:00Z", run_id: 20261125T180000Z-1a2b3c, reason: evacuate}
plan:
  description: The whole-host plan (the same in check mode and in a real run).
  returned: always
  type: dict
  contains:
    moves:
      description:
        - Guest, action, source, destination, wave, order, memory_mib, expected_bytes per move.
        - A storage copy (O(allow_storage_copy)) has C(storage_copy), the disks it copies (C(copy_disks), targets) and
          their size in bytes (C(disk_bytes), each volume's capacity, also in C(expected_bytes)).
        - C(reasons) holds notes on the move, never blocks - C(older_generation) (the destination is older than this
          host) and C(avoided) (the destination is one of O(avoid)), each a sentence saying why, followed by the
          problems of the destinations it did not go to.
        - C(home_after) is the host the guest's migration record names once it moved (the host a restore brings it
          back to) - this host, the home it already had, or with O(return_home=false) its destination.
      type: list
      elements: dict
    waves:
      description: Guest names per wave.
      type: list
      elements: list
    blocked:
      description:
        - Guests that cannot be placed, each with every reason (code, message, destination).
        - The codes are those of M(hostmaint.libvirt.migration_preflight) (for example C(memory), C(cpu_incompatible),
          C(hostname_unresolvable)) and C(capacity), C(anti_affinity), C(no_destination).
      type: list
      elements: dict
    skipped:
      description: Guests left where they are on purpose (policy skip, transient and off).
      type: list
      elements: dict
    complete:
      description: Whether every guest is placed.
      type: bool
    proceed:
      description: Whether the plan may run (complete, or partial allowed and no blocked guest has policy V(fail)).
      type: bool
  sample:
    moves: [{guest: web1, action: migrate, source: hv1, destination: hv2, wave: 1, order: 1, memory_mib: 256,
             home_after: hv1}]
    waves: [[web1]]
    blocked: []
    skipped: []
    complete: true
    proceed: true
outcomes:
  description:
    - One entry per move of the plan, in plan order.
    - C(outcome) is V(migrated), V(moved_definition), V(shut_down), V(started), V(failed), V(aborted),
      V(blocked) (its destination left the run and no other one can take the guest) or V(not_run) (a shutdown
      held back after failed migrations, or a move not started because the run stopped).
    - C(timeline) gives, in seconds since the run started, when the move was C(queued), C(started) (copying),
      when it switched over (C(switchover)), when its settle period was over (C(checked)) and when it was
      C(done); a phase the move did not reach is null.
    - C(duration_s) runs from the start of the move to its switchover (the settle period excluded).
    - C(ladder_steps) lists what the convergence ladder did to the migration, in order, each with C(kind)
      (V(set_downtime), V(auto_converge), V(postcopy), V(abort)), C(value), C(reason) and C(at_s) (seconds since
      the move's C(started)).
    - C(source_disks_deleted) lists the disks a storage copy left on the host the guest left that were deleted
      there (O(storage_copy_source)); C(reason) says which stay and why.
  returned: when not in check mode
  type: list
  elements: dict
  sample:
    - guest: web1
      action: migrate
      source: hv1
      destination: hv2
      wave: 1
      outcome: migrated
      moved: true
      duration_s: 2.1
      downtime_ms: 36
      bytes_transferred: 96676954
      iterations: 3
      ladder_steps: []
      reason: null
      runs_on: [hv2]
      state_after: running
      timeline: {queued: 0.0, started: 0.41, switchover: 2.51, checked: 7.52, done: 7.53}
      source_disks_deleted: []
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
    - Shut-off definitions a migration left behind (on this host, or on a destination for a guest that runs
      here) while the guest runs on another host, found by the survey before the plan.
      libvirt undefines a migrated guest on its source only in the migration's last step; a source libvirtd
      restarted at that moment leaves the copy. A copy counts only when a migration record ties the two hosts,
      the UUIDs match and the guest runs persistent on the other host. Each is never planned as a move; its
      removal is the plan's first step (its disks stay), once the plan can proceed, and it is read again just
      before. Check mode lists those a run would remove. Each has C(guest), C(host), C(runs_on), C(removed)
      and C(note).
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
remaining:
  description: Guests still running on the host after the run.
  returned: always
  type: list
  elements: str
  sample: []
run_id:
  description: This run's id, written into every migration record.
  returned: always
  type: str
  sample: 20261125T180000Z-1a2b3c
summary:
  description: Counts and totals of the run.
  returned: when not in check mode
  type: dict
  sample: {moves: 4, moved: 4, failed: 0, blocked: 0, not_run: 0, bytes_transferred: 380000000, max_downtime_ms: 61}
late_arrivals:
  description:
    - Guests that started on the host while it was being emptied; each was planned and moved (or reported) in a
      further pass, up to three, as long as nothing had failed. Their outcomes are in RV(outcomes).
  returned: when not in check mode
  type: list
  elements: str
  sample: [web9]
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
      source: hv1
      from: 2
      to: 1
      guest: web1
      downtime_ms: 180
      reason: web1 paused 180 ms at switchover, at least 80 % of the 150 ms pause target
"""

import dataclasses
import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import steps as run_steps
from ansible_collections.hostmaint.libvirt.plugins.module_utils import survey as surveys
from ansible_collections.hostmaint.libvirt.plugins.module_utils.engine import EngineModule, shifted, summary
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.options import EVACUATE_SPEC


# passes over guests that started on the host while it was being emptied
LATE_PASSES = 3


class Evacuate(EngineModule):
    """Guard (hold, mark, settle), survey (each host read once), plan (a RunPlan, pure), then apply (remove the
    stale copies, run the moves); check mode returns the plan between plan and apply."""

    argument_spec = EVACUATE_SPEC
    _started = 0.0

    def run(self):
        local = self.adapter()
        # options naming guests no host has: one sentence before the hold and the mark, by-name lookups only
        self.check_named_guests([])
        with self.held(local, "evacuate", mark_reason="evacuate") as guard:  # a second run on this host refuses here
            # until the first move, any error takes back the mark this run set (held): the host stays in service
            survey = surveys.evacuation(self, local, mark=guard.mark)
            plan = self.plan(survey)
            moves = plan.moves
            result = guard.result
            result.update(run_id=self.run_id, plan=moves.as_dict(), maintenance=guard.mark, under_way=guard.under_way,
                          taken_over=self.taken_over(), stale_copies=run_steps.would_remove(plan.stale_copies))
            if self.module.check_mode:
                moving = set(m.guest for m in moves.moves if m.action != "shutdown")
                staying = sorted(g.name for g in plan.guests if g.active and g.name not in moving)
                result.update(changed=bool(moves.moves) or guard.mark is None or bool(plan.stale_copies),
                              empty=not staying, remaining=staying)
                return result
            stale = result["stale_copies"] = self.remove_stale_copies(plan.stale_copies, survey)
            executor = self.executor(self.unsafe_guests(plan.guests, survey.pools), probes=self.probes(plan.guests))
            guard.moving = True  # from the first move on, the host stays marked and an error says what moved
            return self.apply(local, guard, survey, plan, executor, stale)

    def apply(self, local, guard, survey, plan, executor, stale):
        """The plan's moves, then the late arrivals; the result (guard.result), or the HostmaintError that says why
        the host is not empty."""
        moves, result, marked = plan.moves, guard.result, guard.marked
        self._started = time.time()
        outcomes, changes = [], []
        try:  # an error ends the run saying what moved; the host stays marked
            outcomes = executor.run(moves, records=plan.records, survey=dataclasses.replace(survey, guests=plan.guests),
                                    dirty_rates=survey.dirty_rates, stays=plan.stays)
            changes = list(executor.window_changes)
            late, late_blocked, skipped = self.late_arrivals(local, survey, plan.guests, outcomes, changes)
            remaining = sorted(g.name for g in local.guests(pools=survey.pools) if g.active)
        except HostmaintError as exc:
            raise self.ended_by(exc, result, outcomes, changes, marked) from exc
        stopped = self.stop_reason()
        cleaned = any(c["removed"] for c in stale)
        result.update(changed=marked or cleaned or any(o.moved or o.outcome == "shut_down" for o in outcomes),
                      outcomes=[o.as_dict() for o in outcomes], summary=summary(outcomes), remaining=remaining,
                      empty=not remaining, window_changes=[c.as_dict() for c in changes], late_arrivals=late,
                      stopped=stopped)
        skipped.update(s.guest for s in moves.skipped)
        unexpected = [name for name in remaining if name not in skipped]
        if stopped:
            moved = [o.guest for o in outcomes if o.moved]
            raise HostmaintError("the evacuation of %s stopped because %s: %s moved, %s still run%s there; %s "
                                 "stays in maintenance (evacuate.yml finishes the job, restore.yml brings it back "
                                 "into service)" % (
                                     self.self_name, stopped, ", ".join(moved) or "no guest",
                                     ", ".join(remaining) or "no guest", "s" if len(remaining) == 1 else "",
                                     self.self_name), **result)
        failed = ["%s: %s" % (o.guest, o.reason) for o in outcomes if o.failed or o.outcome == "blocked"]
        if unexpected and not self.params["allow_partial"]:
            failed += late_blocked
            raise HostmaintError("%s is not empty: %s still run there%s" % (
                self.self_name, ", ".join(unexpected), (" (" + "; ".join(failed) + ")") if failed else ""), **result)
        if failed and not self.params["allow_partial"]:
            # the host is empty, but not every guest arrived well: the run did not do its job
            raise HostmaintError("%s is empty, but %d move(s) failed: %s" % (
                self.self_name, len(failed), "; ".join(failed)), **result)
        return result

    def plan(self, survey):
        """The RunPlan of this evacuation (module_utils.steps), from the survey alone; raises on input the survey
        proves wrong (a malformed probe or return in a guest's metadata, options naming no guest) and when the plan
        cannot proceed (a guest cannot be placed): nothing after the survey has changed anything yet."""
        self.probes(survey.guests)  # a malformed probe in a guest's settings metadata stops the run here
        self.judge_named_guests(survey)
        plan = run_steps.evacuation(survey, self.limits(), run_id=self.run_id, record=self.record(survey.identity),
                                    avoid=self.avoided(survey.destinations), return_home=self.params["return_home"])
        if not plan.moves.proceed:  # nothing moves: the mark is taken back, the host stays in service
            blocked = ["%s (%s)" % (b.guest, "; ".join(sorted(set(r.message for r in b.reasons))))
                       for b in plan.moves.blocked]
            raise HostmaintError("cannot evacuate %s: %d guest(s) cannot be placed, nothing was moved: %s"
                                 % (self.self_name, len(plan.moves.blocked), " | ".join(blocked)),
                                 plan=plan.moves.as_dict(), run_id=self.run_id, changed=False)
        return plan

    def ended_by(self, error, result, outcomes, changes, marked):
        """The HostmaintError that ends a run whose moves began: the host stays marked, the result says what moved."""
        moved = sorted(o.guest for o in outcomes if o.moved)
        result.update(changed=marked or bool(moved) or any(o.outcome == "shut_down" for o in outcomes),
                      outcomes=[o.as_dict() for o in outcomes], summary=summary(outcomes),
                      window_changes=[c.as_dict() for c in changes], stopped=None)
        return HostmaintError("the evacuation of %s ended on an error after its moves began: %s; %s moved; %s stays in "
                              "maintenance (evacuate.yml finishes the job, restore.yml brings it back into service)"
                              % (self.self_name, error.message, ", ".join(moved) or "no guest", self.self_name),
                              **dict(error.details, **result))

    def late_arrivals(self, local, survey, known, outcomes, changes):
        """Guests that started on this host while it was being emptied, moved in further passes (at most
        LATE_PASSES, each surveyed and planned afresh on what the destinations have left) as long as nothing
        failed. Extends ``outcomes`` and ``changes``; returns (names of the late guests, "guest: why" for those that
        could not be placed, names of late guests the plan leaves here on purpose)."""
        seen = set(g.name for g in known)
        late, blocked, skipped = [], [], set()
        for _pass in range(LATE_PASSES):
            if self.stop_reason() or any(o.failed or o.outcome in ("blocked", "not_run") for o in outcomes):
                break
            newcomers = [g for g in self.local_guests(survey.pools, local) if g.active and g.name not in seen]
            if not newcomers:
                break
            seen.update(g.name for g in newcomers)
            late.extend(sorted(g.name for g in newcomers))
            again = surveys.evacuation(self, local, mark=survey.mark, guests=newcomers)
            plan = run_steps.evacuation(again, self.limits(), run_id=self.run_id, record=self.record(survey.identity),
                                        avoid=self.params["avoid"], return_home=self.params["return_home"])
            blocked += ["%s: %s" % (b.guest, "; ".join(sorted(set(r.message for r in b.reasons))))
                        for b in plan.moves.blocked]
            skipped.update(s.guest for s in plan.moves.skipped)
            executor = self.executor(self.unsafe_guests(newcomers, survey.pools), probes=self.probes(newcomers))
            offset = time.time() - self._started
            outcomes.extend(shifted(executor.run(plan.moves, records=plan.records, survey=again,
                                                 dirty_rates=again.dirty_rates, stays=plan.stays), offset))
            changes.extend(executor.window_changes)
        return late, blocked, skipped


def main():
    Evacuate().execute()


if __name__ == "__main__":
    main()
