# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain data the collection passes between its layers.

Standard library only (and the collection's own errors module): everything here is built by the
libvirt adapter or by tests, and consumed by the pure decision modules (preflight, placement,
convergence) and the modules' results.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple, Union

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

# Guest states as libvirt names them (virDomainState), lower case.
STATES = ("nostate", "running", "blocked", "paused", "shutdown", "shutoff", "crashed", "pmsuspended")

# What to do with a guest that cannot live-migrate (set per guest).
POLICIES = ("migrate", "shutdown", "skip", "fail")

# Where a guest goes once its host's maintenance ends, when its settings metadata says (its ``return`` attribute):
# "home" demands its home, whatever the evacuation's return_home says.
RETURNS = ("home",)


class _Record(object):
    """Base of the dataclasses below that results show as plain dicts."""

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Disk:
    """One disk (or cdrom/floppy) of a guest."""

    target: str
    device: str = "disk"
    source_type: str = "file"
    path: Optional[str] = None
    format: Optional[str] = None
    bus: Optional[str] = None
    readonly: bool = False
    shareable: bool = False
    pool: Optional[str] = None
    shared: bool = False


@dataclasses.dataclass
class Nic:
    """One network interface of a guest."""

    type: str
    source: Optional[str] = None
    mac: Optional[str] = None
    model: Optional[str] = None

    @property
    def bridge(self):
        return self.source if self.type == "bridge" else None

    @property
    def network(self):
        return self.source if self.type == "network" else None


@dataclasses.dataclass
class HostDevice:
    """A device passed through from the host; it pins the guest to its host."""

    type: str
    description: str


@dataclasses.dataclass
class MigrationRecord:
    """Where a guest came from, kept in the guest's own libvirt metadata."""

    origin_host: str
    origin_host_uuid: Optional[str] = None
    run_id: Optional[str] = None
    time: Optional[str] = None


@dataclasses.dataclass
class Guest(_Record):
    """A libvirt domain as the engine sees it."""

    name: str
    uuid: str
    state: str = "shutoff"
    persistent: bool = True
    memory_mib: int = 0
    max_memory_mib: int = 0
    vcpus: int = 1
    domain_type: str = "kvm"
    machine: Optional[str] = None
    arch: Optional[str] = None
    cpu_mode: Optional[str] = None
    cpu_model: Optional[str] = None
    hugepages: bool = False
    disks: List[Disk] = dataclasses.field(default_factory=list)
    interfaces: List[Nic] = dataclasses.field(default_factory=list)
    host_devices: List[HostDevice] = dataclasses.field(default_factory=list)
    non_migratable_reasons: List[str] = dataclasses.field(default_factory=list)
    # as the settings metadata (or the policies option) gives it: one of POLICIES, or what an operator wrote
    # there that is none of them, kept as written so that preflight blocks the guest naming it (unknown_policy)
    policy: str = "migrate"
    anti_affinity: Optional[str] = None
    # a URL its users reach it at (tcp://HOST:PORT or http://HOST[:PORT]/PATH), probed after it lands
    probe: Optional[str] = None
    # the settings metadata's return attribute as written: "home" (one of RETURNS) demands its home (an evacuation with
    # return_home false still writes it a record naming its home); None when absent; any other value is kept as
    # written, for evacuate to refuse naming it (steps.check_returns)
    return_to: Optional[str] = None
    record: Optional[MigrationRecord] = None
    # {disk target: job type} of the block jobs running on its disks (a copy, a commit): the adapter reads them
    block_jobs: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def migratable(self):
        return not self.non_migratable_reasons

    @property
    def active(self):
        return self.state not in ("shutoff", "shutdown", "crashed", "nostate")

    @property
    def home_demanded(self):
        """Whether its settings metadata demands its home (return="home")."""
        return self.return_to == "home"

    def as_dict(self):
        data = super().as_dict()
        data["migratable"] = self.migratable
        return data


# ---------------------------------------------------------------------------------------------
# Decision-layer data: host facts, problems, limits, plans and the convergence ladder.
# ---------------------------------------------------------------------------------------------

# What a planned move does with its guest.
#   migrate          live migration (running or paused guest; a paused guest stays paused)
#   move_definition  shut-off persistent guest: its definition moves, it stays shut off
#   shutdown         cannot move and its policy is shutdown: clean shutdown, stays on its host
#   start            restore only: a guest shut down by policy on its home host is started again
ACTIONS = ("migrate", "move_definition", "shutdown", "start")

# Moves that use a migration slot (per-source outbound, per-destination inbound).
TRANSFER_ACTIONS = ("migrate", "move_definition")

# What the convergence ladder may ask the executor to do.
LADDER_KINDS = ("wait", "set_downtime", "auto_converge", "postcopy", "abort")

MIB = 1024 * 1024
GIB = 1024 * MIB


class DecisionError(HostmaintError, ValueError):
    """Bad input to a pure decision: one sentence naming the object, structured ``details`` beside it.

    A HostmaintError, so the modules' one exit point reports it like any other failure.
    """


def version_string(version):
    """A libvirt-encoded version (major * 1000000 + minor * 1000 + micro) as 'major.minor.micro'."""
    version = int(version or 0)
    return "%d.%d.%d" % (version // 1000000, (version // 1000) % 1000, version % 1000)


def memory_need_mib(guest):
    """The memory a guest may use on its destination: its maximum, not its balloon target."""
    return max(int(guest.memory_mib or 0), int(guest.max_memory_mib or 0))


def capacity_free_mib(measured_free_mib, capacity_mib, guests):
    """The memory a host can give new guests, in MiB, as every decision sees it, given its declared capacity.

    ``capacity_mib`` is the memory the host may give its guests in all, as its operator declared it (the engine
    option ``capacity_mib``); 0 (or None) is "not declared", and ``measured_free_mib`` stands as it is. Declared,
    the free memory is the smaller of what the host measures as free and ``capacity_mib`` less the memory need
    (``memory_need_mib``: the maximum, not the balloon target) of every active guest among ``guests``, which are
    to be every active domain of the host, incoming migrations included (LibvirtAdapter.active_memory); never
    below 0.

    The rule is Nova's accounting without overcommit (``ram_allocation_ratio`` 1.0: the guests of a host are
    given together at most its memory, counted by what each may use, not by what it touches now), with the
    operator's figure as the host's memory: a host that shares its machine with other work, or the lab's hosts,
    which share one machine's 24 GiB and would each measure it all as free. The reserve (``Limits.reserve_mib``)
    is still kept free within what this gives.
    """
    if not capacity_mib:
        return int(measured_free_mib)
    used = sum(memory_need_mib(guest) for guest in guests if guest.active)
    return max(0, min(int(measured_free_mib), int(capacity_mib) - used))


@dataclasses.dataclass
class HostFacts(_Record):
    """One hypervisor as the decisions see it; the adapter fills it from libvirt.

    ``memory_free_mib`` is what the host can give to new guests (free plus reclaimable cache,
    hugepages excluded). ``hugepages_free_mib`` maps a page size in KiB to the free MiB of that
    size. ``volume_paths`` lists the disk locations (see ``preflight.disk_location``) that exist on
    this host. ``cpu_compatible`` maps a guest name (or UUID) to ``(compatible, reason)`` as
    libvirt's virConnectCompareHypervisorCPU on this host judged that guest's CPU.
    ``resident_groups`` holds the anti-affinity groups of the guests already running here.
    ``hostname`` is the host's own name as its libvirt reports it (virConnectGetHostname), which
    libvirt puts in the migration URI a source's QEMU connects to; ``hostname_resolves`` says whether
    that name resolves on the migration source (the host the module runs on): True, False, or None
    when unknown (not checked, no name, or no answer in time). ``generation`` is how far the host is
    through a rolling upgrade (``generation.derive``, or the operator's own string; None: unknown):
    placement prefers the newest and avoids hosts older than the source (``placement.plan``).
    ``capacity_mib`` is the memory the operator declared the host may give its guests in all (0: none); when one is
    declared, ``memory_free_mib`` already counts it (``with_capacity``).
    """

    name: str
    uri: Optional[str] = None
    uuid: Optional[str] = None
    hostname: Optional[str] = None
    hostname_resolves: Optional[bool] = None
    libvirt_version: int = 0
    qemu_version: int = 0
    arch: Optional[str] = None
    cpu_model: Optional[str] = None
    memory_total_mib: int = 0
    memory_free_mib: int = 0
    hugepages_free_mib: Dict[int, int] = dataclasses.field(default_factory=dict)
    machine_types: List[str] = dataclasses.field(default_factory=list)
    bridges: Optional[List[str]] = dataclasses.field(default_factory=list)  # None: the host cannot say
    networks: List[str] = dataclasses.field(default_factory=list)
    pools: List[dict] = dataclasses.field(default_factory=list)
    volume_paths: List[str] = dataclasses.field(default_factory=list)
    maintenance: bool = False
    maintenance_info: Optional[dict] = None
    reachable: bool = True
    unreachable_reason: Optional[str] = None
    cpu_compatible: Dict[str, Tuple[bool, Optional[str]]] = dataclasses.field(default_factory=dict)
    resident_groups: List[str] = dataclasses.field(default_factory=list)
    generation: Optional[str] = None
    capacity_mib: int = 0


def with_capacity(facts, capacity_mib, guests):
    """``facts`` (HostFacts) as every decision sees them when the host has a declared capacity: ``capacity_mib`` set
    and ``memory_free_mib`` by ``capacity_free_mib`` over ``guests`` (every active domain of the host, incoming
    migrations included). The same facts when none is declared (0 or None) or the host did not answer."""
    if not capacity_mib or not facts.reachable:
        return facts
    return dataclasses.replace(facts, capacity_mib=int(capacity_mib),
                               memory_free_mib=capacity_free_mib(facts.memory_free_mib, capacity_mib, guests))


@dataclasses.dataclass
class Problem(_Record):
    """One reason a guest cannot go to a destination (destination None: to any destination)."""

    code: str
    message: str
    guest: str
    destination: Optional[str] = None


@dataclasses.dataclass
class Limits(_Record):
    """How much a plan may ask of the hosts.

    reserve_mib: memory kept free on every destination for the host itself and QEMU's own
      per-guest overhead (1024 MiB: Nova's 512 MiB default covers only the host, while each
      QEMU process adds tens of MiB beyond guest RAM).
    max_inbound / max_outbound: concurrent migrations per destination / per source (2 and 2,
      like oVirt and KubeVirt; the lab measured 2-3 at a time as the sweet spot).
    allow_storage_copy: True, False, or the names of the guests whose local disks may be
      copied to the destination.
    allow_partial: move what can move even when some guests are blocked.
    """

    reserve_mib: int = 1024
    max_inbound: int = 2
    max_outbound: int = 2
    allow_storage_copy: Union[bool, List[str]] = False
    allow_partial: bool = False

    def storage_copy_allowed(self, guest_name):
        if isinstance(self.allow_storage_copy, bool):
            return self.allow_storage_copy
        return guest_name in (self.allow_storage_copy or [])

    def validate(self):
        """Raise DecisionError for limits no plan can honour."""
        if int(self.reserve_mib) < 0:
            raise DecisionError("invalid limits: reserve_mib must be 0 or more, got %s" % self.reserve_mib)
        for key in ("max_inbound", "max_outbound"):
            if int(getattr(self, key)) < 1:
                raise DecisionError("invalid limits: %s must be 1 or more, got %s" % (key, getattr(self, key)))
        return self


@dataclasses.dataclass
class Move(_Record):
    """One planned step for one guest; ``wave`` and ``order`` count from 1.

    A storage copy (``storage_copy``) copies the disks ``copy_disks`` (targets); ``disk_bytes`` is what they hold
    as far as the survey could size them (their capacity, ``placement.plan``), counted in ``expected_bytes`` beside
    the memory and in the migration's time limit (``convergence.timeout_for``). ``home_after`` (an evacuation's
    moves, ``steps.evacuation``): the host the guest's migration record names once it moved, the one a restore of
    that host brings it back to (None: no record).
    """

    guest: str
    action: str
    source: str
    destination: Optional[str] = None
    uuid: Optional[str] = None
    state: Optional[str] = None
    memory_mib: int = 0
    expected_bytes: int = 0
    storage_copy: bool = False
    copy_disks: List[str] = dataclasses.field(default_factory=list)
    disk_bytes: int = 0
    wave: int = 0
    order: int = 0
    reasons: List[Problem] = dataclasses.field(default_factory=list)
    home_after: Optional[str] = None


@dataclasses.dataclass
class Blocked(_Record):
    """A guest the plan cannot move, with every reason (per destination where it applies)."""

    guest: str
    policy: str
    state: str
    reasons: List[Problem] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Skipped(_Record):
    """A guest the plan deliberately leaves where it is."""

    guest: str
    code: str
    reason: str
    problems: List[Problem] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Plan:
    """A whole-host plan: what moves where, in which wave, and what does not move and why.

    ``kind`` is 'evacuate' (empty ``source``) or 'restore' (bring guests back to ``home``).
    Evacuation: ``complete`` is False when any guest is blocked; ``proceed`` says whether the
    executor may start (complete, or allow_partial and no blocked guest has policy 'fail').
    Restore: guests that cannot come home are in ``not_home``; they never stop the others.
    """

    kind: str = "evacuate"
    source: Optional[str] = None
    home: Optional[str] = None
    run_id: Optional[str] = None
    allow_partial: bool = False
    moves: List[Move] = dataclasses.field(default_factory=list)
    blocked: List[Blocked] = dataclasses.field(default_factory=list)
    skipped: List[Skipped] = dataclasses.field(default_factory=list)
    not_home: List[Blocked] = dataclasses.field(default_factory=list)

    @property
    def complete(self):
        return not self.blocked and not self.not_home

    @property
    def proceed(self):
        if self.kind == "restore" or not self.blocked:
            return True
        return self.allow_partial and all(entry.policy != "fail" for entry in self.blocked)

    @property
    def waves(self):
        """Guest names per wave, in order."""
        count = max([move.wave for move in self.moves] or [0])
        waves = [[] for number in range(count)]
        for move in sorted(self.moves, key=lambda m: m.order):
            if move.wave > 0:
                waves[move.wave - 1].append(move.guest)
        return waves

    def move_for(self, guest_name):
        for move in self.moves:
            if move.guest == guest_name:
                return move
        return None

    def as_dict(self):
        return {
            "kind": self.kind,
            "source": self.source,
            "home": self.home,
            "run_id": self.run_id,
            "allow_partial": self.allow_partial,
            "complete": self.complete,
            "proceed": self.proceed,
            "moves": [move.as_dict() for move in sorted(self.moves, key=lambda m: m.order)],
            "waves": self.waves,
            "blocked": [entry.as_dict() for entry in self.blocked],
            "skipped": [entry.as_dict() for entry in self.skipped],
            "not_home": [entry.as_dict() for entry in self.not_home],
        }


@dataclasses.dataclass
class LadderPolicy(_Record):
    """How hard one migration may push before it gives up.

    downtime_steps_ms: 50 first (the lab measured 13-98 ms pauses at 50 ms against up to 342 ms at
      QEMU's 300 ms default, for no longer total time), then up to 500 ms, the ceiling of Nova and
      oVirt; KubeVirt's 900 ms is too long a pause for TCP clients.
    step_interval_s / stall_passes / min_shrink: a step is raised only after at least
      ``step_interval_s`` at the current one and ``stall_passes`` completed memory passes (QEMU's own
      auto-converge trigger is two unproductive passes) in which the dirty set did not shrink by
      ``min_shrink`` and the remaining memory would not fit in the current downtime.
    auto_converge: request QEMU's CPU throttling at start (libvirt cannot switch it on later); QEMU
      throttles only a guest it sees not converging. ``auto_converge_window_s`` is how long the
      ladder lets the throttle work after the downtime steps ran out.
    postcopy: off by default (QEMU, Nova, oVirt agree): in post-copy a failure of either host loses
      the guest. When on, it is requested at start and switched to only as the last resort.
    timeout_s_per_gib / timeout_floor_s: abort after max(floor, 150 s per GiB); KubeVirt's 150 s/GiB
      is lenient even on 1 GbE (about 7 MiB/s), Nova's 800 s/GiB lets hung evacuations hang.
    no_progress_timeout_s: abort when no byte was transferred for this long (a stalled stream).
    """

    downtime_steps_ms: List[int] = dataclasses.field(default_factory=lambda: [50, 100, 200, 300, 500])
    step_interval_s: float = 2.0
    stall_passes: int = 2
    min_shrink: float = 0.1
    auto_converge: bool = True
    auto_converge_initial: int = 20
    auto_converge_increment: int = 10
    auto_converge_window_s: float = 20.0
    postcopy: bool = False
    timeout_s_per_gib: float = 150.0
    timeout_floor_s: float = 60.0
    no_progress_timeout_s: float = 60.0
    poll_interval_s: float = 0.5

    def validate(self):
        """Raise DecisionError for a ladder that cannot work."""
        steps = list(self.downtime_steps_ms or [])
        if not steps or any(int(step) <= 0 for step in steps):
            raise DecisionError("invalid ladder policy: downtime_steps_ms must be positive numbers, got %s" % steps)
        if steps != sorted(steps):
            raise DecisionError("invalid ladder policy: downtime_steps_ms must rise, got %s" % steps)
        for key in ("step_interval_s", "timeout_s_per_gib", "timeout_floor_s", "no_progress_timeout_s",
                    "poll_interval_s", "auto_converge_window_s"):
            if float(getattr(self, key)) < 0:
                raise DecisionError("invalid ladder policy: %s must be 0 or more, got %s" % (key, getattr(self, key)))
        if int(self.stall_passes) < 1:
            raise DecisionError("invalid ladder policy: stall_passes must be 1 or more, got %s" % self.stall_passes)
        return self


@dataclasses.dataclass
class StartOptions(_Record):
    """What the executor requests when it starts one migration.

    auto_converge -> VIR_MIGRATE_AUTO_CONVERGE plus VIR_MIGRATE_PARAM_AUTO_CONVERGE_INITIAL and
    _INCREMENT; postcopy -> VIR_MIGRATE_POSTCOPY (it only makes virDomainMigrateStartPostCopy
    possible later); downtime_ms -> virDomainMigrateSetMaxDowntime before or right after the start.
    """

    downtime_ms: int
    auto_converge: bool = False
    auto_converge_initial: Optional[int] = None
    auto_converge_increment: Optional[int] = None
    postcopy: bool = False


@dataclasses.dataclass
class MigrationOptions(_Record):
    """Everything one live migration is started with, in plain terms; the adapter turns it into libvirt's
    VIR_MIGRATE_* flags and parameters (``libvirt_adapter.migration_flags``).

    Always live, peer-to-peer and aborted on I/O errors. persistent -> persistent on the destination and
    undefined on the source once the destination runs it; paused -> the guest stays paused on the
    destination; tls -> the data stream is encrypted; bandwidth_mib 0 -> no cap; auto_converge (with its
    initial and increment throttle percentages) and postcopy as ``StartOptions``; storage_copy -> the disks
    ``copy_disks`` (targets) are copied, and only those: libvirt is always given the list
    (VIR_MIGRATE_PARAM_MIGRATE_DISKS), since without one it copies every writable disk that is not shareable,
    those on shared storage too, whose destination is the very file it reads; storage_copy with an empty
    copy_disks is refused (``libvirt_adapter.migration_flags``); unsafe -> libvirt's cache-mode
    safety check is skipped (disks on storage the operator declared shared). downtime_ms is the first
    downtime limit, set just before the migration starts.
    """

    downtime_ms: int = 50
    tls: bool = False
    bandwidth_mib: int = 0
    auto_converge: bool = False
    auto_converge_initial: Optional[int] = None
    auto_converge_increment: Optional[int] = None
    postcopy: bool = False
    storage_copy: bool = False
    copy_disks: List[str] = dataclasses.field(default_factory=list)
    unsafe: bool = False
    paused: bool = False
    persistent: bool = True


@dataclasses.dataclass
class JobResult(_Record):
    """How a migration job ended: ok, or the libvirt error message and what it points at.

    cause: 'aborted' (the job was cancelled, by the ladder or an operator), 'destination' (the error is the
    destination's: it could not be reached, its libvirtd went away or refused the move), or None (not
    known from the error alone).
    """

    ok: bool
    error: Optional[str] = None
    cause: Optional[str] = None


@dataclasses.dataclass
class CompletedStats(_Record):
    """The numbers of a finished migration (virDomainGetJobStats with VIR_DOMAIN_JOB_STATS_COMPLETED)."""

    downtime_ms: Optional[int] = None
    bytes_transferred: Optional[int] = None
    iterations: Optional[int] = None


# What libvirt tells about a guest while it is watched (virDomainEventType, lower case, and the reboot event).
GUEST_EVENT_KINDS = ("defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown",
                     "pmsuspended", "crashed", "reboot")


@dataclasses.dataclass
class GuestEvent(_Record):
    """One event of a watched guest: kind (GUEST_EVENT_KINDS), libvirt's detail in lower case (for example
    'migrated', 'destroyed', 'panicked'), and when it arrived on the executor's clock."""

    kind: str
    detail: Optional[str] = None
    at: float = 0.0


@dataclasses.dataclass
class Survey(_Record):
    """What a run read before it planned, in one read-only pass that reads each host once (module_utils.survey);
    the plan is made from it alone, and the executor places guests again from it when a destination leaves.

    ``source``: the facts of the host the guests leave (evacuate) or come home to (restore); ``destinations``:
    the other hosts' facts (unreachable ones with ``reachable`` False); ``guests``: the guests the run is about
    (evacuate: this host's; restore: the guests away whose record names this host); ``limits``. Also what was
    read on the way: ``identity`` (this host's hostname and UUID), ``pools`` (this host's storage pools),
    ``guests_by_host`` (every guest of every host that answered, this host's included), ``stale_copies``
    (placement.stale_copies of those), ``cpu_xml`` (guest -> the CPU its source runs it with), ``dirty_rates``
    (guest -> bytes per second), ``disk_bytes`` (guest -> {disk path: bytes}, the capacity of each local disk a
    storage copy may copy, for the guests allowed one: survey.disk_sizes), ``mark`` (this host's maintenance mark
    as the guard left it) and ``unreachable`` (host -> why it did not answer)."""

    source: Optional[HostFacts] = None
    destinations: List[HostFacts] = dataclasses.field(default_factory=list)
    guests: List[Guest] = dataclasses.field(default_factory=list)
    limits: Optional[Limits] = None
    identity: Dict[str, Optional[str]] = dataclasses.field(default_factory=dict)
    pools: List[dict] = dataclasses.field(default_factory=list)
    guests_by_host: Dict[str, List[Guest]] = dataclasses.field(default_factory=dict)
    stale_copies: List[dict] = dataclasses.field(default_factory=list)
    cpu_xml: Dict[str, Optional[str]] = dataclasses.field(default_factory=dict)
    dirty_rates: Dict[str, int] = dataclasses.field(default_factory=dict)
    disk_bytes: Dict[str, Dict[str, int]] = dataclasses.field(default_factory=dict)
    mark: Optional[dict] = None
    unreachable: Dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class RunPlan:
    """Every write a run makes after its survey, in the order it makes them (module_utils.steps builds it from
    the Survey alone): check mode returns it, a run carries it out.

    1. ``stale_copies``: the definitions a migration left behind ({guest, uuid, host, runs_on}), removed first,
       each read again just before (placement.is_stale_copy);
    2. ``moves``: placement's Plan, run by the executor, which writes ``records`` (guest -> MigrationRecord)
       with each guest's move; ``guests`` are the guests the moves are for; the record of a guest in ``stays`` (an
       evacuation with return_home false) names the host each attempt of its move takes it to (``record_for``);
    3. ``clear_records``: then the records of the guests that are home (steps.records_to_clear; restore);
    4. ``end_maintenance``: then this host's maintenance mark is cleared (restore).
    """

    kind: str = "evacuate"
    stale_copies: List[dict] = dataclasses.field(default_factory=list)
    moves: Plan = dataclasses.field(default_factory=Plan)
    guests: List[Guest] = dataclasses.field(default_factory=list)
    records: Dict[str, MigrationRecord] = dataclasses.field(default_factory=dict)
    stays: List[str] = dataclasses.field(default_factory=list)
    clear_records: bool = False
    end_maintenance: bool = False


def record_for(move, records, stays=(), uuids=None):
    """The migration record to write with one attempt of ``move`` (a Move), or None: ``records[guest]`` as it is, or,
    for a guest in ``stays``, that record naming the host the attempt takes it to (its destination; its own host for
    a move that has none, a shutdown) with that host's UUID from ``uuids`` ({host: UUID}). A move placed again on
    another destination gets the record of the destination it goes to."""
    record = records.get(move.guest)
    if record is None or move.guest not in stays:
        return record
    host = move.destination or move.source
    return dataclasses.replace(record, origin_host=host, origin_host_uuid=(uuids or {}).get(host))


# What became of one move.
#   migrated / moved_definition / shut_down / started   the move did what it was for
#   failed    it did not, and the reason says why and where the guest is (also: the guest landed but was
#             reset, crashed, stopped or paused within its settle period)
#   aborted   the convergence ladder gave up; the guest keeps running on its source
#   blocked   its destination left the run and no other destination can take the guest
#   not_run   deliberately not started: a shutdown held back after failed migrations, or a move still
#             queued when the run stopped
OUTCOMES = ("migrated", "moved_definition", "shut_down", "started", "failed", "aborted", "blocked", "not_run")
MOVED_OUTCOMES = ("migrated", "moved_definition")
FAILED_OUTCOMES = ("failed", "aborted")

# The phases of a move's timeline, in order; each is seconds since the run started, or None.
TIMELINE_PHASES = ("queued", "started", "switchover", "checked", "done")


@dataclasses.dataclass
class MigrationOutcome:
    """What became of one move: the one shape every outcome of the executor has.

    ``timeline`` maps each of TIMELINE_PHASES to seconds since the run started (None for a phase the
    move did not reach): queued, started (copying began), switchover (the job finished: the guest runs
    on its destination), checked (its settle period was over), done. ``duration_s`` is the move itself,
    from its start to the switchover (or to its end when there is none), the settle period excluded.
    ``source_disks_deleted`` lists the disks of a storage copy deleted on the source once the guest ran well on
    its destination (``storage_copy_source``); the reason says which were kept and why.
    """

    guest: str
    action: str
    source: Optional[str] = None
    destination: Optional[str] = None
    wave: int = 0
    outcome: str = "not_run"
    duration_s: float = 0.0
    downtime_ms: Optional[int] = None
    bytes_transferred: Optional[int] = None
    iterations: Optional[int] = None
    ladder_steps: List[dict] = dataclasses.field(default_factory=list)
    reason: Optional[str] = None
    runs_on: List[str] = dataclasses.field(default_factory=list)
    state_after: Optional[str] = None
    timeline: Dict[str, Optional[float]] = dataclasses.field(
        default_factory=lambda: dict((phase, None) for phase in TIMELINE_PHASES))
    source_disks_deleted: List[str] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise DecisionError("invalid outcome %r for guest %s: expected one of %s"
                                % (self.outcome, self.guest, ", ".join(OUTCOMES)))

    @classmethod
    def of(cls, move, outcome, reason=None, **fields):
        """The outcome of ``move`` (a Move): its guest, action, hosts and wave, and the given fields."""
        return cls(guest=move.guest, action=move.action, source=move.source, destination=move.destination,
                   wave=move.wave, outcome=outcome, reason=reason, **fields)

    @property
    def moved(self):
        return self.outcome in MOVED_OUTCOMES

    @property
    def failed(self):
        """The one test of "failed or aborted"."""
        return self.outcome in FAILED_OUTCOMES

    def as_dict(self):
        return dict(
            guest=self.guest, action=self.action, source=self.source, destination=self.destination,
            wave=self.wave, outcome=self.outcome, moved=self.moved, duration_s=self.duration_s,
            downtime_ms=self.downtime_ms, bytes_transferred=self.bytes_transferred, iterations=self.iterations,
            ladder_steps=list(self.ladder_steps), reason=self.reason, runs_on=list(self.runs_on),
            state_after=self.state_after,
            timeline=dict((phase, self.timeline.get(phase)) for phase in TIMELINE_PHASES),
            source_disks_deleted=list(self.source_disks_deleted),
        )


# The windows of a run: a source's outbound slots, a destination's inbound slots.
WINDOW_SIDES = ("source", "destination")


@dataclasses.dataclass
class WindowChange:
    """One change of a host's effective window during a run (``placement.adjust_window``).

    ``side`` is 'source' (the host's outbound window) or 'destination' (its inbound window); ``at`` is in
    seconds since the run started; ``before`` and ``after`` are the window's slots; ``guest`` and
    ``downtime_ms`` the finished migration whose pause changed it; ``reason`` one sentence.
    In a result: ``{at, source or destination: host, from, to, guest, downtime_ms, reason}``.
    """

    at: float
    side: str
    host: str
    before: int
    after: int
    guest: Optional[str] = None
    downtime_ms: Optional[int] = None
    reason: str = ""

    def __post_init__(self):
        if self.side not in WINDOW_SIDES:
            raise DecisionError("invalid window side %r for host %s: expected one of %s"
                                % (self.side, self.host, ", ".join(WINDOW_SIDES)))

    def as_dict(self):
        data = {"at": self.at}
        data[self.side] = self.host
        data.update({"from": self.before, "to": self.after, "guest": self.guest, "downtime_ms": self.downtime_ms,
                     "reason": self.reason})
        return data


@dataclasses.dataclass
class JobSample(_Record):
    """One poll of a migration job (virDomainGetJobStats), in bytes and seconds."""

    elapsed_s: float = 0.0
    data_total: int = 0
    data_processed: int = 0
    data_remaining: int = 0
    memory_total: int = 0
    memory_processed: int = 0
    memory_remaining: int = 0
    memory_bps: int = 0
    dirty_rate_bps: int = 0
    memory_iteration: int = 0
    auto_converge_throttle: int = 0

    @classmethod
    def from_job_stats(cls, stats, elapsed_s=None):
        """From the dict libvirt-python's ``dom.jobStats()`` returns.

        ``memory_dirty_rate`` is in pages per second there; it becomes bytes per second here.
        ``elapsed_s`` overrides libvirt's ``time_elapsed`` (the executor's own clock).
        """
        stats = stats or {}

        def number(key):
            return int(stats.get(key) or 0)

        page_size = number("memory_page_size") or 4096
        if elapsed_s is None:
            elapsed_s = number("time_elapsed") / 1000.0
        return cls(
            elapsed_s=float(elapsed_s),
            data_total=number("data_total"),
            data_processed=number("data_processed"),
            data_remaining=number("data_remaining"),
            memory_total=number("memory_total"),
            memory_processed=number("memory_processed"),
            memory_remaining=number("memory_remaining"),
            memory_bps=number("memory_bps"),
            dirty_rate_bps=number("memory_dirty_rate") * page_size,
            memory_iteration=number("memory_iteration"),
            auto_converge_throttle=number("auto_converge_throttle"),
        )


@dataclasses.dataclass
class LadderAction(_Record):
    """The ladder's decision for one poll: kind is one of LADDER_KINDS, value e.g. downtime ms.

    ``at_s``: once carried out (``convergence.applied``), when, in seconds since the migration started (its
    timeline's ``started``), so that the report can place the rung on the move's bar; None for a decision.
    """

    kind: str
    value: Optional[int] = None
    reason: str = ""
    at_s: Optional[float] = None


@dataclasses.dataclass
class LadderState(_Record):
    """What the ladder remembers about one running migration (the executor keeps one per guest).

    Built by ``convergence.new_state``; updated by ``convergence.observe`` (each poll) and
    ``convergence.applied`` (after the executor carried out an action).
    """

    guest: str
    memory_mib: int
    timeout_s: float
    downtime_ms: int
    disk_bytes: int = 0
    step_index: int = 0
    paused: bool = False
    auto_converge_enabled: bool = False
    postcopy_enabled: bool = False
    auto_converge_marked: bool = False
    postcopy_started: bool = False
    elapsed_s: float = 0.0
    last_change_s: float = 0.0
    last_change_iteration: int = 0
    last_progress_s: float = 0.0
    best_processed: int = 0
    pass_starts: Dict[int, int] = dataclasses.field(default_factory=dict)
    last: Optional[JobSample] = None
    steps: List[LadderAction] = dataclasses.field(default_factory=list)

    def as_dict(self):
        data = super().as_dict()
        data.pop("pass_starts")
        return data
