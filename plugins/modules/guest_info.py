#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: guest_info
short_description: Every guest of a libvirt hypervisor as the migration engine sees it
version_added: 0.1.0
description:
  - Lists the guests (libvirt domains) of the host it runs on, or of O(uri), with what decides whether and
    where each can be live-migrated.
  - For each guest, its name, UUID, state, persistence, memory and vCPUs, disks (path, format, bus, pool and
    whether that pool is shared storage), network interfaces (bridge or network, MAC), host devices, whether it
    can live-migrate (with every reason it cannot), its per-guest settings (policy, anti-affinity group, probe, and
    whether it demands its home), and the migration record that evacuation leaves on it (origin host and time).
  - Read-only, it never changes anything.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.connection.attributes
options:
  names:
    description:
      - Only report these guests. Names that the host does not have are listed in RV(missing) with a warning.
      - All guests when omitted.
    type: list
    elements: str
  shared_pools:
    description:
      - Names of storage pools to treat as shared storage, reachable at the same path from every host.
      - Pools of network types (V(netfs), V(rbd), V(iscsi), V(gluster), ...) and pools whose directory sits
        on a cluster or network filesystem (NFS, CephFS, GlusterFS, GFS2, OCFS2, ...) are shared without
        being listed.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read the guests of a hypervisor
  hostmaint.libvirt.guest_info:
  register: guests

- name: Show which guests cannot live-migrate, and why
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.non_migratable_reasons | join('; ') }}"
  loop: "{{ guests.guests | rejectattr('migratable') }}"
  loop_control:
    label: "{{ item.name }}"

- name: Read two guests, treating the pool 'san' as shared storage
  hostmaint.libvirt.guest_info:
    names: [web01, db01]
    shared_pools: [san]
"""

RETURN = r"""
host:
  description: The host the guests were read from.
  returned: always
  type: dict
  contains:
    hostname:
      description: The host name libvirt reports.
      type: str
      sample: hv1
    uuid:
      description: The host UUID libvirt reports (its identity for migration).
      type: str
      sample: 6f1c0f0e-2d43-4c63-9e0b-5d7c8b1a9f21
    uri:
      description: The libvirt URI used.
      type: str
      sample: qemu:///system
missing:
  description: Names given in O(names) that the host does not have.
  returned: always
  type: list
  elements: str
  sample: []
pools:
  description: The host's storage pools, and whether each is shared storage.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: default, type: dir, path: /var/lib/libvirt/images, active: true, shared: false, shared_by: null}
guests:
  description: One entry per guest, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Guest (domain) name.
      type: str
      sample: web01
    uuid:
      description: Guest UUID.
      type: str
      sample: 0b3f8a9e-5f4e-4d0c-9a55-2f1b9c3e7d10
    state:
      description: >-
        libvirt state, one of V(running), V(paused), V(shutoff), V(shutdown), V(crashed), V(pmsuspended),
        V(blocked), V(nostate).
      type: str
      sample: running
    persistent:
      description: Whether the guest has a persistent definition (transient guests vanish when stopped).
      type: bool
      sample: true
    memory_mib:
      description: Current memory in MiB.
      type: int
      sample: 2048
    max_memory_mib:
      description: Maximum memory in MiB.
      type: int
      sample: 2048
    vcpus:
      description: Number of virtual CPUs.
      type: int
      sample: 2
    domain_type:
      description: libvirt domain type (V(kvm) or V(qemu)).
      type: str
      sample: kvm
    machine:
      description: Machine type.
      type: str
      sample: pc-q35-7.2
    arch:
      description: Guest architecture.
      type: str
      sample: x86_64
    cpu_mode:
      description: CPU mode (V(custom), V(host-model), V(host-passthrough)), or null when not set.
      type: str
      sample: host-model
    cpu_model:
      description: CPU model name for custom CPUs.
      type: str
      sample: qemu64
    hugepages:
      description: Whether the guest's memory is backed by huge pages.
      type: bool
      sample: false
    disks:
      description: Disks, CD-ROMs and floppies.
      type: list
      elements: dict
      sample:
        - target: vda
          device: disk
          source_type: file
          path: /var/lib/libvirt/images/web01.qcow2
          format: qcow2
          bus: virtio
          readonly: false
          shareable: false
          pool: default
          shared: false
    interfaces:
      description: Network interfaces; C(source) is the bridge or network name.
      type: list
      elements: dict
      sample:
        - {type: bridge, source: br0, mac: "52:54:00:1a:00:64", model: virtio}
    host_devices:
      description: Devices passed through from the host (PCI, USB, SCSI, mediated).
      type: list
      elements: dict
      sample:
        - {type: pci, description: "PCI 0000:03:00.0"}
    migratable:
      description: Whether the guest can be live-migrated at all (destination checks aside).
      type: bool
      sample: true
    non_migratable_reasons:
      description: Every reason the guest cannot be live-migrated.
      type: list
      elements: str
      sample: ["host device passthrough (PCI 0000:03:00.0) pins the guest to its host"]
    policy:
      description:
        - What evacuation does when the guest cannot live-migrate, from the guest's hostmaint settings metadata -
          V(migrate) (default), V(shutdown), V(skip) or V(fail).
        - Shown as the metadata writes it. A value that is none of these blocks the guest's evacuation, and
          RV(guests[].problems) says so (code V(unknown_policy)).
      type: str
      sample: migrate
    problems:
      description:
        - Every reason known from the guest alone that evacuation cannot move it, each with its C(code) and a
          C(message) naming the guest; empty when there is none. Destination checks aside
          (M(hostmaint.libvirt.migration_preflight) judges those).
        - Codes V(not_defined) (transient and not running), V(state) (crashed, no state), V(host_device) (the
          reasons of RV(guests[].non_migratable_reasons)) and V(unknown_policy) (its policy is none of V(migrate),
          V(shutdown), V(skip), V(fail)).
      type: list
      elements: dict
      sample:
        - code: unknown_policy
          message: >-
            cannot evacuate web1: its policy "teleport" (settings metadata) is not one of migrate, shutdown, skip,
            fail
          guest: web1
          destination: null
    probe:
      description: The URL the guest's users reach it at, from its settings metadata (checked after it lands), or null.
      type: str
      sample: null
    return_to:
      description:
        - The C(return) attribute of the guest's settings metadata, as written, or null. V(home) - the guest demands its
          home, also from an evacuation that lets guests stay where they land (M(hostmaint.libvirt.evacuate)'s
          O(hostmaint.libvirt.evacuate#module:return_home=false)). Any other value makes that evacuation fail, naming
          the guest.
      type: str
      sample: null
    anti_affinity:
      description: Anti-affinity group from the guest's settings metadata; guests of one group never share a host.
      type: str
      sample: null
    record:
      description: The migration record evacuation left on the guest, or null.
      type: dict
      sample:
        origin_host: hv1
        origin_host_uuid: 6f1c0f0e-2d43-4c63-9e0b-5d7c8b1a9f21
        run_id: 20261125T180000-1a2b
        time: "2026-11-25T18:00:00Z"
"""

from ansible_collections.hostmaint.libvirt.plugins.module_utils import inputs, preflight
from ansible_collections.hostmaint.libvirt.plugins.module_utils.base import LibvirtModule


class GuestInfo(LibvirtModule):
    argument_spec = dict(
        names=dict(type="list", elements="str"),
        shared_pools=dict(type="list", elements="str", default=[]),
    )

    def validate(self):
        inputs.check_uri(self.params["uri"])

    def run(self):
        adapter = self.adapter()
        pools = adapter.pools(shared_names=self.params["shared_pools"])
        guests = adapter.guests(pools=pools)
        wanted = self.params["names"]
        missing = []
        warnings = []
        if wanted is not None:
            known = set(guest.name for guest in guests)
            missing = [name for name in wanted if name not in known]
            guests = [guest for guest in guests if guest.name in wanted]
            if missing:
                warnings.append("host %s has no guest named %s" % (adapter.uri, ", ".join(missing)))
        return dict(
            changed=False,
            host=adapter.host_identity(),
            pools=pools,
            guests=[dict(guest.as_dict(), problems=[p.as_dict() for p in preflight.check_guest(guest)])
                    for guest in guests],
            missing=missing,
            warnings=warnings,
        )


def main():
    GuestInfo().execute()


if __name__ == "__main__":
    main()
