#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: hypervisor_info
short_description: A libvirt hypervisor's facts as the migration engine sees them
version_added: 0.1.0
description:
  - libvirt and QEMU versions, host CPU, total and available memory, machine types, bridges, active libvirt
    networks, storage pools (and which are shared storage) and whether the host is in maintenance.
  - With a declared capacity (O(capacity_mib)), the available memory is what the migration engine sees within it.
  - Read-only.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.connection.attributes
options:
  capacity_mib:
    description:
      - The memory in MiB this host may give its guests in all, as the engine modules take it (their O(capacity_mib),
        the inventory variable C(hostmaint_libvirt_capacity_mib)); V(0) means none is declared.
      - This module has no action plugin, so the inventory variable is not read by itself; a role passes it with the
        P(hostmaint.libvirt.engine_option#filter) filter, C(vars | hostmaint.libvirt.engine_option('capacity_mib')).
      - A whole number from V(0) to V(16777216) (16 TiB); anything else fails with one sentence naming the host.
    type: raw
    default: 0
  generation:
    description:
      - The host's generation to report instead of the derived one (an operator's own scheme, such as V(2026.11)).
      - Omitted, it is derived from the host's QEMU, libvirt and kernel versions and OS point release.
    type: str
  name:
    description: The host's name in the result; defaults to the host name libvirt reports.
    type: str
  shared_pools:
    description: Storage pools to treat as shared storage (see M(hostmaint.libvirt.guest_info)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read a hypervisor's facts
  hostmaint.libvirt.hypervisor_info:
  register: facts

- name: Stop if the host is in maintenance
  ansible.builtin.assert:
    that: not facts.hypervisor.maintenance
"""

RETURN = r"""
hypervisor:
  description: The host's facts.
  returned: always
  type: dict
  contains:
    name:
      description: The host's name.
      type: str
      sample: hv1
    uuid:
      description: libvirt's host UUID.
      type: str
      sample: 6f1c0f0e-2d43-4c63-9e0b-5d7c8b1a9f21
    hostname:
      description: The host name libvirt reports.
      type: str
      sample: hv1
    libvirt_version:
      description: libvirt's version as a string.
      type: str
      sample: 9.0.0
    qemu_version:
      description: QEMU's version as a string.
      type: str
      sample: 7.2.0
    arch:
      description: Host CPU architecture.
      type: str
      sample: x86_64
    cpu_model:
      description: Host CPU model as libvirt names it.
      type: str
      sample: EPYC-Rome
    memory_total_mib:
      description: Total memory in MiB.
      type: int
      sample: 24105
    memory_free_mib:
      description:
        - Memory available to new guests in MiB (free plus reclaimable cache), as the engine sees it - with a declared
          capacity, the smaller of that and the capacity less the memory of every running guest (incoming
          migrations included).
      type: int
      sample: 23100
    memory_measured_free_mib:
      description: Memory available to new guests in MiB as the host measures it, whatever capacity is declared.
      type: int
      sample: 23100
    capacity_mib:
      description: The declared capacity in MiB (O(capacity_mib)), or V(0) when none is declared.
      type: int
      sample: 0
    hugepages_free_mib:
      description: Free huge pages in MiB per page size in KiB (empty when the host has none configured).
      type: dict
      sample: {"2048": 0, "1048576": 0}
    machine_types:
      description: Machine types QEMU supports here (aliases and canonical names).
      type: list
      elements: str
      sample: [pc, pc-i440fx-7.2, q35, pc-q35-7.2]
    bridges:
      description: Active bridges.
      type: list
      elements: str
      sample: [br0]
    networks:
      description: Active libvirt networks.
      type: list
      elements: str
      sample: [default]
    pools:
      description: Storage pools (name, type, path, active, shared, shared_by).
      type: list
      elements: dict
      sample: [{name: default, type: dir, path: /var/lib/libvirt/images, active: true, shared: false, shared_by: null}]
    generation:
      description:
        - How far the host is through a rolling upgrade, one comparable string (see O(generation)); the maintenance
          playbooks compare hosts by it and evacuation prefers destinations at the newest one.
      type: str
      sample: qemu-10.0.2 libvirt-11.3.0 kernel-6.1.0-37 os-12.11
    kernel_release:
      description: The running kernel (C(uname -r)).
      type: str
      sample: 6.1.0-37-amd64
    os_version:
      description: The OS point release (Debian's C(/etc/debian_version), else C(VERSION_ID) of C(/etc/os-release)), or null.
      type: str
      sample: "12.11"
    maintenance:
      description: Whether the host carries the maintenance mark.
      type: bool
      sample: false
    maintenance_info:
      description: The mark's details (since, run_id, reason), or null.
      type: dict
      sample: null
    guests:
      description: Number of guests defined or running on the host.
      type: int
      sample: 4
    running_memory_mib:
      description: Memory of the running guests, in MiB.
      type: int
      sample: 1024
"""

from ansible_collections.hostmaint.libvirt.plugins.module_utils import inputs
from ansible_collections.hostmaint.libvirt.plugins.module_utils.base import LibvirtModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.engine import host_generation, local_release
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import memory_need_mib, version_string, with_capacity


class HypervisorInfo(LibvirtModule):
    argument_spec = dict(
        capacity_mib=dict(type="raw", default=0),
        generation=dict(type="str"),
        name=dict(type="str"),
        shared_pools=dict(type="list", elements="str", default=[]),
    )
    capacity = 0  # the declared capacity, judged by validate()

    def validate(self):
        inputs.check_uri(self.params["uri"])
        self.capacity = inputs.capacity(self.params["capacity_mib"], self.params["name"] or "this host")

    def run(self):
        adapter = self.adapter()
        name = self.params["name"] or adapter.host_identity()["hostname"]
        facts = adapter.host_facts(name, shared_names=self.params["shared_pools"])
        measured = facts.memory_free_mib
        if self.capacity:
            facts = with_capacity(facts, self.capacity, adapter.active_memory())
        guests = adapter.guests(pools=facts.pools)
        data = facts.as_dict()
        data["memory_measured_free_mib"] = measured
        for key in ("volume_paths", "cpu_compatible", "reachable", "unreachable_reason", "resident_groups"):
            data.pop(key, None)
        release = local_release()
        data.update(release, generation=host_generation(facts, self.params["generation"], release))
        data.update(libvirt_version=version_string(facts.libvirt_version), qemu_version=version_string(facts.qemu_version),
                    guests=len(guests), running_memory_mib=sum(memory_need_mib(g) for g in guests if g.active))
        return dict(changed=False, hypervisor=data)


def main():
    HypervisorInfo().execute()


if __name__ == "__main__":
    main()
