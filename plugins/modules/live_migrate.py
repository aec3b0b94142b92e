#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: live_migrate
short_description: Live-migrate one guest of this hypervisor to another host
version_added: 0.1.0
description:
  - Checks the guest against the destination first (the checks of M(hostmaint.libvirt.migration_preflight)),
    then migrates it peer-to-peer and live, persistent on the destination and undefined here only once the
    destination runs it, with the convergence ladder and a bounded time, then watches it there for
    O(settle_s) (a guest reset, crashed, stopped or paused then fails the task).
  - Idempotent - a guest that already runs on the destination and not here is reported unchanged.
  - Leaves a migration record on the guest (unless it carries one already) so M(hostmaint.libvirt.restore)
    can bring it back.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.engine
  - hostmaint.libvirt.progress
  - hostmaint.libvirt.connection.attributes
options:
  destination:
    description: The destination host, by name (one of O(destinations)), not this host.
    type: str
    required: true
  guest:
    description: The guest to move; it must be defined on this host (or already run on O(destination)).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Move web1 to hv2
  hostmaint.libvirt.live_migrate:
    guest: web1
    destination: hv2
"""

RETURN = r"""
outcome:
  description: What happened (the keys of an M(hostmaint.libvirt.evacuate) outcome).
  returned: when not in check mode and something moved
  type: dict
  sample: {guest: web1, destination: hv2, outcome: migrated, duration_s: 2.1, downtime_ms: 36, state_after: running,
           timeline: {queued: 0.0, started: 0.3, switchover: 2.4, checked: 7.4, done: 7.4}}
plan:
  description: The one-move plan.
  returned: always
  type: dict
  sample: {moves: [{guest: web1, destination: hv2, action: migrate}]}
window_changes:
  description:
    - Every change of a host's number of concurrent migrations during the run (see O(pause_target_ms)), in order;
      empty when nothing changed. With one guest, it only tells that its pause reached the target.
    - Each entry names the host as C(source) (its outbound slots) or C(destination) (its inbound slots), and gives
      C(at) (seconds since the run started), the slots C(from) and C(to), the C(guest) whose pause caused it, that
      pause (C(downtime_ms)) and the C(reason) in one sentence.
  returned: when not in check mode and something moved
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

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils import survey as surveys
from ansible_collections.hostmaint.libvirt.plugins.module_utils.engine import EngineModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Survey
from ansible_collections.hostmaint.libvirt.plugins.module_utils.options import LIVE_MIGRATE_SPEC


class LiveMigrate(EngineModule):
    argument_spec = LIVE_MIGRATE_SPEC

    def validate(self):
        """The guest and the destination named, and the destination a host other than this one, among destinations
        (when this host's name is known before libvirt is asked); then the engine options."""
        if not (self.params.get("guest") or "").strip():
            self.fail_early("guest is empty: name the guest to move")
        if not (self.params.get("destination") or "").strip():
            self.fail_early("destination is empty: name the host to move %s to" % self.params["guest"])
        me = self.params.get("name")
        if me and self.params["destination"] == me:
            self.check_destination(me)
        super(LiveMigrate, self).validate()
        if me:
            self.check_destination(me)

    def check_destination(self, me):
        """The destination is not this host (``me``) and is one of destinations: raise HostmaintError otherwise."""
        target = self.params["destination"]
        if target == me:
            self.fail_early("destination %s is the source host %s: a guest cannot migrate to the host it runs on"
                            % (target, me))
        listed = [d["name"] for d in self.params["destinations"] or []]
        others = [host for host in listed if host != me]
        if target not in others:
            self.fail_early("destination %s is not among destinations (%s): name one of them, or add %s to destinations"
                            % (target, ", ".join(others) or ("none but %s itself" % me if listed else "none given"),
                               target))

    def run(self):
        name, target = self.params["guest"], self.params["destination"]
        self.check_destination(self.self_name)
        local = self.adapter()
        if not local.has_domain(name):
            try:
                there = self.peer(target).has_domain(name)
            except HostmaintError as exc:
                raise HostmaintError("guest %s is not defined on %s, and the destination %s cannot tell whether it "
                                     "runs there: %s" % (name, self.self_name, target, exc.message), guest=name)
            if there:
                return dict(changed=False, plan=dict(moves=[]), msg="%s already runs on %s" % (name, target))
            raise HostmaintError("guest %s is defined neither on %s nor on the destination %s: name a guest of %s"
                                 % (name, self.self_name, target, self.self_name), guest=name)
        pools = local.pools(shared_names=self.params["shared_pools"])
        guest = local.guest(name, pools=pools)
        self.check_named_guests([guest])
        guest.policy = "fail"  # one named guest: it moves or the task fails
        source = local.host_facts(self.self_name, shared_names=self.params["shared_pools"])
        source.generation = self.generation_of(self.self_name, source)
        destination = self.facts(target, self.peer, guests=[guest], cpu_xml=self.cpu_xml(local, [guest]))
        disk_bytes = surveys.disk_sizes(local, [guest], self.limits())
        plan = placement.plan([guest], source, [destination], self.limits(), run_id=self.run_id, disk_bytes=disk_bytes)
        if plan.blocked:
            reasons = sorted(set(r.message for r in plan.blocked[0].reasons))
            raise HostmaintError("; ".join(reasons), plan=plan.as_dict(), changed=False)
        if self.module.check_mode:
            return dict(changed=True, plan=plan.as_dict())
        identity = local.host_identity()
        records = {} if guest.record is not None else {name: self.record(identity)}
        survey = Survey(source=source, destinations=[destination], guests=[guest], limits=self.limits(),
                        disk_bytes=disk_bytes)
        executor = self.executor(self.unsafe_guests([guest], pools), probes=self.probes([guest]))
        outcome = executor.run(plan, records=records, survey=survey)[0]
        window_changes = [c.as_dict() for c in executor.window_changes]
        if not outcome.moved:
            # the guest may have landed and failed its settle check: the reason says where it is
            raise HostmaintError(outcome.reason or "%s did not move" % name, outcome=outcome.as_dict(),
                                 plan=plan.as_dict(), window_changes=window_changes)
        return dict(changed=True, outcome=outcome.as_dict(), plan=plan.as_dict(), window_changes=window_changes)


def main():
    LiveMigrate().execute()


if __name__ == "__main__":
    main()
