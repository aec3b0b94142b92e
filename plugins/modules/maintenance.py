#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: maintenance
short_description: Set or end the maintenance mark of a libvirt hypervisor, and nothing else
version_added: 0.5.0
description:
  - Runs on the host to mark. The maintenance mark is the libvirt secret of usage C(hostmaint:maintenance) on the host
    itself (C(virsh secret-list) shows it) that M(hostmaint.libvirt.evacuate) sets and M(hostmaint.libvirt.restore)
    removes. A marked host receives no guest - placement never picks it, and every move checks its destination's mark
    just before it starts - and its own guests stay where they are.
  - With O(state=present) the host is marked, its guests untouched; a rolling upgrade marks the hosts of a batch so
    that none of them receives the guests of another. An existing mark is kept as it is, whatever its reason.
  - With O(state=absent) the mark is removed, the host's guests untouched; the guests evacuated from it stay where they
    are (M(hostmaint.libvirt.restore) brings them home and removes the mark as its last step).
  - Refuses, in one sentence naming the run and since when, to change the mark while a live run (an evacuation,
    restore or disk move) holds the host (the libvirt secret of usage C(hostmaint:hold)) - that run owns the mark then.
    A hold whose run is provably gone (its process ended, or the host rebooted since) does not count.
    When the mark is already as asked, nothing changes and nothing is refused.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.connection.attributes
attributes:
  check_mode:
    support: full
    details: Says what it would do and returns the mark it would leave (the one it would set, or null); changes nothing.
options:
  reason:
    description:
      - Why the host is marked; written into the mark (C(reason)), which the modules' messages and
        M(hostmaint.libvirt.hypervisor_info) show. Defaults to V(maintenance).
      - Only used with O(state=present) when the host has no mark yet.
    type: str
  state:
    description:
      - V(present) - the host carries the mark; V(absent) - it does not.
    type: str
    choices: [absent, present]
    default: present
"""

EXAMPLES = r"""
- name: Mark hv4 in maintenance before the hosts of its batch plan their evacuations
  hostmaint.libvirt.maintenance:
    reason: rolling upgrade, batch 2
  delegate_to: hv4

- name: Take the mark back when the batch does not go ahead
  hostmaint.libvirt.maintenance:
    state: absent
  delegate_to: hv4
"""

RETURN = r"""
changed:
  description: Whether the mark was set or removed (in check mode, whether it would be).
  returned: always
  type: bool
  sample: true
maintenance:
  description:
    - The host's maintenance mark after the task (C(since), C(run_id), C(reason); C(by) when this module set it), or
      null when the host has none. In check mode, the mark the task would leave.
    - C(run_id) of a mark this module sets is an id of its own, which the engine's messages quote ("hv4 went into
      maintenance (run ...)").
  returned: always
  type: dict
  sample: {since: "2026-11-25T18:00:00Z", run_id: 20261125T180000Z-4d5e6f, reason: "rolling upgrade, batch 2",
           by: hostmaint.libvirt.maintenance}
msg:
  description: What the task did (or would do), in one sentence naming the host.
  returned: always
  type: str
  sample: hv4 is marked in maintenance (rolling upgrade, batch 2)
"""

import time
import uuid

from ansible_collections.hostmaint.libvirt.plugins.module_utils import hold as holds
from ansible_collections.hostmaint.libvirt.plugins.module_utils import inputs
from ansible_collections.hostmaint.libvirt.plugins.module_utils.base import LibvirtModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

DEFAULT_REASON = "maintenance"
MODULE_NAME = "hostmaint.libvirt.maintenance"
# The run id this module judges holds as (hold.judge): no run's, so that a hold is never taken for its own.
NO_RUN = object()


def refusal(host, current, why, state):
    """The sentence refusing to change ``host``'s mark while the run of hold ``current`` (judged live: ``why``) holds
    the host, or None when no live run holds it (``current`` None, or its verdict is not live)."""
    doing = "mark %s in maintenance" % host if state == "present" else "end the maintenance of %s" % host
    if current == {}:
        return ("cannot %s: a run is taking its hold this moment (hostmaint:hold has no details yet); wait for it to "
                "end or stop it (playbooks/stop.yml -l %s)" % (doing, host))
    return ("cannot %s: run %s (%s) holds it since %s and owns its mark (%s); wait for it to end or stop it "
            "(playbooks/stop.yml -l %s)" % (
                doing, current.get("run_id"), current.get("action"), current.get("since"), why, host))


class Maintenance(LibvirtModule):
    """Set (state present) or end (state absent) this host's maintenance mark, unless a live run holds the host.

    Collaborators a test replaces: ``me`` (this process as hold.this_process gives it: node, boot id, pid, start) and
    ``start_of(pid)`` (hold.process_start), with which a hold is judged live or gone."""

    argument_spec = dict(
        reason=dict(type="str"),
        state=dict(type="str", default="present", choices=["absent", "present"]),
    )

    def __init__(self, module=None, adapter_factory=None, me=None, start_of=None):
        super(Maintenance, self).__init__(module=module, adapter_factory=adapter_factory)
        self._me = me
        self._start_of = start_of or holds.process_start

    def validate(self):
        inputs.check_uri(self.params["uri"])

    def run(self):
        local = self.adapter()
        host = local.host_identity()["hostname"]
        state = self.params["state"]
        mark = local.maintenance()
        if (mark is not None) == (state == "present"):
            said = ("%s is already marked in maintenance (%s)" % (host, mark.get("reason")) if mark is not None
                    else "%s carries no maintenance mark" % host)
            return dict(changed=False, maintenance=mark, msg=said)
        self.refuse_when_held(local, host, state)
        check = self.module.check_mode
        if state == "absent":
            if check:
                return dict(changed=True, maintenance=None, msg="would end the maintenance of %s" % host)
            cleared = local.clear_maintenance()
            return dict(changed=bool(cleared), maintenance=local.maintenance(),
                        msg="the maintenance of %s is ended" % host if cleared else "%s carries no maintenance mark"
                        % host)
        now = time.gmtime()
        wanted = dict(since=time.strftime("%Y-%m-%dT%H:%M:%SZ", now),
                      run_id="%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", now), uuid.uuid4().hex[:6]),
                      reason=self.params["reason"] or DEFAULT_REASON, by=MODULE_NAME)
        if check:
            return dict(changed=True, maintenance=wanted, msg="would mark %s in maintenance (%s)" % (
                host, wanted["reason"]))
        marked = local.set_maintenance(wanted)
        after = local.maintenance()
        if not marked:  # another run marked it a moment ago: its mark stays as it is
            return dict(changed=False, maintenance=after, msg="%s is already marked in maintenance (%s)" % (
                host, (after or {}).get("reason")))
        return dict(changed=True, maintenance=after, msg="%s is marked in maintenance (%s)" % (host, wanted["reason"]))

    def refuse_when_held(self, local, host, state):
        """Raise HostmaintError naming the run and since when if a live run holds this host (hold.judge; a hold being
        taken this moment counts as live)."""
        current = local.hold()
        if current is None:
            return
        if current != {}:
            node, boot_id, _pid, _started = self._me or holds.this_process()
            verdict, why = holds.judge(current, NO_RUN, node, boot_id, self._start_of)
            if verdict != holds.LIVE:
                return
        else:
            why = None
        raise HostmaintError(refusal(host, current, why, state), held_by=current)


def main():
    Maintenance().execute()


if __name__ == "__main__":
    main()
