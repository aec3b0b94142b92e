# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor, with a small fake world of hosts injected through its constructor.

The fake stands in for the adapter and its migration job (what the executor talks to), not for
libvirt: no libvirt import here. The lab tests the real migrations; these check what is hard to provoke
there on demand: the sliding window, a destination that goes away or into maintenance between plan and
move, a guest reset right after switchover, a worker that raises, the ladder's abort at its bound.
"""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import progress
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.executor import (
    Executor,
    Schedule,
    _Run,
    source_disks_to_delete,
)
from ansible_collections.hostmaint.libvirt.plugins.module_utils.libvirt_adapter import GuestWatch
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    MIB,
    TIMELINE_PHASES,
    CompletedStats,
    Disk,
    Guest,
    HostFacts,
    JobResult,
    JobSample,
    LadderPolicy,
    Limits,
    MigrationOutcome,
    MigrationRecord,
    Move,
    Plan,
    Survey,
)

RECORD = MigrationRecord("hv1", "uuid-1", "run-1", "2026-11-25T18:00:00Z")
ABORTED = "operation aborted: migration out: canceled by client"


class Behaviour(object):
    """How one guest's migration goes in the fake world.

    polls: wait() calls until it finishes (when ``release`` is None); release: an Event that finishes it;
    error/cause: how it fails instead; stall: samples that never converge; after: called on success with
    the job (e.g. to make the guest misbehave on its destination); raises: an exception sample() raises;
    linger_s: how long the destination keeps the guest after a failure; breaks: a host whose libvirtd goes
    away when the migration fails; downtime_ms: the pause QEMU reports for it once it finished; lands_early:
    how many polls before its call returns the guest already runs on its destination (libvirt's finish and
    confirm steps, which take seconds on the lab).
    """

    def __init__(self, polls=3, release=None, error=None, cause=None, stall=False, after=None, raises=None,
                 linger_s=0.0, breaks=None, downtime_ms=42, on_error=None, lands_early=0):
        self.lands_early = lands_early
        self.polls, self.release, self.error, self.cause = polls, release, error, cause
        self.stall, self.after, self.raises, self.linger_s, self.breaks = stall, after, raises, linger_s, breaks
        self.downtime_ms = downtime_ms
        self.on_error = on_error  # called with the job when it fails (what the failure left behind)


class FakeJob(object):
    def __init__(self, world, source, name, destination, options):
        self.world, self.source, self.name, self.destination, self.options = world, source, name, destination, options
        self.behaviour = world.behaviour.get(name) or Behaviour()
        self.polls = 0
        self.downtimes = [options.downtime_ms]
        self.aborted = False
        self.outcome = None
        self.downtime_before = 300  # the guest's limit before (QEMU's default)
        self.landed = False

    def sample(self):
        if self.behaviour.raises is not None:
            raise self.behaviour.raises
        if self.behaviour.stall:
            # every pass sends as much as the guest dirties again: memory left never shrinks
            return JobSample(data_processed=self.polls * MIB, memory_processed=self.polls * MIB,
                             memory_remaining=512 * MIB, memory_bps=10 * MIB, memory_iteration=self.polls + 1)
        return JobSample(data_processed=self.polls * MIB, memory_remaining=MIB, memory_bps=100 * MIB,
                         memory_iteration=1, data_total=256 * MIB, data_remaining=max(0, 256 - self.polls) * MIB)

    def set_downtime(self, ms):
        self.downtimes.append(ms)

    def postcopy(self):
        raise HostmaintError("post-copy is not enabled for %s" % self.name)

    def abort(self):
        self.aborted = True

    def wait(self, timeout):
        if self.outcome is not None:
            return True
        self.polls += 1
        if not self.aborted:
            if self.behaviour.release is not None:
                if not self.behaviour.release.wait(timeout):
                    return False
            else:
                time.sleep(timeout)
                early = self.behaviour.lands_early
                if early and not self.landed and self.polls >= self.behaviour.polls - early:
                    self.landed = True
                    self.world.land(self)  # it runs there now; the call returns a few polls later
                if self.polls < self.behaviour.polls:
                    return False
        if self.aborted:
            self.outcome = JobResult(ok=False, error=ABORTED, cause="aborted")
        elif self.behaviour.error:
            self.outcome = JobResult(ok=False, error=self.behaviour.error, cause=self.behaviour.cause)
            if self.behaviour.linger_s:
                self.world.linger(self.destination, self.name, self.behaviour.linger_s)
            if self.behaviour.breaks:
                self.world.down.add(self.behaviour.breaks)
            if self.behaviour.on_error is not None:
                self.behaviour.on_error(self)
        else:
            self.outcome = JobResult(ok=True)
        self.world.log("finish %s" % self.name)
        if self.outcome.ok and not self.landed:
            self.world.land(self)
        return True

    def result(self):
        return self.outcome

    def completed_stats(self):
        return CompletedStats(downtime_ms=self.behaviour.downtime_ms, bytes_transferred=1000, iterations=2)


class FakeWatch(GuestWatch):
    """The adapter's own event record (GuestWatch), fed by the test instead of libvirt's callbacks."""

    def __init__(self, world, host, name, clock):
        super(FakeWatch, self).__init__(None, name, clock)
        self.world, self.host = world, host
        self.closed = False

    def close(self):
        self.closed = True


class World(object):
    """Hosts, their guests (name -> state) and maintenance marks; every adapter call goes through here."""

    def __init__(self, *hosts):
        self.hosts = dict((h, {}) for h in hosts)
        self.records = {}
        self.marks = {}
        self.down = set()
        self.lock = threading.Lock()
        self.undefine_fails = set()
        self.behaviour = {}
        self.connects = {}
        self.closed = []
        self.events = []
        self.jobs = {}
        self.watches = {}
        self.uuids = {}  # (host, guest) -> UUID, where it is not uuid-<guest>
        self.limits = {}  # (host, guest) -> downtime limit set back after a migration
        self.limit_fails = set()  # hosts that refuse to set it

    def add(self, host, name, state="running"):
        self.hosts[host][name] = state

    def log(self, text):
        with self.lock:
            self.events.append(text)

    def land(self, job):
        with self.lock:
            state = self.hosts[job.source].pop(job.name)
            self.hosts[job.destination][job.name] = "paused" if job.options.paused else state
            record = self.records.pop((job.source, job.name), None)
            if record is not None:  # the record is the guest's own metadata: it travels with it
                self.records[(job.destination, job.name)] = record
        watch = self.watches.get((job.destination, job.name))
        if watch is not None:
            watch.add("resumed", "migrated")
        if job.behaviour.after is not None:
            job.behaviour.after(job)

    def linger(self, host, name, seconds):
        """The destination keeps a half-made incoming guest for a while after a failed migration."""
        self.hosts[host][name] = "paused"
        timer = threading.Timer(seconds, lambda: self.hosts[host].pop(name, None))
        timer.daemon = True
        timer.start()

    def connect(self, host):
        self.connects[host] = self.connects.get(host, 0) + 1
        return FakeAdapter(self, host)


class FakeAdapter(object):
    """The adapter as the executor sees it; a host in ``world.down`` raises HostmaintError like the real one."""

    def __init__(self, world, host):
        self.world, self.host, self.uri = world, host, "fake://%s" % host

    def _up(self):
        if self.host in self.world.down:
            raise HostmaintError("cannot reach libvirt at %s: Cannot recv data: Connection reset by peer" % self.uri)

    def _guests(self):
        self._up()
        return self.world.hosts[self.host]

    def alive(self):
        return self.host not in self.world.down

    def maintenance(self):
        self._up()
        return self.world.marks.get(self.host)

    def memory_mib(self):
        """(total, available) MiB: room for every move of these tests (test_executor_room judges room)."""
        self._up()
        return 65536, 65536

    def has_domain(self, name):
        return name in self._guests()

    def guest_state(self, name):
        try:
            return self._guests()[name], True
        except KeyError:
            raise HostmaintError("unknown guest %s: %s has no such guest" % (name, self.uri))

    def guest_uuid(self, name):
        self.guest_state(name)
        return self.world.uuids.get((self.host, name), "uuid-%s" % name)

    def watch(self, name, clock):
        self._up()
        watch = FakeWatch(self.world, self.host, name, clock)
        self.world.watches[(self.host, name)] = watch
        return watch

    def set_record(self, name, record):
        self.guest_state(name)
        self.world.records[(self.host, name)] = record

    def clear_record(self, name):
        self.guest_state(name)
        self.world.records.pop((self.host, name), None)

    def inactive_xml(self, name):
        self.guest_state(name)
        return name

    def define(self, xml):
        self._guests()[xml] = "shutoff"

    def undefine(self, name):
        if (self.host, name) in self.world.undefine_fails:
            raise HostmaintError("cannot undefine %s on %s: permission denied" % (name, self.uri))
        del self._guests()[name]
        self.world.records.pop((self.host, name), None)

    def shutdown(self, name, timeout_s):
        self._guests()[name] = "shutoff"
        return True

    def start(self, name):
        self._guests()[name] = "running"

    def set_downtime_limit(self, name, ms):
        self.guest_state(name)
        job = self.world.jobs[name]
        assert job.outcome is not None, "the limit is set back only once the migration is over"
        if self.host in self.world.limit_fails:
            raise HostmaintError("cannot set the downtime limit of %s on %s back to %d ms: Timed out" % (
                name, self.uri, ms))
        self.world.limits[(self.host, name)] = ms

    def start_migration(self, name, dest_uri, options, destination=None):
        self.guest_state(name)
        job = FakeJob(self.world, self.host, name, dest_uri.split("://", 1)[1], options)
        self.world.jobs[name] = job
        self.world.log("start %s -> %s" % (name, job.destination))
        return job

    def close(self):
        self.world.closed.append(self.host)


def executor(world, **kwargs):
    kwargs.setdefault("policy", LadderPolicy(poll_interval_s=0.01))
    kwargs.setdefault("settle_s", 0.05)
    kwargs.setdefault("definition_wait_s", 0.5)
    return Executor(world.connect, lambda host: "fake://%s" % host, **kwargs)


def move(guest, source, destination, wave=1, action="migrate", order=1, memory_mib=256):
    return Move(guest=guest, action=action, source=source, destination=destination, memory_mib=memory_mib, wave=wave,
                order=order, expected_bytes=memory_mib * MIB)


def by_guest(outcomes):
    return dict((o.guest, o) for o in outcomes)


def survey(world, guests, free_mib=8192):
    """What the engine would have gathered: every guest 256 MiB, every destination ``free_mib`` free."""
    hosts = [HostFacts(name=h, memory_free_mib=free_mib, memory_total_mib=free_mib) for h in world.hosts if h != "hv1"]
    return Survey(source=HostFacts(name="hv1"), destinations=hosts, limits=Limits(),
                  guests=[Guest(name=g, uuid="uuid-%s" % g, state="running", memory_mib=256) for g in guests])


# -- a migration that completes, and what its outcome says --------------------------------------------------
def test_a_migration_that_makes_progress_completes_and_its_record_travels():
    world = World("hv1", "hv2", "hv3")
    world.add("hv1", "a")
    world.add("hv1", "b")
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv3", order=2)])
    outcomes = executor(world).run(plan, records={"a": RECORD, "b": RECORD})
    assert [(o.guest, o.outcome, o.moved, o.runs_on, o.downtime_ms, o.bytes_transferred, o.iterations, o.state_after)
            for o in outcomes] == [("a", "migrated", True, ["hv2"], 42, 1000, 2, "running"),
                                   ("b", "migrated", True, ["hv3"], 42, 1000, 2, "running")]
    assert world.hosts == {"hv1": {}, "hv2": {"a": "running"}, "hv3": {"b": "running"}}
    assert world.records == {("hv2", "a"): RECORD, ("hv3", "b"): RECORD}
    assert world.limits == {}  # a new QEMU on the destination: nothing to set back
    options = world.jobs["a"].options
    assert (options.persistent, options.paused, options.tls, options.auto_converge, options.postcopy) == (
        True, False, False, True, False)
    timeline = outcomes[0].timeline
    assert list(timeline) == list(TIMELINE_PHASES) and None not in timeline.values()
    assert [timeline[phase] for phase in TIMELINE_PHASES] == sorted(timeline.values())
    assert timeline["checked"] - timeline["switchover"] >= 0.04  # the settle period
    data = outcomes[0].as_dict()
    assert set(data) == {"guest", "action", "source", "destination", "wave", "outcome", "moved", "duration_s",
                         "downtime_ms", "bytes_transferred", "iterations", "ladder_steps", "reason", "runs_on",
                         "state_after", "timeline", "source_disks_deleted"}
    assert data["moved"] is True and data["reason"] is None


def test_tls_paused_and_unsafe_options_reach_the_adapter_and_a_paused_guest_stays_paused():
    world = World("hv1", "hv2")
    world.add("hv1", "p", state="paused")
    outcome = executor(world, tls=True, unsafe_guests=["p"]).run(Plan(moves=[move("p", "hv1", "hv2")]))[0]
    options = world.jobs["p"].options
    assert options.tls and options.paused and options.unsafe
    assert not options.auto_converge  # a paused guest dirties nothing
    assert outcome.outcome == "migrated" and outcome.state_after == "paused"


# -- the ladder ----------------------------------------------------------------------------------------------
def test_a_stalled_migration_climbs_the_ladder_then_is_aborted_at_its_bound_and_the_guest_stays():
    world = World("hv1", "hv2")
    world.add("hv1", "slow")
    world.behaviour["slow"] = Behaviour(release=threading.Event(), stall=True)  # never finishes on its own
    policy = LadderPolicy(poll_interval_s=0.01, timeout_floor_s=1.0, timeout_s_per_gib=0.1, step_interval_s=0.05,
                          auto_converge_window_s=0.1, downtime_steps_ms=[50, 100, 200])
    outcome = executor(world, policy=policy).run(Plan(moves=[move("slow", "hv1", "hv2")]), records={"slow": RECORD})[0]
    kinds = [step["kind"] for step in outcome.ladder_steps]
    assert kinds == ["set_downtime", "set_downtime", "auto_converge", "abort"]
    assert world.jobs["slow"].downtimes == [50, 100, 200]
    assert world.limits == {("hv1", "slow"): 300}  # the limit it had before, once the migration is over
    assert outcome.outcome == "aborted" and outcome.failed and not outcome.moved
    assert outcome.reason.startswith("aborted: migration of slow took 1 s, over its 1 s limit for 256 MiB")
    assert outcome.reason.endswith("slow keeps running on hv1") and outcome.runs_on == ["hv1"]
    assert world.hosts["hv1"] == {"slow": "running"} and world.records == {}  # no record on a guest that stayed
    assert 1.0 <= outcome.duration_s < 5 and outcome.timeline["switchover"] is None


class CopyingWorld(World):
    """A World whose guests have one local disk each, /var/lib/libvirt/images/<guest>.qcow2 (what a storage copy
    reads), on hosts whose pools hold no volume."""

    def connect(self, host):
        self.connects[host] = self.connects.get(host, 0) + 1
        return CopyingAdapter(self, host)


class CopyingAdapter(FakeAdapter):
    def guest(self, name, pools=None):
        self.guest_state(name)
        return Guest(name=name, uuid="uuid-%s" % name, disks=[Disk(target="vda", path=IMAGE % name, pool="default")])

    def local_volumes(self, paths):
        self._up()
        return []


IMAGE = "/var/lib/libvirt/images/%s.qcow2"


def test_a_storage_copy_gets_the_time_its_disks_need_beside_its_memory():
    # 256 MiB alone would get the 0.5 s floor; its 1 GiB disk, at 1 s per GiB, gives it 1.25 s
    world = CopyingWorld("hv1", "hv2")
    world.add("hv1", "db1")
    world.behaviour["db1"] = Behaviour(release=threading.Event(), stall=True)  # never finishes on its own
    policy = LadderPolicy(poll_interval_s=0.01, timeout_floor_s=0.5, timeout_s_per_gib=1.0, step_interval_s=10)
    copy = move("db1", "hv1", "hv2")
    copy.storage_copy, copy.copy_disks, copy.disk_bytes = True, ["vda"], 1024 * MIB
    outcome = executor(world, policy=policy).run(Plan(moves=[copy]))[0]
    assert world.jobs["db1"].options.storage_copy and world.jobs["db1"].options.copy_disks == ["vda"]
    assert outcome.outcome == "aborted" and 1.25 <= outcome.duration_s < 5
    assert outcome.reason.startswith("aborted: migration of db1 took 1 s, over its 1 s limit for 256 MiB and "
                                     "1024 MiB of disks")
    assert outcome.source_disks_deleted == [] and world.hosts["hv1"] == {"db1": "running"}


def test_storage_copy_source_is_delete_or_keep():
    assert executor(World("hv1")).storage_copy_source == "delete"
    with pytest.raises(HostmaintError) as error:
        executor(World("hv1"), storage_copy_source="shred")
    assert error.value.message == "invalid storage_copy_source 'shred': expected one of delete, keep"


A = IMAGE % "db1"
BOTH = {A: {"db1": ["inactive", "live"]}}


@pytest.mark.parametrize("changes, kept", [
    (dict(), None),  # it ran well there, alone, on a copy the copy made, and nothing here names it
    (dict(still_on_source=True), "db1 is still defined on hv1"),
    (dict(running_there=False), "db1 does not run on hv2"),
    (dict(existed_there=[A]), "hv2 had a volume at that path before the copy (on storage both share, it is this one)"),
    (dict(volumes_there=[]), "no pool of hv2 holds a volume at that path"),
    (dict(named_there={A: {"db1": ["live"]}}), "the persistent definition of db1 on hv2 does not name it"),
    (dict(named_there={A: {"db1": ["inactive"]}}), "the live definition of db1 on hv2 does not name it"),
    (dict(named_there={A: {"other": ["inactive", "live"]}}),
     "the live and persistent definitions of db1 on hv2 do not name it"),
    (dict(named_here={A: {"backup": ["live"], "db1-old": ["inactive"]}}),
     "the definition of backup, db1-old on hv1 names it"),
])
def test_a_source_disk_is_deleted_only_when_every_condition_holds(changes, kept):
    given = dict(still_on_source=False, running_there=True, existed_there=[], volumes_there=[A], named_there=BOTH,
                 named_here={A: {}})
    given.update(changes)
    delete, stays = source_disks_to_delete("db1", [A], "hv1", "hv2", **given)
    assert (delete, stays) == (([A], []) if kept is None else ([], [(A, kept)]))


# -- the sliding window --------------------------------------------------------------------------------------
def test_a_long_migration_does_not_hold_up_the_short_ones_behind_it():
    world = World("hv1", "hv2", "hv3")
    release = threading.Event()
    for name in ("long", "s1", "s2", "s3"):
        world.add("hv1", name)
    world.behaviour["long"] = Behaviour(release=release)
    # the long one only finishes once the last short one did (or after 5 s, when the window is broken)
    world.behaviour["s3"] = Behaviour(polls=3, after=lambda job: release.set())
    threading.Timer(5, release.set).start()
    # the waves of the plan: {long, s1} then {s2, s3}; a wave-by-wave run would wait for long
    plan = Plan(moves=[move("long", "hv1", "hv2", wave=1, order=1, memory_mib=4096),
                       move("s1", "hv1", "hv3", wave=1, order=2), move("s2", "hv1", "hv3", wave=2, order=3),
                       move("s3", "hv1", "hv3", wave=2, order=4)])
    outcomes = by_guest(executor(world, limits=Limits(max_outbound=2, max_inbound=2)).run(plan))
    assert sorted(world.events[:2]) == ["start long -> hv2", "start s1 -> hv3"]
    assert world.events[2:] == ["finish s1", "start s2 -> hv3", "finish s2", "start s3 -> hv3", "finish s3",
                                "finish long"]
    assert all(o.outcome == "migrated" for o in outcomes.values())
    assert outcomes["s3"].timeline["started"] < outcomes["long"].timeline["switchover"]


def test_slots_are_per_source_and_per_destination():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b", "c"):
        world.add("hv1", name)
    releases = dict((name, threading.Event()) for name in ("a", "b", "c"))
    for name, release in releases.items():
        world.behaviour[name] = Behaviour(release=release)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2),
                       move("c", "hv1", "hv3", order=3)])
    subject = executor(world, limits=Limits(max_outbound=2, max_inbound=1))
    runner = threading.Thread(target=lambda: subject.run(plan))
    runner.start()
    time.sleep(0.2)
    assert sorted(world.events) == ["start a -> hv2", "start c -> hv3"]  # b waits for hv2's one inbound slot
    releases["a"].set()
    time.sleep(0.2)
    assert world.events[-1] == "start b -> hv2"
    releases["b"].set()
    releases["c"].set()
    runner.join(5)
    assert not runner.is_alive()


def paced(world, downtimes):
    """hv1's guests a (2 GiB), b, c, d and e (1 GiB), all bound for hv2: a finishes after 2 polls, b and d after
    30, c and e after 3; ``downtimes`` gives each one's pause (42 ms when not named). The queue: a, b, c, d, e."""
    plan = []
    for order, name in enumerate("abcde", 1):
        world.add("hv1", name)
        world.behaviour[name] = Behaviour(polls=dict(a=2, b=30, d=30).get(name, 3), downtime_ms=downtimes.get(name, 42))
        plan.append(move(name, "hv1", "hv2", order=order, memory_mib=2048 if name == "a" else 1024))
    return Plan(moves=plan)


def test_a_long_pause_narrows_the_sources_window_and_two_short_ones_widen_it_again():
    world = World("hv1", "hv2")
    # a pauses 300 ms (over 80 % of the 150 ms target); b and c 40 ms (at most half of it)
    plan = paced(world, dict(a=300, b=40, c=40))
    subject = executor(world, limits=Limits(max_outbound=2, max_inbound=4), pause_target_ms=150)
    outcomes = by_guest(subject.run(plan))
    assert all(o.outcome == "migrated" for o in outcomes.values())
    assert sorted(world.events[:2]) == ["start a -> hv2", "start b -> hv2"]
    # a's pause leaves hv1 one slot, which b holds: c waits for b, and d for c, one at a time
    assert world.events[2:6] == ["finish a", "finish b", "start c -> hv2", "finish c"]
    assert outcomes["c"].timeline["started"] >= outcomes["b"].timeline["switchover"]
    assert outcomes["d"].timeline["started"] >= outcomes["c"].timeline["switchover"]
    # c's pause is the second short one in a row: hv1 has two slots again, so e starts beside d
    assert sorted(world.events[6:8]) == ["start d -> hv2", "start e -> hv2"]
    assert world.events[8:] == ["finish e", "finish d"]
    assert outcomes["e"].timeline["started"] < outcomes["d"].timeline["switchover"]
    changes = [c.as_dict() for c in subject.window_changes]
    assert [dict((k, v) for k, v in c.items() if k != "at") for c in changes] == [
        {"source": "hv1", "from": 2, "to": 1, "guest": "a", "downtime_ms": 300,
         "reason": "a paused 300 ms at switchover, at least 80 % of the 150 ms pause target"},
        {"destination": "hv2", "from": 4, "to": 3, "guest": "a", "downtime_ms": 300,
         "reason": "a paused 300 ms at switchover, at least 80 % of the 150 ms pause target"},
        {"source": "hv1", "from": 1, "to": 2, "guest": "c", "downtime_ms": 40,
         "reason": "c paused 40 ms at switchover, the last of 2 pauses in a row of at most 50 % of the 150 ms "
                   "pause target"},
        {"destination": "hv2", "from": 3, "to": 4, "guest": "c", "downtime_ms": 40,
         "reason": "c paused 40 ms at switchover, the last of 2 pauses in a row of at most 50 % of the 150 ms "
                   "pause target"},
    ]
    # each change happened when its guest switched over, before the next move started
    assert outcomes["a"].timeline["switchover"] <= changes[0]["at"] <= outcomes["c"].timeline["started"]
    assert outcomes["c"].timeline["switchover"] <= changes[2]["at"] <= outcomes["e"].timeline["started"]


def early(world, paused=False, downtimes=None):
    """hv1's a (lands on hv2 at its 3rd poll, its call returns at its 12th) and b, one slot out of hv1."""
    downtimes = downtimes or {}
    world.add("hv1", "a", state="paused" if paused else "running")
    world.add("hv1", "b")
    world.behaviour["a"] = Behaviour(polls=12, lands_early=9, downtime_ms=downtimes.get("a", 42))
    world.behaviour["b"] = Behaviour(polls=3, downtime_ms=downtimes.get("b", 42))
    return Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2)])


@pytest.mark.parametrize("settle_s", [0.05, 0.0], ids=["watched", "not_watched"])
def test_a_guest_running_on_its_destination_frees_its_slots_before_its_call_returns(settle_s):
    world = World("hv1", "hv2")
    plan = early(world)
    outcomes = by_guest(executor(world, limits=Limits(max_outbound=1, max_inbound=1), settle_s=settle_s).run(plan))
    assert [(o.outcome, o.runs_on, o.downtime_ms) for o in outcomes.values()] == [("migrated", ["hv2"], 42)] * 2
    # b starts once a runs on hv2 (its 'resumed' event, or its state there when not watched), while a's call
    # has not returned yet
    assert world.events[:2] == ["start a -> hv2", "start b -> hv2"]
    assert world.events.index("finish b") < world.events.index("finish a")
    assert outcomes["a"].timeline["switchover"] <= outcomes["b"].timeline["started"]
    assert world.hosts == {"hv1": {}, "hv2": {"a": "running", "b": "running"}}


def test_a_move_released_early_still_narrows_the_window_with_its_pause_once_its_call_returns():
    world = World("hv1", "hv2")
    plan = early(world, downtimes=dict(a=300))
    subject = executor(world, limits=Limits(max_outbound=2, max_inbound=2), pause_target_ms=150)
    outcomes = by_guest(subject.run(plan))
    assert all(o.outcome == "migrated" for o in outcomes.values())
    changes = [(c.side, c.host, c.before, c.after, c.guest, c.downtime_ms) for c in subject.window_changes]
    assert changes == [("source", "hv1", 2, 1, "a", 300), ("destination", "hv2", 2, 1, "a", 300)]
    assert subject.window_changes[0].at >= outcomes["a"].timeline["switchover"]


def test_a_paused_guest_holds_its_slots_until_its_call_returns():
    world = World("hv1", "hv2")
    plan = early(world, paused=True)
    outcomes = by_guest(executor(world, limits=Limits(max_outbound=1, max_inbound=1)).run(plan))
    assert all(o.outcome == "migrated" for o in outcomes.values())
    assert world.events[:3] == ["start a -> hv2", "finish a", "start b -> hv2"]


def test_with_no_pause_target_the_window_keeps_its_limit_whatever_the_pauses():
    world = World("hv1", "hv2")
    plan = paced(world, dict(a=300, b=300, c=300, d=300, e=300))
    subject = executor(world, limits=Limits(max_outbound=2, max_inbound=4), pause_target_ms=0)
    outcomes = by_guest(subject.run(plan))
    assert all(o.outcome == "migrated" for o in outcomes.values())
    # a's slot goes to c at once, beside b
    assert world.events[2:4] == ["finish a", "start c -> hv2"]
    assert outcomes["c"].timeline["started"] < outcomes["b"].timeline["switchover"]
    assert subject.window_changes == []


def test_shutdowns_wait_for_the_migrations_and_are_held_back_after_a_failed_one():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv1", "pinned")
    world.behaviour["a"] = Behaviour(error="internal error: qemu unexpectedly closed the monitor")
    plan = Plan(moves=[move("a", "hv1", "hv2", wave=1, order=1),
                       move("pinned", "hv1", None, wave=2, action="shutdown", order=2)])
    outcomes = executor(world).run(plan)
    assert [o.outcome for o in outcomes] == ["failed", "not_run"]
    assert outcomes[1].reason == "pinned stays running: migrations before it failed, so the host will not be emptied"
    assert world.hosts["hv1"]["pinned"] == "running"

    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv1", "pinned")
    outcomes = executor(world).run(plan)
    assert [o.outcome for o in outcomes] == ["migrated", "shut_down"]
    assert outcomes[1].timeline["started"] >= outcomes[0].timeline["done"]


# -- destinations that leave the run -------------------------------------------------------------------------
def test_a_destination_whose_libvirtd_goes_away_leaves_the_run_and_its_queued_guests_go_elsewhere():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b", "c"):
        world.add("hv1", name)

    # a's migration breaks as hv2's libvirtd goes away; b is still queued for hv2 (one inbound slot)
    world.behaviour["a"] = Behaviour(error="Cannot recv data: Connection reset by peer", cause="destination",
                                     breaks="hv2")
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2),
                       move("c", "hv1", "hv3", order=3)])
    outcomes = by_guest(executor(world, limits=Limits(max_inbound=1)).run(plan, survey=survey(world, ["a", "b", "c"])))
    assert outcomes["a"].outcome == "failed"
    assert outcomes["a"].reason == "cannot live-migrate a to hv2: Cannot recv data: Connection reset by peer"
    assert outcomes["a"].runs_on == ["hv1", "hv2 (unreachable)"]
    assert (outcomes["b"].outcome, outcomes["b"].destination, outcomes["b"].runs_on) == ("migrated", "hv3", ["hv3"])
    assert outcomes["b"].reason == ("placed on hv3 instead of hv2: hv2 failed the migration of a (Cannot recv data: "
                                    "Connection reset by peer)")
    assert outcomes["c"].outcome == "migrated"
    assert world.hosts["hv3"] == {"b": "running", "c": "running"} and world.hosts["hv1"] == {"a": "running"}


def test_an_unreachable_destination_gets_nothing_and_its_guests_are_placed_on_the_others_with_room():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b", "c"):
        world.add("hv1", name)
    world.down.add("hv2")
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2),
                       move("c", "hv1", "hv3", order=3)])
    # hv3 has room for two 256 MiB guests after its 1024 MiB reserve: c (planned there) and one more
    outcomes = by_guest(executor(world).run(plan, survey=survey(world, ["a", "b", "c"], free_mib=1024 + 600)))
    moved = sorted(name for name, o in outcomes.items() if o.outcome == "migrated")
    stayed = [o for o in outcomes.values() if o.outcome == "blocked"]
    assert len(moved) == 2 and "c" in moved and len(stayed) == 1
    assert stayed[0].reason.startswith("cannot move %s to hv2: hv2 does not answer (cannot reach libvirt at fake://hv2"
                                       % stayed[0].guest)
    assert "%s stays on hv1: cannot live-migrate %s to hv3: destination has" % (stayed[0].guest, stayed[0].guest) \
        in stayed[0].reason
    assert stayed[0].runs_on == ["hv1"] and not stayed[0].failed
    assert world.connects["hv2"] == 1  # asked once, then left alone


def test_a_destination_marked_after_the_plan_receives_nothing_and_the_guest_goes_elsewhere():
    world = World("hv1", "hv2", "hv3")
    world.add("hv1", "a")
    world.marks["hv2"] = {"run_id": "other-run"}
    outcome = executor(world).run(Plan(moves=[move("a", "hv1", "hv2")]), records={"a": RECORD},
                                  survey=survey(world, ["a"]))[0]
    assert (outcome.outcome, outcome.destination, outcome.runs_on) == ("migrated", "hv3", ["hv3"])
    assert outcome.reason == "placed on hv3 instead of hv2: hv2 went into maintenance (run other-run) after the plan " \
                             "was made"
    # with nowhere else to go it is blocked, untouched
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.marks["hv2"] = {"run_id": "other-run"}
    outcome = executor(world).run(Plan(moves=[move("a", "hv1", "hv2")]), records={"a": RECORD})[0]
    assert outcome.outcome == "blocked"
    assert outcome.reason == ("cannot move a to hv2: hv2 went into maintenance (run other-run) after the plan was "
                              "made; a stays on hv1: no other destination can take it")
    assert world.hosts["hv1"] == {"a": "running"} and world.records == {}
    # restore ignores home's own mark
    outcome = executor(world, ignore_marks=["hv2"]).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "migrated"


def test_a_failure_of_the_guests_own_does_not_remove_its_destination():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b"):
        world.add("hv1", name)
    world.behaviour["a"] = Behaviour(error="internal error: guest CPU doesn't match specification")
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2)])
    outcomes = by_guest(executor(world, limits=Limits(max_inbound=1)).run(plan, survey=survey(world, ["a", "b"])))
    assert outcomes["a"].outcome == "failed" and outcomes["a"].runs_on == ["hv1"]
    assert (outcomes["b"].outcome, outcomes["b"].destination, outcomes["b"].reason) == ("migrated", "hv2", None)


def test_after_a_failed_move_the_run_waits_until_one_host_defines_the_guest_and_says_when_it_cannot():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(error="internal error: job failed", linger_s=0.2)
    outcome = executor(world, definition_wait_s=5).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.runs_on == ["hv1"] and outcome.reason == "cannot live-migrate a to hv2: internal error: job failed"
    assert outcome.timeline["done"] - outcome.timeline["started"] >= 0.2

    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(error="internal error: job failed", linger_s=30)
    outcome = executor(world, definition_wait_s=0.3).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.runs_on == ["hv1", "hv2"]
    assert outcome.reason.endswith("; after 0.3 s a is still defined on both hv1 and hv2")


def restart(world, host, down_s):
    """``host``'s libvirtd goes away for ``down_s`` seconds."""
    world.down.add(host)
    timer = threading.Timer(down_s, lambda: world.down.discard(host))
    timer.daemon = True
    timer.start()


def test_the_downtime_limit_is_set_back_on_a_source_that_restarted_and_a_failure_to_is_said():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    # the destination went away (unknown whether it has the guest); the source's libvirtd restarts meanwhile
    world.behaviour["a"] = Behaviour(error="internal error: client socket is closed", breaks="hv2",
                                     on_error=lambda job: restart(world, "hv1", 0.1))
    outcome = executor(world, definition_wait_s=2).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert (outcome.outcome, outcome.runs_on) == ("failed", ["hv1 (unreachable)", "hv2 (unreachable)"])
    assert world.limits == {("hv1", "a"): 300} and world.connects["hv1"] >= 2  # asked again once it was back
    assert "downtime limit" not in outcome.reason

    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.limit_fails.add("hv1")
    world.behaviour["a"] = Behaviour(error="internal error: job failed")
    outcome = executor(world).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert (outcome.outcome, outcome.runs_on) == ("failed", ["hv1"])
    assert outcome.reason == ("cannot live-migrate a to hv2: internal error: job failed; its downtime limit may "
                              "stay at the run's first one, not 300 ms: cannot set the downtime limit of a on "
                              "fake://hv1 back to 300 ms: Timed out")


# -- after switchover ----------------------------------------------------------------------------------------
def reset_on_arrival(job):
    job.world.watches[(job.destination, job.name)].add("reboot")


def test_a_guest_reset_right_after_switchover_fails_and_stops_the_run():
    world = World("hv1", "hv2")
    for name in ("a", "b", "c"):
        world.add("hv1", name)
    world.behaviour["a"] = Behaviour(after=reset_on_arrival)
    world.behaviour["b"] = Behaviour(polls=10)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1, memory_mib=1024), move("b", "hv1", "hv2", order=2),
                       move("c", "hv1", "hv2", order=3)])
    outcomes = by_guest(executor(world, settle_s=2, limits=Limits(max_outbound=1)).run(plan))
    a = outcomes["a"]
    assert a.outcome == "failed" and a.failed and a.runs_on == ["hv2"] and a.state_after == "running"
    assert a.reason.startswith("a was reset 0.") and a.reason.endswith(" s after switchover on hv2")
    assert a.downtime_ms == 42 and a.timeline["checked"] - a.timeline["switchover"] < 1  # seen at once, not at 2 s
    # b had already taken a's slot at switchover; c had not started, and does not
    assert outcomes["b"].outcome == "migrated"
    assert outcomes["c"].outcome == "not_run" and outcomes["c"].runs_on == ["hv1"]
    assert outcomes["c"].reason == "c was not moved: the run stopped after %s" % a.reason
    assert "c" in world.hosts["hv1"]


def test_a_guest_reset_after_its_switchover_stops_the_run_before_its_migration_call_returns():
    world = World("hv1", "hv2")
    for name in ("a", "b", "c"):
        world.add("hv1", name)
    # a runs on hv2 (and is reset there) at its 2nd poll; its call returns at its 40th, long after b is done
    world.behaviour["a"] = Behaviour(polls=40, lands_early=38, after=reset_on_arrival)
    world.behaviour["b"] = Behaviour(polls=3)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2),
                       move("c", "hv1", "hv2", order=3)])
    outcomes = by_guest(executor(world, settle_s=2, limits=Limits(max_outbound=1)).run(plan))
    a = outcomes["a"]
    assert a.outcome == "failed" and a.reason.startswith("a was reset 0.") and a.reason.endswith(
        " s after switchover on hv2")
    # b took a's slot at a's switchover; c would have taken b's before a's call returned, but the run had stopped
    assert outcomes["b"].outcome == "migrated"
    assert outcomes["c"].outcome == "not_run" and outcomes["c"].reason == (
        "c was not moved: the run stopped after %s" % a.reason)
    assert world.events.index("finish b") < world.events.index("finish a")
    assert "c" in world.hosts["hv1"]


def test_a_guest_that_does_not_run_at_the_end_of_its_settle_period_fails():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(after=lambda job: job.world.hosts["hv2"].update(a="shutoff"))
    outcome = executor(world, settle_s=0.1).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "failed" and outcome.reason == "a is shutoff on hv2 at the end of its 0.1 s settle period"


def test_a_pause_the_move_did_not_ask_for_is_a_failure_but_the_migrations_own_events_are_not():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv1", "b")

    def events(job):
        watch = job.world.watches[(job.destination, job.name)]
        watch.add("defined", "updated")
        if job.name == "a":
            watch.add("suspended", "ioerror")

    world.behaviour["a"] = Behaviour(after=events)
    world.behaviour["b"] = Behaviour(after=events)
    outcomes = by_guest(executor(world, settle_s=0.2).run(Plan(moves=[move("a", "hv1", "hv2", order=1),
                                                                      move("b", "hv1", "hv2", order=2)])))
    assert outcomes["a"].outcome == "failed" and outcomes["a"].reason.startswith("a was paused (ioerror) 0.")
    assert outcomes["b"].outcome in ("migrated", "not_run")


def test_settle_zero_watches_nothing_but_reports_the_state():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    outcome = executor(world, settle_s=0).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "migrated" and outcome.state_after == "running"
    assert outcome.timeline["checked"] is None and world.watches == {}


# -- whatever a worker raises --------------------------------------------------------------------------------
def test_a_worker_that_raises_something_unexpected_is_reported_failed_and_the_record_is_cleared():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv1", "b")
    world.behaviour["a"] = Behaviour(raises=ValueError("bad stats"), polls=50)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2)])
    outcomes = by_guest(executor(world).run(plan, records={"a": RECORD, "b": RECORD}))
    assert outcomes["a"].outcome == "failed" and outcomes["a"].runs_on == ["hv1"]
    assert outcomes["a"].reason == "migrate of a failed unexpectedly: ValueError: bad stats"
    assert ("hv1", "a") not in world.records
    assert outcomes["b"].outcome == "migrated"


def test_an_unknown_guest_is_a_failure_not_a_crash():
    world = World("hv1", "hv2")
    outcome = executor(world).run(Plan(moves=[move("ghost", "hv1", "hv2")]))[0]
    assert outcome.outcome == "failed" and outcome.reason == "unknown guest ghost: fake://hv1 has no such guest"
    assert outcome.runs_on == [] and outcome.timeline["started"] is None


# -- definitions, connections --------------------------------------------------------------------------------
def test_a_definition_move_keeps_exactly_one_definition_when_its_second_half_fails():
    world = World("hv1", "hv2")
    world.add("hv1", "off", state="shutoff")
    world.undefine_fails.add(("hv1", "off"))
    outcome = executor(world).run(Plan(moves=[move("off", "hv1", "hv2", action="move_definition")]),
                                  records={"off": RECORD})[0]
    assert outcome.outcome == "failed" and "cannot undefine off" in outcome.reason
    assert world.hosts == {"hv1": {"off": "shutoff"}, "hv2": {}} and outcome.runs_on == ["hv1"]
    world.undefine_fails.clear()
    outcome = executor(world).run(Plan(moves=[move("off", "hv1", "hv2", action="move_definition")]),
                                  records={"off": RECORD})[0]
    assert outcome.outcome == "moved_definition" and outcome.moved
    assert world.hosts == {"hv1": {}, "hv2": {"off": "shutoff"}} and world.records == {("hv2", "off"): RECORD}


def test_connections_are_opened_once_per_host_and_closed_at_the_end():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b", "c", "d"):
        world.add("hv1", name)
    world.add("hv1", "off", state="shutoff")
    world.behaviour["b"] = Behaviour(error="internal error: job failed")
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv3", order=2),
                       move("c", "hv1", "hv2", order=3), move("d", "hv1", "hv3", order=4),
                       move("off", "hv1", "hv2", action="move_definition", order=5)])
    outcomes = executor(world).run(plan, records=dict((n, RECORD) for n in "abcd"))
    assert [o.outcome for o in outcomes] == ["migrated", "failed", "migrated", "migrated", "moved_definition"]
    assert world.connects == {"hv1": 1, "hv2": 1, "hv3": 1}
    assert sorted(world.closed) == ["hv1", "hv2", "hv3"]


def test_connections_the_caller_gives_stay_open_and_one_that_broke_is_replaced_by_the_runs_own():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv1", "b")
    shared = dict((host, FakeAdapter(world, host)) for host in world.hosts)  # the module's own, one per host
    reopened = []

    def reopen(host):
        reopened.append(host)
        return world.connect(host)

    # a's migration fails and the source's libvirtd restarts then: the source is asked again on a new connection
    world.behaviour["a"] = Behaviour(error="internal error: client socket is closed", breaks="hv2",
                                     on_error=lambda job: restart(world, "hv1", 0.1))
    run = Executor(shared.get, lambda host: "fake://%s" % host, policy=LadderPolicy(poll_interval_s=0.01),
                   settle_s=0.05, definition_wait_s=2, reopen=reopen)
    outcomes = by_guest(run.run(Plan(moves=[move("a", "hv1", "hv2", order=1)])))
    assert outcomes["a"].outcome == "failed" and world.limits == {("hv1", "a"): 300}
    assert "hv1" in reopened and world.connects.get("hv1", 0) == len([h for h in reopened if h == "hv1"])
    assert sorted(world.closed) == sorted(reopened)  # the run closes only what it opened, never the caller's

    world.down.clear()
    world.closed[:] = []
    reopened[:] = []
    outcome = run.run(Plan(moves=[move("b", "hv1", "hv2", order=1)]))[0]
    assert outcome.outcome == "migrated" and reopened == [] and world.closed == []  # the caller's, left open


def test_the_queue_goes_longest_first_and_starts_come_first():
    world = World("hv1", "hv2")
    for name in ("small", "big", "busy"):
        world.add("hv1", name)
    world.add("hv2", "home", state="shutoff")
    plan = Plan(moves=[move("small", "hv1", "hv2", order=1, memory_mib=512),
                       move("big", "hv1", "hv2", order=2, memory_mib=1024),
                       move("busy", "hv1", "hv2", order=3, memory_mib=768),
                       move("home", "hv2", "hv2", action="start", order=4)])
    outcomes = executor(world, limits=Limits(max_outbound=1)).run(
        plan, dirty_rates={"busy": 900 * 1000 * 1000})  # busy rewrites its memory fast: it takes longest
    assert [e for e in world.events if e.startswith("start")] == ["start busy -> hv2", "start big -> hv2",
                                                                  "start small -> hv2"]
    assert [o.guest for o in outcomes] == ["small", "big", "busy", "home"]  # reported in plan order
    assert outcomes[3].outcome == "started" and world.hosts["hv2"]["home"] == "running"


class ProbingExecutor(Executor):
    """The executor with the guests' service probes answered from a script: {url: [answers in turn]}."""

    def __init__(self, *args, **kwargs):
        self.answers = kwargs.pop("answers")
        self.asked = []
        super(ProbingExecutor, self).__init__(*args, **kwargs)

    def check_probe(self, url, timeout):
        self.asked.append(url)
        script = self.answers[url]
        return script.pop(0) if len(script) > 1 else script[0]


def probing(world, answers, **kwargs):
    kwargs.setdefault("policy", LadderPolicy(poll_interval_s=0.01))
    kwargs.setdefault("definition_wait_s", 0.5)
    return ProbingExecutor(world.connect, lambda host: "fake://%s" % host, answers=answers, **kwargs)


def test_a_guest_whose_service_answers_after_a_few_tries_has_landed_well():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    url = "tcp://192.0.2.50:80"
    run = probing(world, {url: ["ConnectionRefusedError", "timeout", None]}, settle_s=0.5, probes={"a": url})
    outcome = run.run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "migrated" and outcome.moved and outcome.reason is None
    assert run.asked == [url] * 3  # it stops asking once the guest answered


def test_a_guest_whose_service_never_answers_after_landing_fails_and_stops_the_run():
    world = World("hv1", "hv2")
    for name in ("a", "b", "c"):
        world.add("hv1", name)
    world.behaviour["b"] = Behaviour(polls=60)  # still copying when a's settle period ends
    url = "http://192.0.2.50/health"
    run = probing(world, {url: ["ConnectionRefusedError: [Errno 111] Connection refused"]}, settle_s=0.1,
                  probe_wait_s=0.3, probes={"a": url}, limits=Limits(max_outbound=1))
    outcomes = by_guest(run.run(Plan(moves=[move("a", "hv1", "hv2", order=1, memory_mib=1024),
                                            move("b", "hv1", "hv2", order=2), move("c", "hv1", "hv2", order=3)])))
    a = outcomes["a"]
    assert a.outcome == "failed" and not a.moved and a.runs_on == ["hv2"]
    assert a.reason == ("a did not answer http://192.0.2.50/health within 0.3 s after switchover on hv2 "
                        "(ConnectionRefusedError: [Errno 111] Connection refused)")
    # b had taken a's slot at switchover and finishes; c does not start
    assert outcomes["b"].outcome == "migrated"
    assert outcomes["c"].outcome == "not_run" and "c" in world.hosts["hv1"]


def test_a_probe_gets_its_own_wait_when_the_settle_period_is_shorter():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    url = "tcp://192.0.2.50:80"
    # refused 30 times (about 0.3 s of tries) before it answers: longer than the 0.05 s settle period
    run = probing(world, {url: ["ConnectionRefusedError"] * 30 + [None]}, settle_s=0.05, probe_wait_s=2.0,
                  probes={"a": url})
    outcome = run.run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "migrated" and outcome.reason is None and run.asked == [url] * 31
    assert outcome.timeline["checked"] - outcome.timeline["switchover"] >= 0.05


def test_a_guest_whose_probe_answers_with_its_events_quiet_ends_its_settle_period_early():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv1", "b")
    url = "tcp://192.0.2.50:80"
    run = probing(world, {url: [None]}, settle_s=3, probes={"a": url})
    outcomes = by_guest(run.run(Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2)])))
    a, b = outcomes["a"], outcomes["b"]
    assert a.outcome == b.outcome == "migrated" and run.asked == [url]
    # a answered: its period ends PROBED_QUIET_S after its switchover; b has no probe and is watched for all 3 s
    assert 0.5 <= a.timeline["checked"] - a.timeline["switchover"] < 1.5
    assert b.timeline["checked"] - b.timeline["switchover"] >= 3.0


def test_no_probe_without_a_settle_period():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    run = probing(world, {"tcp://192.0.2.50:22": ["refused"]}, settle_s=0, probes={"a": "tcp://192.0.2.50:22"})
    assert run.run(Plan(moves=[move("a", "hv1", "hv2")]))[0].outcome == "migrated" and run.asked == []


# -- a migration whose last step never ran on its source ----------------------------------------------------
def source_restarted_after_switchover(world, down_s=0.1):
    """What a source libvirtd restarted at the migration's last step leaves: the guest runs on the destination,
    the source keeps a shut-off definition of it, and the source does not answer for a moment."""
    def hook(job):
        world.hosts[job.destination][job.name] = "running"
        world.hosts[job.source][job.name] = "shutoff"
        restart(world, job.source, down_s)
    return hook


def test_a_definition_left_on_a_restarted_source_is_removed_and_the_guest_reported_where_it_runs():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(error="Cannot recv data: Input/output error",
                                     on_error=source_restarted_after_switchover(world))
    outcome = executor(world, definition_wait_s=5).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert world.hosts == {"hv1": {}, "hv2": {"a": "running"}}
    assert outcome.outcome == "migrated" and outcome.runs_on == ["hv2"], outcome.reason
    assert "hv1 kept a shut-off definition of a while the guest ran on hv2" in outcome.reason
    assert "that definition was removed" in outcome.reason
    assert world.limits == {}  # it left its source: nothing there to set back
    assert world.connects["hv1"] >= 2  # asked again on a new connection once its libvirtd was back


def test_a_shut_off_copy_of_another_guest_of_that_name_is_left_alone():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.uuids[("hv1", "a")] = "uuid-someone-else"
    world.behaviour["a"] = Behaviour(error="Cannot recv data: Input/output error",
                                     on_error=source_restarted_after_switchover(world))
    outcome = executor(world, definition_wait_s=0.5).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert world.hosts == {"hv1": {"a": "shutoff"}, "hv2": {"a": "running"}}
    assert outcome.outcome == "failed" and sorted(outcome.runs_on) == ["hv1", "hv2"]
    assert "is still defined on both hv1 and hv2" in outcome.reason and "removed" not in outcome.reason


def test_a_dead_destination_is_not_waited_for_while_the_guest_still_runs_on_its_source():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(error="Cannot recv data: Connection reset by peer", breaks="hv2")
    started = time.time()
    outcome = executor(world, definition_wait_s=5).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "failed" and outcome.runs_on == ["hv1", "hv2 (unreachable)"]
    assert time.time() - started < 3


def arriving_into_a_marked_host(world, guest, host, run_id="other-run"):
    """What a run that marks ``host`` a moment after this one checked it looks like here: the incoming guest
    becomes active there (paused, as libvirt keeps it until the switchover), the mark is set, and the
    incoming guest goes away again once the migration is aborted."""
    def arrive():
        while guest not in world.jobs:
            time.sleep(0.005)
        world.hosts[host][guest] = "paused"
        world.marks[host] = {"run_id": run_id}
        job = world.jobs[guest]
        while not job.aborted and job.outcome is None:
            time.sleep(0.005)
        if job.aborted:
            world.hosts[host].pop(guest, None)
    thread = threading.Thread(target=arrive)
    thread.daemon = True
    thread.start()
    return thread


def test_a_destination_marked_while_the_guest_is_arriving_is_left_and_the_guest_goes_elsewhere():
    world = World("hv1", "hv2", "hv3")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(polls=50)
    arriving_into_a_marked_host(world, "a", "hv2")
    outcome = executor(world).run(Plan(moves=[move("a", "hv1", "hv2")]), records={"a": RECORD},
                                  survey=survey(world, ["a"]))[0]
    assert world.events[:2] == ["start a -> hv2", "finish a"]  # aborted long before its 50 polls
    assert (outcome.outcome, outcome.destination, outcome.runs_on) == ("migrated", "hv3", ["hv3"])
    assert outcome.reason == ("placed on hv3 instead of hv2: hv2 went into maintenance (run other-run) while a "
                              "was migrating there")
    assert world.hosts == {"hv1": {}, "hv2": {}, "hv3": {"a": "running"}}


def test_a_destination_marked_while_the_guest_is_arriving_keeps_the_guest_home_when_nothing_else_has_room():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(polls=50)
    arriving_into_a_marked_host(world, "a", "hv2")
    outcome = executor(world).run(Plan(moves=[move("a", "hv1", "hv2")]), records={"a": RECORD})[0]
    assert outcome.outcome == "blocked" and not outcome.failed and outcome.runs_on == ["hv1"]
    assert outcome.reason.startswith("cannot move a to hv2: hv2 went into maintenance (run other-run) while a was "
                                     "migrating there")
    assert world.hosts == {"hv1": {"a": "running"}, "hv2": {}} and world.records == {}
    assert world.limits[("hv1", "a")] == 300  # its downtime limit is back to what it was


def test_a_restore_is_not_stopped_by_the_mark_of_its_own_home():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(polls=5)
    arriving_into_a_marked_host(world, "a", "hv2", run_id="this-restore")
    outcome = executor(world, ignore_marks=["hv2"]).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome.outcome == "migrated" and outcome.runs_on == ["hv2"]


# -- the schedule driven step by step, as a simulator drives it: no thread, no adapter, an injected clock --------
def test_the_schedule_runs_step_by_step_on_an_injected_clock_without_threads_or_connections():
    now = [100.0]

    def connect(host):
        raise AssertionError("the schedule opened a connection to %s" % host)

    subject = Executor(connect, lambda host: "fake://%s" % host, limits=Limits(max_outbound=1, max_inbound=2),
                       pause_target_ms=150, clock=lambda: now[0])
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv3", order=2),
                       move("c", "hv1", "hv2", order=3)])
    run = _Run(subject, {})
    schedule = Schedule(subject, run, plan)
    assert [m.guest for m in schedule.starts()] == ["a"] and schedule.starts() == []  # one slot out of hv1
    now[0] += 2.0
    a = schedule.in_flight["a"]
    schedule.on("released", a, None)  # a runs on hv2: its slot goes to b, before a's call returns
    assert [m.guest for m in schedule.starts()] == ["b"]
    now[0] += 1.0
    schedule.on("paused", a, 300)  # a's call returned: its 300 ms pause narrows hv1's window (already 1) and hv2's
    schedule.on("done", a, (MigrationOutcome.of(a, "migrated", runs_on=["hv2"]), None, None))
    assert [(c.side, c.host, c.before, c.after, c.at) for c in run.window_changes] == [("destination", "hv2", 2, 1, 3.0)]
    schedule.stop_now("the operator asked")
    assert schedule.starts() == [] and not schedule.done  # b still in flight; c will not start
    b = schedule.in_flight["b"]
    schedule.on("done", b, (MigrationOutcome.of(b, "migrated", runs_on=["hv3"]), None, None))
    assert schedule.done
    outcomes = by_guest(schedule.outcomes())
    assert [o.guest for o in schedule.outcomes()] == ["a", "b", "c"]
    assert outcomes["c"].outcome == "not_run" and outcomes["c"].reason == (
        "c was not moved: the run stopped after the operator asked")
    assert outcomes["c"].timeline["queued"] == 0.0 and outcomes["c"].timeline["done"] == 3.0


# -- progress: what the run tells the file the controller reads (module_utils/progress.py) -------------------
def test_every_phase_sample_and_end_of_a_run_reaches_its_progress():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b"):
        world.add("hv1", name)
    world.behaviour["a"] = Behaviour(polls=6)
    world.behaviour["b"] = Behaviour(error="internal error: qemu unexpectedly closed the monitor")
    written = []
    recorder = progress.Recorder("/nowhere", host="hv1", write=lambda path, data: written.append(data), interval_s=0)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv3", order=2)])
    executor(world, progress=recorder).run(plan)
    last = recorder.close()
    phases = dict((key, [e["phase"] for e in last["events"] if e["key"] == key]) for key in ("a", "b"))
    assert phases == {"a": ["started", "switchover", "checked", "done"], "b": ["started", "failed"]}
    moves = dict((m["key"], m) for m in last["moves"])
    assert (moves["a"]["route"], moves["a"]["total"], moves["a"]["outcome"]) == ("hv1->hv2", 256 * MIB, "migrated")
    assert moves["b"]["reason"].startswith("cannot live-migrate b to hv3: internal error")
    assert last["totals"]["done"] == 2 and last["totals"]["failed"] == 1
    copying = [m for state in written for m in state["moves"] if m["key"] == "a" and m["copied"]]
    assert copying and copying[-1]["rung"] == "downtime 50 ms (1/5)"
    assert written[0]["totals"]["queued"] == 2  # the plan is written before the first move starts


def test_a_move_whose_destination_left_before_it_started_starts_on_its_new_route_in_its_progress():
    world = World("hv1", "hv2", "hv3")
    world.add("hv1", "a")
    world.marks["hv2"] = {"run_id": "other"}
    recorder = progress.Recorder("/nowhere", host="hv1", write=lambda path, data: None)
    plan = Plan(moves=[move("a", "hv1", "hv2")])
    outcomes = executor(world, progress=recorder).run(plan, survey=survey(world, ["a"]))
    assert outcomes[0].destination == "hv3"
    last = recorder.close()
    # it never started towards hv2: no event until it starts towards hv3; its end says why it went there
    assert [e["phase"] for e in last["events"]] == ["started", "switchover", "checked", "done"]
    assert last["moves"][0]["route"] == "hv1->hv3"
    assert last["events"][-1]["reason"].startswith("placed on hv3 instead of hv2: hv2 went into maintenance")
