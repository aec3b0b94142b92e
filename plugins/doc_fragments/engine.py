# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
notes:
  - Every option of this module but O(name), O(address) and O(destinations) can also be set for a host with the
    inventory variable C(hostmaint_libvirt_<option>), for example C(hostmaint_libvirt_uri_template),
    C(hostmaint_libvirt_reserve_mib) or C(hostmaint_libvirt_uri); a Jinja template in it is templated.
  - One precedence applies whether the module runs ad hoc, from a role or from a playbook - the task's argument
    (C(module_defaults) count as task arguments, an argument set to null counts as not given), then the host's
    C(hostmaint_libvirt_<option>) variable, then the option's default.
  - O(name), O(address) and O(destinations) always come from the task or from the inventory itself
    (C(inventory_hostname), C(ansible_host), the other hosts of the host's groups);
    C(hostmaint_libvirt_name), C(hostmaint_libvirt_address) and C(hostmaint_libvirt_destinations) are ignored,
    with a warning.
options:
  address:
    description:
      - The address other hosts reach this host at. The action plugin fills it from C(ansible_host)
        (not from a C(hostmaint_libvirt_address) variable).
      - Defaults to O(name).
    type: str
  allow_partial:
    description:
      - Move what can move even when some guests are blocked. Guests with policy V(fail) still stop the run.
    type: bool
    default: false
  allow_storage_copy:
    description:
      - Allow copying the disks of guests whose disks are not on shared storage (slow; the whole disk crosses the network).
      - Only the disks that need it are copied; libvirt is always given their list, never left to copy every writable
        disk (those on shared storage too). Their size (each volume's capacity) counts in the migration's time limit
        (O(timeout_per_gib)) beside the guest's memory. What becomes of the source's copy is O(storage_copy_source).
    type: bool
    default: false
  auto_converge:
    description:
      - Request QEMU's auto-converge (CPU throttling of a guest that does not converge) when each migration starts.
    type: bool
    default: true
  bandwidth_mib:
    description:
      - Bandwidth per migration in MiB/s, passed to libvirt explicitly. V(0) means no cap (QEMU's 128 MiB/s default cap never applies).
      - At most V(100000) (about 800 Gbit/s).
    type: int
    default: 0
  capacity_mib:
    description:
      - The memory in MiB this host may give its guests in all, an operator's limit (Nova's accounting without
        overcommit); V(0) declares none.
      - Declared, the memory this host has free for guests, as every decision sees it (the evacuation's plan, the
        room at home of a restore, the checks of M(hostmaint.libvirt.migration_preflight), the room judged again just
        before each move), is the smaller of what it measures as free and this capacity less the memory (the maximum,
        not the balloon) of every guest running there, incoming migrations included. O(reserve_mib) is still kept free
        within it.
      - Each destination's comes from its own C(hostmaint_libvirt_capacity_mib) (O(destinations[].capacity_mib)).
        Hosts that share a machine (the lab's three share one machine's memory) declare what each may use.
      - A whole number from V(0) to V(16777216) (16 TiB); a negative or fractional value, or one that is no number,
        fails the task with one sentence naming the host.
    type: raw
    default: 0
  connect_timeout:
    description:
      - Seconds to wait for a peer's libvirt port to answer; a peer that does not is reported unreachable. The look-up of
        the peer's address has the same bound.
      - From V(1) to V(300).
    type: int
    default: 10
  destinations:
    description:
      - The other hosts. The action plugin fills them from the inventory when omitted (not from a
        C(hostmaint_libvirt_destinations) variable) - the other hosts of this host's cluster, the inventory group
        named by the host variable C(hostmaint_libvirt_cluster_group) (default C(hypervisors)); a host outside
        that group gets the other hosts of its own groups - each with its C(ansible_host), its generation (its
        C(hostmaint_libvirt_generation), else the C(hostmaint_libvirt_observed_generation) the maintenance playbooks
        record from M(hostmaint.libvirt.hypervisor_info)) and its declared capacity (its
        C(hostmaint_libvirt_capacity_mib)). Given destinations that name inventory hosts get the same address and
        capacity when they give none.
      - Each host once, by a name (and address) without a scheme, path or spaces; an IPv6 address in brackets. This host
        among them is left out; a list holding only this host fails the task.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The host's name (inventory name); migration records name hosts by it.
        type: str
        required: true
      address:
        description: The address in O(uri_template) for this host. Defaults to O(destinations[].name).
        type: str
      capacity_mib:
        description:
          - The memory in MiB the host may give its guests in all (see O(capacity_mib)); none declared when omitted
            or V(0).
        type: raw
      generation:
        description:
          - The host's generation (see O(generation)); unknown when omitted. Evacuation prefers destinations at the
            newest generation and takes one older than this host's only when no other has room.
        type: str
  downtime_steps_ms:
    description:
      - The convergence ladder's downtime limits in milliseconds; a migration starts at the first and
        moves up a step each time it stops converging.
      - At least one step, each from V(1) to V(10000), each above the one before.
    type: list
    elements: int
    default: [50, 100, 200, 300, 500]
  generation:
    description:
      - This host's generation, for upgrade-aware placement during rolling upgrades. Omitted, it is derived
        from the host's QEMU, libvirt and kernel versions and its OS point release (as
        M(hostmaint.libvirt.hypervisor_info) reports it).
    type: str
  max_inbound:
    description:
      - Concurrent migrations into one destination. A migration starts as soon as its source and its
        destination each have a free slot, longest first; a slot is free again once its migration switched over.
      - The most a destination gets; long pauses take slots away during a run (see O(pause_target_ms)).
      - From V(1) to V(64), as many as libvirt's default migration port range (49152-49215) has ports, one per
        incoming migration.
    type: int
    default: 2
  max_outbound:
    description:
      - Concurrent migrations out of one source.
      - The most a source gets; long pauses take slots away during a run (see O(pause_target_ms)).
      - From V(1) to V(64).
    type: int
    default: 2
  min_timeout:
    description:
      - The least time in seconds any migration gets before it is aborted, whatever its size (see O(timeout_per_gib)).
        A migration that transfers nothing for this long (at most 60 s) is aborted too.
      - From V(1) to V(86400) (a day).
    type: int
    default: 60
  name:
    description:
      - This host's name as the inventory and migration records know it. The action plugin fills it with
        C(inventory_hostname) (not from a C(hostmaint_libvirt_name) variable); defaults to the host name libvirt reports.
    type: str
  pause_target_ms:
    description:
      - The longest pause in milliseconds a guest should see when it switches over (the downtime QEMU reports
        for each finished migration). The concurrent migrations share the link and the CPUs, so each one's pause
        grows with them.
      - Each source and each destination starts the run with O(max_outbound) and O(max_inbound) slots. A migration
        whose pause reaches 80 % of this target takes one slot away from its source and from its destination
        (never fewer than one); after two migrations in a row whose pauses were at most half the target, the host
        gets one slot back (never more than its limit). The result's C(window_changes) lists every change.
      - V(0) turns this off; the hosts keep O(max_outbound) and O(max_inbound) slots. At most V(10000).
    type: int
    default: 150
  policies:
    description:
      - Per-guest policy by guest name, overriding the guest's own settings metadata. What to do with a guest
        that cannot live-migrate, V(migrate) (block), V(shutdown), V(skip) or V(fail).
      - Every guest named must be defined on this host or on one of O(destinations), else the task fails before
        anything changes; a guest that only a destination which does not answer might have is a warning.
    type: dict
    default: {}
  postcopy:
    description:
      - Allow switching a migration that does not converge to post-copy as the ladder's last step. In post-copy a
        failure of either host loses the guest, so it is off by default.
    type: bool
    default: false
  probes:
    description:
      - Where each guest's users reach it, by guest name, as C(tcp://HOST:PORT) or C(http://HOST[:PORT][/PATH]). During
        its O(settle_s) after switchover (at least 5 s) the module, from the host it runs on, tries the guest's probe
        (1 s an attempt) until it answers; a guest that never does is reported C(failed) ("web1 did not answer
        http://192.0.2.50/ within 5 s after switchover on hv2") and nothing more starts in that run.
      - A guest can carry its own as the C(probe) attribute of its settings metadata
        (C(urn:hostmaint:libvirt:settings:1)); this option wins over it. Without either, only libvirt's events are
        watched.
      - Every guest named must be defined on this host or on one of O(destinations), as for O(policies). Probes given
        with O(settle_s=0), which turns the settle check off, fail the task.
    type: dict
    default: {}
  reserve_mib:
    description:
      - Memory in MiB kept free on every destination for the host and QEMU's own overhead.
      - From V(0) to V(1048576) (1 TiB).
    type: int
    default: 1024
  settle_s:
    description:
      - Seconds each migrated guest is watched on its destination after switchover, through libvirt events.
        A guest that is reset, crashes, stops, shuts down or is paused (unless it was paused before the move)
        within that time, or that does not run there at its end, is reported V(failed) with what was seen,
        and no further move starts in that run.
      - A guest with a probe (O(probes)) must also answer it within O(settle_s) or 5 s after switchover, whichever
        is longer.
      - The default comes from when guests that a migration broke showed it (a reset or crash within 0.1 s of the
        switchover, on an emulator known to break them); a write lost without a crash shows only to the guest.
      - V(0) turns the check off; the guest's state on the destination is still reported. At most V(600).
    type: int
    default: 2
  shared_pools:
    description:
      - Storage pools to treat as shared storage (see M(hostmaint.libvirt.guest_info)). Migrating a guest whose
        disks sit on a pool shared only by this list tells libvirt the migration is safe (C(VIR_MIGRATE_UNSAFE)).
    type: list
    elements: str
    default: []
  shutdown_timeout:
    description:
      - Seconds to wait for a clean shutdown of a guest with policy V(shutdown).
      - From V(1) to V(3600).
    type: int
    default: 120
  storage_copy_source:
    description:
      - What becomes of a guest's disks on the host it left when its migration copied them (O(allow_storage_copy)),
        a disk at the same path on each host. libvirt leaves them behind.
      - V(delete) deletes each once the guest passed its settle period (O(settle_s)) on the destination, and only when
        the guest is defined there alone, its live and persistent definitions there name that disk, the destination's
        pools hold it and did not before the copy (a file both hosts already shared is never deleted), and no
        definition of any guest left on the source names it. A disk that stays, and why, is in the move's C(reason);
        the deleted ones are in its C(source_disks_deleted). A failed delete is a note, never a failed move.
      - V(keep) leaves them all, for the operator to remove.
      - Nothing is deleted after a move that failed, was aborted or whose guest did not pass its settle period (it
        stays or went back on its source).
    type: str
    choices: [delete, keep]
    default: delete
  timeout_per_gib:
    description:
      - A migration is aborted after this many seconds per GiB of guest memory, and of the disks it copies
        (O(allow_storage_copy)), at least O(min_timeout); the guest keeps running on its source.
      - From V(1) to V(3600).
    type: int
    default: 150
  tls:
    description:
      - Encrypt the migration data stream with TLS (C(VIR_MIGRATE_TLS)). Set V(false) only where the migration
        network is trusted; the hosts need migration TLS certificates otherwise.
    type: bool
    default: true
  uri_template:
    description:
      - The libvirt URI of a peer, with C({host}) replaced by its address. Used by this module to read peers and by
        libvirtd for peer-to-peer migration.
      - C({host}) goes in the host part. The scheme must reach a peer's QEMU driver - V(qemu), V(qemu+tls), V(qemu+ssh),
        V(qemu+tcp), V(qemu+libssh), V(qemu+libssh2) or V(qemu+ext) (not V(qemu+unix), which reaches only this host) -
        and the path is V(/system) (or V(/session)).
    type: str
    default: qemu+tls://{host}/system
"""
