# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor's failure paths, with a small fake world of hosts injected through its constructor.

The lab tests the real migrations; these check what is hard to provoke there on demand: a
destination that goes into maintenance between plan and move, a definition move whose second
half fails, shutdowns held back after a failed migration, an abort at the ladder's timeout.
"""

from __future__ import annotations

import threading
import time

import pytest

libvirt = pytest.importorskip("libvirt")

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.executor import Executor  # noqa: E402
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (  # noqa: E402
    LadderPolicy,
    MigrationRecord,
    Move,
    Plan,
)


class FakeError(libvirt.libvirtError):
    def __init__(self, message, code=libvirt.VIR_ERR_OPERATION_FAILED):
        super(FakeError, self).__init__(message)
        self.message, self.code = message, code

    def get_error_message(self):
        return self.message

    def get_error_code(self):
        return self.code


class FakeDom(object):
    def __init__(self, world, host, name, state=libvirt.VIR_DOMAIN_RUNNING, migrate_s=0.05, never_finishes=False):
        self.world, self.host, self.name = world, host, name
        self._state, self.migrate_s, self.never_finishes = state, migrate_s, never_finishes
        self.aborted = threading.Event()
        self.record = None
        self.flags = None

    def state(self):
        return [self._state, 0]

    def isPersistent(self):
        return True

    def isActive(self):
        return self._state != libvirt.VIR_DOMAIN_SHUTOFF

    def migrateSetMaxDowntime(self, ms, flags):
        self.downtime = ms

    def jobStats(self, flags=0):
        if flags == libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED:
            return {"type": 3, "downtime": 42, "data_processed": 1000, "memory_iteration": 2}
        return {"type": 2, "data_processed": 10, "memory_processed": 10, "memory_remaining": 1 << 30,
                "memory_iteration": 1}

    def abortJob(self):
        self.aborted.set()

    def migrateToURI3(self, uri, params, flags):
        self.flags = flags
        deadline = time.time() + (30 if self.never_finishes else self.migrate_s)
        while time.time() < deadline:
            if self.aborted.is_set():
                raise FakeError("operation aborted: migration out: canceled by client")
            time.sleep(0.01)
        dest = uri.split("://", 1)[1]
        with self.world.lock:
            del self.world.hosts[self.host][self.name]
            self.host = dest
            self.world.hosts[dest][self.name] = self


class World(object):
    def __init__(self, *hosts):
        self.hosts = dict((h, {}) for h in hosts)
        self.marks = {}
        self.lock = threading.Lock()
        self.undefine_fails = set()

    def add(self, host, name, **kwargs):
        self.hosts[host][name] = FakeDom(self, host, name, **kwargs)
        return self.hosts[host][name]


class FakeAdapter(object):
    def __init__(self, world, host):
        self.world, self.host = world, host

    def domain(self, name):
        try:
            return self.world.hosts[self.host][name]
        except KeyError:
            raise HostmaintError("unknown guest %s on %s" % (name, self.host))

    def has_domain(self, name):
        return name in self.world.hosts[self.host]

    def maintenance(self):
        return self.world.marks.get(self.host)

    def set_record(self, name, record):
        self.domain(name).record = record

    def clear_record(self, name):
        self.domain(name).record = None

    def inactive_xml(self, name):
        return name

    def define(self, xml):
        self.world.add(self.host, xml, state=libvirt.VIR_DOMAIN_SHUTOFF)

    def undefine(self, name):
        if (self.host, name) in self.world.undefine_fails:
            raise FakeError("cannot undefine %s" % name)
        del self.world.hosts[self.host][name]

    def shutdown(self, name, timeout_s):
        self.domain(name)._state = libvirt.VIR_DOMAIN_SHUTOFF
        return True

    def close(self):
        pass


def executor(world, **kwargs):
    policy = kwargs.pop("policy", LadderPolicy(poll_interval_s=0.02))
    return Executor(lambda host: FakeAdapter(world, host), lambda host: "fake://%s" % host, policy=policy, **kwargs)


def move(guest, source, destination, wave=1, action="migrate", order=1):
    return Move(guest=guest, action=action, source=source, destination=destination, memory_mib=256, wave=wave,
                order=order)


RECORD = MigrationRecord("hv1", "uuid-1", "run-1", "2026-11-25T18:00:00Z")


def test_a_wave_runs_its_moves_in_parallel_and_records_travel():
    world = World("hv1", "hv2", "hv3")
    world.add("hv1", "a", migrate_s=0.5)
    world.add("hv1", "b", migrate_s=0.5)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv3", order=2)])
    started = time.time()
    outcomes = executor(world).run(plan, records={"a": RECORD, "b": RECORD})
    assert time.time() - started < 0.9  # two 0.5 s migrations at once
    assert [(o["guest"], o["outcome"], o["runs_on"], o["downtime_ms"]) for o in outcomes] == [
        ("a", "migrated", ["hv2"], 42), ("b", "migrated", ["hv3"], 42)]
    assert world.hosts["hv2"]["a"].record == RECORD and not world.hosts["hv1"]
    flags = world.hosts["hv2"]["a"].flags
    for flag in (libvirt.VIR_MIGRATE_LIVE, libvirt.VIR_MIGRATE_PEER2PEER, libvirt.VIR_MIGRATE_PERSIST_DEST,
                 libvirt.VIR_MIGRATE_UNDEFINE_SOURCE):
        assert flags & flag
    assert not flags & libvirt.VIR_MIGRATE_TLS and not flags & libvirt.VIR_MIGRATE_POSTCOPY


def test_tls_paused_and_unsafe_flags():
    world = World("hv1", "hv2")
    world.add("hv1", "p", state=libvirt.VIR_DOMAIN_PAUSED)
    executor(world, tls=True, unsafe_guests=["p"]).run(Plan(moves=[move("p", "hv1", "hv2")]))
    flags = world.hosts["hv2"]["p"].flags
    assert flags & libvirt.VIR_MIGRATE_TLS and flags & libvirt.VIR_MIGRATE_PAUSED and flags & libvirt.VIR_MIGRATE_UNSAFE
    assert not flags & libvirt.VIR_MIGRATE_AUTO_CONVERGE  # a paused guest dirties nothing


def test_a_migration_over_its_time_is_aborted_and_the_guest_stays_without_a_record():
    world = World("hv1", "hv2")
    world.add("hv1", "slow", never_finishes=True)
    policy = LadderPolicy(poll_interval_s=0.02, timeout_floor_s=0.5, timeout_s_per_gib=0.1, step_interval_s=0.1)
    outcome = executor(world, policy=policy).run(Plan(moves=[move("slow", "hv1", "hv2")]), records={"slow": RECORD})[0]
    assert outcome["outcome"] == "aborted" and outcome["moved"] is False
    assert "slow keeps running on hv1" in outcome["reason"] and outcome["runs_on"] == ["hv1"]
    assert [step["kind"] for step in outcome["ladder_steps"]] == ["abort"]
    assert "slow" in world.hosts["hv1"] and world.hosts["hv1"]["slow"].record is None
    assert outcome["duration_s"] < 5


def test_a_destination_marked_after_the_plan_receives_nothing():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.marks["hv2"] = {"run_id": "other-run"}
    outcome = executor(world).run(Plan(moves=[move("a", "hv1", "hv2")]), records={"a": RECORD})[0]
    assert outcome["outcome"] == "failed"
    assert outcome["reason"] == ("cannot move a to hv2: hv2 went into maintenance (run other-run) after the plan was "
                                 "made; a stays on hv1")
    assert "a" in world.hosts["hv1"] and world.hosts["hv1"]["a"].record is None
    # restore ignores home's own mark
    outcome = executor(world, ignore_marks=["hv2"]).run(Plan(moves=[move("a", "hv1", "hv2")]))[0]
    assert outcome["outcome"] == "migrated"


def test_shutdowns_are_held_back_after_a_failed_migration():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.add("hv1", "pinned")
    world.marks["hv2"] = {"run_id": "x"}  # makes the migration fail
    plan = Plan(moves=[move("a", "hv1", "hv2", wave=1, order=1),
                       move("pinned", "hv1", None, wave=2, action="shutdown", order=2)])
    outcomes = executor(world).run(plan)
    assert [o["outcome"] for o in outcomes] == ["failed", "not_run"]
    assert world.hosts["hv1"]["pinned"].isActive()


def test_a_definition_move_keeps_exactly_one_definition_when_its_second_half_fails():
    world = World("hv1", "hv2")
    world.add("hv1", "off", state=libvirt.VIR_DOMAIN_SHUTOFF)
    world.undefine_fails.add(("hv1", "off"))
    outcome = executor(world).run(Plan(moves=[move("off", "hv1", "hv2", action="move_definition")]),
                                  records={"off": RECORD})[0]
    assert outcome["outcome"] == "failed" and "cannot undefine off" in outcome["reason"]
    assert "off" in world.hosts["hv1"] and "off" not in world.hosts["hv2"]
    world.undefine_fails.clear()
    outcome = executor(world).run(Plan(moves=[move("off", "hv1", "hv2", action="move_definition")]),
                                  records={"off": RECORD})[0]
    assert outcome["outcome"] == "moved_definition"
    assert "off" not in world.hosts["hv1"] and world.hosts["hv2"]["off"].record == RECORD
