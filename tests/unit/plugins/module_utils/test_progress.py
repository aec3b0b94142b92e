# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress while a run runs: the file the module writes (Recorder, on a clock of the test's own), the estimate of
the time left, and the lines the controller prints (Follower)."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import progress
from ansible_collections.hostmaint.libvirt.plugins.module_utils.convergence import new_state, rung
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import JobSample, LadderPolicy

MIB = progress.MIB


class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def recorder(clock, writes, **kwargs):
    return progress.Recorder("/nowhere", host="hv1", clock=clock, write=lambda path, data: writes.append(data), **kwargs)


def moves(*names, total=100 * MIB):
    return [dict(key=n, guest=n, action="migrate", route="hv1->hv2", total=total) for n in names]


# -- the estimate --------------------------------------------------------------------------------------
@pytest.mark.parametrize("states, rate_bps, fixed_s, slots, expected", [
    ([], None, 2.0, 1, 0.0),  # nothing left
    ([("queued", 100 * MIB, 0)], 10 * MIB, 2.0, 1, 12.0),  # 10 s of copy, one move's fixed cost
    ([("started", 100 * MIB, 60 * MIB)], 10 * MIB, 2.0, 1, 5.0),  # 4 s of copy, half a fixed cost
    ([("queued", 100 * MIB, 0), ("queued", 100 * MIB, 0)], 20 * MIB, 2.0, 2, 12.0),  # two lanes share the fixed cost
    ([("switchover", 100 * MIB, 100 * MIB), ("done", 100 * MIB, 100 * MIB)], None, 2.0, 1, 1.0),  # no copy left
    ([("queued", 100 * MIB, 0)], None, 2.0, 1, None),  # data left, no rate yet
    ([("failed", 100 * MIB, 0), ("checked", 0, 0)], 0, 3.0, 1, 1.5),
])
def test_the_estimate_is_bytes_left_over_the_rate_plus_fixed_costs(states, rate_bps, fixed_s, slots, expected):
    found = progress.estimate([dict(phase=p, total=t, copied=c) for p, t, c in states], rate_bps, fixed_s, slots)
    assert found == (pytest.approx(expected) if expected is not None else None)


def test_the_estimate_counts_what_moves_send_not_their_memory():
    """A guest of 100 MiB that sent 25 MiB (zero pages cost nothing): the next one is judged to send 25 MiB too,
    not its whole memory (seen on the lab: 3m03s estimated for 81 s of moves when memory was counted)."""
    done = dict(phase="done", total=100 * MIB, copied=100 * MIB, processed=25 * MIB)
    queued = dict(phase="queued", total=100 * MIB, copied=0)
    assert progress.wire_ratio([done, queued]) == pytest.approx(0.25)
    assert progress.estimate([done, queued], 10 * MIB, 2.0, 1) == pytest.approx(2.5 + 2.0)
    assert progress.wire_ratio([queued]) == 1.0
    assert progress.wire_ratio([dict(done, processed=1)]) == 0.05


# -- the recorder --------------------------------------------------------------------------------------
def test_events_are_written_at_once_and_samples_at_most_every_interval():
    clock, writes = Clock(), []
    rec = recorder(clock, writes)
    rec.plan(moves("a", "b"))
    rec.event("a", "started")
    assert [w["seq"] for w in writes] == [0, 1]
    for step in range(1, 11):  # ten samples in 2 s: two or three writes, not ten
        clock.now += 0.2
        rec.copying("a", step * 5 * MIB, 100 * MIB, rung="downtime 50 ms (1/5)")
    assert 2 <= len(writes) - 2 <= 3
    last = writes[-1]
    a = last["moves"][0]
    assert (a["phase"], a["copied"], a["rung"]) == ("started", 50 * MIB, "downtime 50 ms (1/5)")
    assert a["rate_bps"] == pytest.approx(25 * MIB, rel=0.01)  # 5 MiB every 0.2 s
    assert last["totals"] == dict(moves=2, done=0, failed=0, in_flight=1, queued=1, rate_bps=a["rate_bps"],
                                  bytes_left=150 * MIB)
    # 150 MiB at 25 MiB/s, and the fixed cost: b's whole, half of a's
    assert last["eta_s"] == pytest.approx(6.0 + progress.FIXED_S * 1.5, abs=0.2)


def test_the_fixed_cost_is_learned_from_the_moves_that_ended():
    clock, writes = Clock(), []
    rec = recorder(clock, writes, fixed_s=10.0)
    rec.plan(moves("a", "b"))
    rec.event("a", "started")
    clock.now += 1.0  # a second before the first sample
    rec.copying("a", 0, 100 * MIB)
    clock.now += 4.0
    rec.copying("a", 100 * MIB, 100 * MIB)
    clock.now += 3.0  # switchover, settle
    rec.event("a", "switchover")
    rec.end("a", "migrated")
    state = rec.close()
    # 8 s from start to end, 4 of them copying: b needs its 100 MiB at 25 MiB/s and 4 s of fixed cost
    assert state["eta_s"] == pytest.approx(4.0 + 4.0)


def test_a_move_queued_again_starts_over_and_one_planned_twice_is_left_as_it_is():
    clock, writes = Clock(), []
    rec = recorder(clock, writes)
    rec.plan(moves("a"))
    rec.event("a", "queued")  # the executor marks its moves queued: nothing to say
    assert writes[-1]["seq"] == 0
    rec.event("a", "started")
    clock.now += 1
    rec.copying("a", 30 * MIB, 100 * MIB)
    rec.plan(moves("a"))  # under way: left alone
    assert writes[-1]["moves"][0]["copied"] == 30 * MIB
    rec.event("a", "queued", reason="hv2 went into maintenance")
    again = writes[-1]["moves"][0]
    assert (again["phase"], again["copied"], again["reason"]) == ("queued", 0, "hv2 went into maintenance")
    rec.end("a", "failed", "no", failed=True)
    rec.plan(moves("a"))  # a later pass: queued again
    assert writes[-1]["moves"][0]["phase"] == "queued" and writes[-1]["totals"]["done"] == 0


def test_the_file_is_replaced_atomically_and_removed_at_the_end(tmp_path):
    path = str(tmp_path / "p.json")
    rec = progress.Recorder(path, host="hv1")
    rec.plan(moves("a"))
    assert json.loads(open(path).read())["moves"][0]["phase"] == "queued"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    rec.end("a", "migrated")
    last = rec.close()
    assert not os.path.exists(path) and os.listdir(str(tmp_path)) == []
    assert last["totals"]["done"] == 1


def test_a_file_that_cannot_be_written_is_given_up_not_the_run(tmp_path):
    rec = progress.Recorder(str(tmp_path / "missing" / "p.json"), host="hv1")
    rec.plan(moves("a"))
    rec.event("a", "started")
    assert rec.close()["moves"][0]["phase"] == "started"


def test_the_ladder_rung_reads_as_the_operator_would_say_it():
    policy = LadderPolicy()
    state = new_state(policy, "a", 256)
    assert rung(policy, state) == "downtime 50 ms (1/5)"
    state.step_index, state.downtime_ms = 2, 200
    assert rung(policy, state) == "downtime 200 ms (3/5)"
    state.auto_converge_marked, state.last = True, JobSample(auto_converge_throttle=30)
    assert rung(policy, state) == "auto-converge 30%"
    state.postcopy_started = True
    assert rung(policy, state) == "post-copy"


# -- the controller's lines -----------------------------------------------------------------------------
def run_of(clock):
    """A run of three moves as the file shows it at 2 s (a started), 8 s (a switched over, b copying) and its end."""
    writes = []
    rec = recorder(clock, writes)
    rec.plan(moves("a", "b", "c"))
    rec.event("a", "started")
    clock.now += 1
    rec.copying("a", 0, 100 * MIB, rung="downtime 50 ms (1/5)")
    clock.now += 1
    rec.copying("a", 50 * MIB, 100 * MIB, rung="downtime 50 ms (1/5)")
    at_2 = writes[-1]
    rec.event("b", "started", route="hv1->hv3")
    clock.now += 6
    rec.copying("b", 40 * MIB, 100 * MIB, rung="downtime 100 ms (2/5)")
    rec.event("a", "switchover")
    at_8 = writes[-1]
    rec.event("a", "checked")
    rec.end("a", "migrated")
    rec.end("b", "failed", "cannot live-migrate b to hv3: it refused", failed=True)
    rec.end("c", "not_run", "c was not moved: the run stopped after b failed")
    return at_2, at_8, rec.close()


def test_the_follower_prints_each_event_once_and_a_heartbeat_at_most_every_heartbeat_s():
    at_2, at_8, last = run_of(Clock())
    follower = progress.Follower("hv1")
    assert follower.lines(None, 2.0) == []  # not written yet
    first = follower.lines(at_2, 2.0)
    # 250 MiB left at 50 MiB/s, the fixed cost of two queued moves and half of a's
    assert first == ["[hv1] a hv1->hv2: started (at 0s)",
                     "[hv1] 0/3 moves done, 1 in flight, about 9s left (after 2s) | a hv1->hv2 50% 50.0 MiB/s "
                     "downtime 50 ms (1/5)"]
    assert follower.lines(at_2, 4.0) == []  # nothing new, and the last heartbeat 2 s ago
    second = follower.lines(at_8, 8.0)
    assert second[:2] == ["[hv1] b hv1->hv3: started (at 2s)", "[hv1] a hv1->hv2: switched over (at 8s)"]
    assert second[2].startswith("[hv1] 0/3 moves done, 2 in flight, about ")
    # b has one sample so far: no rate yet
    assert second[2].endswith("| a hv1->hv2 switched over | b hv1->hv3 40% downtime 100 ms (2/5)")
    assert follower.lines(last, 9.0, final=True) == [
        "[hv1] a hv1->hv2: checked: settle check passed (at 8s)",
        "[hv1] b hv1->hv3: failed: cannot live-migrate b to hv3: it refused (at 8s)",
        "[hv1] c hv1->hv2: not run: c was not moved: the run stopped after b failed (at 8s)",
        "[hv1] 3/3 moves done (1 failed) in 8s"]


def test_the_follower_says_how_many_events_it_did_not_see_and_ignores_what_it_cannot_read():
    _at_2, _at_8, last = run_of(Clock())
    follower = progress.Follower("hv1")
    follower.seq = 1
    last = dict(last, events=last["events"][2:])
    assert follower.lines(last, 0.0, final=True)[0] == "[hv1] (1 earlier events not shown)"
    assert progress.Follower("hv1").lines(dict(version=99), 0.0) == []
    assert progress.Follower("hv1").lines("[]", 0.0) == []


def test_a_run_with_nothing_to_move_prints_nothing():
    clock, writes = Clock(), []
    rec = recorder(clock, writes)
    rec.plan([])
    assert writes == []
    assert progress.Follower("hv1").lines(rec.close(), 1.0, final=True) == []


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (59.4, "59s"), (61, "1m01s"), (3599, "59m59s"), (3720, "1h02m")])
def test_durations(seconds, text):
    assert progress.duration(seconds) == text
