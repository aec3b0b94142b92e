# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight: every reason a guest cannot go to a destination, as data.

Pure: it reads the facts the adapter gathered (HostFacts, Guest) and never asks libvirt itself;
the CPU verdict, for instance, is libvirt's own comparison on the destination, stored by the adapter
in ``HostFacts.cpu_compatible``. Nothing here raises for "blocked": each reason is a Problem with a
code and a sentence naming the guest and the destination. Only bad input raises DecisionError.

Codes, destination-specific: same_host, unreachable, maintenance, hostname_unresolvable, arch,
cpu_incompatible, machine_type, memory, bridge_missing, network_missing, disk_not_shared,
storage_copy_no_pool, libvirt_older, qemu_older. Guest-only (the guest cannot go anywhere):
host_device, state, not_defined, block_job (a block job runs on one of its disks: libvirt refuses to migrate it
while one does), unknown_policy (its settings metadata names a policy that is none of
model.POLICIES: the guest is blocked rather than moved under a policy nobody chose).
"""

from __future__ import annotations

import posixpath
from typing import Dict, FrozenSet, List, Tuple

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    POLICIES,
    DecisionError,
    Limits,
    Problem,
    memory_need_mib,
    version_string,
)

# Guest states that cannot be live-migrated or moved as they are.
_STUCK_STATES = {
    "crashed": "the guest has crashed; destroy or restart it first",
    "nostate": "libvirt reports no state for the guest",
}


def verb(guest):
    """How a sentence names moving this guest: running or paused guests are live-migrated."""
    return "live-migrate" if guest.active else "move"


def sentence(guest, destination_name, reason):
    """The one-sentence message: 'cannot live-migrate web01 to hv2: <reason>'."""
    if destination_name:
        return "cannot %s %s to %s: %s" % (verb(guest), guest.name, destination_name, reason)
    return "cannot %s %s: %s" % (verb(guest), guest.name, reason)


def _problem(code, guest, destination_name, reason):
    return Problem(code=code, message=sentence(guest, destination_name, reason), guest=guest.name,
                   destination=destination_name)


def disk_location(disk):
    """Where a disk lives, in the form ``HostFacts.volume_paths`` lists it.

    An absolute path for file, block and dir disks; ``pool/volume`` for volume disks; None for a disk
    with no source (an empty cdrom) or a network disk, which needs no path on the destination.
    """
    if disk.source_type == "network" or not disk.path:
        return None
    if disk.source_type == "volume":
        return "%s/%s" % (disk.pool or "", disk.path)
    return posixpath.normpath(disk.path)


def _validate(guest, destination=None):
    if not getattr(guest, "name", None):
        raise DecisionError("invalid guest: a guest has no name", guest=repr(guest))
    if int(guest.memory_mib or 0) < 0 or int(guest.max_memory_mib or 0) < 0:
        raise DecisionError("invalid guest %s: memory cannot be negative" % guest.name)
    if destination is not None and not getattr(destination, "name", None):
        raise DecisionError("invalid host facts for %s: a destination has no name" % guest.name)


def check_guest(guest):
    """Reasons this guest cannot move to any destination at all (destination None)."""
    _validate(guest)
    return _guest_problems(guest, None)


def _guest_problems(guest, destination_name):
    problems = []
    if not guest.active and not guest.persistent:
        problems.append(Problem(
            code="not_defined", guest=guest.name, destination=destination_name,
            message="cannot move %s: it is transient and not running, so there is nothing to move" % guest.name))
    if guest.state in _STUCK_STATES:
        problems.append(_problem("state", guest, destination_name, _STUCK_STATES[guest.state]))
    for reason in guest.non_migratable_reasons:
        problems.append(_problem("host_device", guest, destination_name, reason))
    for target, job in sorted((guest.block_jobs or {}).items()):
        problems.append(_problem("block_job", guest, destination_name, (
            "a block job (%s) runs on its disk %s, and libvirt does not migrate a guest while one does: wait for "
            "it to end (virsh blockjob %s %s --info)" % (job, target, guest.name, target))))
    if guest.policy not in POLICIES:
        problems.append(Problem(
            code="unknown_policy", guest=guest.name, destination=destination_name,
            message='cannot evacuate %s: its policy "%s" (settings metadata) is not one of %s' % (
                guest.name, guest.policy, ", ".join(POLICIES))))
    return problems


def _present(destination):
    """The destination's volume paths as a set, built once per list (a plan asks for every guest)."""
    paths = destination.volume_paths or []
    cached = _PRESENT_CACHE.get(id(destination))
    if cached is None or cached[0] is not paths or cached[1] != len(paths):
        cached = (paths, len(paths), frozenset(paths))
        if len(_PRESENT_CACHE) > 256:
            _PRESENT_CACHE.clear()
        _PRESENT_CACHE[id(destination)] = cached
    return cached[2]


_PRESENT_CACHE = {}  # type: Dict[int, Tuple[List[str], int, FrozenSet[str]]]


def disks_to_copy(guest, destination):
    """The disks of ``guest`` that must be copied to ``destination``: those whose location does not exist there,
    and the writable ones in a pool of the source that is not shared storage, even when a file of that name exists
    on the destination (what an earlier storage copy left behind is not the guest's disk)."""
    present = _present(destination)
    missing = []
    for disk in guest.disks:
        location = disk_location(disk)
        local = disk.pool is not None and not disk.shared and not disk.readonly  # a read-only image may be kept per host
        if location is not None and (location not in present or local):
            missing.append(disk)
    return missing


def _cpu_verdict(destination, guest):
    verdict = destination.cpu_compatible.get(guest.name)
    if verdict is None and guest.uuid:
        verdict = destination.cpu_compatible.get(guest.uuid)
    if verdict is None:
        return True, None
    if isinstance(verdict, bool):
        return verdict, None
    if isinstance(verdict, dict):
        return bool(verdict.get("compatible")), verdict.get("reason")
    verdict = list(verdict)
    return bool(verdict[0]), (verdict[1] if len(verdict) > 1 else None)


def _maintenance_reason(destination):
    info = destination.maintenance_info or {}
    details = ", ".join("%s: %s" % (key, info[key]) for key in sorted(info) if info[key] not in (None, ""))
    if details:
        return "destination is in maintenance (%s)" % details
    return "destination is in maintenance"


def _hostname_problem(guest, source, destination):
    """The destination's own hostname does not resolve on the source (``HostFacts.hostname_resolves``).

    libvirt's destination puts its hostname (virConnectGetHostname) in the migration URI the source's
    QEMU connects to, and TLS checks the certificate against it. Only a known failure blocks: None
    (not checked, or no answer in time) is no problem.
    """
    if destination.hostname_resolves is not False:
        return None
    return _problem("hostname_unresolvable", guest, destination.name, "%s's hostname %s does not resolve from %s" % (
        destination.name, destination.hostname or "(unknown)", source.name if source is not None else "the source"))


def _memory_problem(guest, destination, limits):
    need = memory_need_mib(guest)
    name = destination.name
    if guest.hugepages:
        free = max([int(v) for v in (destination.hugepages_free_mib or {}).values()] or [0])
        if free < need:
            return _problem("memory", guest, name, "destination has %d MiB of free hugepages, guest needs %d MiB "
                            "backed by hugepages" % (free, need))
        return None
    available = int(destination.memory_free_mib) - int(limits.reserve_mib)
    if available < need:
        return _problem("memory", guest, name, "destination has %d MiB free (%d MiB less the %d MiB reserve), "
                        "guest needs %d MiB" % (max(available, 0), destination.memory_free_mib, limits.reserve_mib,
                                                need))
    return None


def _is_same_host(source, destination):
    if source is None:
        return False
    if source.name == destination.name:
        return True
    return bool(source.uuid) and source.uuid == destination.uuid


def _pool_for_directory(destination, directory):
    for pool in destination.pools or []:
        path = pool.get("path")
        if path and pool.get("active", True) and posixpath.normpath(path) == directory:
            return pool
    return None


def _disk_problems(guest, destination, limits):
    problems = []
    copy = limits.storage_copy_allowed(guest.name)
    for disk in disks_to_copy(guest, destination):
        location = disk_location(disk)
        if not copy:
            problems.append(_problem(
                "disk_not_shared", guest, destination.name,
                "disk %s (%s) does not exist on the destination and storage copy is not allowed for this guest"
                % (disk.target, location)))
        elif disk.source_type == "file":
            # libvirt pre-creates a copied file only inside a pool whose target is its directory.
            directory = posixpath.dirname(location)
            if _pool_for_directory(destination, directory) is None:
                problems.append(_problem(
                    "storage_copy_no_pool", guest, destination.name,
                    "disk %s (%s) would be copied, but no active storage pool on the destination has %s as "
                    "its target" % (disk.target, location, directory)))
        else:
            problems.append(_problem(
                "disk_not_shared", guest, destination.name,
                "disk %s (%s, %s) does not exist on the destination and libvirt can copy only file disks"
                % (disk.target, location, disk.source_type)))
    return problems


def _version_problems(guest, source, destination):
    problems = []
    if source is None:
        return problems
    for code, key, label in (("libvirt_older", "libvirt_version", "libvirt"), ("qemu_older", "qemu_version", "QEMU")):
        mine = int(getattr(source, key) or 0)
        theirs = int(getattr(destination, key) or 0)
        if mine and theirs and theirs < mine:
            problems.append(_problem(code, guest, destination.name, "destination %s %s is older than the source's %s"
                                     % (label, version_string(theirs), version_string(mine))))
    return problems


def _network_problems(guest, destination):
    problems = []
    seen = set()
    for nic in guest.interfaces:
        if nic.bridge and nic.bridge not in seen:
            seen.add(nic.bridge)
            if destination.bridges is not None and nic.bridge not in destination.bridges:
                problems.append(_problem("bridge_missing", guest, destination.name,
                                         "destination has no bridge %s" % nic.bridge))
        if nic.network and nic.network not in seen:
            seen.add(nic.network)
            if nic.network not in (destination.networks or []):
                problems.append(_problem("network_missing", guest, destination.name,
                                         "destination has no active libvirt network %s" % nic.network))
    return problems


def destination_problems(guest, source, destination, limits):
    """The destination-specific reasons only (no guest-only reasons); placement uses this."""
    _validate(guest, destination)
    name = destination.name
    problems = []
    if _is_same_host(source, destination):
        problems.append(_problem("same_host", guest, name, "%s is the host the guest is on" % name))
    if not destination.reachable:
        reason = "destination is unreachable"
        if destination.unreachable_reason:
            reason += " (%s)" % destination.unreachable_reason
        problems.append(_problem("unreachable", guest, name, reason))
        return problems  # nothing else is known about an unreachable host
    if destination.maintenance:
        problems.append(_problem("maintenance", guest, name, _maintenance_reason(destination)))
    hostname = _hostname_problem(guest, source, destination)
    if hostname is not None:
        problems.append(hostname)
    if guest.arch and destination.arch and guest.arch != destination.arch:
        reason = "destination is %s, guest is %s" % (destination.arch, guest.arch)
        problems.append(_problem("arch", guest, name, reason))
    compatible, reason = _cpu_verdict(destination, guest)
    if not compatible:
        text = "libvirt on the destination finds the guest CPU incompatible with the host CPU"
        problems.append(_problem("cpu_incompatible", guest, name, text + (" (%s)" % reason if reason else "")))
    if guest.machine and destination.machine_types and guest.machine not in destination.machine_types:
        problems.append(_problem("machine_type", guest, name,
                                 "destination QEMU does not support machine type %s" % guest.machine))
    if guest.active:
        memory = _memory_problem(guest, destination, limits)
        if memory is not None:
            problems.append(memory)
    problems.extend(_network_problems(guest, destination))
    problems.extend(_disk_problems(guest, destination, limits))
    problems.extend(_version_problems(guest, source, destination))
    return problems


def check(guest, source, destination, limits=None):
    """Every reason ``guest`` (on ``source``) cannot go to ``destination``; empty when it can.

    Guest-only reasons (passthrough devices, a crashed guest) are repeated here with the
    destination named, so one call gives a complete verdict for one pair.
    """
    limits = (limits or Limits()).validate()
    _validate(guest, destination)
    return _guest_problems(guest, destination.name) + destination_problems(guest, source, destination, limits)


def verdicts(guests, source, destinations, limits=None):
    """Per guest, per destination: ``{"ok": bool, "problems": [problem dicts]}`` (JSON-ready)."""
    limits = (limits or Limits()).validate()
    result = {}  # type: Dict[str, Dict[str, dict]]
    for guest in guests:
        _validate(guest)
        if guest.name in result:
            raise DecisionError("duplicate guest %s in the guest list" % guest.name)
        per_destination = {}
        for destination in destinations:
            problems = check(guest, source, destination, limits)
            per_destination[destination.name] = {"ok": not problems,
                                                 "problems": [problem.as_dict() for problem in problems]}
        result[guest.name] = per_destination
    return result


def codes(problems):
    """The codes of a list of problems, in order, without repeats (handy for tests and reports)."""
    seen = []  # type: List[str]
    for problem in problems:
        if problem.code not in seen:
            seen.append(problem.code)
    return seen
