#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: migration_preflight
short_description: Whether each guest of a hypervisor can live-migrate to each other host, and why not
version_added: 0.1.0
description:
  - Read-only. For each guest of this host and each destination, a verdict with every reason that blocks it
    (a code and a sentence) - CPU compatibility as libvirt on the destination judges the guest's CPU, machine
    type, free memory less O(reserve_mib), bridges and networks, disks reachable at the same path
    (or storage copy allowed), libvirt and QEMU not older than here, destination not in maintenance, not this
    host, and reachable.
  - The destination's own hostname (the one its libvirt reports) must resolve on this host, the source, within
    O(connect_timeout) (code C(hostname_unresolvable)) - libvirt migrates to that name, and TLS checks the
    destination's certificate against it. Add it to DNS or to C(/etc/hosts) here. A lookup that gives no answer
    in time blocks nothing.
  - Also returns the whole-host plan M(hostmaint.libvirt.evacuate) would carry out now.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.engine
  - hostmaint.libvirt.progress
  - hostmaint.libvirt.connection.attributes
options:
  avoid:
    description:
      - Destinations the plan uses last, as M(hostmaint.libvirt.evacuate)'s O(hostmaint.libvirt.evacuate#module:avoid)
        (the hosts a rolling upgrade empties next). The verdicts judge every destination alike.
      - A name that is not among the destinations is ignored, with a warning.
    type: list
    elements: str
    default: []
  guests:
    description: Only judge these guests (all when omitted). Unknown names fail the task.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Can hv3 be emptied, and where would each guest go?
  hostmaint.libvirt.migration_preflight:
  register: preflight

- name: Show the blocked guests
  ansible.builtin.debug:
    var: preflight.blocked
"""

RETURN = r"""
verdicts:
  description:
    - Per guest, per destination, C(ok) and the list of C(problems) (code, message, guest, destination).
    - The codes - C(same_host), C(unreachable), C(maintenance), C(hostname_unresolvable), C(arch),
      C(cpu_incompatible), C(machine_type), C(memory), C(bridge_missing), C(network_missing), C(disk_not_shared),
      C(storage_copy_no_pool), C(libvirt_older), C(qemu_older), and for the guest itself C(host_device), C(state),
      C(not_defined).
  returned: always
  type: dict
  sample:
    web1:
      hv2: {ok: true, problems: []}
      hv3: {ok: false, problems: [{code: bridge_missing, message: "cannot live-migrate web1 to hv3: bridge br7 is missing", guest: web1, destination: hv3}]}
blocked:
  description: Guests that no destination can take, with every reason.
  returned: always
  type: list
  elements: dict
  sample: []
ready:
  description: Whether evacuation would proceed now.
  returned: always
  type: bool
  sample: true
plan:
  description: The plan M(hostmaint.libvirt.evacuate) would carry out now.
  returned: always
  type: dict
  sample: {moves: [], blocked: [], waves: []}
"""

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement, preflight
from ansible_collections.hostmaint.libvirt.plugins.module_utils import survey as surveys
from ansible_collections.hostmaint.libvirt.plugins.module_utils.engine import EngineModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.options import MIGRATION_PREFLIGHT_SPEC


class MigrationPreflight(EngineModule):
    argument_spec = MIGRATION_PREFLIGHT_SPEC

    def run(self):
        local = self.adapter()
        pools = local.pools(shared_names=self.params["shared_pools"])
        guests = self.local_guests(pools)
        self.check_named_guests(guests)
        wanted = self.params["guests"]
        if wanted is not None:
            unknown = sorted(set(wanted) - set(g.name for g in guests))
            if unknown:
                raise HostmaintError("guests names %s, which %s does not have: name guests of %s, or leave guests out "
                                     "to judge them all" % (", ".join(unknown), self.self_name, self.self_name),
                                     guests=unknown)
            guests = [g for g in guests if g.name in wanted]
        source = local.host_facts(self.self_name, shared_names=self.params["shared_pools"])
        source.generation = self.generation_of(self.self_name, source)
        source = self.declared(self.self_name, source, local)
        cpu_xml = self.cpu_xml(local, guests)
        destinations = [self.facts(d["name"], self.peer, guests=guests, cpu_xml=cpu_xml) for d in self.destinations()]
        limits = self.limits()
        verdicts = preflight.verdicts(guests, source, destinations, limits)
        plan = placement.plan(guests, source, destinations, limits, run_id=self.run_id,
                              disk_bytes=surveys.disk_sizes(local, guests, limits), avoid=self.avoided(destinations))
        return dict(changed=False, verdicts=verdicts, plan=plan.as_dict(), ready=plan.proceed,
                    blocked=[b.as_dict() for b in plan.blocked])


def main():
    MigrationPreflight().execute()


if __name__ == "__main__":
    main()
