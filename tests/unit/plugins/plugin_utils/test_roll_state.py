# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roll's state file on the controller (plugin_utils.roll_state) and roll_plan's plan: turns waited for with a
bound, reasons said once, events recorded with their times, a roll refused before anything is written; and two
processes taking turns at once never both get one slot."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from ansible_collections.hostmaint.libvirt.plugins.action import roll_plan
from ansible_collections.hostmaint.libvirt.plugins.module_utils import roll
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils import roll_state


def entry(name, guests=1, capacity=8192, phase="queued"):
    return dict(name=name, cluster="c", capacity_mib=capacity, phase=phase,
                guests=[dict(name="%s-g%d" % (name, n), memory_mib=1024) for n in range(guests)])


def params(tmp_path, hosts, **changes):
    found = dict(batch_size=0, forecast=False, hosts=hosts, overlap=False, parallel_clusters=False, parallel_hosts=1,
                 report_dir=None, reserve_mib=1024, return_mode="home", run_id="r1",
                 state_file=str(tmp_path / "r1.roll.json"))
    found.update(changes)
    return found


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_the_plan_writes_the_state_and_says_the_roll(tmp_path):
    result = roll_plan.plan(params(tmp_path, [entry("hv1"), entry("hv2", phase="skipped"), entry("hv3")]))
    state = json.loads((tmp_path / "r1.roll.json").read_text())
    assert state["phase"] == {"hv1": "queued", "hv2": "skipped", "hv3": "queued"}
    assert result["state_file"] == str(tmp_path / "r1.roll.json") and result["order"] == ["hv1", "hv2", "hv3"]
    assert result["lines"][0] == "roll of 3 host(s): 1 host at a time, guests return home"
    assert "cluster c: hv1, hv3" in result["lines"]
    # check mode writes nothing
    roll_plan.plan(params(tmp_path, [entry("hv1")], state_file=str(tmp_path / "other.json")), check_mode=True)
    assert not (tmp_path / "other.json").exists()


def test_a_roll_that_cannot_hold_is_refused_in_one_sentence_and_nothing_is_written(tmp_path):
    hosts = [entry("hv%d" % i, guests=2, capacity=4096) for i in (1, 2, 3, 4)]
    with pytest.raises(HostmaintError) as found:
        roll_plan.plan(params(tmp_path, hosts, parallel_hosts=2))
    assert found.value.message.startswith("rolling_upgrade_parallel_hosts=2 cannot hold in cluster c (4 hosts): "
                                          "without hv1 and hv2, cluster c cannot hold every guest")
    assert found.value.message.endswith("; nothing was changed")
    assert not (tmp_path / "r1.roll.json").exists()
    with pytest.raises(HostmaintError, match="invalid rolling_upgrade_parallel_hosts 0"):
        roll_plan.plan(params(tmp_path, hosts, parallel_hosts=0))


def test_a_turn_is_waited_for_its_reasons_said_once_and_events_recorded_with_their_times(tmp_path):
    roll_plan.plan(params(tmp_path, [entry("hv1"), entry("hv2")]))
    path = str(tmp_path / "r1.roll.json")
    assert roll_state.take_turn(path, "hv1", "enter", 60)["granted"]
    clock, said = Clock(), []
    with pytest.raises(HostmaintError) as found:
        roll_state.take_turn(path, "hv2", "enter", 5, say=said.append, clock=clock, sleep=clock.sleep)
    assert found.value.message == ("hv2 waited 5 s for its turn to enter maintenance and did not get it: hv2 waits: "
                                   "1 host(s) of cluster c in maintenance (hv1), at most 1 at once")
    assert said == ["hv2 waits: 1 host(s) of cluster c in maintenance (hv1), at most 1 at once"]  # once, not 5 times
    assert roll_state.take_turn(path, "hv1", "drain", 60)["granted"]
    away = [dict(guest="hv1-g0", destination="hv2", outcome="migrated")]
    assert roll_state.report(path, "hv1", "drained", moves=away) == dict(
        phase="upgrading", in_maintenance=["hv1"], down=[])
    assert roll_state.take_turn(path, "hv2", "enter", 0, check_mode=True)["down"] == ["hv1"]  # it may reboot now
    assert roll_state.report(path, "hv1", "upgraded")["phase"] == "restoring"
    home = [dict(guest="hv1-g0", destination="hv1", outcome="migrated")]
    assert roll_state.report(path, "hv1", "restored", moves=home)["phase"] == "done"
    state = json.loads(open(path).read())
    assert [(h["host"], h["what"]) for h in state["history"]] == [
        ("hv1", "entered"), ("hv1", "draining"), ("hv1", "upgrading"), ("hv1", "restoring"), ("hv1", "done")]
    assert all(h["at"].startswith("20") for h in state["history"])
    turn = roll_state.take_turn(path, "hv2", "enter", 60)
    assert turn["granted"] and turn["waited_s"] < 5


def test_a_stopped_roll_answers_at_once_with_a_final_refusal(tmp_path):
    roll_plan.plan(params(tmp_path, [entry("hv1"), entry("hv2")]))
    path = str(tmp_path / "r1.roll.json")
    roll_state.take_turn(path, "hv1", "enter", 60)
    roll_state.report(path, "hv1", "failed", reason="hv1 did not come back")
    turn = roll_state.take_turn(path, "hv2", "enter", 60)
    assert turn["final"] and not turn["granted"] and turn["phase"] == roll.QUEUED


def _race(path, host, out):
    roll_state.CRITICAL_PAUSE_S = 0.3  # without the lock, both would decide on the same state and one write be lost
    out.put((host, roll_state.report(path, host, "upgraded")["phase"]))


def test_two_hosts_reporting_at_the_same_moment_both_count(tmp_path):
    hosts = [entry("hv1", phase="upgrading"), entry("hv2"), dict(entry("hv3", phase="upgrading"), cluster="d"),
             dict(entry("hv4"), cluster="d")]
    roll_plan.plan(params(tmp_path, hosts, parallel_clusters=True))
    path = str(tmp_path / "r1.roll.json")
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_race, args=(path, host, results)) for host in ("hv1", "hv3")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert sorted(results.get(timeout=5) for _worker in workers) == [("hv1", "restoring"), ("hv3", "restoring")]
    state = json.loads(open(path).read())
    assert state["phase"]["hv1"] == state["phase"]["hv3"] == "restoring"
