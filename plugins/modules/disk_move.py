#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: disk_move
short_description: Move the disks of guests to another storage pool of this hypervisor while they run
version_added: 0.4.0
description:
  - Moves one guest's disks (O(disks), or all those on O(from_pool)) into O(to_pool), or, without O(guest), the
    disks on O(from_pool) of every guest of this host (what C(playbooks/storage_evacuate.yml) runs on each host).
  - A running guest keeps running - each disk is copied by libvirt's block copy (a full copy, no backing chain, a
    transient job), mirrored until libvirt reports it ready, then the guest pivots to the copy. Its live and its
    inactive definition must both name the copy afterwards (the module updates the inactive one when libvirt
    leaves it naming the old file), so the guest boots from the copy when it is started later.
  - A shut-off guest's disks are copied with libvirt's volume copy and its definition then names the copy.
  - Refuses, with a reason for each disk - CD-ROM and floppy, read-only and shareable disks, disks in no pool, disks
    already on O(to_pool), guests with snapshots (a copy does not carry them), disks with another block job
    running, a volume of the same name in O(to_pool), too little room there (judged by the disks' virtual size).
    A guest that is migrating is refused as a whole.
  - The move is recorded in the guest's metadata before it starts. A run that died (killed, its host rebooted) is
    finished or undone by the next run on the host - a disk the guest already writes to stays, an unfinished copy
    is aborted and the volume it had created is deleted.
  - Every abort (O(stall_timeout), O(ready_timeout), M(hostmaint.libvirt.stop_run), a signal, the controller going
    away, an error) ends the copy without a pivot - the guest stays on its source disk with every write, and only
    the volume this run created is deleted.
  - Holds the host like every run of the collection, so an evacuation or restore of the same host refuses while it
    runs, and the other way round.
  - Check mode returns the plan that a real run would carry out, and what it would recover.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.connection
  - hostmaint.libvirt.progress
  - hostmaint.libvirt.connection.attributes
options:
  address:
    description: The address other hosts reach this host at (filled by the action plugin from C(ansible_host)).
    type: str
  connect_timeout:
    description: Seconds to wait for a peer's libvirt (only asked whether it names a source disk of a shared pool).
    type: int
    default: 10
  copy_bandwidth_mib:
    description:
      - The bandwidth of each copy in MiB/s; V(0) means no cap.
      - Distinct from the migrations' O(hostmaint.libvirt.evacuate#module:bandwidth_mib) - an inventory that caps
        migrations with C(hostmaint_libvirt_bandwidth_mib) does not cap disk copies; set
        C(hostmaint_libvirt_copy_bandwidth_mib) for those.
    type: int
    default: 0
  delete_unused:
    description:
      - Without O(guest) only. After the moves, delete the volumes of O(from_pool) that nothing uses - no definition
        of this host names them, they back no volume of any pool of this host, and for a shared pool no definition
        on O(destinations) names them (a shared volume is kept when one of them does not answer). The sources that
        O(source_after=keep) kept are among them.
      - V(false) (the default) never deletes a volume nothing uses, as C(playbooks/storage_evacuate.yml) does unless
        told with C(-e storage_evacuate_delete_unused=true).
    type: bool
    default: false
  destinations:
    description:
      - The other hosts (filled by the action plugin from the inventory). With O(source_after=delete), a source on a
        shared pool is deleted only when none of them names it either.
    type: list
    elements: dict
    default: []
    suboptions:
      address:
        description: The address the host is reached at.
        type: str
      capacity_mib:
        description: Unused here.
        type: raw
      generation:
        description: Unused here.
        type: str
      name:
        description: The host's inventory name.
        type: str
        required: true
  disks:
    description: The disks to move, by target (V(vda)); empty means all the guest's disks on O(from_pool).
    type: list
    elements: str
    default: []
  from_pool:
    description: The pool whose disks move. Required without O(guest) or O(disks).
    type: str
  guest:
    description: The guest whose disks move; omitted, every guest of this host with a disk on O(from_pool).
    type: str
  max_copies:
    description: How many guests' disks are copied at once on this host (from 1 to 16).
    type: int
    default: 2
  name:
    description: This host's name (filled by the action plugin from C(inventory_hostname)).
    type: str
  ready_timeout:
    description:
      - Seconds a copy may take to become ready to pivot; V(0) means 60 s plus the disk's allocated bytes at 8 MiB/s.
    type: int
    default: 0
  shared_pools:
    description: Pools to treat as shared although libvirt cannot tell (as for the migration modules).
    type: list
    elements: str
    default: []
  source_after:
    description:
      - What happens to a source volume after its guest pivoted and both definitions name the copy.
      - V(keep) (the default) leaves it where it was; V(delete) deletes it, but only when no definition on this host
        (and for a shared pool on O(destinations)) names it.
    type: str
    choices: [delete, keep]
    default: keep
  stall_timeout:
    description: Seconds with no progress after which a copy is aborted (from 5 to 3600).
    type: int
    default: 60
  synchronous_writes:
    description:
      - V(auto) starts each copy without synchronous writes and, when it is not ready within O(ready_timeout),
        once more with them (libvirt 8.0 or later). V(always) uses them from the start (the guest's writes wait for
        both disks, so the copy converges whatever the guest writes); V(never) aborts at O(ready_timeout).
    type: str
    choices: [always, auto, never]
    default: auto
  to_pool:
    description: The storage pool of this host the disks move into.
    type: str
    required: true
  uri_template:
    description: How a peer's libvirt URI is built from its address (C({host})).
    type: str
    default: qemu+tls://{host}/system
"""

EXAMPLES = r"""
- name: Move the disks of web1 from the local pool to the new array
  hostmaint.libvirt.disk_move:
    guest: web1
    from_pool: default
    to_pool: array2

- name: Empty the pool old-array on this host, deleting each source once its guest runs on the copy
  hostmaint.libvirt.disk_move:
    from_pool: old-array
    to_pool: array2
    source_after: delete
    copy_bandwidth_mib: 200
"""

RETURN = r"""
plans:
  description: Per guest, the disks it copies (source, dest, virtual size, bytes held) and those it refuses (code, reason).
  returned: always
  type: list
  elements: dict
  sample: [{guest: web1, host: hv1, to_pool: array2, live: true, bytes: 209715200,
            copies: [{target: vda, source: /var/lib/libvirt/images/web1.qcow2, dest: /srv/array2/web1.qcow2,
                      capacity: 1073741824, allocation: 209715200, format: qcow2}],
            refused: [{target: sda, code: not_a_disk, reason: "sda of web1 is a cdrom, not a disk: only disks are copied"}]}]
moves:
  description:
    - One entry per disk copied or tried, with its C(outcome) (V(moved), V(failed), V(aborted), V(not_run)), the
      C(reason) in a sentence, C(bytes) (the data the disk held), C(job_bytes) (what the copy job walked - the whole
      virtual size, holes too, plus what the guest wrote meanwhile), C(seconds), C(rate_mib_s) (job_bytes per second;
      for a shut-off guest, copied offline with no job, bytes per second),
      whether C(synchronous) writes were used and C(source_after) (V(kept) or V(deleted)).
  returned: when not in check mode
  type: list
  elements: dict
unused:
  description: With O(delete_unused) - each volume of O(from_pool) nothing used after the moves, or that was kept,
    with C(name), C(path), C(action) (V(deleted), V(kept), in check mode V(delete)) and the C(reason).
  returned: when O(delete_unused) is true
  type: list
  elements: dict
recovered:
  description: What this run finished or undid of the disk moves a dead run left (per disk - action and note).
  returned: always
  type: list
  elements: dict
volumes:
  description: Without O(guest) - every volume of O(from_pool) and who uses it (C(used_by) guests and their state,
    C(backing_of) other volumes), as it was before the run.
  returned: when O(guest) is not given
  type: list
  elements: dict
summary:
  description: Counts (moved, failed, aborted, refused), bytes and seconds of the run.
  returned: always
  type: dict
run_id:
  description: This run's id.
  returned: always
  type: str
"""

import concurrent.futures

from ansible_collections.hostmaint.libvirt.plugins.module_utils import disk_moves
from ansible_collections.hostmaint.libvirt.plugins.module_utils.disk_mover import DiskMover
from ansible_collections.hostmaint.libvirt.plugins.module_utils.engine import EngineModule
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.options import DISK_MOVE_SPEC


class DiskMove(EngineModule):
    argument_spec = DISK_MOVE_SPEC

    def validate(self):
        p = self.params
        if not (p.get("to_pool") or "").strip():
            self.fail_early("to_pool is empty: name the storage pool the disks move into")
        if not p.get("guest") and not p.get("from_pool"):
            self.fail_early("name a guest, or the pool whose disks move (from_pool)")
        if p.get("delete_unused") and p.get("guest"):
            self.fail_early("delete_unused deletes the unused volumes of a pool: give from_pool without guest")
        if p.get("disks") and not p.get("guest"):
            self.fail_early("disks (%s) names disks of one guest: name the guest too" % ", ".join(p["disks"]))
        for option, low, high in (("max_copies", 1, 16), ("stall_timeout", 5, 3600), ("ready_timeout", 0, 86400),
                                  ("copy_bandwidth_mib", 0, 100000), ("connect_timeout", 1, 300)):
            if not low <= int(p[option]) <= high:
                self.fail_early("%s must be from %d to %d, got %s" % (option, low, high, p[option]))

    # -- facts and plans ----------------------------------------------------------------------
    def guests(self, local, pools):
        p = self.params
        if p["guest"]:
            return [local.guest(p["guest"], pools=pools)]
        return [g for g in local.guests(pools=pools) if any(d.pool == p["from_pool"] for d in g.disks)]

    def plans(self, local, guests, space):
        """A DiskPlan per guest; room and volume names in to_pool are shared out in order."""
        p = self.params
        migrating = local.migration_jobs()
        taken = set(local.volume_names(p["to_pool"])) if p["to_pool"] in space else set()
        plans = []
        for guest in guests:
            volumes = local.volume_info(sorted(set(d.path for d in guest.disks if d.path and d.path.startswith("/"))))
            plan = disk_moves.plan(
                guest, self.self_name, p["to_pool"], space, volumes, disks=p["disks"], from_pool=p["from_pool"],
                snapshots=local.snapshot_count(guest.name), block_jobs=local.block_jobs(guest.name),
                names_in_target=taken, migrating=guest.name in migrating and bool(p["guest"]))
            if guest.name in migrating:
                plan.refused = [disk_moves.DiskRefusal(target=c.target, code="migrating", source=c.source, reason=(
                    "%s is migrating: its disks move once it has landed" % guest.name)) for c in plan.copies]
                plan.copies = []
            for copy in plan.copies:
                space[p["to_pool"]]["available"] -= copy.capacity
                taken.add(copy.dest_name)
            plans.append(plan)
        return plans

    def inventory(self, local):
        """Every volume of from_pool and who uses it (guests of this host; other volumes backed by it)."""
        volumes = local.pool_volumes(self.params["from_pool"])
        users = local.definitions_naming([v["path"] for v in volumes])
        states = {}
        for guest in local.guests():
            states[guest.name] = guest.state
        return [dict(name=v["name"], path=v["path"], capacity=v["capacity"], allocation=v["allocation"],
                     used_by=[dict(guest=g, state=states.get(g)) for g in sorted(users[v["path"]])],
                     backing_of=[o["name"] for o in volumes if o.get("backing") == v["path"]])
                for v in volumes]

    def delete_unused(self, local, pools, moving=()):
        """Delete the volumes of from_pool that nothing uses (disk_moves.unused decides); in check mode (``moving``:
        the plans about to run) say which would go: those unused now and the sources the plans leave behind when
        they are kept."""
        p = self.params
        volumes = local.pool_volumes(p["from_pool"])
        paths = [v["path"] for v in volumes]
        leaving = set(c.source for x in moving for c in x.copies)
        named = set(path for path, users in local.definitions_naming(paths).items() if users and path not in leaving)
        backing = set()
        for pool in pools:
            if pool.get("active", True):
                backing.update(v["backing"] for v in local.pool_volumes(pool["name"]) if v.get("backing"))
        shared = any(x["name"] == p["from_pool"] and x["shared"] for x in pools)
        elsewhere, unanswered = {}, []
        if shared:
            for dest in self.destinations():
                try:
                    for path, users in self.peer(dest["name"]).definitions_naming(paths).items():
                        if users:
                            elsewhere.setdefault(path, []).append(dest["name"])
                except HostmaintError:
                    unanswered.append(dest["name"])
        decided = disk_moves.unused(volumes, named, backing, shared, elsewhere, unanswered)
        gone = [v["path"] for v, action, _reason in decided if action == "delete"]
        if gone and not self.module.check_mode:
            local.delete_volumes(gone)
        done = "delete" if self.module.check_mode else "deleted"
        return [dict(name=v["name"], path=v["path"], action=done if action == "delete" else "kept", reason=reason)
                for v, action, reason in decided]

    def others(self, plans, pools):
        """(adapters of the destinations, the hosts that did not answer), when a source of a shared pool may be
        deleted; ([], []) otherwise."""
        shared = set(p["name"] for p in pools if p["shared"])
        if self.params["source_after"] != "delete" or not any(c.source_pool in shared for x in plans for c in x.copies):
            return [], []
        found, missing = [], []
        for dest in self.destinations():
            try:
                found.append(self.peer(dest["name"]))
            except HostmaintError:
                missing.append(dest["name"])
        return found, missing

    # -- the run ------------------------------------------------------------------------------
    def mover(self, local, others=(), unknown=(), shared=()):
        """The DiskMover of this run; ``others``, ``unknown`` and ``shared`` say where a deleted source may be named
        (the peers' adapters, the peers that did not answer, this host's shared pools)."""
        p = self.params
        return DiskMover(local, self.run_id, bandwidth_mib=p["copy_bandwidth_mib"], synchronous=p["synchronous_writes"],
                         ready_timeout_s=p["ready_timeout"], stall_s=p["stall_timeout"], source_after=p["source_after"],
                         stop=self.stop_reason, reopen=lambda: self.connect(self.self_name), others=others,
                         unknown_hosts=unknown, shared_pools=shared, progress=self.progress_recorder())

    def recover(self, local, guests, mover):
        """Finish or undo the disk moves dead runs left on these guests (check mode: say what would be done)."""
        done = []
        for guest in guests:
            record = local.disk_move_record(guest.name)
            if record is None or record.get("run_id") == self.run_id:
                continue
            if self.module.check_mode:
                done.append(dict(guest=guest.name, action="recover", run_id=record.get("run_id"),
                                 note="the disk move of %s left by run %s would be finished or undone" % (
                                     guest.name, record.get("run_id"))))
                continue
            done += mover.recover(guest.name, record)
        return done

    def run(self):
        p = self.params
        local = self.adapter()
        result = dict(changed=False, run_id=self.run_id, recovered=[], plans=[])
        with self.held(local, "disk_move") as guard:
            pools = local.pools(shared_names=p["shared_pools"])
            guests = self.guests(local, pools)
            result["recovered"] = self.recover(local, guests, self.mover(local))
            if result["recovered"] and not self.module.check_mode:
                guests = self.guests(local, local.pools(shared_names=p["shared_pools"]))
            if not p["guest"]:
                result["volumes"] = self.inventory(local)
            plans = self.plans(local, guests, local.pool_space())
            result["plans"] = [x.as_dict() for x in plans]
            todo = [x for x in plans if x.copies]
            result["changed"] = bool(todo) or bool(result["recovered"])
            if self.module.check_mode:
                result["summary"] = _summary(plans, [])
                if p["delete_unused"]:
                    result["unused"] = self.delete_unused(local, pools, moving=plans)
                return result
            others, unknown = self.others(plans, pools)
            mover = self.mover(local, others, unknown, set(x["name"] for x in pools if x["shared"]))
            guard.moving = True
            mover.queued(todo)
            moves = []
            with concurrent.futures.ThreadPoolExecutor(max_workers=p["max_copies"]) as workers:
                for found in workers.map(mover.move, todo):
                    moves += found
            result["moves"] = moves
            result["summary"] = _summary(plans, moves)
            if p["delete_unused"] and not any(m["outcome"] in ("failed", "aborted") for m in moves):
                result["unused"] = self.delete_unused(local, pools)
                result["changed"] = result["changed"] or any(u["action"] == "deleted" for u in result["unused"])
            guard.result = dict(result)
        failed = [m for m in result["moves"] if m["outcome"] in ("failed", "aborted")]
        refused = [r for x in plans for r in x.refused if r.code != "already_there"]
        if failed:
            raise HostmaintError("; ".join(m["reason"] for m in failed), **result)
        if p["guest"] and refused and not result["moves"]:
            raise HostmaintError("; ".join(r.reason for r in refused), **result)
        return result


def _summary(plans, moves):
    moved = [m for m in moves if m["outcome"] == "moved"]
    return dict(guests=len(plans), planned=sum(len(x.copies) for x in plans),
                refused=sum(len([r for r in x.refused if r.code != "already_there"]) for x in plans),
                moved=len(moved), failed=len([m for m in moves if m["outcome"] == "failed"]),
                aborted=len([m for m in moves if m["outcome"] == "aborted"]),
                bytes=sum(int(m["bytes"] or 0) for m in moved),
                seconds=round(sum(float(m["seconds"] or 0) for m in moved), 2),
                source_deleted=len([m for m in moved if m.get("source_after") == "deleted"]))


def main():
    DiskMove().execute()


if __name__ == "__main__":
    main()
