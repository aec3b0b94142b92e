# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor asked to stop (its ``stop`` callable: a signal, the controller gone, an operator's request): queued
moves are not run, migrations in flight are aborted and their guests stay home. Same fake world as test_executor."""

from __future__ import annotations

import threading

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Limits, Plan
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.module_utils.test_executor import (
    RECORD,
    Behaviour,
    World,
    by_guest,
    executor,
    move,
)

REASON = "an operator asked it to stop (window closed)"


class Stop(object):
    """stop() for the executor: None until ``when()`` holds, then REASON; counts how often it was asked."""

    def __init__(self, when=lambda: True, reason=REASON):
        self.when, self.reason = when, reason
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls += 1
        return self.reason if self.when() else None


def test_a_run_asked_to_stop_before_it_starts_moves_nothing_and_says_why_for_every_guest():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b", "c"):
        world.add("hv1", name)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv3", order=2),
                       move("c", "hv1", "hv2", order=3, action="shutdown")])
    stop = Stop()
    subject = executor(world, stop=stop)
    outcomes = subject.run(plan, records={"a": RECORD, "b": RECORD})
    assert [(o.guest, o.outcome, o.moved, o.runs_on) for o in outcomes] == [
        ("a", "not_run", False, ["hv1"]), ("b", "not_run", False, ["hv1"]), ("c", "not_run", False, ["hv1"])]
    for outcome in outcomes:
        assert outcome.reason == "%s was not moved: the run stopped after it was asked to stop: %s" % (
            outcome.guest, REASON)
        assert "asked to stop" in outcome.reason
        assert outcome.timeline["queued"] is not None and outcome.timeline["started"] is None
    assert subject.stopped == REASON
    assert world.jobs == {} and world.events == []  # no migration was started
    assert world.hosts == {"hv1": {"a": "running", "b": "running", "c": "running"}, "hv2": {}, "hv3": {}}
    assert world.records == {}
    assert stop.calls == 1  # the reason is kept: stop() is not asked again


def test_a_run_never_asked_to_stop_has_no_stopped_reason():
    world = World("hv1", "hv2")
    world.add("hv1", "a")
    stop = Stop(when=lambda: False)
    subject = executor(world, stop=stop)
    (outcome,) = subject.run(Plan(moves=[move("a", "hv1", "hv2")]))
    assert outcome.outcome == "migrated" and subject.stopped is None and stop.calls >= 1
    assert executor(world).stopped is None  # no stop callable: never stops


def test_a_stop_during_a_migration_aborts_it_the_guest_stays_and_the_queued_ones_are_not_run():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b"):
        world.add("hv1", name)
    world.behaviour["a"] = Behaviour(release=threading.Event())  # never finishes on its own
    # one outbound slot: a (the larger) runs, b waits behind it
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1, memory_mib=2048), move("b", "hv1", "hv3", order=2)])
    subject = executor(world, stop=Stop(when=lambda: "a" in world.jobs), limits=Limits(max_outbound=1))
    outcomes = by_guest(subject.run(plan, records={"a": RECORD, "b": RECORD}))
    a, b = outcomes["a"], outcomes["b"]
    assert world.jobs["a"].aborted and "b" not in world.jobs
    assert a.outcome == "aborted" and a.failed and not a.moved
    assert a.reason == "aborted: the run was asked to stop (%s); a keeps running on hv1" % REASON
    assert a.runs_on == ["hv1"] and a.timeline["started"] is not None and a.timeline["switchover"] is None
    assert b.outcome == "not_run" and "asked to stop" in b.reason and REASON in b.reason
    assert subject.stopped == REASON
    assert world.hosts == {"hv1": {"a": "running", "b": "running"}, "hv2": {}, "hv3": {}}
    assert world.records == {}  # the aborted guest's record was cleared; b's was never written


def test_every_migration_in_flight_is_aborted():
    world = World("hv1", "hv2", "hv3")
    for name in ("a", "b"):
        world.add("hv1", name)
        world.behaviour[name] = Behaviour(release=threading.Event())
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv3", order=2)])
    subject = executor(world, stop=Stop(when=lambda: len(world.jobs) == 2), limits=Limits(max_outbound=2))
    outcomes = by_guest(subject.run(plan))
    assert sorted(world.jobs) == ["a", "b"] and all(job.aborted for job in world.jobs.values())
    assert [(o.outcome, o.runs_on) for o in (outcomes["a"], outcomes["b"])] == [("aborted", ["hv1"])] * 2
    assert all(o.reason.startswith("aborted: the run was asked to stop (%s)" % REASON) for o in outcomes.values())


def test_a_migration_that_already_switched_over_is_kept_and_the_rest_is_not_run():
    world = World("hv1", "hv2")
    for name in ("a", "b", "c"):
        world.add("hv1", name)
    # a finishes first; the stop comes once it is on hv2; b and c wait behind it (one slot)
    plan = Plan(moves=[move("a", "hv1", "hv2", order=1), move("b", "hv1", "hv2", order=2),
                       move("c", "hv1", "hv2", order=3)])
    subject = executor(world, stop=Stop(when=lambda: "a" in world.hosts["hv2"]), limits=Limits(max_outbound=1),
                       settle_s=0)
    outcomes = by_guest(subject.run(plan))
    assert outcomes["a"].outcome == "migrated" and outcomes["a"].runs_on == ["hv2"]
    assert [outcomes[g].outcome for g in ("b", "c")] == ["not_run", "not_run"]
    assert world.hosts == {"hv1": {"b": "running", "c": "running"}, "hv2": {"a": "running"}}


def test_an_abort_that_fails_is_said_and_the_wait_for_it_stays_bounded():
    class Ticking(object):
        """One second passes on every look at the clock: ABORT_GRACE_S is over in a few polls."""

        def __init__(self):
            self.now = 0.0

        def __call__(self):
            self.now += 1.0
            return self.now

    def refuse():
        raise HostmaintError("cannot abort the migration of a: operation not supported")

    world = World("hv1", "hv2")
    world.add("hv1", "a")
    world.behaviour["a"] = Behaviour(release=threading.Event())

    def started():
        if "a" not in world.jobs:
            return False
        world.jobs["a"].abort = refuse
        return True

    subject = executor(world, stop=Stop(when=started), clock=Ticking())
    (outcome,) = subject.run(Plan(moves=[move("a", "hv1", "hv2")]))
    assert outcome.outcome == "aborted" and not outcome.moved
    assert outcome.reason.startswith("aborted: the run was asked to stop (%s); abort failed: cannot abort the "
                                     "migration of a: operation not supported" % REASON)
    assert outcome.runs_on == ["hv1"]
