# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live storage migration, the decisions: which disks of a guest move to another pool, and what to do with a move
that a dead run left half done.

Pure: the collection's model only. The module (plugins/modules/disk_move.py) reads the facts through the adapter,
``plan()`` decides, module_utils/disk_mover.py carries the plan out.

- ``plan()``: every disk of a guest that was asked for (``disks``, or all those on ``from_pool``) is either copied
  (a DiskCopy: a full copy, no backing chain, into a new volume of the same name and format in ``to_pool``) or
  refused with a code and one sentence (a DiskRefusal): a CD-ROM or floppy, a read-only or shareable disk, a disk in
  no pool, one already on ``to_pool``, a guest with snapshots (a copy does not carry them), another block job on
  the disk, a volume of that name already in ``to_pool``, too little room there (judged by the disks' virtual
  size, added up in order). Bad input (an unknown pool or disk) raises DecisionError naming it.
- ``resume()``: a disk move record left by a run that is gone, against what the guest shows now: per disk
  ``finish`` (the guest writes to the new disk: make both definitions name it), ``abort`` (its copy still runs:
  abort it, the guest stays on its source), ``undo`` (nothing runs: delete what that run created) or ``leave``
  (the disk names neither file: someone changed it since; only the record goes).
- ``unused()``: which volumes of a pool nobody uses may be deleted when the operator asks for it (``delete_unused``):
  one that a definition on this host names, that backs another volume of any pool of the host, or, in a shared
  pool, that a definition on another host names (or that a host which did not answer might name) is kept, with
  the reason.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import List, Optional

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError

GIB = 1024 ** 3
MIB = 1024 ** 2

# How a copy waits for libvirt's READY: bounded by the data to copy at this floor rate, plus a fixed allowance.
READY_FLOOR_MIB_S = 8
READY_ALLOWANCE_S = 60

SOURCE_AFTER = ("keep", "delete")
SYNCHRONOUS_WRITES = ("auto", "always", "never")


@dataclasses.dataclass
class DiskCopy:
    """One disk to copy: ``source`` (a file of pool ``source_pool``) into ``dest`` (volume ``dest_name`` of
    ``to_pool``), ``capacity`` its virtual size and ``allocation`` the bytes it holds (what the copy moves)."""

    target: str
    source: str
    source_pool: str
    to_pool: str
    dest: str
    dest_name: str
    capacity: int
    allocation: int
    format: str = "raw"

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DiskRefusal:
    """A disk that does not move, its ``code`` and the ``reason`` in one sentence."""

    target: str
    code: str
    reason: str
    source: Optional[str] = None

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class DiskPlan:
    """What a disk move of one guest does: ``copies`` (live when the guest runs, offline when it is shut off) and
    ``refused``."""

    guest: str
    host: str
    to_pool: str
    live: bool
    copies: List[DiskCopy] = dataclasses.field(default_factory=list)
    refused: List[DiskRefusal] = dataclasses.field(default_factory=list)

    @property
    def bytes(self):
        return sum(c.allocation for c in self.copies)

    def as_dict(self):
        return dict(guest=self.guest, host=self.host, to_pool=self.to_pool, live=self.live,
                    copies=[c.as_dict() for c in self.copies], refused=[r.as_dict() for r in self.refused],
                    bytes=self.bytes)


def _gib(value):
    return "%.1f GiB" % (int(value or 0) / float(GIB))


def ready_bound_s(allocation, capacity=0):
    """Seconds a copy of a disk holding ``allocation`` bytes may take to reach READY (a larger virtual size with
    fewer bytes in it costs little: holes are not copied)."""
    size = max(int(allocation or 0), 0)
    return int(READY_ALLOWANCE_S + size / float(READY_FLOOR_MIB_S * MIB))


def _selected(guest, host, disks, from_pool):
    """The disks of ``guest`` asked for: the ones named (each must exist), else those on ``from_pool``."""
    targets = [d.target for d in guest.disks]
    if disks:
        unknown = [t for t in disks if t not in targets]
        if unknown:
            raise DecisionError("guest %s on %s has no disk %s (it has %s)" % (
                guest.name, host, ", ".join(unknown), ", ".join(targets) or "none"))
        chosen = [d for d in guest.disks if d.target in disks]
        if from_pool:
            chosen = [d for d in chosen if d.pool == from_pool] + [d for d in chosen if d.pool != from_pool]
        return chosen
    return [d for d in guest.disks if d.pool == from_pool]


def _refusal(guest, disk, to_pool, snapshots, block_jobs, volume, names_in_target):
    """(code, sentence) for a disk that cannot move, or None."""
    what = "%s of %s" % (disk.target, guest.name)
    if disk.device not in ("disk", "lun"):
        return "not_a_disk", "%s is a %s, not a disk: only disks are copied" % (what, disk.device)
    if disk.readonly:
        return "read_only", "%s is read-only: nothing writes to it, and a copy would change nothing it uses" % what
    if disk.shareable:
        return "shareable", ("%s is shareable (other guests may write to it): a copy would split their writes"
                             % what)
    if disk.source_type != "file" or not disk.path or not disk.path.startswith("/"):
        return "not_a_file", "%s is a %s disk, not a file in a storage pool: it is not copied" % (
            what, disk.source_type)
    if not disk.pool:
        return "no_pool", ("%s (%s) is in no storage pool of this host: define the pool its folder is in"
                           % (what, disk.path))
    if disk.pool == to_pool:
        return "already_there", "%s is on %s already" % (what, to_pool)
    if snapshots:
        return "snapshots", ("%s has %d snapshot%s: a copy does not carry them; delete them first, or keep the disk "
                             "where it is" % (guest.name, snapshots, "" if snapshots == 1 else "s"))
    if disk.target in block_jobs:
        return "block_job", "%s has a block job running (%s): wait for it to end" % (what, block_jobs[disk.target])
    if volume is None:
        return "no_volume", "%s (%s) is not a volume that pool %s knows: refresh the pool" % (
            what, disk.path, disk.pool)
    if volume["name"] in names_in_target:
        return "exists", "%s: pool %s has a volume %s already; move or rename it first" % (
            what, to_pool, volume["name"])
    return None


def plan(guest, host, to_pool, pools, volumes, disks=None, from_pool=None, snapshots=0, block_jobs=None,
         names_in_target=(), migrating=False):
    """A DiskPlan for ``guest`` (a model.Guest whose disks carry their pool) on ``host``.

    ``pools``: {name: {active, available, path}} of this host; ``volumes``: {path: {name, capacity, allocation,
    format}} of the guest's disks; ``disks`` (targets) or ``from_pool`` say which disks; ``snapshots``: how many the
    guest has; ``block_jobs``: {target: job type} running; ``names_in_target``: volume names ``to_pool`` holds;
    ``migrating``: a migration of the guest is under way. Raises DecisionError for bad input.
    """
    if not to_pool:
        raise DecisionError("to_pool is empty: name the storage pool the disks of %s move to" % guest.name)
    if to_pool not in pools:
        raise DecisionError("storage pool %s is not defined on %s (it has %s)" % (
            to_pool, host, ", ".join(sorted(pools)) or "none"))
    if not pools[to_pool].get("active"):
        raise DecisionError("storage pool %s on %s is not active: start it (virsh pool-start %s)" % (
            to_pool, host, to_pool))
    if from_pool and from_pool not in pools:
        raise DecisionError("storage pool %s is not defined on %s (it has %s)" % (
            from_pool, host, ", ".join(sorted(pools)) or "none"))
    if from_pool and from_pool == to_pool:
        raise DecisionError("from_pool and to_pool are both %s: name another pool to move the disks of %s to" % (
            to_pool, guest.name))
    if not disks and not from_pool:
        raise DecisionError("name the disks of %s to move (disks) or the pool they leave (from_pool)" % guest.name)
    if migrating:
        raise DecisionError("%s is migrating on %s: its disks move once it has landed (or the migration ended)"
                            % (guest.name, host))
    result = DiskPlan(guest=guest.name, host=host, to_pool=to_pool, live=guest.active)
    free = int(pools[to_pool].get("available") or 0)
    names = set(names_in_target)
    for disk in _selected(guest, host, disks, from_pool):
        volume = volumes.get(disk.path)
        refused = _refusal(guest, disk, to_pool, snapshots, block_jobs or {}, volume, names)
        if refused is None and int(volume["capacity"]) > free:
            refused = "no_room", ("%s of %s needs %s (its virtual size) in pool %s, which has %s free" % (
                disk.target, guest.name, _gib(volume["capacity"]), to_pool, _gib(free)))
        if refused is not None:
            result.refused.append(DiskRefusal(target=disk.target, code=refused[0], reason=refused[1],
                                              source=disk.path))
            continue
        free -= int(volume["capacity"])
        names.add(volume["name"])
        root = pools[to_pool].get("path") or ""
        result.copies.append(DiskCopy(
            target=disk.target, source=disk.path, source_pool=disk.pool, to_pool=to_pool,
            dest=posixpath.join(root, volume["name"]) if root else volume["name"], dest_name=volume["name"],
            capacity=int(volume["capacity"]), allocation=int(volume.get("allocation") or 0),
            format=volume.get("format") or disk.format or "raw"))
    return result


def resume(record, live_sources, copy_jobs):
    """What to do with each disk of a record that a run left (module_utils.domain_xml.disk_move_record).

    ``live_sources``: {target: the file the guest uses now (its live definition, else its inactive one)};
    ``copy_jobs``: {target: the destination of a block copy running on it}. Returns [(disk record, action)],
    action one of finish, abort, undo, leave."""
    actions = []
    for disk in record.get("disks") or []:
        now = live_sources.get(disk["target"])
        if now == disk["dest"]:
            actions.append((disk, "finish"))
        elif now == disk["source"] and copy_jobs.get(disk["target"]):
            actions.append((disk, "abort"))
        elif now == disk["source"]:
            actions.append((disk, "undo"))
        else:
            actions.append((disk, "leave"))
    return actions


def unused(volumes, named, backing, shared=False, named_elsewhere=None, unanswered=()):
    """[(volume, "delete" or "keep", reason)] for each of ``volumes`` (dicts with name and path, a pool's), given
    ``named`` (the paths a definition of this host names), ``backing`` (the paths that back a volume of any of
    this host's pools), whether the pool is ``shared``, and for a shared pool ``named_elsewhere`` ({path: [host]},
    what the other hosts' definitions name) and ``unanswered`` (the other hosts that could not be asked)."""
    named_elsewhere = named_elsewhere or {}
    decided = []
    for volume in sorted(volumes, key=lambda v: v["name"]):
        path = volume["path"]
        if path in named:
            decided.append((volume, "keep", "%s is in use: a guest of this host names it" % volume["name"]))
        elif path in backing:
            decided.append((volume, "keep", "%s backs another volume" % volume["name"]))
        elif shared and named_elsewhere.get(path):
            decided.append((volume, "keep", "%s is in use on %s" % (volume["name"], ", ".join(
                sorted(named_elsewhere[path])))))
        elif shared and unanswered:
            decided.append((volume, "keep", "%s is on a shared pool and %s did not answer: it may be in use there" % (
                volume["name"], ", ".join(sorted(unanswered)))))
        else:
            decided.append((volume, "delete", "%s is used by nothing" % volume["name"]))
    return decided
