# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The invariant every fault case ends on, checked by reading each lab host's libvirt directly (never the
engine's result) and the machine's process table:

- every guest that existed before is defined persistently on exactly one host, runs on exactly one host
  when it was running (or keeps its shut-off or paused state), and no host keeps a transient copy;
- every guest that was running answers HTTP with the same boot id as before;
- every QEMU process belongs to a guest that runs (or is paused) on a host, one process per such host;
- no host keeps a migration job, a run's hold, or a maintenance mark the case did not mean to leave;
- every guest that was active has the migration downtime limit it had before (QEMU's migration parameters
  back after a failed or aborted migration, as tp-libvirt checks them);
- disks, each named by (host, pool, path), since the private pool ``default`` exists on every host and the
  shared pool is seen from all of them: every disk a guest's definition names is a volume of a pool of the host
  that defines it; a disk of a private pool exists only there (no copy made during the case left on another host); no volume is left
  that was not there before and that no definition names (what a run created and left); no block job runs.

The snapshot is taken by a small script run inside each host with libvirt's own Python bindings, so it
shares no code with the collection.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

from labkit import kit

lab_cli = kit.lab_cli

# Run inside a lab host: what its libvirtd says, as JSON.
HOST_SCRIPT = r"""
import json, libvirt
import xml.etree.ElementTree as ET
conn = libvirt.open("qemu:///system")
states = {1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed", 7: "pmsuspended"}
guests = {}
for dom in conn.listAllDomains(0):
    state, reason = dom.state()
    job = limit = None
    if dom.isActive():
        try:
            stats = dom.jobStats(0)
            job = stats.get("type") or None
        except libvirt.libvirtError:
            job = "incoming" if (state, reason) == (3, 2) else None
        try:
            limit = dom.migrateGetMaxDowntime(0)
        except libvirt.libvirtError:
            pass
    xml = ET.fromstring(dom.XMLDesc(0 if dom.isActive() else libvirt.VIR_DOMAIN_XML_INACTIVE))
    disks, block_jobs = [], {}
    for disk in xml.findall("devices/disk"):
        source, target = disk.find("source"), disk.find("target")
        if source is not None and source.get("file"):
            disks.append(source.get("file"))
        if dom.isActive() and target is not None:
            try:
                if dom.blockJobInfo(target.get("dev"), 0):
                    block_jobs[target.get("dev")] = True
            except libvirt.libvirtError:
                pass
    guests[dom.name()] = dict(state=states.get(state, str(state)), reason=reason, persistent=bool(dom.isPersistent()),
                              job=job, downtime_ms=limit, disks=disks, block_jobs=sorted(block_jobs))
pools = {}
for pool in conn.listAllStoragePools(0):
    if not pool.isActive():
        continue
    try:
        pool.refresh(0)
    except libvirt.libvirtError:
        pass
    kind = ET.fromstring(pool.XMLDesc(0)).get("type")
    try:
        volumes = sorted(v.path() for v in pool.listAllVolumes(0))
    except libvirt.libvirtError:
        volumes = []
    pools[pool.name()] = dict(shared=kind in ("netfs", "gluster", "rbd", "iscsi"), volumes=volumes)
secrets = []
for secret in conn.listAllSecrets(0):
    try:
        secrets.append(secret.usageID())
    except libvirt.libvirtError:
        pass
print(json.dumps(dict(guests=guests, secrets=secrets, pools=pools)))
"""

# libvirt starts QEMU with "-name guest=<name>,debug-threads=on", a comma in the name doubled
QEMU_NAME = re.compile(r"-name\s+guest=((?:[^,]|,,)+)")


def host_view(host):
    proc = lab_cli("exec", host, "python3", "-c", HOST_SCRIPT, check=False, timeout=60)
    if proc.returncode != 0:
        return None  # its libvirtd does not answer: the checker says so
    return json.loads(proc.stdout)


def qemu_processes(hosts):
    """{guest name: number of QEMU processes} of this lab's ``hosts``: those in their network namespaces (named after
    them, with HOSTMAINT_LAB_PREFIX). The lab hosts share the machine's process table with every other lab on it
    (make test runs a second one beside this), so the processes are found by namespace, not by name."""
    prefix = os.environ.get("HOSTMAINT_LAB_PREFIX", "")
    pids = set()
    for host in hosts:
        out = subprocess.run(["ip", "netns", "pids", prefix + host], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, check=False).stdout
        pids.update(line.strip() for line in out.splitlines() if line.strip().isdigit())
    counts = {}
    for pid in sorted(pids):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                args = handle.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue  # it ended meanwhile
        if not args or "qemu-system" not in os.path.basename(args[0]):
            continue
        match = QEMU_NAME.search(" ".join(args))
        if match:
            name = match.group(1).replace(",,", ",")
            counts[name] = counts.get(name, 0) + 1
    return counts


def snapshot(lab, guests=None, answers=True):
    """What the lab shows now: {hosts: {host: view}, qemu: {...}, answers: {guest: answer}, addresses: {...}}.

    ``guests`` limits the answers read to those guests (all lab guests by default)."""
    status = lab.status()
    views = dict((h["name"], host_view(h["name"])) for h in status["hosts"])
    addresses = dict((g["name"], g["address"]) for g in status["guests"])
    found = dict(hosts=views, qemu=qemu_processes(views), addresses=addresses, answers={})
    if answers:
        for name, address in sorted(addresses.items()):
            if guests is not None and name not in guests:
                continue
            running = [h for h, v in sorted(views.items()) if v and v["guests"].get(name, {}).get("state") == "running"]
            if running:
                found["answers"][name] = answer(address)
                if found["answers"][name] is None:
                    found.setdefault("silent", {})[name] = silence(running[0], name, address)
    return found


def silence(host, guest, address):
    """What the lab shows about a running guest that does not answer HTTP, for the violation's sentence: its state
    and reason, the switch port its MAC address was last seen on, and one ping."""
    state = lab_cli("exec", host, "virsh", "-c", "qemu:///system", "domstate", "--reason", guest, check=False,
                    timeout=30).stdout.strip()
    macs = re.findall(r"([0-9a-f]{2}(?::[0-9a-f]{2}){5})", lab_cli(
        "exec", host, "virsh", "-c", "qemu:///system", "domiflist", guest, check=False, timeout=30).stdout)
    switch = os.environ.get("HOSTMAINT_LAB_PREFIX", "") + "hvlab"  # tests/lab/lab's switch namespace
    fdb = subprocess.run(["ip", "netns", "exec", switch, "bridge", "fdb", "show"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, universal_newlines=True, check=False).stdout
    ports = [line.split()[2] for line in fdb.splitlines() if macs and line.startswith(macs[0] + " ")]
    ping = subprocess.run(["ping", "-c", "1", "-W", "1", address], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode == 0
    return "state %s on %s; its MAC %s last seen on switch port %s; ping %s" % (
        state or "unknown", host, macs[0] if macs else "unknown", "/".join(ports) or "none",
        "answered" if ping else "did not answer")


def answer(address, within=20.0):
    return kit.answer_of(address, within=within)


def where(snap, guest):
    """(hosts defining it persistently, hosts where it is active, {host: state}, transient hosts)."""
    persistent, active, states, transient = [], [], {}, []
    for host, view in sorted(snap["hosts"].items()):
        if not view or guest not in view["guests"]:
            continue
        info = view["guests"][guest]
        states[host] = info["state"]
        if info["persistent"]:
            persistent.append(host)
        else:
            transient.append(host)
        if info["state"] in ("running", "paused", "blocked"):
            active.append(host)
    return persistent, active, states, transient


def violations(before, after, marks=(), gone=(), restarted=(), stopped=(), maybe_marked=()):
    """Every way ``after`` breaks the invariant against ``before`` (a list of sentences; empty when it holds).

    ``marks``: hosts the case means to leave in maintenance (``maybe_marked``: hosts that may be left so or
    not, such as the host of a restore that was stopped); ``gone``: guests the case removed on purpose;
    ``restarted``: guests the case restarted on purpose (their boot id may change); ``stopped``: guests the
    case shut down on purpose (they may be shut off)."""
    found = []
    for host, view in sorted(after["hosts"].items()):
        if view is None:
            found.append("%s: its libvirtd does not answer" % host)
            continue
        for name, info in sorted(view["guests"].items()):
            if info.get("job"):
                found.append("%s: %s still has a job (%s)" % (host, name, info["job"]))
        holds = [s for s in view["secrets"] if s == "hostmaint:hold"]
        if holds:
            found.append("%s: a run's hold is left on it" % host)
        marked = "hostmaint:maintenance" in view["secrets"]
        if host in maybe_marked:
            pass
        elif marked and host not in marks:
            found.append("%s: left in maintenance" % host)
        if not marked and host in marks:
            found.append("%s: not in maintenance, though the case leaves it so" % host)
    names = set()
    for view in before["hosts"].values():
        names.update((view or {}).get("guests", {}))
    for name in sorted(names - set(gone)):
        b_active, b_states = where(before, name)[1:3]
        persistent, active, states, transient = where(after, name)
        was = sorted(set(b_states.values()))
        if len(persistent) != 1:
            found.append("%s is defined persistently on %s (must be exactly one host)" % (
                name, ", ".join(persistent) or "no host"))
        if transient:
            found.append("%s has a transient copy on %s" % (name, ", ".join(transient)))
        if b_active and name not in stopped:
            if len(active) != 1:
                found.append("%s was %s and now runs on %s (must be exactly one host)" % (
                    name, "/".join(was), ", ".join(active) or "no host"))
            elif states[active[0]] != b_states[b_active[0]]:
                found.append("%s was %s and is %s on %s" % (name, b_states[b_active[0]], states[active[0]], active[0]))
        if not b_active and active:
            found.append("%s was %s and now runs on %s" % (name, "/".join(was), ", ".join(active)))
        if len(b_active) == 1 and len(active) == 1:
            limit_before = before["hosts"][b_active[0]]["guests"][name].get("downtime_ms")
            limit = after["hosts"][active[0]]["guests"][name].get("downtime_ms")
            if limit_before is not None and limit != limit_before:
                found.append("%s has a migration downtime limit of %s ms on %s, %s ms before: a migration's setting "
                             "was not set back" % (name, limit, active[0], limit_before))
        qemu = after["qemu"].get(name, 0)
        if qemu != len(active):
            found.append("%s has %d QEMU process(es) for %d host(s) where it is active" % (name, qemu, len(active)))
        expected = before["answers"].get(name)
        if expected and name not in stopped and len(active) == 1 and states.get(active[0]) == "running":
            now = after["answers"].get(name)
            if now is None:
                found.append("%s does not answer HTTP on %s (%s)" % (
                    name, active[0], after.get("silent", {}).get(name, "not diagnosed")))
            elif now != expected and name not in restarted:
                found.append("%s answers as another instance (%s, was %s): it restarted" % (name, now, expected))
    for name, count in sorted(after["qemu"].items()):
        if name not in names and name not in gone:
            found.append("QEMU process(es) of %s, which no host defined before" % name)
    return found + disk_violations(before, after, gone)


def _volumes(snap):
    """{(host, pool, path)} of every volume, and {path: [(host, pool)]} of the private pools' volumes."""
    every, private = set(), {}
    for host, view in sorted(snap["hosts"].items()):
        for pool, info in sorted(((view or {}).get("pools") or {}).items()):
            for path in info["volumes"]:
                every.add((host, pool, path))
                if not info["shared"]:
                    private.setdefault(path, []).append((host, pool))
    return every, private


def disk_violations(before, after, gone=()):
    """The disk part of the invariant (see the module's docstring), as sentences."""
    found = []
    every, private = _volumes(after)
    known_before = _volumes(before)[0]
    named = {}  # (host or None for a shared pool, path) -> guests whose definitions name it
    for host, view in sorted(after["hosts"].items()):
        for name, info in sorted(((view or {}).get("guests") or {}).items()):
            for target in info.get("block_jobs") or []:
                found.append("%s: %s still has a block job on its disk %s" % (host, name, target))
            if not info["persistent"] and info["state"] not in ("running", "paused", "blocked"):
                continue
            for path in info.get("disks") or []:
                named.setdefault(path, set()).add(host)
                held = [(h, pool) for h, pool, p in every if p == path and h == host]
                if not held:
                    found.append("%s on %s uses %s, which no pool of %s holds" % (name, host, path, host))
                # a copy made during the case (one an earlier run left is the earlier run's)
                copies = [h for h, pool in private.get(path, []) if h != host and (h, pool, path) not in known_before]
                if copies and name not in gone:
                    found.append("a copy of %s's disk %s is left on %s" % (name, path, ", ".join(sorted(set(copies)))))
    for host, pool, path in sorted(every - known_before):
        shared = not any(h == host for h, _p in private.get(path, []))
        if host not in named.get(path, set()) and not (shared and named.get(path)):
            found.append("%s: volume %s (pool %s) was made during the case and nothing uses it" % (host, path, pool))
    return found


def assert_holds(lab, before, **kwargs):
    """Snapshot the lab now and assert the invariant against ``before``; returns the snapshot."""
    after = snapshot(lab, guests=set(before["answers"]))
    problems = violations(before, after, **kwargs)
    assert not problems, "invariant broken:\n  " + "\n  ".join(problems)
    return after
