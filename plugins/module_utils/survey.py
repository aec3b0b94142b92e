# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The survey of a run: one read-only pass over the hosts, each read once, into a Survey (module_utils.model).

It runs after the guard (the hold, the maintenance mark, what was under way has landed) and before the plan
(module_utils.steps), through the module's connections (EngineModule: one adapter per host, which the executor
and the aftercare use too). It changes nothing. Per host, in one go: its storage pools, its guests (read with
those pools), its facts (given the pools and guests just read, so the adapter does not read them again), the
CPU of every guest the plan may move, and the size of the local disks a storage copy may copy (``disk_sizes``); a host
with a declared capacity (``capacity_mib``) also has its active domains' memory read, so that its facts' free memory
counts it (EngineModule.declared, model.with_capacity). A
peer that does not answer is in the survey as unreachable facts (a verdict, not a failure); this host's own failure
is the run's. It imports no libvirt: it speaks to the adapter only.
"""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import HostFacts, Survey


def _identity_stub(engine):
    """This host's name, UUID and hostname: enough to match migration records before its full facts are read."""
    identity = engine.identity()
    return HostFacts(name=engine.self_name, uuid=identity.get("uuid"), hostname=identity.get("hostname"))


def disk_sizes(adapter, guests, limits):
    """{guest: {disk path: bytes}} of the local disks of the running ``guests`` that a storage copy may copy, for the
    guests ``limits`` allow one, sized on their host (``adapter.volume_sizes``); {} (and no call) when there are none.

    The bytes are each volume's capacity, not its allocation. libvirt reports both reliably for a file volume (its
    virStorageVolGetInfo reads the file: allocation is the blocks it holds), but the allocation is the top file's
    alone, while a storage copy (VIR_MIGRATE_NON_SHARED_DISK) sends the disk as the guest sees it, a qcow2 overlay's
    backing chain included: the capacity (the disk's virtual size) bounds what one pass over the disk sends (what
    the guest writes meanwhile is sent again), and the migration's time limit is better long than short: a copy cut
    off by it has to start over."""
    wanted = {}
    for guest in guests:
        if not guest.active or limits is None or not limits.storage_copy_allowed(guest.name):
            continue
        paths = [d.path for d in guest.disks if d.pool is not None and not d.shared and d.source_type == "file"
                 and d.path and d.path.startswith("/")]
        if paths:
            wanted[guest.name] = paths
    if not wanted:
        return {}
    sizes = adapter.volume_sizes(sorted(set(path for paths in wanted.values() for path in paths)))
    return dict((name, dict((path, int(sizes[path]["capacity"])) for path in paths if path in sizes))
                for name, paths in wanted.items())


def _read_peer(engine, name):
    """(adapter, pools, guests) of the peer ``name``; HostmaintError when it does not answer."""
    adapter = engine.peer(name)
    pools = adapter.pools(shared_names=engine.params["shared_pools"])
    return adapter, pools, adapter.guests(pools=pools)


def evacuation(engine, local, mark=None, guests=None):
    """The Survey of an evacuation of this host: its guests, pools and facts, and for each destination its guests
    (to find the copies a migration left behind) and its facts, with the CPU of each of this host's guests judged
    there. ``mark``: this host's mark as the guard left it. ``guests`` (late arrivals): judge these guests of this
    host, read again by the caller, instead of reading them here; the stale copies are not looked for then."""
    me, shared = engine.self_name, engine.params["shared_pools"]
    pools = local.pools(shared_names=shared)
    late = guests is not None
    if not late:
        guests = engine.local_guests(pools, local)
    source = local.host_facts(me, shared_names=shared, pools=pools, resident=None if late else guests)
    source.generation = engine.generation_of(me, source)
    source = engine.declared(me, source, local)
    cpu_xml = engine.cpu_xml(local, guests)
    destinations, by_host, unreachable = [], {me: guests}, {}
    for dest in engine.destinations():
        name = dest["name"]
        try:
            adapter, peer_pools, resident = _read_peer(engine, name)
        except HostmaintError as exc:
            destinations.append(HostFacts(name=name, reachable=False, unreachable_reason=exc.message))
            unreachable[name] = exc.message
            continue
        by_host[name] = resident
        facts = engine.facts(name, lambda _name, adapter=adapter: adapter, guests=guests, cpu_xml=cpu_xml,
                             pools=peer_pools, resident=resident)
        if not facts.reachable:
            unreachable[name] = facts.unreachable_reason
        destinations.append(facts)
    stale = [] if late else placement.stale_copies(by_host, {me: _identity_stub(engine)})
    return Survey(source=source, destinations=destinations, guests=guests, limits=engine.limits(),
                  identity=engine.identity(), pools=pools, guests_by_host=by_host, stale_copies=stale,
                  cpu_xml=cpu_xml, dirty_rates=local.dirty_rates(),
                  disk_bytes=disk_sizes(local, guests, engine.limits()), mark=mark, unreachable=unreachable)


def restoration(engine, local):
    """The Survey of a restore to this host (home): its guests, pools and facts, and each peer's guests and facts;
    ``guests`` are the guests away whose migration record names this host, with their CPU judged here.

    Raises HostmaintError when this host's own facts cannot be read: not a peer that may be down, but the run's
    own failure (without it, every guest would seem to have no room at home)."""
    me, shared = engine.self_name, engine.params["shared_pools"]
    stub = _identity_stub(engine)
    pools = local.pools(shared_names=shared)
    by_host = {me: engine.local_guests(pools, local)}
    hosts, cpu_xml, unreachable, disk_bytes = [], {}, {}, {}
    for dest in engine.destinations():
        name = dest["name"]
        try:
            peer, peer_pools, guests = _read_peer(engine, name)
            for guest in guests:
                if placement.record_names(guest.record, stub):
                    cpu_xml[guest.name] = peer.guest_cpu_xml(guest.name)
            disk_bytes.update(disk_sizes(peer, [g for g in guests if g.name in cpu_xml], engine.limits()))
            by_host[name] = guests
            facts = peer.host_facts(name, shared_names=shared, pools=peer_pools, resident=guests)
            hosts.append(engine.declared(name, facts, peer))
        except HostmaintError as exc:
            by_host.pop(name, None)  # what it has is not known: nothing of it is planned, nor judged by name
            hosts.append(HostFacts(name=name, reachable=False, unreachable_reason=exc.message))
            unreachable[name] = exc.message
    returning = [g for name, guests in by_host.items() if name != me for g in guests if g.name in cpu_xml]
    home = engine.facts(me, lambda _name: local, guests=returning, cpu_xml=cpu_xml, pools=pools, resident=by_host[me])
    if not home.reachable:
        raise HostmaintError(home.unreachable_reason, host=me)
    return Survey(source=home, destinations=hosts, guests=returning, limits=engine.limits(),
                  identity=engine.identity(), pools=pools, guests_by_host=by_host,
                  stale_copies=placement.stale_copies(by_host, {me: stub}), cpu_xml=cpu_xml, disk_bytes=disk_bytes,
                  mark=home.maintenance_info, unreachable=unreachable)
