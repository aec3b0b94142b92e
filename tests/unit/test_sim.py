# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet simulator (module_utils.fleetsim) on small fleets: the model by hand, the collection's roll driven
through roll.decide/apply and placement, the references, faults, calibration and the forecast."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import fleetsim, placement, report
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MIB, Guest, HostFacts, Limits, Move

GIB = 1024 * MIB

COLLECTION = [
    fleetsim.Options(),
    fleetsim.Options(overlap=True),
    fleetsim.Options(parallel_hosts=2, return_mode="stay"),
    fleetsim.Options(parallel_hosts=2, overlap=True),
]
EVERY_PLANNER = COLLECTION + [fleetsim.Options(planner=name) for name in ("serial", "ovirt22", "vmware8")]


def small(hosts=6, guests_per_host=8, **changes):
    """A fleet that simulates in a few milliseconds: 1 GiB guests on 1 GbE, 30 s reboots, 6 s of gates."""
    values = dict(memory_mib=1024, nic_gbit=1.0, reboot_s=30.0, gate_s=6.0, dirty_mib_s=(0.0, 20.0), seed=0)
    values.update(changes)
    return fleetsim.fleet(hosts, guests_per_host, **values)


def quiet(**changes):
    """A calibration without fixed costs, so that a migration's time is its bytes over its rate."""
    values = dict(start_s=0.0, finish_s=0.0, switchover_s=0.0, settle_s=0.0, step_overhead_s=0.0,
                  engine_overhead_s=0.0, turn_poll_s=0.0)
    values.update(changes)
    return fleetsim.Calibration.fleet(1.0, **values)


class Job(object):
    """A run of moves started by hand: records when each switched over and ended."""

    settles, label, host = False, "evacuate", "a"

    def __init__(self):
        self.switched, self.ended = {}, {}
        self.sim = None

    def released(self, move, _downtime_ms):
        self.switched[move.guest] = self.sim.now

    def finished(self, move, outcome):
        self.ended[move.guest] = (self.sim.now, outcome)


def by_hand(hosts, guests, moves, calibration=None, nic_bps=MIB):
    """Start ``moves`` [(guest, source, destination)] at once on hosts with a NIC of ``nic_bps``: (sim, job)."""
    specs = [fleetsim.HostSpec(name=name, capacity_mib=1 << 20, reserve_mib=0, nic_out_bps=nic_bps,
                               nic_in_bps=nic_bps) for name in hosts]
    fleet = fleetsim.Fleet(hosts=specs, guests=guests)
    sim = fleetsim.Sim(fleet, calibration=calibration or quiet())
    job = Job()
    job.sim = sim
    for guest, source, destination in moves:
        sim.start_move(Move(guest=guest, action="migrate", source=source, destination=destination, memory_mib=1), job)
    sim._loop()  # pylint: disable=protected-access
    return sim, job


def idle(name, host, mib=1):
    return fleetsim.GuestSpec(name=name, host=host, memory_mib=mib, zero_fraction=0.0)


# --- the model by hand -----------------------------------------------------------------------------------------

def test_same_seed_same_result_other_seed_other_result():
    first = fleetsim.simulate(small(seed=3), fleetsim.Options(parallel_hosts=2, overlap=True), trace=True)
    assert first == fleetsim.simulate(small(seed=3), fleetsim.Options(parallel_hosts=2, overlap=True), trace=True)
    assert first != fleetsim.simulate(small(seed=4), fleetsim.Options(parallel_hosts=2, overlap=True), trace=True)


def test_flows_share_each_nic_direction_equally_and_speed_up_when_one_ends():
    # two flows out of a: 0.5 MiB/s each, so 1 MiB takes 2 s
    _sim, job = by_hand("abc", [idle("g1", "a"), idle("g2", "a")], [("g1", "a", "b"), ("g2", "a", "c")])
    assert job.switched == {"g1": pytest.approx(2.0), "g2": pytest.approx(2.0)}
    # two flows into b: the same by its in share
    _sim, job = by_hand("abc", [idle("g1", "a"), idle("g2", "c")], [("g1", "a", "b"), ("g2", "c", "b")])
    assert job.switched == {"g1": pytest.approx(2.0), "g2": pytest.approx(2.0)}
    # a flow takes the smaller of its source's out share and its destination's in share: a -> b is alone into b
    # but shares a's out; when the 1 MiB guest is over at 2 s the 2 MiB one has 1 MiB left at the full 1 MiB/s
    _sim, job = by_hand("abc", [idle("g1", "a", 2), idle("g2", "a")], [("g1", "a", "b"), ("g2", "a", "c")])
    assert job.switched == {"g1": pytest.approx(3.0), "g2": pytest.approx(2.0)}
    # alone, at the NIC's rate
    _sim, job = by_hand("ab", [idle("g1", "a")], [("g1", "a", "b")])
    assert job.switched == {"g1": pytest.approx(1.0)}


def test_a_stream_cap_and_a_machine_cap_bind_before_the_nic():
    calibration = quiet(stream_bps=MIB / 4.0)
    _sim, job = by_hand("ab", [idle("g1", "a")], [("g1", "a", "b")], calibration)
    assert job.switched == {"g1": pytest.approx(4.0)}
    # one machine copying 1 MiB/s in all: two flows on different NICs still share it
    calibration = quiet(machine_bps=float(MIB), shared_machine=True)
    _sim, job = by_hand("abcd", [idle("g1", "a"), idle("g2", "c")], [("g1", "a", "b"), ("g2", "c", "d")],
                        calibration, nic_bps=10 * MIB)
    assert job.switched == {"g1": pytest.approx(2.0), "g2": pytest.approx(2.0)}


@pytest.mark.parametrize("dirty_mib, rounds", [(10, 1), (100, 2)])
def test_one_migration_against_a_hand_calculation(dirty_mib, rounds):
    # 8 GiB, half of it zero pages: round 1 sends 4 GiB at 1 GiB/s (4 s); the guest dirties 10 MiB/s, so round 2
    # would hold 40 MiB: 40 MiB at 1 GiB/s is 39 ms, within the 50 ms first step: it switches over, the blackout is
    # those 39 ms plus the 50 ms switchover cost. At 100 MiB/s round 2 holds 400 MiB (0.39 s, too long), and the
    # 39 MiB it dirties meanwhile fit: one round more.
    calibration = quiet(nic_bps=float(GIB), switchover_s=0.05, zero_fraction=0.5, working_set_fraction=0.5)
    result = fleetsim.predict_evacuation(guests=1, memory_mib=8192, calibration=calibration, destinations=1,
                                         dirty_bps=dirty_mib * MIB)
    last = 4.0
    sent = 4 * GIB
    for _round in range(rounds):
        dirtied = dirty_mib * MIB * last
        last = dirtied / GIB
        sent += dirtied
    assert result["seconds"] == pytest.approx(4.0 + (rounds - 1) * 0.390625 + last + 0.05, abs=1e-3)
    assert result["blackout_max_ms"] == pytest.approx((last + 0.05) * 1000, abs=0.1)
    assert result["bytes"] == pytest.approx(sent, rel=1e-6)


def test_a_guest_that_never_converges_is_aborted_by_the_ladder_and_stays_home():
    # it dirties its whole 1 GiB working set faster than the link: the ladder steps up, auto-converge throttles it
    # and at its time limit (150 s per GiB, 1,200 s) the ladder aborts; nothing moved, its room is given back
    calibration = quiet(nic_bps=float(GIB), working_set_fraction=0.125)
    spec = fleetsim.GuestSpec(name="g", host="a", memory_mib=8192, zero_fraction=0.5, dirty_bps=200.0 * GIB,
                              working_set_bytes=float(GIB))
    sim, job = by_hand("ab", [spec], [("g", "a", "b")], calibration, nic_bps=float(GIB))
    ended, outcome = job.ended["g"]
    assert outcome.outcome == "aborted" and "took" in outcome.reason
    assert ended == pytest.approx(1200.0, abs=2.0)
    assert sim.where["g"] == "a" and sim.committed == {"a": 8192, "b": 0}


# --- the lower bound and the invariant --------------------------------------------------------------------------

@pytest.mark.parametrize("options", EVERY_PLANNER, ids=lambda o: o.label)
@pytest.mark.parametrize("seed", [0, 1])
def test_no_planner_beats_the_lower_bound(options, seed):
    result = fleetsim.simulate(small(seed=seed, dirty_mib_s=(0.0, 60.0)), options)
    assert result["stopped"] is None and result["refused"] is None
    assert result["makespan_s"] >= result["slot_bound_s"] >= result["bound_s"] > 0
    assert 0 < result["efficiency"] <= result["slot_efficiency"] <= 1
    assert result["violations"] == 0


@pytest.mark.parametrize("options", EVERY_PLANNER, ids=lambda o: o.label)
def test_capacity_holds_under_failed_and_stopped_migrations(options):
    fleet = small(seed=7, fail_rate=0.2, stop_rate=0.1)
    assert any(g.fails for g in fleet.guests) and any(g.stops for g in fleet.guests)
    sim = fleetsim.Sim(fleet, options)
    result = sim.run()
    assert result["violations"] == 0 and result["min_headroom_mib"] >= 0
    assert result["failed_moves"] >= len([g for g in fleet.guests if g.fails or g.stops])
    assert result["stopped"] is None  # a second pass moved what the first left behind
    for guest in fleet.guests:
        if guest.stops:
            assert not sim.active[guest.name]  # shut off, its definition moved like the others


def test_a_host_that_does_not_come_back_stops_the_roll():
    fleet = small()
    fleet.hosts[2].returns = False  # hv03
    sim = fleetsim.Sim(fleet, fleetsim.Options(), trace=True)
    result = sim.run()
    assert result["stopped"] == "the roll stopped after hv03 failed"
    assert sim.state["phase"]["hv03"] == "failed"
    assert sim.state["reasons"]["hv03"] == "hv03 did not come back from its reboot"
    assert [h for h in sim.order if sim.state["phase"][h] == "done"] == ["hv01", "hv02"]
    assert sim.phases["hv04"] == [] and sim.phases["hv06"] == []  # never entered
    assert "hv03" not in sim.where.values() and result["violations"] == 0
    # the bound counts the hosts that finished, so it still holds
    assert result["makespan_s"] >= result["bound_s"]


def test_hosts_lost_at_a_rate_are_drawn_per_seed_and_the_first_one_stops_the_roll():
    fleet = small(lost_rate=0.4, seed=5)
    lost = [h.name for h in fleet.hosts if not h.returns]
    assert lost and lost == [h.name for h in small(lost_rate=0.4, seed=5).hosts if not h.returns]
    assert [g.dirty_bps for g in fleet.guests] == [g.dirty_bps for g in small(seed=5).guests]
    result = fleetsim.simulate(fleet, fleetsim.Options())
    assert result["stopped"] == "the roll stopped after %s failed" % lost[0] and result["violations"] == 0


def test_a_host_marked_with_the_one_that_fails_leaves_the_roll_untouched():
    fleet = small()
    fleet.hosts[0].returns = False  # hv01, which marks hv02 with it
    fleet.hosts[1].gate_before_s = 1000.0  # hv02 is still at its gate when hv01 fails: asked again, it leaves
    sim = fleetsim.Sim(fleet, fleetsim.Options(parallel_hosts=2))
    result = sim.run()
    assert sim.state["phase"]["hv01"] == "failed" and sim.state["phase"]["hv02"] == "skipped"
    assert sim.state["reasons"]["hv02"] == "hv02 leaves the roll untouched: the roll stopped after hv01 failed"
    assert sim.state["phase"]["hv03"] == "queued" and result["moves"] == 8
    assert sim.marked == {"hv01"}  # the failed host stays in maintenance, its guests elsewhere; hv02 left it


def test_a_host_marked_with_the_one_that_fails_finishes_its_cycle_when_it_drained_already():
    fleet = small()
    fleet.hosts[0].returns = False
    fleet.hosts[0].reboot_s = 300.0  # hv02 drains while hv01 reboots, and finishes before hv01 fails
    sim = fleetsim.Sim(fleet, fleetsim.Options(parallel_hosts=2))
    sim.run()
    assert sim.state["phase"]["hv01"] == "failed" and sim.state["phase"]["hv02"] == "done"
    failed_at = [p["end"] for p in sim.phases["hv01"] if p["phase"] == "reboot"][0]
    entered = dict((h, [p["end"] for p in sim.phases[h] if p["phase"] == "wait_enter"]) for h in sim.order)
    assert all(at[0] < failed_at for at in entered.values() if at)  # nobody entered after the failure
    assert [h for h in sim.order if not entered[h]] == [h for h in sim.order if sim.state["phase"][h] == "queued"]


# --- the collection's roll ---------------------------------------------------------------------------------------

def test_with_stay_most_guests_move_once():
    hosts = 8
    result = fleetsim.simulate(small(hosts=hosts), fleetsim.Options(return_mode="stay"))
    # the first host's guests land on hosts not upgraded yet and move again; every other guest goes to an upgraded
    # host (placement's generation tiers) and stays there
    assert 1.0 <= result["moves_per_guest"] <= 1.0 + 1.0 / hosts + 1e-9
    assert result["empty_at_end"] >= 1 and result["restore_s"]["total"] < 60


def test_two_hosts_at_once_with_room_and_never_more():
    sim = fleetsim.Sim(small(reboot_s=300.0), fleetsim.Options(parallel_hosts=2), trace=True)
    result = sim.run()
    assert result["max_in_maintenance"] == 2 and result["violations"] == 0
    reboots = [(p["start"], p["end"]) for items in sim.phases.values() for p in items if p["phase"] == "reboot"]
    assert any(a[0] < b[1] and b[0] < a[1] for a in reboots for b in reboots if a != b)  # two reboots at once
    assert fleetsim.simulate(small(), fleetsim.Options())["max_in_maintenance"] == 1


def test_two_hosts_at_once_without_room_is_refused_before_anything_moves():
    fleet = small(spare_hosts=1)  # room for one host's guests (N+1), not two
    result = fleetsim.simulate(fleet, fleetsim.Options(parallel_hosts=2))
    assert result["refused"].startswith("rolling_upgrade_parallel_hosts=2 cannot hold in cluster c1 (6 hosts): "
                                        "without hv01 and hv02, cluster c1 cannot hold every guest")
    assert result["moves"] == 0 and result["makespan_s"] == 0
    assert fleetsim.simulate(fleet, fleetsim.Options())["refused"] is None


def test_overlap_runs_a_restore_beside_the_next_drain():
    plain = fleetsim.simulate(small(), fleetsim.Options())
    overlapping = fleetsim.simulate(small(), fleetsim.Options(overlap=True))
    assert plain["overlap_s"] == 0 and overlapping["overlap_s"] > 0
    assert overlapping["makespan_s"] < plain["makespan_s"]


@pytest.mark.parametrize("options", [fleetsim.Options(parallel_hosts=2, return_mode="stay"),
                                     fleetsim.Options(overlap=True)], ids=lambda o: o.label)
def test_batches_make_the_roll_no_faster(options):
    whole = fleetsim.simulate(small(), options)["makespan_s"]
    for size in (1, 2, 3):
        batched = fleetsim.simulate(small(), fleetsim.Options(**dict(vars(options), batch_size=size)))
        assert batched["makespan_s"] >= whole and batched["violations"] == 0 and batched["stopped"] is None


def test_several_clusters_keep_their_guests_and_roll_in_parallel_when_asked():
    fleet = small(hosts=8, clusters=2)
    cluster = dict((h.name, h.cluster) for h in fleet.hosts)
    sim = fleetsim.Sim(fleet, fleetsim.Options(parallel_clusters=True), trace=True)
    result = sim.run()
    assert all(cluster[m["source"]] == cluster[m["destination"]] for m in sim.moves)
    serial = fleetsim.simulate(fleet, fleetsim.Options())
    assert result["makespan_s"] < serial["makespan_s"] * 0.6 and result["bound_s"] < serial["bound_s"]


def test_the_collection_s_destinations_are_what_placement_plan_gives():
    fleet = small(hosts=5, guests_per_host=12, seed=2)
    sim = fleetsim.Sim(fleet, fleetsim.Options(), trace=True)
    sim.run()
    # the first evacuation saw the untouched fleet with hv01 marked: plan it here with the real code
    used = dict((h.name, sum(g.memory_mib for g in fleet.guests if g.host == h.name)) for h in fleet.hosts)
    facts = [HostFacts(name=h.name, memory_total_mib=h.capacity_mib, memory_free_mib=h.capacity_mib - used[h.name],
                       maintenance=h.name == "hv01", generation="1") for h in fleet.hosts]
    guests = [Guest(name=g.name, uuid=g.name, state="running", memory_mib=g.memory_mib)
              for g in fleet.guests if g.host == "hv01"]
    # the turn's avoid (the next host to be emptied, hv02), when placement takes it
    extra = dict(avoid=["hv02"]) if fleetsim.PLAN_AVOIDS else {}
    plan = placement.plan(guests, facts[0], facts[1:], Limits(), **extra)
    expected = dict((m.guest, m.destination) for m in plan.moves)
    assert sim.placed["hv01"][0] == expected and len(expected) == 12
    assert dict((m["guest"], m["destination"]) for m in sim.moves
                if m["host"] == "hv01" and m["kind"] == "evacuate") == expected


def test_a_drain_waits_for_the_restore_of_its_guests_home_so_no_guest_is_moved_by_both():
    # k=2 with overlap on 1 GbE: hosts hold guests whose home is rebooting; roll.decide lets such a host drain only
    # after that home's restore (which needs no turn) took them back: no two runs ever move one guest (the simulator
    # would count a conflict: libvirt refuses the second job)
    options = fleetsim.Options(parallel_hosts=2, overlap=True)
    result = fleetsim.simulate(small(dirty_mib_s=(0.0, 200.0), seed=1), options)
    assert result["conflicts"] == 0 and result["failed_moves"] == 0
    assert result["violations"] == 0 and result["stopped"] is None


# --- calibration and forecast ------------------------------------------------------------------------------------

def synthetic_run(fixed=1.5, rate=200 * MIB, tail=2.5):
    """A rolling upgrade's run of two hosts whose migrations take exactly fixed + bytes / rate."""
    def outcome(guest, mib, source, destination):
        size = mib * MIB * 0.4
        duration = fixed + size / rate
        return dict(guest=guest, action="migrate", source=source, destination=destination, outcome="migrated",
                    duration_s=duration, bytes_transferred=int(size), downtime_ms=40,
                    timeline=dict(queued=0.0, started=1.0, switchover=1.0 + duration, checked=1.0 + duration + tail,
                                  done=1.0 + duration + tail))

    def steps(minute):
        at = "2026-12-03T02:%02d:%02dZ"
        return [dict(name="gate_before", status="ok", started=at % (minute, 0), ended=at % (minute, 20)),
                dict(name="patch", status="ok", started=at % (minute + 1, 0), ended=at % (minute + 2, 0)),
                dict(name="reboot", status="ok", started=at % (minute + 2, 0), ended=at % (minute + 10, 0)),
                dict(name="gate_after", status="ok", started=at % (minute + 10, 0), ended=at % (minute + 10, 40))]

    hosts = {}
    for number, host in enumerate(("hv1", "hv2")):
        moves = [outcome("%s-g%d" % (host, n), mib, host, "hv3") for n, mib in enumerate((256, 1024, 4096, 512))]
        plan = dict(moves=[dict(guest=m["guest"], memory_mib=mib) for m, mib in zip(moves, (256, 1024, 4096, 512))])
        hosts[host] = dict(steps=steps(number * 15), evacuate=dict(changed=True, plan=plan, outcomes=moves))
    return dict(run_id="20261203T020000Z-roll", playbook="rolling_upgrade", hosts=hosts)


@pytest.mark.parametrize("built", [False, True], ids=["run", "report"])
def test_from_reports_fits_a_synthetic_report_back_to_its_constants(built):
    run = synthetic_run()
    fitted = fleetsim.Calibration.from_reports([report.build(run) if built else run])
    assert fitted.start_s == pytest.approx(1.5, abs=1e-3)
    assert fitted.stream_bps == pytest.approx(200 * MIB, rel=1e-3)
    assert fitted.spread == pytest.approx(0.0, abs=1e-3)
    assert fitted.reboot_s == pytest.approx(540.0) and fitted.gate_before_s == 20 and fitted.gate_after_s == 40
    assert fitted.settle_s == pytest.approx(2.5) and fitted.zero_fraction == pytest.approx(0.6)
    assert fitted.machine_bps is None and fitted.fixed_cost_growth == 0
    assert fitted.source.startswith("1 run report(s) (reboot, gate_before, gate_after, 8 migrations), ")
    # what the reports lack stays the lab's
    assert fitted.switchover_s == fleetsim.Calibration.lab().switchover_s
    assert fleetsim.Calibration.from_reports([]).source.startswith("0 run report(s) (nothing usable)")


def test_least_squares_with_noise_reports_its_spread():
    points = [(1e8, 1.0 + 0.5 + 0.1), (2e8, 1.0 + 1.0 - 0.1), (4e8, 1.0 + 2.0 + 0.1), (8e8, 1.0 + 4.0 - 0.1)]
    fit = fleetsim.least_squares(points)
    assert fit["rate_bps"] == pytest.approx(2e8, rel=0.05) and fit["fixed_s"] == pytest.approx(1.0, abs=0.15)
    assert 0 < fit["spread"] < 0.1
    assert fleetsim.least_squares(points[:1]) is None


def test_forecast_of_a_cluster_has_its_median_inside_its_range():
    hosts = [dict(name="hv%d" % n, cluster="lab", capacity_mib=6144, reserve_mib=512) for n in (1, 2, 3)]
    guests = [dict(name="g%d-%d" % (n, i), host="hv%d" % n, memory_mib=512) for n in (1, 2, 3) for i in range(3)]
    calibration = fleetsim.Calibration.lab(dirty_bps=5.0 * MIB, spread=0.2)
    result = fleetsim.forecast(lambda seed: fleetsim.from_cluster(hosts, guests, calibration, seed=seed),
                               calibration, fleetsim.Options(), seeds=5)
    low, high = result["range_s"]
    assert low <= result["makespan_s"] <= high and low < high
    assert len(result["runs"]) == 5 and result["moves"] == 18 and result["stopped"] is None
    assert result["calibration"] == calibration.source
    assert [line.split(":")[0] for line in result["steps"]] == ["hv1", "hv2", "hv3"]
    assert "drain" in result["steps"][0] and "3 guest(s)" in result["steps"][0]
    assert set(m["guest"] for m in result["trace"]["moves"]) == set(g["name"] for g in guests)


def test_a_forecast_of_a_roll_state_keeps_its_skipped_hosts_out():
    from ansible_collections.hostmaint.libvirt.plugins.module_utils import roll
    hosts = [dict(name="hv%d" % n, cluster="lab", capacity_mib=8192, phase="skipped" if n == 3 else None)
             for n in (1, 2, 3)]
    guests = [dict(name="g%d" % n, host="hv%d" % n, memory_mib=1024) for n in (1, 2, 3)]
    state = roll.new(hosts, guests, return_mode="stay")
    result = fleetsim.forecast(fleetsim.from_state(state), fleetsim.Calibration.lab(), fleetsim.Options(
        return_mode="stay"), seeds=1)
    assert sorted(result["trace"]["hosts"]["hv3"]) == [] and result["trace"]["hosts"]["hv1"]
    assert result["moves"] == 2  # g1 and g2 leave their hosts; g3 stays on hv3 and the others may land there


def test_the_lab_calibration_reproduces_the_bench_it_was_fitted_on():
    # in-sample (README, Performance, 2026-12-08): a regression guard for the model, not the out-of-sample check
    calibration = fleetsim.Calibration.lab()
    for measured, kwargs in ((24.3, dict(planner="serial")), (12.4, dict(planner="reference", slots=2)),
                             (10.6, dict(playbook=True)), (10.8, {}),
                             (14.4, dict(max_outbound=1, max_inbound=1, pause_target_ms=0, settle_s=0))):
        predicted = fleetsim.predict_evacuation(calibration=calibration, **kwargs)["seconds"]
        assert predicted == pytest.approx(measured, rel=0.15)


def test_bad_options_are_one_sentence():
    with pytest.raises(fleetsim.DecisionError, match="unknown planner 'nova'"):
        fleetsim.simulate(small(), fleetsim.Options(planner="nova"))
    with pytest.raises(fleetsim.DecisionError, match="invalid batch_size 0"):
        fleetsim.simulate(small(), fleetsim.Options(batch_size=0))
