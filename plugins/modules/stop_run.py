#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: stop_run
short_description: Ask the evacuation, restore or disk move running on a host to stop, and wait until it has
version_added: 0.3.0
description:
  - Runs on the host whose run is to stop. An evacuation, restore or disk move holds its host while it runs (a libvirt
    secret of usage C(hostmaint:hold) on that host); this module writes a stop request into that hold.
  - The run sees the request within about a second, aborts every migration it has in flight (libvirt keeps
    each guest running on its source), moves nothing more, reports what moved and what did not, and releases
    the hold. The module waits for that, at most O(wait_s) seconds, and returns the run's own result.
  - Interrupting the playbook that started the run (Ctrl-C, SIGTERM, a killed C(ansible-playbook)) stops it in
    the same way, as the run notices that its controller went away.
  - A hold whose run is provably gone (its process ended, or the host rebooted since) is removed.
  - With no run on the host, nothing changes.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.connection.attributes
options:
  reason:
    description: Why the run is stopped; written into the run's result.
    type: str
  wait_s:
    description:
      - How long to wait, in seconds, for the run to stop and release its host (from 1 to 3600).
      - A run aborts its migrations within 30 s of seeing the request.
    type: int
    default: 120
"""

EXAMPLES = r"""
- name: Stop the evacuation running on hv3
  hostmaint.libvirt.stop_run:
    reason: change window closed
  register: stopped

- name: Show what moved before it stopped
  ansible.builtin.debug:
    var: stopped.result.summary
"""

RETURN = r"""
run_id:
  description: The id of the run that held the host (null when none did).
  returned: always
  type: str
  sample: 20261125T180000Z-1a2b3c
held:
  description: The hold as it was found (run id, action, since, pid, node), or null.
  returned: always
  type: dict
  sample: {run_id: 20261125T180000Z-1a2b3c, action: evacuate, since: "2026-11-25T18:00:00Z", pid: 4242, node: hv3}
stale:
  description: Why the hold found was stale (its run provably gone), or null.
  returned: always
  type: str
  sample: its process 4242 is gone
waited_s:
  description: Seconds waited for the run to release the host.
  returned: always
  type: float
  sample: 2.4
result:
  description: The stopped run's own result (outcomes, summary, remaining guests), when it left one on the host.
  returned: when a run was stopped
  type: dict
  sample: {summary: {moves: 4, moved: 2, failed: 0, not_run: 2}, remaining: [web3, web4]}
"""

import time

from ansible_collections.hostmaint.libvirt.plugins.module_utils import hold as holds
from ansible_collections.hostmaint.libvirt.plugins.module_utils import runs
from ansible_collections.hostmaint.libvirt.plugins.module_utils.base import LibvirtModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

MAX_WAIT_S = 3600


class StopRun(LibvirtModule):
    argument_spec = dict(
        reason=dict(type="str"),
        wait_s=dict(type="int", default=120),
    )

    def validate(self):
        if not 1 <= self.params["wait_s"] <= MAX_WAIT_S:
            raise HostmaintError("wait_s must be from 1 to %d seconds, got %s" % (MAX_WAIT_S, self.params["wait_s"]))

    def run(self):
        local = self.adapter()
        host = local.host_identity()["hostname"]
        current = local.hold()
        result = dict(changed=False, run_id=None, held=current, stale=None, waited_s=0.0)
        if not current:
            result["msg"] = "no run holds %s: there is nothing to stop" % host
            return result
        run_id = current.get("run_id")
        node, boot_id, _pid, _started = holds.this_process()
        verdict, why = holds.judge(current, None, node, boot_id, holds.process_start)
        result.update(run_id=run_id)
        if verdict == holds.STALE:
            result.update(changed=True, stale=why,
                          msg="run %s no longer runs on %s (%s): its hold was removed" % (run_id, host, why))
            if not self.module.check_mode:
                local.release_hold(run_id)
            return result
        result["changed"] = True
        if self.module.check_mode:
            result["msg"] = "would ask %s on %s to stop" % (holds.describe(current), host)
            return result
        request = dict(at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), reason=self.params["reason"])
        local.update_hold(dict(current, stop=request))
        started = time.time()
        deadline = started + self.params["wait_s"]
        while True:
            now = local.hold()
            if not now or now.get("run_id") != run_id:
                break
            if time.time() >= deadline:
                raise HostmaintError("%s on %s did not stop within wait_s %d s: it may still be aborting a migration; "
                                     "look again with stop_run, or at the guests with virsh" % (
                                         holds.describe(current), host, self.params["wait_s"]),
                                     run_id=run_id, held=current)
            time.sleep(0.5)
        result["waited_s"] = round(time.time() - started, 2)
        log = runs.read_log(run_id)
        if log is not None:
            result["result"] = log
        result["msg"] = "run %s on %s stopped after %.1f s" % (run_id, host, result["waited_s"])
        return result


def main():
    StopRun().execute()


if __name__ == "__main__":
    main()
