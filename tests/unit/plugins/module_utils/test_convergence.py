# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The convergence ladder, driven by a small simulated pre-copy migration."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostmaint.libvirt.plugins.module_utils import convergence
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    MIB,
    DecisionError,
    JobSample,
    LadderAction,
    LadderPolicy,
)

TICK = 0.5


class PreCopy(object):
    """A pre-copy migration in the way QEMU runs one: passes over the dirty set at a fixed bandwidth.

    The guest dirties ``dirty_mibps`` while a pass runs; the next pass sends what was dirtied. The
    migration completes at a pass boundary when what is left fits in the downtime limit.
    """

    def __init__(self, memory_mib, bandwidth_mibps, dirty_mibps, stuck_after_s=None):
        self.memory = memory_mib * MIB
        self.bandwidth = bandwidth_mibps * MIB
        self.dirty = dirty_mibps * MIB
        self.stuck_after_s = stuck_after_s
        self.remaining = self.memory
        self.dirtied = 0
        self.iteration = 1
        self.processed = 0
        self.elapsed = 0.0
        self.done = False

    def tick(self, downtime_ms):
        """Advance by one poll interval; several short passes may end within it."""
        self.elapsed += TICK
        if self.stuck_after_s is not None and self.elapsed > self.stuck_after_s:
            return
        left = TICK
        while left > 0 and not self.done:
            pass_time = self.remaining / float(self.bandwidth)
            step = min(left, pass_time)
            sent = self.bandwidth * step
            self.remaining -= sent
            self.processed += sent
            self.dirtied = min(self.memory, self.dirtied + self.dirty * step)
            left -= step
            if self.remaining <= 1e-6:
                self.iteration += 1
                self.remaining, self.dirtied = self.dirtied, 0
                if self.remaining * 1000.0 / self.bandwidth <= downtime_ms:
                    self.done = True
                if self.remaining <= 0:
                    self.done = True

    def sample(self):
        return JobSample(elapsed_s=self.elapsed, data_processed=int(self.processed),
                         memory_processed=int(self.processed), memory_remaining=int(self.remaining),
                         memory_total=self.memory, memory_bps=int(self.bandwidth), dirty_rate_bps=int(self.dirty),
                         memory_iteration=self.iteration)


def run(policy, migration, paused=False, limit_s=3600.0):
    """Drive the ladder like the executor does; returns (actions taken, final state, outcome)."""
    options = convergence.start_flags(policy, paused=paused)
    state = convergence.new_state(policy, "web01", migration.memory // MIB, options, paused=paused)
    taken = []
    while migration.elapsed < limit_s:
        migration.tick(state.downtime_ms)
        if migration.done:
            return taken, state, "completed"
        convergence.observe(state, migration.sample())
        action = convergence.next_action(policy, state)
        if action.kind != "wait":
            taken.append(action)
            convergence.applied(state, action)
        if action.kind == "abort":
            return taken, state, "aborted"
        if action.kind == "postcopy":
            return taken, state, "postcopy"
    return taken, state, "still running"


def kinds(actions):
    return [(a.kind, a.value) if a.kind == "set_downtime" else a.kind for a in actions]


# --- timeout and start flags --------------------------------------------------------------------------------

@pytest.mark.parametrize("memory_mib, disk_bytes, expected", [
    (256, 0, 60.0),          # the floor
    (1024, 0, 150.0),        # 150 s per GiB
    (4096, 0, 600.0),
    (1024, 2 * 1024 ** 3, 450.0),  # copied disks count too
    (0, 0, 60.0),
])
def test_timeout_is_proportional_to_memory_with_a_floor(memory_mib, disk_bytes, expected):
    assert convergence.timeout_for(memory_mib, LadderPolicy(), disk_bytes) == pytest.approx(expected)


def test_a_storage_copy_of_a_small_guest_with_a_large_disk_gets_the_time_its_disk_needs():
    # 512 MiB of memory alone get 75 s; a 20 GiB disk beside it needs 150 s per GiB of it too
    policy = LadderPolicy()
    alone = convergence.new_state(policy, "db1", 512)
    state = convergence.new_state(policy, "db1", 512, disk_bytes=20 * 1024 ** 3)
    assert (alone.timeout_s, state.timeout_s, state.disk_bytes) == (75.0, pytest.approx(3075.0), 20 * 1024 ** 3)
    # still copying the disk after what memory alone would allow: it waits; past its own limit it is aborted,
    # and the reason counts the disk
    convergence.observe(state, JobSample(elapsed_s=600.0, data_processed=5 * 1024 ** 3))
    assert convergence.next_action(policy, state).kind == "wait"
    convergence.observe(state, JobSample(elapsed_s=3100.0, data_processed=19 * 1024 ** 3))
    action = convergence.next_action(policy, state)
    assert action.kind == "abort" and action.reason == (
        "migration of db1 took 3100 s, over its 3075 s limit for 512 MiB and 20480 MiB of disks")


def test_timeout_rejects_nonsense():
    with pytest.raises(DecisionError, match="invalid migration size"):
        convergence.timeout_for(-1)


def test_start_flags_default_to_auto_converge_without_postcopy():
    options = convergence.start_flags(LadderPolicy())
    assert options.as_dict() == {"downtime_ms": 50, "auto_converge": True, "auto_converge_initial": 20,
                                 "auto_converge_increment": 10, "postcopy": False}


@pytest.mark.parametrize("paused", [True, False])
def test_start_flags_request_postcopy_only_when_allowed_and_running(paused):
    options = convergence.start_flags(LadderPolicy(postcopy=True), paused=paused)
    assert options.postcopy is (not paused)
    assert options.auto_converge is (not paused)


@pytest.mark.parametrize("policy, message", [
    (LadderPolicy(downtime_steps_ms=[]), "downtime_steps_ms"),
    (LadderPolicy(downtime_steps_ms=[300, 100]), "must rise"),
    (LadderPolicy(step_interval_s=-1), "step_interval_s"),
    (LadderPolicy(stall_passes=0), "stall_passes"),
])
def test_invalid_policies_are_refused(policy, message):
    with pytest.raises(DecisionError, match=message):
        convergence.start_flags(policy)


# --- the ladder ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("memory, bandwidth, dirty", [
    (256, 1000, 0),      # idle guest
    (1024, 1000, 100),   # light writer
    (4096, 100, 40),     # slow link, busy but converging
    (8192, 1000, 500),   # dirty set halves each pass
])
def test_a_converging_migration_is_never_pushed(memory, bandwidth, dirty):
    taken, state, outcome = run(LadderPolicy(postcopy=True), PreCopy(memory, bandwidth, dirty))
    assert outcome == "completed"
    assert taken == []
    assert state.downtime_ms == 50


def test_a_stalled_migration_climbs_the_ladder_in_order_and_aborts_at_the_timeout():
    policy = LadderPolicy()
    taken, state, outcome = run(policy, PreCopy(1024, 100, 150))
    assert outcome == "aborted"
    assert kinds(taken) == [("set_downtime", 100), ("set_downtime", 200), ("set_downtime", 300),
                            ("set_downtime", 500), "auto_converge", "abort"]
    assert state.elapsed_s == pytest.approx(convergence.timeout_for(1024, policy), abs=TICK)
    assert "over its 150 s limit for 1024 MiB" in taken[-1].reason
    # the steps are reported with when and why
    assert [s.kind for s in state.steps] == [a.kind for a in taken]
    assert state.steps[0].reason.startswith("at ")
    # and when, as a number too (the report's ticks): the time its reason gives, in seconds since the copy began
    assert all(step.at_s == pytest.approx(float(step.reason.split(" ")[1]), abs=0.05) for step in state.steps)
    assert [step.at_s for step in state.steps] == sorted(step.at_s for step in state.steps)


def test_steps_are_spaced_by_the_step_interval():
    policy = LadderPolicy(step_interval_s=5.0)
    taken, state, outcome = run(policy, PreCopy(256, 200, 400))
    times = [float(step.reason.split(" ")[1]) for step in state.steps]
    assert all(later - earlier >= 5.0 for earlier, later in zip(times, times[1:]))


def test_postcopy_comes_after_auto_converge_only_when_allowed():
    taken, state, outcome = run(LadderPolicy(postcopy=True), PreCopy(1024, 100, 150))
    assert outcome == "postcopy"
    assert kinds(taken)[-2:] == ["auto_converge", "postcopy"]
    auto = [s for s in state.steps if s.kind == "auto_converge"][0]
    post = [s for s in state.steps if s.kind == "postcopy"][0]
    assert float(post.reason.split(" ")[1]) - float(auto.reason.split(" ")[1]) >= LadderPolicy().auto_converge_window_s


def test_without_auto_converge_the_ladder_goes_from_downtime_to_postcopy():
    taken, state, outcome = run(LadderPolicy(auto_converge=False, postcopy=True), PreCopy(1024, 100, 150))
    assert outcome == "postcopy" and state.postcopy_started
    assert "auto_converge" not in kinds(taken)


def test_postcopy_is_not_used_when_the_migration_did_not_start_with_it():
    policy = LadderPolicy(postcopy=True)
    state = convergence.new_state(policy, "web01", 1024, convergence.start_flags(LadderPolicy()))
    migration = PreCopy(1024, 100, 150)
    seen = set()
    while True:
        migration.tick(state.downtime_ms)
        convergence.observe(state, migration.sample())
        action = convergence.next_action(policy, state)
        seen.add(action.kind)
        convergence.applied(state, action)
        if action.kind == "abort":
            break
    assert "postcopy" not in seen


def test_once_postcopy_runs_the_ladder_never_aborts():
    policy = LadderPolicy(postcopy=True)
    state = run(policy, PreCopy(1024, 100, 150))[1]
    assert state.postcopy_started
    late = dataclasses.replace(PreCopy(1024, 100, 150).sample(), elapsed_s=state.timeout_s * 10)
    convergence.observe(state, late)
    action = convergence.next_action(policy, state)
    assert action.kind == "wait" and "aborting would lose the guest" in action.reason


def test_a_stream_that_stops_moving_is_aborted_after_the_no_progress_timeout():
    policy = LadderPolicy(no_progress_timeout_s=30.0)
    taken, state, outcome = run(policy, PreCopy(16384, 10, 0, stuck_after_s=20.0))
    assert outcome == "aborted"
    assert "no data transferred for web01 for 30 s" in taken[-1].reason
    assert state.elapsed_s == pytest.approx(50.0, abs=TICK)


def test_a_paused_guest_is_never_pushed():
    taken, state, outcome = run(LadderPolicy(), PreCopy(1024, 100, 0), paused=True)
    assert outcome == "completed" and taken == []
    assert not state.auto_converge_enabled and not state.postcopy_enabled


def test_waits_before_the_first_statistics_arrive():
    policy = LadderPolicy()
    state = convergence.new_state(policy, "web01", 1024)
    action = convergence.next_action(policy, state)
    assert action == LadderAction("wait", reason="waiting for the first job statistics")


def test_observe_refuses_time_going_backwards():
    state = convergence.new_state(LadderPolicy(), "web01", 1024)
    convergence.observe(state, JobSample(elapsed_s=5.0))
    with pytest.raises(DecisionError, match="web01"):
        convergence.observe(state, JobSample(elapsed_s=4.0))


def test_job_stats_from_libvirt_become_bytes_and_seconds():
    stats = {"type": 2, "time_elapsed": 12500, "data_processed": 10, "memory_remaining": 4096 * 10,
             "memory_bps": 1000, "memory_dirty_rate": 25, "memory_page_size": 4096, "memory_iteration": 3,
             "auto_converge_throttle": 40}
    sample = JobSample.from_job_stats(stats)
    assert (sample.elapsed_s, sample.dirty_rate_bps, sample.memory_iteration, sample.auto_converge_throttle) == \
        (12.5, 25 * 4096, 3, 40)
    assert JobSample.from_job_stats({}, elapsed_s=1.5).elapsed_s == 1.5
    assert JobSample.from_job_stats({"memory_dirty_rate": 2}).dirty_rate_bps == 2 * 4096


@settings(max_examples=150, deadline=None, database=None)
@given(memory=st.integers(min_value=64, max_value=8192), bandwidth=st.integers(min_value=20, max_value=2000),
       dirty=st.integers(min_value=0, max_value=3000), postcopy=st.booleans(), auto_converge=st.booleans())
def test_property_the_ladder_only_climbs_and_always_ends(memory, bandwidth, dirty, postcopy, auto_converge):
    policy = LadderPolicy(postcopy=postcopy, auto_converge=auto_converge)
    taken, state, outcome = run(policy, PreCopy(memory, bandwidth, dirty), limit_s=20000.0)
    assert outcome in ("completed", "aborted", "postcopy")
    values = [a.value for a in taken if a.kind == "set_downtime"]
    assert values == policy.downtime_steps_ms[1:len(values) + 1]
    order = ["set_downtime", "auto_converge", "postcopy", "abort"]
    ranks = [order.index(a.kind) for a in taken]
    assert ranks == sorted(ranks)
    assert ("postcopy" in [a.kind for a in taken]) <= postcopy
    assert ("auto_converge" in [a.kind for a in taken]) <= auto_converge
    if outcome == "aborted":
        assert state.elapsed_s >= min(state.timeout_s, policy.no_progress_timeout_s)
    if outcome == "completed" and dirty * 2 <= bandwidth:
        assert taken == []
