# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor's pure decisions, without threads: which move starts now (the sliding window), the order of
the queue, where guests go when a destination leaves, what a guest may do after switchover, and the one
shape of an outcome."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.hostmaint.libvirt.plugins.module_utils import executor, options, placement
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    MIB,
    DecisionError,
    Guest,
    GuestEvent,
    HostFacts,
    Limits,
    MigrationOutcome,
    Move,
)


def move(guest, source="hv1", destination="hv2", action="migrate", memory_mib=256, order=0):
    return Move(guest=guest, action=action, source=source, destination=destination, memory_mib=memory_mib,
                expected_bytes=memory_mib * MIB, order=order)


def names(moves):
    return [m.guest for m in moves]


# -- startable ------------------------------------------------------------------------------------------------
def test_a_move_starts_when_its_source_and_destination_each_have_a_free_slot():
    queue = [move("a", destination="hv2"), move("b", destination="hv2"), move("c", destination="hv3")]
    limits = Limits(max_outbound=2, max_inbound=1)
    # b waits for hv2's inbound slot; c, behind it, does not wait for b
    assert names(placement.startable(queue, [], [], limits)) == ["a", "c"]


def test_a_long_move_holding_slots_does_not_hold_up_moves_that_fit_beside_it():
    running = [move("long", destination="hv2", memory_mib=8192)]
    queue = [move("s1", destination="hv2"), move("s2", destination="hv3"), move("s3", destination="hv3")]
    picks = placement.startable(queue, running, running, Limits(max_outbound=3, max_inbound=1))
    assert names(picks) == ["s2"]  # hv2 is full, hv3 takes one, the source has room for one more
    picks = placement.startable(queue, running, running, Limits(max_outbound=4, max_inbound=2))
    assert names(picks) == ["s1", "s2", "s3"]


def test_moves_that_switched_over_hold_no_slot_but_still_keep_shutdowns_waiting():
    settling = move("done-copying")
    queue = [move("a"), move("off", action="shutdown", destination=None)]
    picks = placement.startable(queue, [], [settling], Limits(max_outbound=1, max_inbound=1))
    assert names(picks) == ["a"]
    assert names(placement.startable(queue[1:], [], [settling], Limits())) == []
    assert names(placement.startable(queue[1:], [], [], Limits())) == ["off"]


def test_starts_need_no_slot():
    queue = [move("s1", action="start", source="hv1", destination="hv1"), move("a")]
    holding = [move("x"), move("y")]
    assert names(placement.startable(queue, holding, holding, Limits(max_outbound=2))) == ["s1"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["hv1", "hv2"]), st.sampled_from(["hv3", "hv4", "hv5"])), max_size=12),
       st.lists(st.tuples(st.sampled_from(["hv1", "hv2"]), st.sampled_from(["hv3", "hv4", "hv5"])), max_size=6),
       st.integers(1, 3), st.integers(1, 3))
def test_the_window_never_exceeds_a_limit_and_never_leaves_a_slot_idle_that_a_queued_move_could_use(
        queued, running, outbound, inbound):
    limits = Limits(max_outbound=outbound, max_inbound=inbound)
    queue = [move("q%d" % i, source=s, destination=d) for i, (s, d) in enumerate(queued)]
    holding = [move("r%d" % i, source=s, destination=d) for i, (s, d) in enumerate(running)]
    picks = placement.startable(queue, holding, holding, limits)
    busy = holding + picks
    for host in ("hv1", "hv2"):
        before = len([m for m in holding if m.source == host])
        assert len([m for m in busy if m.source == host]) <= max(outbound, before)
    for host in ("hv3", "hv4", "hv5"):
        before = len([m for m in holding if m.destination == host])
        assert len([m for m in busy if m.destination == host]) <= max(inbound, before)
    for left in (m for m in queue if m not in picks):
        source_full = len([m for m in busy if m.source == left.source]) >= outbound
        destination_full = len([m for m in busy if m.destination == left.destination]) >= inbound
        assert source_full or destination_full


def test_a_host_gets_its_effective_window_when_one_is_given_never_more_than_its_limit():
    queue = [move("a", destination="hv3"), move("b", destination="hv4"), move("c", source="hv2", destination="hv5"),
             move("d", source="hv2", destination="hv5")]
    limits = Limits(max_outbound=2, max_inbound=2)
    assert names(placement.startable(queue, [], [], limits)) == ["a", "b", "c", "d"]
    # hv1 narrowed to one slot; hv2 keeps its limit
    assert names(placement.startable(queue, [], [], limits, source_windows={"hv1": 1})) == ["a", "c", "d"]
    # a move holding hv1's one slot keeps every other move of hv1 waiting
    holding = [move("x", destination="hv6")]
    assert names(placement.startable(queue, holding, holding, limits, source_windows={"hv1": 1})) == ["c", "d"]
    # a destination's window the same way
    assert names(placement.startable(queue, [], [], limits, destination_windows={"hv5": 1})) == ["a", "b", "c"]
    # a window above the limit or below 1 counts as the limit or as 1
    assert names(placement.startable(queue, [], [], limits, source_windows={"hv1": 5, "hv2": 0})) == ["a", "b", "c"]


# -- the window reacts to the pauses ---------------------------------------------------------------------------
NARROWED = "web1 paused %d ms at switchover, at least 80 %% of the 150 ms pause target"
WIDENED = "web1 paused %d ms at switchover, the last of 2 pauses in a row of at most 50 %% of the 150 ms pause target"


@pytest.mark.parametrize("window, limit, downtime_ms, streak, target_ms, expected", [
    # a pause of 80 % of the target narrows the window by one, at once, and ends the streak
    (2, 2, 120, 0, 150, (1, 0, NARROWED % 120)),
    (3, 3, 400, 1, 150, (2, 0, NARROWED % 400)),
    (2, 2, 119, 1, 150, (2, 0, None)),  # just under the threshold: no change, but the streak ends
    # never below one slot
    (1, 2, 900, 0, 150, (1, 0, None)),
    # a pause of at most half the target adds to the streak; the second in a row widens by one
    (1, 2, 75, 0, 150, (1, 1, None)),
    (1, 2, 75, 1, 150, (2, 0, WIDENED % 75)),
    (1, 3, 10, 1, 150, (2, 0, WIDENED % 10)),
    (1, 2, 76, 1, 150, (1, 0, None)),  # between half and 80 %: the streak starts again
    # never above the limit: at the limit there is nothing to earn
    (2, 2, 10, 1, 150, (2, 0, None)),
    (2, 2, 10, 0, 150, (2, 0, None)),
    # target 0: the window never moves, whatever the pause
    (2, 2, 5000, 0, 0, (2, 0, None)),
    (1, 2, 10, 1, 0, (1, 1, None)),
    # a pause QEMU did not report (a definition move, no statistics) changes nothing
    (1, 2, None, 1, 150, (1, 1, None)),
    (2, 2, None, 0, 150, (2, 0, None)),
])
def test_the_window_narrows_on_a_long_pause_and_widens_after_short_ones(
        window, limit, downtime_ms, streak, target_ms, expected):
    assert placement.adjust_window(window, limit, downtime_ms, streak, target_ms, guest="web1") == expected


def test_a_run_of_pauses_walks_the_window_down_to_one_and_back_up_to_its_limit():
    window, streak, seen = 3, 0, []
    for downtime_ms in (200, 130, 300, 20, 90, 20, 30, 40, 50, 60, 70, 10):
        window, streak, reason = placement.adjust_window(window, 3, downtime_ms, streak, 150)
        seen.append(window)
        if reason:
            assert reason.startswith("a migration paused %d ms at switchover, " % downtime_ms)
    assert seen == [2, 1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 3]


@pytest.mark.parametrize("window, limit, target_ms, message", [
    (0, 2, 150, "invalid window 0: it must be from 1 to its limit 2"),
    (3, 2, 150, "invalid window 3: it must be from 1 to its limit 2"),
    (1, 0, 150, "invalid window 1: it must be from 1 to its limit 0"),
    (1, 2, -1, "invalid pause target -1 ms: it must be 0 or more"),
])
def test_a_window_or_target_no_run_can_have_is_one_sentence(window, limit, target_ms, message):
    with pytest.raises(DecisionError) as error:
        placement.adjust_window(window, limit, 200, 0, target_ms)
    assert error.value.message == message


def test_the_pause_target_has_one_default_in_the_option_the_executor_and_the_decision():
    assert options.ENGINE_SPEC["pause_target_ms"] == dict(type="int", default=placement.PAUSE_TARGET_MS)
    assert executor.Executor(lambda host: None, lambda host: host).pause_target_ms == placement.PAUSE_TARGET_MS == 150


# -- the order of the queue -----------------------------------------------------------------------------------
def test_the_queue_goes_starts_first_then_longest_first_then_shutdowns():
    moves = [move("off", action="shutdown", destination=None, order=1), move("small", memory_mib=512, order=2),
             move("big", memory_mib=4096, order=3), move("home", action="start", order=4),
             move("def", action="move_definition", memory_mib=0, order=5)]
    assert names(placement.window_order(moves)) == ["home", "big", "small", "def", "off"]


def test_a_guest_that_dirties_memory_fast_goes_before_a_bigger_quiet_one():
    moves = [move("big", memory_mib=2048, order=1), move("busy", memory_mib=1024, order=2)]
    assert names(placement.window_order(moves)) == ["big", "busy"]
    link = 100 * MIB
    assert names(placement.window_order(moves, {"busy": 60 * MIB}, link)) == ["busy", "big"]
    # a dirty rate beyond the link counts as 90 % of it, not as forever
    assert placement.move_cost(moves[1], 10 * link, link) == pytest.approx(1024 * MIB * 10)


# -- placing guests again -------------------------------------------------------------------------------------
def guest(name, memory_mib=1024, group=None):
    return Guest(name=name, uuid="uuid-" + name, state="running", memory_mib=memory_mib, anti_affinity=group)


def host(name, free_mib, groups=()):
    return HostFacts(name=name, memory_free_mib=free_mib, memory_total_mib=free_mib, resident_groups=list(groups))


def test_guests_are_placed_again_on_the_remaining_destinations_with_what_the_run_already_gave_them():
    plan = placement.replace([guest("a"), guest("b")], host("hv1", 0), [host("hv3", 1024 + 3072)], Limits(),
                             committed_mib={"hv3": 1024})
    assert [(m.guest, m.destination) for m in plan.moves] == [("a", "hv3"), ("b", "hv3")]
    plan = placement.replace([guest("a"), guest("b")], host("hv1", 0), [host("hv3", 1024 + 3072)], Limits(),
                             committed_mib={"hv3": 2048})
    assert [m.guest for m in plan.moves] == ["a"] and [b.guest for b in plan.blocked] == ["b"]
    assert [r.code for r in plan.blocked[0].reasons] == ["capacity"]


def test_placing_again_keeps_anti_affinity_with_guests_the_run_already_sent():
    plan = placement.replace([guest("a", group="pair")], host("hv1", 0), [host("hv3", 8192), host("hv4", 8192)],
                             Limits(), committed_mib={"hv4": 4096}, committed_groups={"hv3": {"pair"}})
    assert [(m.guest, m.destination) for m in plan.moves] == [("a", "hv4")]


def test_what_the_run_gave_each_destination():
    moves = [move("a", destination="hv2", memory_mib=512), move("b", destination="hv3"),
             move("c", destination="hv2"), move("off", action="shutdown", destination=None)]
    memory, groups = executor.committed(moves, {"a": guest("a", memory_mib=2048, group="g")})
    assert memory == {"hv2": 2048 + 256, "hv3": 256} and groups == {"hv2": {"g"}}


# -- after switchover -----------------------------------------------------------------------------------------
def event(kind, detail=None, at=10.0):
    return GuestEvent(kind=kind, detail=detail, at=at)


@pytest.mark.parametrize("events, paused, expected", [
    ([], False, None),
    # the migration's own events on the destination
    ([event("defined", "added"), event("started", "migrated"), event("resumed", "migrated")], False, None),
    ([event("resumed", "postcopy"), event("suspended", "postcopy"), event("resumed", "migrated")], False, None),
    ([event("reboot", at=10.8)], False, "web1 was reset 0.8 s after switchover on hv2"),
    ([event("crashed", "panicked", at=12.0)], False, "web1 crashed (panicked) 2.0 s after switchover on hv2"),
    ([event("stopped", "destroyed", at=11.0)], False, "web1 stopped (destroyed) 1.0 s after switchover on hv2"),
    ([event("shutdown", "guest", at=11.0)], False, "web1 shut down (guest) 1.0 s after switchover on hv2"),
    ([event("suspended", "ioerror", at=10.5)], False, "web1 was paused (ioerror) 0.5 s after switchover on hv2"),
    ([event("suspended", "paused", at=10.5)], True, None),  # it was paused before and stays paused
    ([event("suspended", "postcopy_failed", at=10.5)], False,
     "web1 was paused (postcopy_failed) 0.5 s after switchover on hv2"),
    # a reset seen before the executor noticed the job's end still counts (not as a negative time)
    ([event("reboot", at=9.0)], False, "web1 was reset 0.0 s after switchover on hv2"),
])
def test_what_a_guest_may_not_do_after_switchover(events, paused, expected):
    assert executor.settle_problem("web1", "hv2", events, 10.0, paused=paused) == expected


def test_switchover_is_when_the_destination_resumed_the_guest_if_it_said_so():
    assert executor.switchover_time([event("started", "migrated", 8.0), event("resumed", "migrated", 9.2)], 10) == 9.2
    assert executor.switchover_time([event("started", "migrated", 8.0)], 10.0) == 10.0


# -- the outcome ----------------------------------------------------------------------------------------------
def test_an_outcome_has_one_shape_and_one_failed_test():
    outcome = MigrationOutcome.of(move("a"), "aborted", "too slow", runs_on=["hv1"])
    assert outcome.failed and not outcome.moved
    assert MigrationOutcome.of(move("a"), "failed").failed
    for kind in ("migrated", "moved_definition"):
        assert MigrationOutcome.of(move("a"), kind).moved
    for kind in ("blocked", "not_run", "shut_down", "started"):
        assert not MigrationOutcome.of(move("a"), kind).failed
    data = outcome.as_dict()
    assert data["timeline"] == {"queued": None, "started": None, "switchover": None, "checked": None, "done": None}
    assert (data["guest"], data["destination"], data["outcome"], data["moved"], data["runs_on"]) == (
        "a", "hv2", "aborted", False, ["hv1"])


def test_an_outcome_that_is_not_one_is_one_sentence():
    with pytest.raises(DecisionError) as error:
        MigrationOutcome.of(move("a"), "vanished")
    assert error.value.message.startswith("invalid outcome 'vanished' for guest a: expected one of migrated")


def test_the_executor_speaks_only_the_models_terms_and_never_imports_libvirt():
    with open(executor.__file__) as source:
        text = source.read()
    imported = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update("%s.%s" % (node.module, alias.name) for alias in node.names)
    prefix = "ansible_collections.hostmaint.libvirt.plugins.module_utils."
    collection = sorted(name[len(prefix):].split(".")[0] for name in imported if name.startswith(prefix))
    assert set(collection) == {"convergence", "placement", "probe", "errors", "model"}
    assert not any("libvirt" in name[len(prefix):] for name in imported if name.startswith(prefix))
    assert "libvirt" not in imported
    assert "libvirt.VIR_" not in text and "libvirtError" not in text and "LIBVIRT_ERRORS" not in text


def test_a_move_of_no_known_action_fails():
    from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Plan

    outcome = executor.Executor(lambda host: None, lambda host: host).run(Plan(moves=[move("a", action="teleport")]))[0]
    assert (outcome.outcome, outcome.reason) == ("failed", "unknown action teleport for a")
