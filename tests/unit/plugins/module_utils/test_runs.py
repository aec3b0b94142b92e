# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run does around its plan (module_utils/runs.py): the hold on its host, settling what was under way
there, and stopping when asked.

A fake host stands in for the local adapter (its hold, its migration jobs on a timeline) and a fake clock whose
sleep() moves time on is injected, so the bounded waits run in no time. No libvirt, no real /proc.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import hold as holds
from ansible_collections.hostmaint.libvirt.plugins.module_utils import runs
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MigrationRecord

ME = ("hv1", "boot-1", 777, 5000)  # this run's node, boot, pid and process start
RUN = "run-new"
OLD = "run-old"
SINCE = "2026-11-25T18:00:00Z"


class Clock(object):
    """Time that only moves when the code under test sleeps; ``on_sleep`` lets the world change meanwhile."""

    def __init__(self, now=1000.0, on_sleep=None):
        self.start = self.now = now
        self.sleeps = []
        self.on_sleep = on_sleep

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self)

    @property
    def elapsed(self):
        return self.now - self.start


class Host(object):
    """The local adapter as HostRun sees it: one hold (a libvirt secret: one per usage) and migration jobs.

    ``jobs``: (guest, direction, from, until) in seconds on the clock since it started; a guest whose job was
    aborted has none.
    """

    def __init__(self, clock, current=None, jobs=(), abort_ends=True, clear_fails=None):
        self.clock = clock
        self.current = dict(current) if current is not None else None
        self.jobs = list(jobs)
        self.abort_ends = abort_ends
        self.clear_fails = clear_fails
        self.calls = []
        self.aborted = []
        self.cleared = []

    def hold(self):
        self.calls.append("hold")
        return dict(self.current) if self.current is not None else None

    def take_hold(self, info):
        self.calls.append("take_hold")
        if self.current is not None:
            return False
        self.current = dict(info)
        return True

    def update_hold(self, info):
        self.calls.append("update_hold")
        if self.current is None:
            return False
        self.current = dict(info)
        return True

    def release_hold(self, run_id=None):
        self.calls.append("release_hold %s" % run_id)
        if self.current is None or (run_id is not None and self.current.get("run_id") != run_id):
            return False
        self.current = None
        return True

    def migration_jobs(self):
        now = self.clock.elapsed
        return dict((guest, direction) for guest, direction, begin, end in self.jobs
                    if begin <= now < end and guest not in self.aborted)

    def abort_job(self, name, wait_s=30.0):
        self.calls.append("abort_job %s" % name)
        if self.abort_ends:
            self.aborted.append(name)
        return self.abort_ends

    def close(self):
        """The adapter's connection is closed; the next call opens a new one."""
        self.calls.append("close")

    def clear_record(self, name):
        self.calls.append("clear_record %s" % name)
        if self.clear_fails:
            raise HostmaintError(self.clear_fails)
        self.cleared.append(name)


def other(run_id=OLD, **changes):
    """The hold of another run on this machine, in this boot, by process 4242 started at tick 1000."""
    found = holds.make(run_id, "evacuate", SINCE, "hv1", "boot-1", 4242, 1000)
    found.update(changes)
    return found


def starts(**by_pid):
    table = dict((int(pid[1:]), start) for pid, start in by_pid.items())
    return table.get


ALIVE = starts(p4242=1000)  # process 4242 of the other run still runs


def host_run(host, clock, start_of=ALIVE, run_id=RUN):
    return runs.HostRun(host, "hv1", run_id, "evacuate", clock=clock, sleep=clock.sleep, me=ME, start_of=start_of)


# -- take --------------------------------------------------------------------------------------------------
def test_a_free_host_is_taken_with_this_runs_process_in_the_hold():
    clock = Clock()
    host = Host(clock)
    run = host_run(host, clock)
    assert run.take() is None and run.took_over is None
    assert host.current == run.held
    assert dict((k, v) for k, v in host.current.items() if k != "since") == dict(
        run_id=RUN, action="evacuate", node="hv1", boot_id="boot-1", pid=777, started=5000)
    assert len(host.current["since"]) == len("2026-11-25T18:00:00Z") and host.current["since"].endswith("Z")
    assert clock.sleeps == []


def test_a_live_hold_of_another_run_refuses_naming_it_and_is_left_alone():
    clock = Clock()
    theirs = other()
    host = Host(clock, theirs)
    run = host_run(host, clock)
    with pytest.raises(HostmaintError) as error:
        run.take()
    message = error.value.message
    assert message == (
        "hv1 is held by run run-old (evacuate, since 2026-11-25T18:00:00Z, pid 4242 on hv1), and its process 4242 "
        "still runs: another run is working on hv1; wait for it to end or stop it (playbooks/stop.yml -l hv1), "
        "then run this again")
    assert error.value.details == dict(held_by=theirs)
    assert host.current == theirs and run.held is None
    assert not any(call.startswith("release_hold") for call in host.calls)
    assert clock.sleeps == []  # a live run that is not stopping is refused at once


def test_a_hold_taken_on_another_machine_refuses_even_when_its_pid_is_not_here():
    clock = Clock()
    host = Host(clock, other(node="hv9"))
    with pytest.raises(HostmaintError) as error:
        host_run(host, clock, start_of=starts()).take()
    assert "pid 4242 on hv9" in error.value.message
    assert "it was taken on hv9, where this run cannot see whether it still runs" in error.value.message
    assert "another run is working on hv1" in error.value.message


@pytest.mark.parametrize("theirs, start_of, why", [
    (other(), starts(), "its process 4242 is gone"),
    (other(), starts(p4242=1001), "its process 4242 is gone (the pid now belongs to another process)"),
    (other(boot_id="boot-0"), ALIVE, "hv1 has rebooted since"),
], ids=["pid-gone", "pid-reused", "rebooted"])
def test_a_stale_hold_is_taken_over_and_its_run_named_with_why(theirs, start_of, why):
    clock = Clock()
    host = Host(clock, theirs)
    run = host_run(host, clock, start_of=start_of)
    taken_over = run.take()
    assert taken_over == dict(theirs, why=why) and run.took_over == taken_over
    assert host.current["run_id"] == RUN and run.held == host.current
    assert "release_hold run-old" in host.calls  # only the stale run's hold is removed


@pytest.mark.parametrize("mark", [dict(stopping="SIGTERM was received"),
                                  dict(stop=dict(at="2026-11-25T18:05:00Z", reason="window closed"))],
                         ids=["stopping", "stop-request"])
def test_a_hold_whose_run_is_stopping_is_waited_for_until_it_is_released(mark):
    def the_old_run_ends(clock):
        if clock.elapsed >= 3.0:
            host.release_hold(OLD)

    clock = Clock(on_sleep=the_old_run_ends)
    host = Host(clock, other(**mark))
    run = host_run(host, clock)
    assert run.take() is None
    assert host.current["run_id"] == RUN
    assert clock.elapsed == 3.0 and set(clock.sleeps) == {0.5}


def test_a_stopping_run_that_keeps_its_hold_is_waited_for_at_most_stopping_wait_s_then_refused():
    clock = Clock()
    theirs = other(stopping="SIGTERM was received")
    host = Host(clock, theirs)
    with pytest.raises(HostmaintError) as error:
        host_run(host, clock).take()
    assert runs.STOPPING_WAIT_S <= clock.elapsed <= runs.STOPPING_WAIT_S + 0.5
    assert "is held by run run-old" in error.value.message and "another run is working on hv1" in error.value.message
    assert error.value.details == dict(held_by=theirs) and host.current == theirs


def test_a_hold_that_is_being_written_is_waited_for_not_polled_in_a_busy_loop():
    class Ticking(Clock):
        def __call__(self):  # time passes a little on every look, so the busy loop ends
            self.now += 0.01
            return self.now

    clock = Ticking()
    host = Host(clock, {})  # defined, its value not written (yet)
    with pytest.raises(HostmaintError):
        host_run(host, clock).take()
    assert clock.sleeps, "take() retried %d times without sleeping" % host.calls.count("take_hold")


# -- check (check mode) ---------------------------------------------------------------------------------------
def test_check_raises_only_for_a_live_hold_and_changes_nothing():
    clock = Clock()
    host = Host(clock, other())
    with pytest.raises(HostmaintError) as error:
        host_run(host, clock).check()
    assert "is held by run run-old" in error.value.message and "its process 4242 still runs" in error.value.message
    for current, start_of in ((None, ALIVE), (other(), starts()), (other(run_id=RUN), ALIVE)):
        host = Host(clock, current)
        run = host_run(host, clock, start_of=start_of)
        assert run.check() is None
        assert host.current == current and host.calls == ["hold"] and run.held is None and run.took_over is None


# -- release, stopping, stop_requested -------------------------------------------------------------------------
def test_release_removes_only_this_runs_own_hold():
    clock = Clock()
    host = Host(clock)
    run = host_run(host, clock)
    run.take()
    run.release()
    assert host.current is None and run.held is None and "release_hold run-new" in host.calls
    run.release()  # released already: nothing more is asked
    assert host.calls.count("release_hold run-new") == 1


def test_a_run_that_never_held_the_host_releases_nothing():
    clock = Clock()
    host = Host(clock, other())
    run = host_run(host, clock)
    with pytest.raises(HostmaintError):
        run.take()
    run.release()
    assert host.current == other() and not any(call.startswith("release_hold") for call in host.calls)


def test_release_leaves_a_hold_another_run_took_meanwhile():
    clock = Clock()
    host = Host(clock)
    run = host_run(host, clock)
    run.take()
    host.current = other()  # e.g. taken over as stale by another run
    run.release()
    assert host.current == other() and run.held is None


def failing_releases(host, failures):
    """release_hold fails ``failures`` times (libvirtd restarted: the connection is gone), then works."""
    works = host.release_hold
    left = [failures]

    def release_hold(run_id=None):
        if left[0]:
            host.calls.append("release_hold %s" % run_id)
            left[0] -= 1
            raise HostmaintError("cannot release the run hold on qemu:///system: connection reset")
        return works(run_id)

    host.release_hold = release_hold


def releasing(failures):
    """(host, run, seconds release() took) of a run that held its host and released it while ``failures``
    releases failed."""
    clock = Clock()
    host = Host(clock)
    run = host_run(host, clock)
    run.take()
    failing_releases(host, failures)
    started = clock.elapsed
    run.release()
    return host, run, clock.elapsed - started


def test_a_release_that_fails_once_is_tried_again_on_a_new_connection():
    host, run, _took = releasing(1)
    assert host.current is None and run.held is None
    assert host.calls[-3:] == ["release_hold run-new", "close", "release_hold run-new"]


def test_a_host_that_does_not_answer_keeps_the_hold_and_release_is_not_an_error():
    host, run, took = releasing(1000)  # no error: the next run finds the hold stale, or names it
    assert host.current["run_id"] == RUN and run.held is None
    assert runs.RELEASE_WAIT_S <= took <= runs.RELEASE_WAIT_S + 2  # bounded
    assert "close" in host.calls  # a new connection for each try


def test_a_host_whose_libvirtd_comes_back_gets_its_hold_released():
    host, run, _took = releasing(2)
    assert host.current is None and run.held is None


def test_stopping_says_so_in_this_runs_hold():
    clock = Clock()
    host = Host(clock)
    run = host_run(host, clock)
    run.stopping("SIGTERM was received")  # before the hold is taken: nothing is written
    assert "update_hold" not in host.calls
    run.take()
    run.stopping("SIGTERM was received")
    assert host.current == dict(run.held, stopping="SIGTERM was received")

    def unreachable(info):
        raise HostmaintError("cannot write the run hold on qemu:///system: connection reset")

    host.update_hold = unreachable
    run.stopping("the controller went away")  # best effort: no error


@pytest.mark.parametrize("stop, said", [
    (None, None),
    (dict(at="2026-11-25T18:05:00Z", reason="window closed"), "an operator asked it to stop (window closed)"),
    (dict(at="2026-11-25T18:05:00Z", reason=None), "an operator asked it to stop"),
    (dict(at="2026-11-25T18:05:00Z"), "an operator asked it to stop"),
    ("not a request", None),
])
def test_stop_requested_reads_the_operators_request_from_the_hold(stop, said):
    clock = Clock()
    host = Host(clock)
    run = host_run(host, clock)
    run.take()
    if stop is not None:
        host.update_hold(dict(run.held, stop=stop))
    assert run.stop_requested() == said


def test_stop_requested_on_a_host_without_hold_is_none():
    clock = Clock()
    assert host_run(Host(clock), clock).stop_requested() is None


# -- StopWatch -------------------------------------------------------------------------------------------------
class Remote(object):
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer  # pylint: disable=raising-bad-type
        return answer


def test_a_stop_watch_with_no_request_says_none():
    assert runs.StopWatch().reason() is None
    assert runs.StopWatch(remote=Remote(), clock=Clock()).reason() is None


def test_the_first_reason_wins():
    watch = runs.StopWatch()
    watch.request("SIGINT was received")
    watch.request("the controller went away (its connection to this host was closed)")
    assert watch.reason() == "SIGINT was received"


def test_the_hold_is_read_at_most_once_per_remote_check_interval():
    clock = Clock()
    remote = Remote()
    watch = runs.StopWatch(remote=remote, clock=clock)
    assert watch.reason() is None and remote.calls == 1
    clock.now += runs.REMOTE_CHECK_S / 2
    assert watch.reason() is None and watch.reason() is None and remote.calls == 1
    clock.now += runs.REMOTE_CHECK_S / 2
    assert watch.reason() is None and remote.calls == 2


def test_a_stop_request_in_the_hold_is_the_reason_and_the_hold_is_not_read_again():
    clock = Clock()
    remote = Remote(None, "an operator asked it to stop (window closed)")
    watch = runs.StopWatch(remote=remote, clock=clock)
    assert watch.reason() is None
    clock.now += runs.REMOTE_CHECK_S
    assert watch.reason() == "an operator asked it to stop (window closed)"
    clock.now += 10 * runs.REMOTE_CHECK_S
    watch.request("SIGTERM was received")
    assert watch.reason() == "an operator asked it to stop (window closed)" and remote.calls == 2


def test_a_hold_that_cannot_be_read_is_no_reason_and_is_read_again_later():
    clock = Clock()
    remote = Remote(HostmaintError("cannot read the run hold on qemu:///system: connection reset"), "stop it")
    watch = runs.StopWatch(remote=remote, clock=clock)
    assert watch.reason() is None and remote.calls == 1
    assert watch.reason() is None and remote.calls == 1  # not again within the interval
    clock.now += runs.REMOTE_CHECK_S
    assert watch.reason() == "stop it" and remote.calls == 2


def test_a_signal_already_seen_means_the_hold_is_not_read():
    clock = Clock()
    remote = Remote("an operator asked it to stop")
    watch = runs.StopWatch(remote=remote, clock=clock)
    watch._on_signal(signal.SIGTERM, None)
    assert watch.reason() == "SIGTERM was received" and remote.calls == 0


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGHUP"])
def test_each_stop_signal_gives_its_name(name):
    watch = runs.StopWatch()
    watch._on_signal(getattr(signal, name), None)
    assert watch.reason() == "%s was received" % name


def test_a_signal_the_watch_does_not_know_gives_its_number():
    watch = runs.StopWatch()
    watch._on_signal(99, None)
    assert watch.reason() == "signal 99 was received"


def test_a_hung_up_controller_channel_is_a_reason_to_stop():
    read_end, write_end = os.pipe()
    try:
        os.close(read_end)  # the controller is gone: what we would write goes nowhere (POLLERR)
        watch = runs.StopWatch()
        watch._watch_stdout(fd=write_end, interval_ms=10)  # returns once it has seen it
        assert watch.reason() == "the controller went away (its connection to this host was closed)"
    finally:
        os.close(write_end)


def test_a_controller_watch_ends_once_another_reason_is_there():
    read_end, write_end = os.pipe()
    try:
        watch = runs.StopWatch()
        watch.request("SIGTERM was received")
        watch._watch_stdout(fd=write_end, interval_ms=10)  # the channel is fine; it does not loop forever
        assert watch.reason() == "SIGTERM was received"
    finally:
        os.close(read_end)
        os.close(write_end)


# -- settle: what was under way before the plan -------------------------------------------------------------------
def records(**by_guest):
    table = dict((guest, MigrationRecord("hv1", "uuid-hv1", run_id, SINCE)) for guest, run_id in by_guest.items())
    return table.get


def taken_over(host, clock, start_of=starts()):
    """A run that took over run-old's stale hold (its process 4242 is gone)."""
    host.current = other()
    run = host_run(host, clock, start_of=start_of)
    assert run.take()["why"] == "its process 4242 is gone"
    return run


def test_a_quiet_host_is_settled_at_once_with_nothing_done():
    # a move another run checked against the mark just before it was set reads it again once its guest is
    # active here (executor.arrival_mark): nothing to wait for here
    clock = Clock()
    run = host_run(Host(clock), clock)
    run.take()
    assert run.settle(records()) == []
    assert runs.QUIET_S == 0 and clock.elapsed == 0


def test_what_the_dead_run_left_running_is_aborted_and_its_record_cleared_the_guest_stays():
    clock = Clock()
    host = Host(clock, jobs=[("web1", "out", 0, 1e9)])
    run = taken_over(host, clock)
    done = run.settle(records(web1=OLD))
    assert done == [dict(guest="web1", direction="out", action="aborted", run_id=OLD, reason=(
        "the migration of web1 that run run-old left running (its process 4242 is gone) was aborted; web1 keeps "
        "running on hv1; its record from run run-old was cleared"))]
    assert host.aborted == ["web1"] and host.cleared == ["web1"]
    assert host.calls.count("abort_job web1") == 1  # seen on every poll, aborted once


def test_a_record_that_cannot_be_cleared_is_noted_not_fatal():
    clock = Clock()
    host = Host(clock, jobs=[("web1", "out", 0, 1e9)], clear_fails="cannot clear the migration record of web1")
    run = taken_over(host, clock)
    (done,) = run.settle(records(web1=OLD))
    assert done["action"] == "aborted"
    assert done["reason"].endswith("; its record from run run-old stays (cannot clear the migration record of web1)")


def test_a_migration_of_the_dead_run_that_does_not_end_after_its_abort_stops_the_run():
    clock = Clock()
    host = Host(clock, jobs=[("web1", "out", 0, 1e9)], abort_ends=False)
    run = taken_over(host, clock)
    with pytest.raises(HostmaintError) as error:
        run.settle(records(web1=OLD))
    assert error.value.message == ("cannot stop the migration of web1 that run run-old left running on hv1: it did "
                                   "not end within 30 s of its abort")
    assert host.cleared == []


def test_every_other_migration_is_waited_for_until_the_host_is_quiet():
    clock = Clock()
    # web1: an operator's virsh migrate (no record); web2: another run's; web3: coming in; web4: the dead run's
    # but inbound (driven by the other host): nothing here to abort
    host = Host(clock, jobs=[("web1", "out", 0, 4), ("web2", "out", 0, 2), ("web3", "in", 1, 6),
                             ("web4", "in", 0, 3)])
    run = taken_over(host, clock)
    done = run.settle(records(web2="run-other", web4=OLD))
    assert done == [
        dict(guest="web1", direction="out", action="waited", run_id=None,
             reason="waited for the outbound migration of web1 already under way from hv1"),
        dict(guest="web2", direction="out", action="waited", run_id="run-other",
             reason="waited for the outbound migration of web2 already under way from hv1"),
        dict(guest="web4", direction="in", action="waited", run_id=None,
             reason="waited for the inbound migration of web4 already under way into hv1"),
        dict(guest="web3", direction="in", action="waited", run_id=None,
             reason="waited for the inbound migration of web3 already under way into hv1"),
    ]
    assert host.aborted == [] and host.cleared == []
    assert 6 + runs.QUIET_S - 0.5 <= clock.elapsed <= 6 + runs.QUIET_S + 0.5  # the last one, then QUIET_S


def test_without_a_run_taken_over_nothing_is_aborted():
    clock = Clock()
    host = Host(clock, jobs=[("web1", "out", 0, 2)])
    run = host_run(host, clock)
    run.take()
    (done,) = run.settle(records(web1=OLD))
    assert done["action"] == "waited" and done["run_id"] == OLD and host.aborted == []


def test_a_migration_that_starts_while_another_is_waited_for_is_waited_for_too():
    clock = Clock()
    start = 0.5  # web2 starts while web1 still comes in
    host = Host(clock, jobs=[("web1", "in", 0, 1), ("web2", "in", start, start + 1)])
    run = host_run(host, clock)
    run.take()
    done = run.settle(records())
    assert [d["guest"] for d in done] == ["web1", "web2"]
    assert clock.elapsed >= start + 1 + runs.QUIET_S - 0.5


def test_migrations_still_under_way_after_wait_s_stop_the_run_naming_them():
    clock = Clock()
    host = Host(clock, jobs=[("web2", "out", 0, 1e9), ("web1", "in", 0, 1e9), ("web3", "in", 0, 1)])
    run = host_run(host, clock)
    run.take()
    with pytest.raises(HostmaintError) as error:
        run.settle(records(), wait_s=10)
    assert error.value.message == ("cannot plan for hv1: the inbound migration of web1, the outbound migration of "
                                   "web2 still under way after 10 s; nothing was moved")
    assert 10 <= clock.elapsed <= 10.5 and host.aborted == []


def test_a_migration_that_ends_just_before_the_deadline_does_not_stop_the_run():
    clock = Clock()
    host = Host(clock, jobs=[("web1", "in", 0, 9.5)])
    run = host_run(host, clock)
    run.take()
    done = run.settle(records(), wait_s=10)
    assert [d["guest"] for d in done] == ["web1"]


# -- keep_log, read_log ------------------------------------------------------------------------------------------
def test_a_kept_log_is_read_back_and_leaves_no_temporary_file(tmp_path):
    directory = str(tmp_path / "var" / "runs")
    result = dict(changed=True, summary=dict(moves=4, moved=2), remaining=["web3", "web4"], since=object)
    path = runs.keep_log(result, RUN, directory=directory)
    assert path == os.path.join(directory, RUN + ".json")
    assert os.listdir(directory) == [RUN + ".json"]
    assert os.stat(directory).st_mode & 0o077 == 0  # created for root's eyes only
    back = runs.read_log(RUN, directory=directory)
    assert back == dict(changed=True, summary=dict(moves=4, moved=2), remaining=["web3", "web4"], since=str(object))
    with open(path) as handle:
        assert json.load(handle) == back


def test_a_log_written_again_replaces_the_old_one(tmp_path):
    runs.keep_log(dict(n=1), RUN, directory=str(tmp_path))
    runs.keep_log(dict(n=2), RUN, directory=str(tmp_path))
    assert runs.read_log(RUN, directory=str(tmp_path)) == dict(n=2)


def test_a_missing_or_broken_log_reads_as_none(tmp_path):
    assert runs.read_log(RUN, directory=str(tmp_path)) is None
    assert runs.read_log(RUN, directory=str(tmp_path / "nowhere")) is None
    (tmp_path / (RUN + ".json")).write_text("{not json")
    assert runs.read_log(RUN, directory=str(tmp_path)) is None


def test_a_log_that_cannot_be_written_is_not_an_error(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("a file where the folder should be")
    assert runs.keep_log(dict(n=1), RUN, directory=str(blocker)) is None
    assert runs.keep_log(dict(n=1), RUN, directory=str(blocker / "below")) is None
