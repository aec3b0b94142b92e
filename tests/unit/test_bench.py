# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bench's arithmetic (tests/bench/figures.py) on made-up data: no lab, no Ansible run."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

PATH = os.path.join(os.path.dirname(__file__), "..", "bench", "figures.py")
SPEC = importlib.util.spec_from_file_location("hostmaint_bench_figures", PATH)
FIG = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(FIG)


def ping_output(replies, transmitted, start=1000.0, interval=0.02, timestamps=True, extra=()):
    lines = ["PING 10.0.0.5 (10.0.0.5) 56(84) bytes of data."]
    for seq in replies:
        stamp = "[%.6f] " % (start + seq * interval + 0.0004) if timestamps else ""
        lines.append("%s64 bytes from 10.0.0.5: icmp_seq=%d ttl=64 time=0.412 ms" % (stamp, seq))
    lines.extend(extra)
    lines += ["", "--- 10.0.0.5 ping statistics ---",
              "%d packets transmitted, %d received, %d%% packet loss, time 1000ms"
              % (transmitted, len(replies), 100 * (transmitted - len(replies)) // transmitted),
              "rtt min/avg/max/mdev = 0.031/0.412/1.101/0.101 ms"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- ping

def test_icmp_gap_from_timestamps_is_the_longest_time_between_replies():
    # seqs 1-100 sent at 50 Hz, 41-47 lost: 7 missing, replies 40 and 48 are 8 intervals apart
    replies = [s for s in range(1, 101) if not 41 <= s <= 47]
    found = FIG.icmp_gap(ping_output(replies, 100))
    assert found["basis"] == "timestamps"
    assert found["longest_gap_s"] == pytest.approx(8 * 0.02, abs=1e-3)
    assert found["longest_missing"] == 7
    assert (found["transmitted"], found["received"], found["lost"]) == (100, 93, 7)


def test_icmp_gap_without_timestamps_counts_the_missing_sequence():
    replies = [s for s in range(1, 101) if s not in (10, 11, 12, 60)]
    found = FIG.icmp_gap(ping_output(replies, 100, timestamps=False))
    assert found["basis"] == "sequence"
    assert found["longest_missing"] == 3
    assert found["longest_gap_s"] == pytest.approx(4 * 0.02)


def test_icmp_gap_counts_the_head_and_the_tail_when_given():
    replies = list(range(1, 51))  # replies at 1000.02 .. 1001.00
    found = FIG.icmp_gap(ping_output(replies, 50), started=999.0, stopped=1001.1)
    assert found["longest_gap_s"] == pytest.approx(1.0204, abs=1e-3)  # from started to the first reply
    found = FIG.icmp_gap(ping_output(replies, 50), started=1000.0, stopped=1003.0)
    assert found["longest_gap_s"] == pytest.approx(2.0, abs=1e-2)  # the guest went quiet at the end


def test_icmp_gap_ignores_duplicates_and_errors_and_unwraps_the_sequence():
    extra = ["From 10.0.0.1 icmp_seq=3 Destination Host Unreachable",
             "[1000.050000] 64 bytes from 10.0.0.5: icmp_seq=2 ttl=64 time=0.4 ms (DUP!)"]
    output = ping_output([1, 2, 4], 4, extra=extra)
    found = FIG.icmp_gap(output)
    assert found["received"] == 3
    assert found["longest_missing"] == 1
    wrapped = "\n".join("64 bytes from 10.0.0.5: icmp_seq=%d ttl=64 time=0.4 ms" % s
                        for s in (65534, 65535, 0, 1, 4))
    found = FIG.icmp_gap(wrapped, interval=0.02)
    assert found["received"] == 5
    assert found["longest_missing"] == 2  # 2 and 3 after the wrap, not 65533 from 1 to 65534
    assert found["longest_gap_s"] == pytest.approx(0.06)


def test_icmp_gap_of_a_guest_that_never_answered():
    found = FIG.icmp_gap(ping_output([], 10), started=5.0, stopped=7.5)
    assert found["received"] == 0 and found["lost"] == 10
    assert found["longest_gap_s"] == pytest.approx(2.5)
    assert FIG.icmp_gap("")["longest_gap_s"] is None


# --------------------------------------------------------------------------------------------- virsh

def test_virsh_times_reads_the_mig_lines_only():
    output = "\nMIG idle1 100.25 103.75 0\nerror: operation failed\nMIG idle2 100.30 104.00 1\n"
    found = FIG.virsh_times(output)
    assert found == [dict(guest="idle1", start=100.25, end=103.75, rc=0),
                     dict(guest="idle2", start=100.30, end=104.0, rc=1)]
    timelines = FIG.virsh_timelines(found, launched=100.0)
    assert timelines[0]["started"] == pytest.approx(0.25) and timelines[0]["done"] == pytest.approx(3.75)
    assert timelines[1]["ok"] is False


@pytest.mark.parametrize("key,dests,marker", [("A", ["hv2"] * 4, None), ("B", ["hv2", "hv3"] * 2, "wait"),
                                              ("P2", ["hv2", "hv3"] * 2, "xargs -P2 -L1")])
def test_virsh_scripts(key, dests, marker):
    names = ["idle1", "idle2", "idle3", "idle4"]
    script = FIG.virsh_script(key, names)
    assert "virsh migrate --live --p2p --tls --persistent --undefinesource" in script
    assert "date +%s.%N" in script
    for name, dest in zip(names, dests):
        assert "%s %s" % (name, dest) in script
    if marker:
        assert marker in script
    with pytest.raises(ValueError):
        FIG.virsh_script("C", names)


# --------------------------------------------------------------------------------------------- phases

def outcome(guest, started, switchover, done, duration=None, result="migrated"):
    return dict(guest=guest, outcome=result, duration_s=duration, downtime_ms=40,
                timeline=dict(queued=0.0, started=started, switchover=switchover, checked=done, done=done))


def test_phases_from_the_engine_timelines():
    outcomes = [outcome("a", 0.5, 4.5, 9.5), outcome("b", 0.5, 5.5, 10.5), outcome("c", 4.5, 8.5, 13.5),
                outcome("d", 5.5, 9.5, 14.5, duration=4.0),
                dict(guest="e", outcome="blocked", timeline=dict(queued=0.0, started=None))]
    timelines = FIG.outcome_timelines(outcomes)
    assert [t["guest"] for t in timelines] == ["a", "b", "c", "d"]
    found = FIG.phases(20.0, timelines, task_s=17.0)
    assert found["moves"] == 4
    assert found["first_start_s"] == 0.5
    assert found["moving_s"] == 9.0  # 0.5 to the last switchover at 9.5
    assert found["settle_tail_s"] == 5.0
    assert found["engine_s"] == 14.5
    assert found["fixed_s"] == 6.0  # 20 less the 14 s from the first start to the last done
    assert found["fixed_s"] + found["moving_s"] + found["settle_tail_s"] == found["wall_s"]
    assert found["migration_s_mean"] == pytest.approx(4.25)  # 4, 5, 4 and duration_s 4.0
    assert found["concurrency"] == pytest.approx(17.0 / 9.0, abs=0.01)
    assert found["ansible_s"] == 3.0 and found["task_s"] == 17.0
    assert found["module_outside_s"] == 2.5


def test_phases_without_moves_is_all_fixed_cost():
    assert FIG.phases(2.345, [], task_s=1.5) == dict(wall_s=2.35, moves=0, task_s=1.5, ansible_s=0.85, fixed_s=2.35)


def test_phases_of_a_virsh_loop():
    migrations = FIG.virsh_times("MIG a 10.2 13.2 0\nMIG b 13.2 16.7 0\n")
    found = FIG.phases(7.0, FIG.virsh_timelines(migrations, 10.0))
    assert found["first_start_s"] == pytest.approx(0.2)
    assert found["moving_s"] == pytest.approx(6.5) and found["settle_tail_s"] == 0
    assert found["concurrency"] == pytest.approx(1.0)
    assert found["fixed_s"] == pytest.approx(0.5)
    assert "ansible_s" not in found


def test_report_moves_and_window_changes():
    report = dict(hosts=dict(hv1=dict(moves=[dict(outcome(g, 1, 2, 3), kind=k) for g, k in
                                             (("a", "evacuate"), ("b", "restore"))],
                                      evacuate=dict(window_changes=[dict(at=2.0, source="hv1", to=1)]))))
    assert [m["guest"] for m in FIG.report_moves(report, "evacuate")] == ["a"]
    assert len(FIG.report_moves(report)) == 2
    assert FIG.report_window_changes(report, "evacuate")[0]["to"] == 1
    assert not FIG.report_window_changes(report, "restore")


# --------------------------------------------------------------------------------------------- Ansible output

def json_callback(tasks):
    return json.dumps(dict(plays=[dict(play=dict(name="p"), tasks=[
        dict(task=dict(name=name, duration=dict(start=start, end=end)), hosts=dict(hv1=result))
        for name, start, end, result in tasks])], stats={}), indent=4)


def test_task_result_from_the_json_callback():
    tasks = [("Evacuate", "2026-12-01T10:00:00.000000Z", "2026-12-01T10:00:00.100000Z",
              dict(action="ansible.builtin.include_role")),
             ("Plan every guest", "2026-12-01T10:00:00.200000Z", "2026-12-01T10:00:12.700000Z",
              dict(action="hostmaint.libvirt.evacuate", changed=True, outcomes=[outcome("a", 0.4, 3.0, 8.0)])),
             ("Write the report", "2026-12-01T10:00:13.000000Z", "2026-12-01T10:00:13.500000Z",
              dict(action="hostmaint.libvirt.run_report"))]
    result, seconds = FIG.task_result(json_callback(tasks), "hv1", "evacuate")
    assert result["outcomes"][0]["guest"] == "a"
    assert seconds == pytest.approx(12.5)
    assert FIG.task_result(json_callback(tasks), "hv1", "restore") == (None, None)
    assert FIG.task_result(json_callback(tasks), "hv2", "evacuate") == (None, None)


def test_task_result_from_oneline_output():
    output = ('[WARNING]: something\nhv1 | CHANGED => {"changed": true,"outcomes": [],"run_id": "r1"}\n')
    result, seconds = FIG.task_result(output, "hv1", "evacuate")
    assert result["run_id"] == "r1" and result["failed"] is False and seconds is None
    result, _seconds = FIG.task_result('hv1 | FAILED! => {"changed": false,"msg": "boom"}', "hv1", "evacuate")
    assert result["failed"] is True and result["msg"] == "boom"
    assert FIG.task_result("nothing here", "hv1", "evacuate") == (None, None)


# --------------------------------------------------------------------------------------------- rounds

def test_round_blocks_keep_partners_together_and_rotate():
    blocks = FIG.round_blocks(FIG.SELECTABLE)
    assert blocks == [["A"], ["B"], ["P2"], ["C", "E2", "R"], ["M", "E"], ["M11"], ["W"]]
    assert FIG.rotated(blocks, 0) == blocks
    assert FIG.rotated(blocks, 1)[0] == ["B"] and FIG.rotated(blocks, 1)[-1] == ["A"]
    assert FIG.rotated(blocks, 7) == blocks
    assert FIG.round_blocks(["E", "A"]) == [["A"], [FIG.EMPTY, "E"]]
    assert FIG.round_blocks(["E2", "C"]) == [["C", "E2", "R"]]
    assert FIG.round_blocks(["E2"]) == [[FIG.EMPTY, "E2"]]
    assert FIG.rotated([], 2) == []


# --------------------------------------------------------------------------------------------- statistics

def run(key, rnd, wall, downtimes=(), icmp=0.12, http_failed=1, phases=None, restarted=False):
    probes = dict(g1=dict(http_failed=http_failed, http_gap_s=1.3, icmp_gap_s=icmp, icmp_lost=5,
                          restarted=restarted, lost_writes=0))
    return dict(key=key, round=rnd, wall_s=wall, returncode=0, moved=8, guests=8, downtimes_ms=list(downtimes),
                bytes=800 * 2 ** 20, probes=probes, phases=phases or dict(wall_s=wall, fixed_s=1.0),
                controller_peak_mib=80.0, module_peak_mib=23.0, loadavg=[1.5, 1.2, 1.0])


def test_spread_and_pair_use_same_round_ratios():
    assert FIG.spread([3.0, None, 1.0, 2.0]) == dict(median=2.0, min=1.0, max=3.0, n=3)
    assert FIG.spread([None]) is None
    runs = [run("A", 1, 20.0), run("A", 2, 30.0), run("A", 3, 25.0),
            run("C", 1, 10.0), run("C", 2, 18.0), run("C", 3, 12.0)]
    found = FIG.pair(runs, "C", "A")
    assert found["ratio"] == pytest.approx(12.0 / 25.0)
    assert found["per_round"] == {1: 0.5, 2: 0.6, 3: pytest.approx(0.48)}
    assert found["per_round_spread"]["median"] == 0.5
    assert found["per_round_spread"]["min"] == pytest.approx(0.48) and found["per_round_spread"]["max"] == 0.6
    missing = FIG.pair(runs, "C", "P2")
    assert missing["ratio"] is None and missing["per_round_spread"] is None


def test_pair_skips_rounds_the_other_contender_did_not_run():
    runs = [run("A", 1, 20.0), run("A", 2, 30.0), run("W", 2, 15.0), run("W", 3, 14.0)]
    found = FIG.pair(runs, "W", "A")
    assert found["per_round"] == {2: 0.5}
    assert found["ratio"] == pytest.approx(14.5 / 25.0)


def test_summarise_per_contender():
    runs = [run("C", 1, 10.0, [30, 40], icmp=0.14, phases=dict(wall_s=10.0, fixed_s=3.0)),
            run("A", 1, 20.0, [100]), run("A", 2, 22.0, [120], icmp=None),
            run("C", 2, 12.0, [50, 160], icmp=0.2, phases=dict(wall_s=12.0, fixed_s=4.0), restarted=True)]
    summary = FIG.summarise(runs)
    assert [s["key"] for s in summary] == ["A", "C"]  # CONTENDERS order
    a, c = summary
    assert a["ratio_to_a"] == 1.0 and a["ratio_to_a_per_round"] is None
    assert c["wall"] == dict(median=11.0, min=10.0, max=12.0, n=2)
    assert c["ratio_to_a"] == pytest.approx(11.0 / 21.0)
    assert c["ratio_to_a_per_round"]["median"] == pytest.approx((0.5 + 12.0 / 22.0) / 2)
    assert (c["downtime_p50_ms"], c["downtime_max_ms"]) == (45, 160)
    assert c["icmp_gap_max_s"] == 0.2 and a["icmp_gap_max_s"] == 0.12
    assert c["http_failed"] == 2 and c["restarted"] == 1 and c["lost_writes"] == 0
    assert c["phases"] == dict(wall_s=11.0, fixed_s=3.5)
    assert c["label"] == FIG.CONTENDERS["C"]


# --------------------------------------------------------------------------------------------- verdicts

def rows_for_verdicts(scale=1.0, pauses=(30, 45, 50, 140), gap=0.16, http_failed=0):
    runs = []
    for rnd in (1, 2, 3):
        runs += [run("A", rnd, 25.0), run("P2", rnd, 14.0), run("M11", rnd, 26.0 * scale), run("W", rnd, 14.5 * scale),
                 run("C", rnd, 12.0 * scale, pauses, icmp=gap, http_failed=http_failed),
                 run("E", rnd, 1.2 * scale, icmp=None), run("E2", rnd, 2.2 * scale, icmp=None),
                 run("M", rnd, 13.0 * scale, icmp=gap)]
    return runs


def verdict_map(runs, planning=None):
    summary = FIG.summarise(runs)
    found = FIG.verdicts(dict(idle8=dict(summary=summary, runs=runs)), planning or dict(seconds=1.1))
    return dict((target, (met, how)) for target, met, how in found)


def test_verdicts_met():
    found = verdict_map(rows_for_verdicts())
    assert found["idle8: M11 <= 1.1x A"][0] is True
    assert "M11/A = 1.04" in found["idle8: M11 <= 1.1x A"][1]
    assert found["idle8: W <= 1.1x P2"][0] is True
    assert found["idle8: E2 (evacuate.yml, empty host) <= 2.5 s"][0] is True
    assert found["idle8: E (module ad hoc, empty host) <= 1.5 s"][0] is True
    assert found["idle8: C <= 0.6x A"][0] is True
    assert found["idle8: C every pause <= 150 ms"][0] is True
    assert found["idle8: C median pause <= 50 ms"][0] is True  # 47.5 over every run
    assert found["idle8: goal: C faster than P2"][0] is True
    assert found["idle8: goal: C <= 0.35x A"][0] is False
    assert found["idle8: longest ICMP gap <= 0.5 s (C, M, M11, W)"][0] is True
    assert found["idle8: C no failed probe (HTTP, 2 Hz)"][0] is True
    assert found["idle8: no guest restarted or lost a write"][0] is True
    assert found["planning 5,000 guests / 50 hosts <= 2 s"][0] is True


def test_verdicts_missed():
    found = verdict_map(rows_for_verdicts(scale=1.5, pauses=(60, 70, 151), gap=0.9, http_failed=2),
                        planning=dict(seconds=2.5))
    for target in ("M11 <= 1.1x A", "W <= 1.1x P2", "E2 (evacuate.yml, empty host) <= 2.5 s",
                   "E (module ad hoc, empty host) <= 1.5 s", "C <= 0.6x A", "C every pause <= 150 ms",
                   "C median pause <= 50 ms", "goal: C faster than P2", "longest ICMP gap <= 0.5 s (C, M, M11, W)",
                   "C no failed probe (HTTP, 2 Hz)"):
        assert found["idle8: " + target][0] is False, target
    assert "E median 1.80 s" in found["idle8: E (module ad hoc, empty host) <= 1.5 s"][1]
    assert found["planning 5,000 guests / 50 hosts <= 2 s"][0] is False


def test_verdicts_of_contenders_not_run_are_not_judged():
    runs = [run("A", 1, 25.0), run("C", 1, 12.0, [40])]
    found = verdict_map(runs)
    assert found["idle8: M11 <= 1.1x A"] == (None, "not run")
    assert found["idle8: E (module ad hoc, empty host) <= 1.5 s"] == (None, "not run")
    assert found["idle8: C <= 0.6x A"][0] is True
    lines = FIG.verdict_lines([("t1", None, "not run"), ("t2", True, "x"), ("t3", False, "y")])
    assert [line.split()[1] for line in lines] == ["n/a", "met", "MISS"]


# --------------------------------------------------------------------------------------------- tables

def test_tables_print_every_contender():
    runs = rows_for_verdicts()
    summary = FIG.summarise(runs)
    lines = FIG.table_lines("idle8", summary)
    assert len(lines) == len(summary)
    assert all(line.startswith("idle8") for line in lines)
    c_line = [line for line in lines if FIG.CONTENDERS["C"] in line][0]
    assert " 0.48 " in c_line and "0.48 0.48-0.48" in c_line  # ratio of medians, then the same-round ratios
    phase = FIG.phase_lines("idle8", summary)
    assert len(phase) == len(summary) and len(FIG.PHASE_HEAD) > 100
    pairs = FIG.pair_lines("idle8", runs)
    assert any(line.split()[1] == "C/P2" for line in pairs)
    assert any(line.split()[1] == "W/P2" for line in pairs)


# -- arrival.py: when a broken guest shows it -------------------------------------------------------------------
EVENTS = """2026-12-02 18:00:01.500+0000: event 'lifecycle' for domain 'arr1': Started Migrated
2026-12-02 18:00:02.000+0000: event 'lifecycle' for domain 'arr1': Resumed Migrated
2026-12-02 18:00:02.900+0000: event 'reboot' for domain 'arr1'
2026-12-02 18:00:10.000+0000: event 'lifecycle' for domain 'arr2': Resumed Migrated
2026-12-02 18:00:11.000+0000: event 'lifecycle' for domain 'arr2': Suspended Migrated
not an event line
"""


def test_virsh_events_are_read_with_their_times_kinds_and_guests():
    found = FIG.virsh_events(EVENTS)
    base = found[0][0]
    assert [(round(t - base, 3), kind, guest) for t, kind, guest in found] == [
        (0.0, "lifecycle: Started Migrated", "arr1"), (0.5, "lifecycle: Resumed Migrated", "arr1"),
        (1.4, "reboot", "arr1"), (8.5, "lifecycle: Resumed Migrated", "arr2"),
        (9.5, "lifecycle: Suspended Migrated", "arr2")]


def test_arrival_delays_count_from_the_switchover_event_and_only_the_settle_checks_events():
    events = {"hv3": FIG.virsh_events(EVENTS)}
    switch = events["hv3"][1][0]
    migrations = [
        # broken: the reboot 0.9 s after its switchover, its console 1.0 s, a new boot id 6 s
        dict(guest="arr1", destination="hv3", started=switch - 1.0, returned=switch + 2.0,
             seen=dict(console=switch + 1.0, new_boot_id=switch + 6.0, http_again=switch + 6.0)),
        # quiet: its 'Suspended Migrated' is the migration's own; it answers again 2.5 s after its switchover
        dict(guest="arr2", destination="hv3", started=switch + 7.0, returned=switch + 10.0,
             seen=dict(http_again=switch + 10.5)),
        # no switchover event seen (another host's log): its return is the base
        dict(guest="arr1", destination="hv2", started=switch + 20.0, returned=switch + 22.0, seen={}),
    ]
    broken, delays = FIG.arrival_delays(migrations, events, watch_s=20)
    assert [m["guest"] for m in broken] == ["arr1"]
    assert broken[0]["first_event"] == "reboot"
    assert migrations[0]["after_switchover_s"] == dict(returned=2.0, event=0.9, console=1.0, new_boot_id=6.0,
                                                       http_again=6.0)
    assert migrations[1]["broken"] is False and migrations[1]["after_switchover_s"]["returned"] == 2.0
    assert migrations[2]["switchover"] is None and migrations[2]["after_switchover_s"] == dict(returned=0.0)
    assert delays == dict(returned=[2.0, 2.0, 0.0], event=[0.9], console=[1.0], new_boot_id=[6.0],
                          http_again_quiet=[2.5])


def test_progress_pairs_give_the_medians_of_each_setting_and_of_the_pairs_differences():
    runs = []
    for pair, (on, off) in enumerate([(30.0, 29.0), (31.0, 31.5), (40.0, 30.0)], 1):
        runs += [dict(pair=pair, state="guests", progress=True, wall=on, returncode=0, progress_lines=20),
                 dict(pair=pair, state="guests", progress=False, wall=off, returncode=0, progress_lines=0),
                 dict(pair=pair, state="empty", progress=True, wall=1.7, returncode=0, progress_lines=0),
                 dict(pair=pair, state="empty", progress=False, wall=1.75, returncode=0, progress_lines=0)]
    runs.append(dict(pair=4, state="guests", progress=True, wall=99.0, returncode=2, progress_lines=3))  # failed
    assert FIG.progress_pair_lines(runs) == [
        "progress guests  3 pairs: on 31.00 s, off 30.00 s (medians); on - off +1.00 s (median of the pairs); 20 "
        "progress lines",
        "progress empty   3 pairs: on 1.70 s, off 1.75 s (medians); on - off -0.05 s (median of the pairs); 0 "
        "progress lines"]
    assert FIG.progress_pair_lines([]) == []


def test_the_simulator_check_compares_each_contender_and_scales_by_the_serial_loop():
    summary = [dict(key="A", wall=dict(median=20.0)), dict(key="C", wall=dict(median=16.0)),
               dict(key="M", wall=dict(median=10.0))]
    said = dict(A=25.0, C=14.0, M=13.0)

    def predict(guests, memory_mib, **kwargs):
        key = "A" if kwargs.get("planner") == "serial" else ("C" if kwargs.get("playbook") else "M")
        assert guests == 8 and memory_mib == 256
        return dict(seconds=said[key])
    check = FIG.simulator_check(summary, predict)
    assert [(r["key"], r["predicted_s"], r["error"]) for r in check["rows"]] == [
        ("A", 25.0, 0.25), ("C", 14.0, -0.125), ("M", 13.0, 0.3)]
    assert check["scale_from_a"] == 0.8 and [(r["key"], r["predicted_s"]) for r in check["scaled"]] == [
        ("C", 11.2), ("M", 10.4)]
    assert check["target"] is False  # scaled, C is 30 % short
    said["A"] = 20.0
    assert FIG.simulator_check(summary, predict)["target"] is True
    lines = FIG.simulator_lines(FIG.simulator_check(summary, predict), "the lab")
    assert lines[-1] == "  target: evacuate.yml (C) predicted within 25 %: met"
