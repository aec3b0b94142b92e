# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disk mover's order of steps, bounds and aborts, on a fake host whose block copies follow a script."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import disk_moves, progress
from ansible_collections.hostmaint.libvirt.plugins.module_utils.disk_mover import DiskMover
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Disk, Guest

GIB = 1024 ** 3
SRC = "/var/lib/libvirt/images/g1.qcow2"
DST = "/srv/new/g1.qcow2"


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeHost(object):
    """One guest g1 with disk vda on SRC. ``ready_after`` polls until READY (None: never); ``progress`` whether
    the copy's counter moves; ``fail`` {method: message} raises once."""

    def __init__(self, live=True, ready_after=3, progress=True, persistent=True):
        self.live = live
        self.persistent = persistent
        self.source = SRC
        self.inactive = SRC
        self.volumes = {SRC: dict(name="g1.qcow2", pool="default", capacity=GIB, allocation=200 << 20,
                                  format="qcow2")}
        self.job = None
        self.polls = 0
        self.ready_after = ready_after
        self.progress = progress
        self.record = None
        self.calls = []
        self.fail = {}
        self.names = {}  # path -> other guests naming it
        self.synchronous_used = []

    def _log(self, *call):
        self.calls.append(call)
        message = self.fail.pop(call[0], None)
        if message:
            raise HostmaintError(message)

    def alive(self):
        return True

    def close(self):
        pass

    def set_disk_move_record(self, name, record):
        self._log("set_disk_move_record", name)
        self.record = record

    def clear_disk_move_record(self, name):
        self._log("clear_disk_move_record", name)
        self.record = None

    def create_volume(self, pool, volume, capacity, fmt):
        self._log("create_volume", pool, volume)
        self.volumes[DST] = dict(name=volume, pool=pool, capacity=capacity, allocation=0, format=fmt)
        return DST

    def copy_volume(self, source, pool, volume, fmt):
        self._log("copy_volume", source, pool)
        self.volumes[DST] = dict(self.volumes[source], name=volume, pool=pool)
        return DST

    def start_block_copy(self, name, target, dest, fmt, bandwidth_mib=0, synchronous=False):
        self._log("start_block_copy", name, target, dest, synchronous)
        self.synchronous_used.append(synchronous)
        self.job = dict(dest=dest, cur=0, end=200 << 20, synchronous=synchronous)
        self.polls = 0

    def block_copy_state(self, name, target):
        self._log("block_copy_state", name)
        if self.job is None:
            return dict(source=self.source, mirror=None, cur=None, end=None, job=False)
        self.polls += 1
        if self.progress:
            self.job["cur"] = min(self.job["end"], self.job["cur"] + (50 << 20))
        ready = (self.ready_after is not None and self.polls > self.ready_after) or (
            self.job["synchronous"] and self.polls > 1)
        return dict(source=self.source, mirror=dict(dest=self.job["dest"], ready=ready, job="copy"),
                    cur=self.job["cur"], end=self.job["end"], job=True)

    def end_block_copy(self, name, target, pivot, wait_s=30.0):
        self._log("end_block_copy", name, pivot)
        if pivot:
            self.source = self.job["dest"]
        self.job = None
        return True

    def disk_sources(self, name, target):
        self._log("disk_sources", name)
        return (self.source if self.live else None), (self.inactive if self.persistent else None)

    def set_disk_source(self, name, target, path, fmt=None):
        self._log("set_disk_source", name, path)
        changed = self.inactive != path
        self.inactive = path
        if not self.live:
            self.source = path
        return changed

    def guest_state(self, name):
        return ("running" if self.live else "shutoff"), self.persistent

    def delete_volumes(self, paths):
        self._log("delete_volumes", tuple(paths))
        for path in paths:
            self.volumes.pop(path, None)
        return list(paths)

    def definitions_naming(self, paths):
        found = {}
        for path in paths:
            found[path] = dict((name, ["inactive", "live"]) for name in self.names.get(path, []))
            if path in (self.source, self.inactive):
                found[path]["g1"] = ["live"]
        return found

    def volume_info(self, paths):
        return dict((p, self.volumes[p]) for p in paths if p in self.volumes)


def make_plan(host, live=True):
    guest = Guest(name="g1", uuid="u1", state="running" if live else "shutoff", disks=[
        Disk(target="vda", path=SRC, format="qcow2", pool="default")])
    pools = {"default": dict(active=True, available=10 * GIB, path="/var/lib/libvirt/images"),
             "new": dict(active=True, available=10 * GIB, path="/srv/new")}
    return disk_moves.plan(guest, "hv1", "new", pools, host.volume_info([SRC]), from_pool="default")


def mover(host, clock, **kwargs):
    return DiskMover(host, "run-1", clock=clock, sleep=clock.sleep, **kwargs)


def test_a_live_move_records_first_copies_until_ready_pivots_and_makes_both_definitions_name_the_copy():
    host, clock = FakeHost(), Clock()
    result = mover(host, clock).move(make_plan(host))[0]
    assert result["outcome"] == "moved", result["reason"]
    assert host.source == DST and host.inactive == DST
    names = [c[0] for c in host.calls]
    assert names.index("set_disk_move_record") < names.index("create_volume") < names.index("start_block_copy")
    assert names.index("end_block_copy") < names.index("set_disk_source") < names.index("clear_disk_move_record")
    assert ("end_block_copy", "g1", True) in host.calls
    assert host.record is None
    assert result["source_after"] == "kept" and SRC in host.volumes
    assert result["bytes"] == 200 << 20 and result["synchronous"] is False  # the data the disk held
    assert "its definition was updated" in result["reason"]


def test_delete_after_a_verified_pivot_only_when_no_definition_names_the_source():
    host, clock = FakeHost(), Clock()
    result = mover(host, clock, source_after="delete").move(make_plan(host))[0]
    assert result["source_after"] == "deleted" and SRC not in host.volumes
    host, clock = FakeHost(), Clock()
    host.names[SRC] = ["clone1"]
    result = mover(host, clock, source_after="delete").move(make_plan(host))[0]
    assert result["source_after"] == "kept" and SRC in host.volumes
    assert "clone1 still names it" in result["reason"]


def test_a_shared_source_is_kept_when_a_host_that_may_name_it_did_not_answer():
    host, clock = FakeHost(), Clock()
    plan = make_plan(host)
    result = mover(host, clock, source_after="delete", unknown_hosts=["hv2"], shared_pools=["default"]).move(plan)[0]
    assert result["source_after"] == "kept" and "hv2 did not answer" in result["reason"]


def test_a_copy_without_progress_is_aborted_the_guest_stays_on_its_source_and_only_our_volume_goes():
    host, clock = FakeHost(ready_after=None, progress=False), Clock()
    result = mover(host, clock, stall_s=10).move(make_plan(host))[0]
    assert result["outcome"] == "failed" and "no progress for 10 s" in result["reason"]
    assert host.source == SRC and host.inactive == SRC
    assert ("end_block_copy", "g1", False) in host.calls
    assert DST not in host.volumes and SRC in host.volumes
    assert host.record is None


def test_a_stop_request_aborts_the_copy_without_a_pivot():
    host, clock = FakeHost(ready_after=None), Clock()
    asked = []

    def stop():
        return "an operator asked it to stop" if len(host.calls) > 6 else None
    result = mover(host, clock, stop=stop).move(make_plan(host))[0]
    del asked
    assert result["outcome"] == "aborted" and "an operator asked it to stop" in result["reason"]
    assert host.source == SRC and DST not in host.volumes
    assert not any(c[0] == "end_block_copy" and c[2] for c in host.calls)


def test_a_copy_that_misses_its_bound_starts_once_more_with_synchronous_writes():
    host, clock = FakeHost(ready_after=None), Clock()
    result = mover(host, clock, ready_timeout_s=5).move(make_plan(host))[0]
    assert result["outcome"] == "moved" and result["synchronous"] is True
    assert host.synchronous_used == [False, True]
    assert "with synchronous writes" in result["reason"]


def test_never_means_the_bound_aborts():
    host, clock = FakeHost(ready_after=None), Clock()
    result = mover(host, clock, ready_timeout_s=5, synchronous="never").move(make_plan(host))[0]
    assert result["outcome"] == "failed" and "not ready within 5 s" in result["reason"]
    assert host.synchronous_used == [False] and host.source == SRC


def test_always_uses_synchronous_writes_from_the_start():
    host, clock = FakeHost(ready_after=None), Clock()
    result = mover(host, clock, synchronous="always").move(make_plan(host))[0]
    assert result["outcome"] == "moved" and host.synchronous_used == [True]


def test_a_failed_cleanup_keeps_the_record_for_a_re_run():
    host, clock = FakeHost(ready_after=None, progress=False), Clock()
    host.fail["delete_volumes"] = "cannot delete it"
    result = mover(host, clock, stall_s=5).move(make_plan(host))[0]
    assert result["outcome"] == "failed" and "its disk move record stays" in result["reason"]
    assert host.record is not None and host.record["disks"][0]["dest"] == DST


def test_a_pivot_that_did_not_take_is_undone_and_reported():
    host, clock = FakeHost(), Clock()
    original = host.end_block_copy

    def no_switch(name, target, pivot, wait_s=30.0):
        host.calls.append(("end_block_copy", name, pivot))
        host.job = None
        return True
    host.end_block_copy = no_switch
    result = mover(host, clock).move(make_plan(host))[0]
    del original
    assert result["outcome"] == "failed" and "still names %s" % SRC in result["reason"]
    assert host.source == SRC and DST not in host.volumes


def test_an_offline_copy_updates_the_definition():
    host, clock = FakeHost(live=False), Clock()
    result = mover(host, clock).move(make_plan(host, live=False))[0]
    assert result["outcome"] == "moved" and host.inactive == DST
    assert not any(c[0] == "start_block_copy" for c in host.calls)


@pytest.mark.parametrize("source, job, action", [(DST, None, "finish"), (SRC, DST, "abort"), (SRC, None, "undo"),
                                                 ("/elsewhere", None, "leave")])
def test_recover_finishes_or_undoes_what_a_dead_run_left(source, job, action):
    host, clock = FakeHost(), Clock()
    host.volumes[DST] = dict(name="g1.qcow2", pool="new", capacity=GIB, allocation=0, format="qcow2")
    host.source = source
    if job:
        host.job = dict(dest=job, cur=0, end=1, synchronous=False)
    record = dict(run_id="dead", disks=[dict(target="vda", source=SRC, dest=DST, created=True, phase="copying")])
    host.record = record
    done = mover(host, clock).recover("g1", record)
    assert [d["action"] for d in done] == [action]
    assert host.record is None
    if action == "finish":
        assert host.inactive == DST and DST in host.volumes
    if action in ("abort", "undo"):
        assert DST not in host.volumes and host.source == SRC and host.job is None
    if action == "leave":
        assert DST in host.volumes


# -- progress: one entry per disk, keyed guest/target (module_utils/progress.py) ------------------------------
def test_a_live_move_tells_its_progress_start_copy_pivot_check_and_end_and_a_failed_one_its_reason():
    host, clock = FakeHost(), Clock()
    written = []
    recorder = progress.Recorder("/nowhere", host="hv1", clock=clock, write=lambda path, data: written.append(data),
                                 interval_s=0)
    work = mover(host, clock, progress=recorder)
    plan = make_plan(host)
    work.queued([plan])
    work.move(plan)
    last = recorder.close()
    assert [(e["key"], e["phase"]) for e in last["events"]] == [
        ("g1/vda", "started"), ("g1/vda", "switchover"), ("g1/vda", "checked"), ("g1/vda", "done")]
    entry = last["moves"][0]
    assert (entry["guest"], entry["route"], entry["action"]) == ("g1 vda", "default->new", "disk")
    assert entry["outcome"] == "moved"
    assert any(m["copied"] and m["phase"] == "started" for state in written for m in state["moves"])

    host, clock = FakeHost(ready_after=None, progress=False), Clock()
    recorder = progress.Recorder("/nowhere", host="hv1", clock=clock, write=lambda path, data: None)
    work = mover(host, clock, stall_s=10, progress=recorder)
    plan = make_plan(host)
    work.queued([plan])
    work.move(plan)
    failed = recorder.close()["events"][-1]
    assert failed["phase"] == "failed" and "no progress for 10 s" in failed["reason"]
