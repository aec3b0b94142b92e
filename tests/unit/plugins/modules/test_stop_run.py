# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""stop_run end to end on a fake host: what the user reads in the module's JSON.

The fake adapter holds the run hold (and plays the run that releases it once asked); the module's clock is a fake
whose sleep() moves time on, and this machine's processes are a table (hold.this_process/process_start patched).
"""

from __future__ import annotations

import json
import re
import time as real_time

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.module_utils import hold as holds
from ansible_collections.hostmaint.libvirt.plugins.module_utils import runs
from ansible_collections.hostmaint.libvirt.plugins.modules import stop_run

RUN_ID = "20261125T180000Z-1a2b3c"
HOLD = holds.make(RUN_ID, "evacuate", "2026-11-25T18:00:00Z", "hv3", "boot-1", 4242, 1000)
LOG = dict(run_id=RUN_ID, summary=dict(moves=4, moved=2, failed=0, not_run=2), remaining=["web3", "web4"])


class FakeTime(object):
    """The module's ``time``: time() and sleep() on a fake clock, the rest from the real module."""

    def __init__(self, on_sleep=None):
        self.now = 1764093600.0
        self.sleeps = []
        self.on_sleep = on_sleep
        self.strftime, self.gmtime = real_time.strftime, real_time.gmtime

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


class FakeHost(object):
    """hv3 as the module sees it: its hold (None, or a dict) and the run that releases it after ``releases_after``
    of the module's looks once a stop request is in it (None: the run never releases it)."""

    def __init__(self, current=None, releases_after=None):
        self.current = dict(current) if current is not None else None
        self.releases_after = releases_after
        self.looks_since_request = 0
        self.updates = []
        self.releases = []
        self.closed = False

    def host_identity(self):
        return dict(hostname="hv3", uuid="uuid-hv3")

    def hold(self):
        if self.current is not None and "stop" in self.current and self.releases_after is not None:
            self.looks_since_request += 1
            if self.looks_since_request > self.releases_after:
                self.current = None  # the run aborted what it had in flight and released its host
        return dict(self.current) if self.current is not None else None

    def update_hold(self, info):
        self.updates.append(dict(info))
        self.current = dict(info)
        return True

    def release_hold(self, run_id=None):
        self.releases.append(run_id)
        self.current = None
        return True

    def close(self):
        self.closed = True


@pytest.fixture
def machine(monkeypatch):
    """This machine is hv3 in boot boot-1; process 4242 started at tick 1000 runs (the run's)."""
    processes = {4242: 1000}
    monkeypatch.setattr(holds, "this_process", lambda root="/": ("hv3", "boot-1", 999, 5))
    monkeypatch.setattr(holds, "process_start", lambda pid, root="/": processes.get(pid))
    logs = {RUN_ID: LOG}
    monkeypatch.setattr(runs, "read_log", lambda run_id, directory=runs.RUN_LOG_DIR: logs.get(run_id))
    clock = FakeTime()
    monkeypatch.setattr(stop_run, "time", clock)
    return dict(processes=processes, logs=logs, clock=clock)


def run_module(capsys, host, check_mode=False, **args):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            stop_run.StopRun(adapter_factory=lambda uri: host).execute()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_with_no_run_on_the_host_nothing_changes(capsys, machine):
    host = FakeHost()
    code, result = run_module(capsys, host, reason="window closed")
    assert code == 0 and result["changed"] is False
    assert result["msg"] == "no run holds hv3: there is nothing to stop"
    assert (result["run_id"], result["held"], result["stale"], result["waited_s"]) == (None, None, None, 0.0)
    assert "result" not in result and host.updates == [] and host.releases == [] and host.closed


@pytest.mark.parametrize("stale, why", [
    (dict(pid=4243), "its process 4243 is gone"),
    (dict(started=999), "its process 4242 is gone (the pid now belongs to another process)"),
    (dict(boot_id="boot-0"), "hv3 has rebooted since"),
], ids=["pid-gone", "pid-reused", "rebooted"])
def test_the_hold_of_a_run_that_is_gone_is_removed(capsys, machine, stale, why):
    found = dict(HOLD, **stale)
    host = FakeHost(found)
    code, result = run_module(capsys, host)
    assert code == 0 and result["changed"] is True
    assert result["msg"] == "run %s no longer runs on hv3 (%s): its hold was removed" % (RUN_ID, why)
    assert (result["run_id"], result["held"], result["stale"]) == (RUN_ID, found, why)
    assert host.releases == [RUN_ID] and host.current is None and host.updates == []
    assert machine["clock"].sleeps == []


def test_a_live_run_is_asked_to_stop_and_waited_for_and_its_result_returned(capsys, machine):
    host = FakeHost(HOLD, releases_after=3)
    code, result = run_module(capsys, host, reason="window closed")
    assert code == 0 and result["changed"] is True, result
    (written,) = host.updates
    assert dict((k, v) for k, v in written.items() if k != "stop") == HOLD  # the hold as it was, plus the request
    assert written["stop"]["reason"] == "window closed"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", written["stop"]["at"])
    assert host.current is None and host.releases == []  # the run released it, not the module
    assert result["waited_s"] == 1.5 and machine["clock"].sleeps == [0.5, 0.5, 0.5]
    assert result["msg"] == "run %s on hv3 stopped after 1.5 s" % RUN_ID
    assert (result["run_id"], result["held"], result["stale"]) == (RUN_ID, HOLD, None)
    assert result["result"] == LOG


def test_a_run_that_stopped_without_leaving_a_result_returns_none(capsys, machine):
    machine["logs"].clear()
    host = FakeHost(HOLD, releases_after=0)
    code, result = run_module(capsys, host)
    assert code == 0 and result["changed"] is True and "result" not in result
    assert result["waited_s"] == 0.0 and host.updates[0]["stop"]["reason"] is None


def test_a_hold_taken_over_by_another_run_meanwhile_ends_the_wait(capsys, machine):
    host = FakeHost(HOLD)
    machine["clock"].on_sleep = lambda: host.current.update(run_id="20261125T181000Z-9f8e7d")
    code, result = run_module(capsys, host)
    assert code == 0 and result["run_id"] == RUN_ID and result["waited_s"] == 0.5


def test_a_run_on_another_machine_cannot_be_judged_from_here_and_is_asked_to_stop(capsys, machine):
    found = dict(HOLD, node="hv9", pid=31337)  # no such process here, but that proves nothing about hv9
    host = FakeHost(found, releases_after=1)
    code, result = run_module(capsys, host)
    assert code == 0 and result["stale"] is None and len(host.updates) == 1 and host.releases == []


def test_a_run_that_does_not_stop_within_wait_s_fails_naming_it(capsys, machine):
    host = FakeHost(HOLD)  # never released
    code, result = run_module(capsys, host, wait_s=1)
    assert code == 1 and result["failed"] is True
    assert result["msg"] == (
        "run %s (evacuate, since 2026-11-25T18:00:00Z, pid 4242 on hv3) on hv3 did not stop within wait_s 1 s: it may "
        "still be aborting a migration; look again with stop_run, or at the guests with virsh" % RUN_ID)
    assert result["run_id"] == RUN_ID and result["held"] == HOLD
    assert 1.0 <= sum(machine["clock"].sleeps) <= 1.5
    assert host.current["stop"]["reason"] is None and host.closed  # the request stays for the run to see


@pytest.mark.parametrize("found, msg", [
    (HOLD, "would ask run %s (evacuate, since 2026-11-25T18:00:00Z, pid 4242 on hv3) on hv3 to stop" % RUN_ID),
    (dict(HOLD, pid=4243), "run %s no longer runs on hv3 (its process 4243 is gone): its hold was removed" % RUN_ID),
], ids=["live", "stale"])
def test_check_mode_writes_nothing_and_says_what_it_would_do(capsys, machine, found, msg):
    host = FakeHost(found)
    code, result = run_module(capsys, host, check_mode=True, reason="window closed")
    assert code == 0 and result["changed"] is True and result["msg"] == msg
    assert host.updates == [] and host.releases == [] and host.current == found
    assert machine["clock"].sleeps == [] and result["waited_s"] == 0.0


def test_check_real_check_on_a_live_run(capsys, machine):
    host = FakeHost(HOLD, releases_after=2)
    assert [run_module(capsys, host, check_mode=check)[1]["changed"] for check in (True, False, True)] == [
        True, True, False]


@pytest.mark.parametrize("wait_s", [0, -5, 3601])
def test_an_absurd_wait_fails_before_anything_is_touched(capsys, machine, wait_s):
    host = FakeHost(HOLD)
    code, result = run_module(capsys, host, wait_s=wait_s)
    assert code == 1 and result["msg"] == "wait_s must be from 1 to 3600 seconds, got %d" % wait_s
    assert host.updates == [] and host.current == HOLD
