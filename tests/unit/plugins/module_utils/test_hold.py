# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run hold judged in plain Python: verdicts with their reasons, and the start time read from a /proc that
the test lays out under a temporary folder (no real process is looked at, except in the one sanity check)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import hold as holds

NODE, BOOT = "hv1", "boot-1"
RUN = "20261125T180000Z-1a2b3c"


def other(**changes):
    """The hold of another run, taken on this machine in this boot by process 4242 started at tick 1000."""
    found = holds.make(RUN, "evacuate", "2026-11-25T18:00:00Z", NODE, BOOT, 4242, 1000)
    found.update(changes)
    return found


def starts(**by_pid):
    """start_of for a machine whose processes are {pid: start}; every other pid is gone."""
    table = dict((int(pid[1:]), start) for pid, start in by_pid.items())
    return table.get


def stat_line(pid, comm, start):
    """A /proc/<pid>/stat line whose field 22 (start time) is ``start``; ``comm`` goes between parentheses."""
    after = ["S", "1", str(pid), str(pid), "0", "-1", "4194560", "100", "0", "0", "0", "7", "3", "0", "0", "20", "0",
             "1", "0", str(start), "12345678", "100"]
    return "%d (%s) %s\n" % (pid, comm, " ".join(after))


def fake_proc(root, pid, comm="python3", start=98765, boot_id=None):
    directory = root / "proc" / str(pid)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "stat").write_text(stat_line(pid, comm, start))
    if boot_id is not None:
        kernel = root / "proc" / "sys" / "kernel" / "random"
        kernel.mkdir(parents=True, exist_ok=True)
        (kernel / "boot_id").write_text(boot_id + "\n")
    return str(root)


# -- judge ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("found", [None, {}])
def test_no_hold_is_free(found):
    assert holds.judge(found, "mine", NODE, BOOT, starts()) == (holds.FREE, "no run holds the host")


def test_its_own_hold_is_mine_whatever_its_process():
    assert holds.judge(other(), RUN, NODE, BOOT, starts()) == (holds.MINE, "this run holds the host")


@pytest.mark.parametrize("found, start_of, verdict, why", [
    # another machine: whether its process still runs cannot be seen from here, even when the pid is gone here
    (other(node="hv9"), starts(), holds.LIVE, "it was taken on hv9, where this run cannot see whether it still runs"),
    (other(node="hv9", boot_id="boot-0"), starts(), holds.LIVE,
     "it was taken on hv9, where this run cannot see whether it still runs"),
    # this machine, another boot: gone with that boot, even if a process of that pid runs now
    (other(boot_id="boot-0"), starts(p4242=1000), holds.STALE, "hv1 has rebooted since"),
    (other(), starts(), holds.STALE, "its process 4242 is gone"),
    (other(), starts(p4242=2000), holds.STALE,
     "its process 4242 is gone (the pid now belongs to another process)"),
    (other(), starts(p4242=1000), holds.LIVE, "its process 4242 still runs"),
    # a hold that does not say when its process started: the pid alone says it runs
    (other(started=None), starts(p4242=2000), holds.LIVE, "its process 4242 still runs"),
    # a hold that does not say its boot: judged by its process
    (other(boot_id=None), starts(), holds.STALE, "its process 4242 is gone"),
    # no usable pid: nothing proves the run gone
    (other(pid=None), starts(), holds.LIVE, "it names no process"),
    (other(pid=0), starts(), holds.LIVE, "it names no process"),
    (other(pid=-3), starts(), holds.LIVE, "it names no process"),
    (other(pid="4242"), starts(p4242=1000), holds.LIVE, "it names no process"),
    (dict((k, v) for k, v in other().items() if k != "pid"), starts(), holds.LIVE, "it names no process"),
], ids=["other-node", "other-node-other-boot", "other-boot", "pid-gone", "pid-reused", "same-process",
        "no-start-time", "no-boot-id", "pid-none", "pid-zero", "pid-negative", "pid-string", "pid-missing"])
def test_a_hold_of_another_run_is_live_or_stale_with_its_reason(found, start_of, verdict, why):
    assert holds.judge(found, "mine", NODE, BOOT, start_of) == (verdict, why)


def test_when_this_machine_cannot_read_its_boot_id_the_process_decides():
    assert holds.judge(other(boot_id="boot-0"), "mine", NODE, None, starts(p4242=1000)) == (
        holds.LIVE, "its process 4242 still runs")


def test_the_process_is_only_looked_up_on_this_machine_and_boot():
    asked = []

    def start_of(pid):
        asked.append(pid)
        return 1000

    holds.judge(other(node="hv9"), "mine", NODE, BOOT, start_of)
    holds.judge(other(boot_id="boot-0"), "mine", NODE, BOOT, start_of)
    assert asked == []
    holds.judge(other(), "mine", NODE, BOOT, start_of)
    assert asked == [4242]


# -- process_start, this_process ---------------------------------------------------------------------------
@pytest.mark.parametrize("comm", [
    "python3",
    "ansible module",
    "a) b (c",
    ") S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19",  # a name that looks like the fields after it
    "(((",
    "x)",
])
def test_the_start_time_is_field_22_whatever_the_command_name(tmp_path, comm):
    root = fake_proc(tmp_path, 4242, comm=comm, start=98765)
    assert holds.process_start(4242, root) == 98765


def test_a_process_that_is_not_there_has_no_start_time(tmp_path):
    root = fake_proc(tmp_path, 4242)
    assert holds.process_start(4243, root) is None
    assert holds.process_start("4242", root) == 98765  # a pid as text is read as the same process


@pytest.mark.parametrize("text", [
    "",
    "4242 (python3) S 1 2 3",  # cut short
    "4242 (python3) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 soon 20",  # field 22 is not a number
], ids=["empty", "short", "not-a-number"])
def test_a_stat_that_cannot_be_read_gives_no_start_time(tmp_path, text):
    directory = tmp_path / "proc" / "4242"
    directory.mkdir(parents=True)
    (directory / "stat").write_text(text)
    assert holds.process_start(4242, str(tmp_path)) is None


def test_this_process_reads_its_boot_and_start_time_under_the_root(tmp_path):
    root = fake_proc(tmp_path, os.getpid(), comm="ansible (module)", start=5555, boot_id="3f1c-boot")
    assert holds.this_process(root) == (os.uname()[1], "3f1c-boot", os.getpid(), 5555)


def test_this_process_under_an_empty_root_knows_only_its_node_and_pid(tmp_path):
    assert holds.this_process(str(tmp_path)) == (os.uname()[1], None, os.getpid(), None)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc on this machine")
def test_the_real_proc_gives_this_process_a_start_time_that_judges_it_live():
    node, boot_id, pid, started = holds.this_process()
    assert isinstance(started, int) and started >= 0
    assert holds.process_start(pid) == started
    found = holds.make("other", "evacuate", "2026-11-25T18:00:00Z", node, boot_id, pid, started)
    assert holds.judge(found, "mine", node, boot_id, holds.process_start) == (
        holds.LIVE, "its process %d still runs" % pid)
    assert holds.judge(dict(found, started=started + 1), "mine", node, boot_id, holds.process_start)[0] == holds.STALE


# -- make, describe, stop_request ---------------------------------------------------------------------------
def test_make_holds_everything_judge_and_describe_need():
    assert holds.make(RUN, "restore", "2026-11-25T18:00:00Z", NODE, BOOT, 4242, 1000) == dict(
        run_id=RUN, action="restore", since="2026-11-25T18:00:00Z", node=NODE, boot_id=BOOT, pid=4242, started=1000)


def test_describe_names_the_run_its_action_since_when_and_its_process():
    assert holds.describe(other()) == (
        "run 20261125T180000Z-1a2b3c (evacuate, since 2026-11-25T18:00:00Z, pid 4242 on hv1)")
    assert holds.describe({}) == "run None (None, since None, pid None on None)"


@pytest.mark.parametrize("found, wanted", [
    (None, None),
    ({}, None),
    (other(), None),
    (other(stop="please"), None),
    (other(stop=dict(at="2026-11-25T18:05:00Z", by="ops", reason="window closed")),
     dict(at="2026-11-25T18:05:00Z", by="ops", reason="window closed")),
    (other(stop={}), {}),
])
def test_stop_request_is_the_dict_a_hold_carries(found, wanted):
    assert holds.stop_request(found) == wanted
