# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live storage migration on the lab: disk_move between hv1's pools default and spare while the guest runs and its
disk writer (tests/lab/guest/diskwriter.c) writes numbered, checksummed records with O_DIRECT|O_DSYNC.

The judge: where virsh says the disk is (live and inactive definitions), every record the writer had acknowledged
before and during the move read back from the disk the guest uses afterwards (/cgi-bin/diskverify, and after a
restart the boot scan /diskscan), the guest never restarted unless the test restarted it, no block job and no
disk move record left, and only the volume a run created deleted after an abort."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

import pytest

from bench_evacuate import disk_acked, disk_verified, page
from conftest import HTTP_ERRORS, Prober, answer_of, result_of, start_ad_hoc

IMAGES, SPARE = "/var/lib/libvirt/images", "/var/lib/libvirt/spare"
RECORD_NS = "urn:hostmaint:libvirt:disk-move:1"


def acked(address):
    """The last record the guest's disk writer had acknowledged (its /diskcheck)."""
    found = disk_acked(address)
    assert found is not None, "the disk writer reports %r" % page(address, "diskcheck")
    return found


def assert_every_write_there(address, at_least):
    """The writer's verify reads back every record up to what it had acknowledged: none missing or damaged, and at
    least ``at_least`` of them (what was acknowledged before the step the test judges)."""
    upper, line = disk_verified(address)
    assert upper is not None, "the disk lost acknowledged writes: %s" % line
    assert upper >= at_least, "the disk holds records up to %d, but %d were acknowledged before: %s" % (
        upper, at_least, line)
    return upper


def disk_of(lab, host, guest, inactive=False):
    xml = lab.virsh(host, "dumpxml", guest, *(["--inactive"] if inactive else [])).stdout
    return re.search(r"<source file='([^']+)'", xml).group(1)


def no_leftovers(lab, host, guest):
    """No block job on the guest's disk and no disk move record on it."""
    info = lab.virsh(host, "blockjob", guest, "vda", "--info").stdout
    assert "No current block job" in info or not info.strip(), "a block job is left on %s: %s" % (guest, info)
    record = lab.virsh(host, "metadata", guest, "--uri", RECORD_NS, check=False)
    assert record.returncode != 0 or not record.stdout.strip(), "a disk move record is left: %s" % record.stdout


def restarted_scan(lab, host, name, address):
    """Restarts the guest (virsh destroy and start) and returns (the last record its writer's boot scan found with
    none missing or damaged, or None; the scan's line). The writer's acknowledgements live in the guest's memory,
    so only the judge remembers them across a restart: it compares them with this."""
    lab.virsh(host, "destroy", name)
    lab.virsh(host, "start", name)
    assert answer_of(address, within=60), "%s did not come back after its restart" % name
    deadline, scan = time.time() + 30, ""
    while time.time() < deadline:
        try:
            scan = page(address, "diskscan")
            break
        except HTTP_ERRORS:
            time.sleep(0.5)
    last = re.match(r"^ok last=(\d+) ", scan)
    return (int(last.group(1)) if last else None), scan


def volumes(lab, host, pool):
    return [line.split()[0] for line in lab.virsh(host, "vol-list", pool).stdout.splitlines() if line.strip()]


def wait_for_mirror(lab, host, guest, within=30, ready=False):
    """Until the guest's live definition shows its block copy (``ready``: the copy has reached READY, libvirt's
    <mirror ready='yes'>: a pivot would now be accepted)."""
    deadline = time.time() + within
    while time.time() < deadline:
        xml = lab.virsh(host, "dumpxml", guest).stdout
        if "<mirror" in xml and (not ready or re.search(r"<mirror [^>]*ready='yes'", xml)):
            return
        time.sleep(0.2)
    raise AssertionError("no block copy of %s %s within %d s" % (guest, "was ready" if ready else "showed", within))


def hold_pid(lab, host):
    """The pid of the run that holds host (its hold secret's value)."""
    for line in lab.virsh(host, "secret-list").stdout.splitlines():
        if "hostmaint:hold" in line:
            value = lab.virsh(host, "secret-get-value", line.split()[0]).stdout.strip()
            return int(json.loads(base64.b64decode(value))["pid"])
    raise AssertionError("%s is not held" % host)


@pytest.fixture()
def writer_guest(lab):
    """A guest on hv1 with its 1 GiB disk on pool default and its writer at 100 records/s; removed afterwards
    (with its volumes in both pools)."""
    made = []

    def make(name):
        guest = lab.add_guest(name, "hv1", "--disk", "local", "--disk-writer", "100")
        made.append(name)
        time.sleep(1.0)  # some records acknowledged before anything acts on the disk
        return guest
    yield make
    for name in made:
        lab.remove_guest(name)
        for pool in ("default", "spare"):
            lab.virsh("hv1", "vol-delete", "%s.qcow2" % name, "--pool", pool, check=False)


def test_a_disk_moves_while_the_writer_runs_and_the_guest_boots_from_the_copy_with_every_write(lab, writer_guest):
    guest = writer_guest("dmv1")
    args = dict(guest="dmv1", from_pool="default", to_pool="spare", copy_bandwidth_mib=200)
    check = lab.ansible("hv1", "hostmaint.libvirt.disk_move", args, check=True)["hv1"]
    assert not check.get("failed"), check.get("msg")
    copies = check["plans"][0]["copies"]
    assert [(c["target"], c["source"], c["dest"]) for c in copies] == [
        ("vda", IMAGES + "/dmv1.qcow2", SPARE + "/dmv1.qcow2")]
    assert disk_of(lab, "hv1", "dmv1") == IMAGES + "/dmv1.qcow2" and "dmv1.qcow2" not in volumes(lab, "hv1", "spare")

    before = acked(guest["address"])
    prober = Prober(guest)
    prober.start()
    real = lab.ansible("hv1", "hostmaint.libvirt.disk_move", args)["hv1"]
    prober.stop()
    assert not real.get("failed"), real.get("msg")
    move = real["moves"][0]
    assert move["outcome"] == "moved" and move["source_after"] == "kept", move
    assert move["bytes"] > 0 and move["seconds"] > 0 and move["job_bytes"] >= 1 << 30
    print("disk move: %s" % move["reason"])
    lab.assert_kept_answering(prober)
    assert disk_of(lab, "hv1", "dmv1") == SPARE + "/dmv1.qcow2"
    assert disk_of(lab, "hv1", "dmv1", inactive=True) == SPARE + "/dmv1.qcow2"
    assert "dmv1.qcow2" in volumes(lab, "hv1", "default")  # kept by default
    no_leftovers(lab, "hv1", "dmv1")
    assert_every_write_there(guest["address"], before)

    # restarted (the test sets out to), it boots from the copy and its boot scan finds every acknowledged write
    last = acked(guest["address"])
    found, scan = restarted_scan(lab, "hv1", "dmv1", guest["address"])
    assert found is not None and found >= last, "after the restart the boot scan says %r, but %d records were " \
        "acknowledged before it" % (scan, last)
    assert disk_of(lab, "hv1", "dmv1") == SPARE + "/dmv1.qcow2"

    again = lab.ansible("hv1", "hostmaint.libvirt.disk_move", args)["hv1"]
    assert not again.get("failed") and again["changed"] is False and again["plans"][0]["copies"] == []


def test_source_after_delete_deletes_the_source_only_after_the_pivot(lab, writer_guest):
    guest = writer_guest("dmv2")
    before = acked(guest["address"])
    real = lab.ansible("hv1", "hostmaint.libvirt.disk_move", dict(
        guest="dmv2", disks=["vda"], to_pool="spare", source_after="delete"))["hv1"]
    assert not real.get("failed"), real.get("msg")
    assert real["moves"][0]["source_after"] == "deleted"
    assert "dmv2.qcow2" not in volumes(lab, "hv1", "default") and "dmv2.qcow2" in volumes(lab, "hv1", "spare")
    assert_every_write_there(guest["address"], before)


def test_the_judge_fails_when_the_guest_boots_from_the_stale_source(lab, writer_guest, tmp_path):
    """The judge can fail: after a move that kept its source, the guest is pointed back at that source (as a move that
    forgot the inactive definition would leave it) and restarted. The writes it made to the copy are not on the
    source, and the same check the first test passes says so."""
    guest = writer_guest("dmj1")
    real = lab.ansible("hv1", "hostmaint.libvirt.disk_move", dict(guest="dmj1", to_pool="spare", disks=["vda"]))["hv1"]
    assert not real.get("failed") and real["moves"][0]["source_after"] == "kept", real.get("msg")
    time.sleep(1.0)  # records acknowledged on the copy only
    last = acked(guest["address"])
    xml = lab.virsh("hv1", "dumpxml", "dmj1", "--inactive").stdout.replace("<source file='%s/dmj1.qcow2'" % SPARE,
                                                                           "<source file='%s/dmj1.qcow2'" % IMAGES)
    stale = tmp_path / "dmj1.xml"  # the lab hosts share the machine's /tmp
    stale.write_text(xml)
    lab.virsh("hv1", "define", str(stale))
    found, scan = restarted_scan(lab, "hv1", "dmj1", guest["address"])
    assert disk_of(lab, "hv1", "dmj1") == IMAGES + "/dmj1.qcow2"
    assert found is not None and found < last, "booted from the stale source, the boot scan says %r although %d " \
        "records were acknowledged on the copy: the judge would not see lost writes" % (scan, last)
    print("judge negative control: acknowledged %d, the stale source holds up to %d (%s)" % (last, found, scan))


# The phases of a copy a run can die or be stopped in: copying (stop_run, killed), not ready within its bound
# (ready_timeout), ready but not yet pivoted (killed_ready: the module is frozen with SIGSTOP before READY and killed
# once the copy is ready, so it cannot pivot in between), and pivoted but not yet recorded in the inactive
# definition (killed_pivoted: as killed_ready, then the pivot the dead run would have made, with virsh).
@pytest.mark.parametrize("how", ["stop_run", "ready_timeout", "killed", "killed_ready", "killed_pivoted"])
def test_an_abort_leaves_the_guest_on_its_source_with_every_write_and_deletes_only_its_own_volume(
        lab, writer_guest, how, tmp_path):
    name = "dma-%s" % how.replace("_", "")
    guest = writer_guest(name)
    prober = Prober(guest)
    prober.start()
    args = dict(guest=name, from_pool="default", to_pool="spare", copy_bandwidth_mib=20)
    if how == "ready_timeout":
        args.update(ready_timeout=5, synchronous_writes="never")
    proc = start_ad_hoc("hv1", "hostmaint.libvirt.disk_move", args)
    wait_for_mirror(lab, "hv1", name)
    assert "%s.qcow2" % name in volumes(lab, "hv1", "spare")  # the copy this run created
    before = acked(guest["address"])
    if how == "stop_run":
        # the disk move holds hv1: an evacuation of it refuses, naming the run
        refused = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
        assert refused["failed"] is True and "hv1 is held by run" in refused["msg"] and "disk_move" in refused["msg"]
        assert not lab.in_maintenance("hv1")
        stopped = lab.ansible("hv1", "hostmaint.libvirt.stop_run", dict(reason="test"))["hv1"]
        assert not stopped.get("failed"), stopped.get("msg")
    elif how == "killed":
        subprocess.run(["kill", "-9", str(hold_pid(lab, "hv1"))], check=True)  # the module's process on hv1
    elif how in ("killed_ready", "killed_pivoted"):
        pid = str(hold_pid(lab, "hv1"))
        subprocess.run(["kill", "-STOP", pid], check=True)
        lab.virsh("hv1", "blockjob", name, "vda", "--bandwidth", "0")  # the copy finishes its first pass quickly
        wait_for_mirror(lab, "hv1", name, within=60, ready=True)
        subprocess.run(["kill", "-9", pid], check=True)
        if how == "killed_pivoted":
            lab.virsh("hv1", "blockjob", name, "vda", "--pivot")
            assert disk_of(lab, "hv1", name) == SPARE + "/%s.qcow2" % name
            # libvirt 11 updates the inactive definition at the pivot; older ones leave it naming the source, which
            # the re-run must then fix: make it so, as they would
            xml = lab.virsh("hv1", "dumpxml", name, "--inactive").stdout
            stale = tmp_path / ("%s.xml" % name)
            stale.write_text(xml.replace("<source file='%s/%s.qcow2'" % (SPARE, name),
                                         "<source file='%s/%s.qcow2'" % (IMAGES, name)))
            lab.virsh("hv1", "define", str(stale))
            assert disk_of(lab, "hv1", name, inactive=True) == IMAGES + "/%s.qcow2" % name
    result = result_of(proc, "hv1")
    assert result["failed"] is True
    if how == "stop_run":
        assert result["moves"][0]["outcome"] == "aborted" and "an operator asked it to stop (test)" in result["msg"]
    elif how == "ready_timeout":
        assert result["moves"][0]["outcome"] == "failed" and "was not ready within 5 s" in result["msg"]
    if how in ("killed", "killed_ready"):
        # the copy outlives the module; the next run finds its record, aborts it and deletes its volume, then moves
        assert "<mirror" in lab.virsh("hv1", "dumpxml", name).stdout
        mid = acked(guest["address"])
        rerun = lab.ansible("hv1", "hostmaint.libvirt.disk_move", dict(args, copy_bandwidth_mib=0))["hv1"]
        assert not rerun.get("failed"), rerun.get("msg")
        assert [(r["target"], r["action"]) for r in rerun["recovered"]] == [("vda", "abort")]
        assert rerun["moves"][0]["outcome"] == "moved"
        assert disk_of(lab, "hv1", name) == SPARE + "/%s.qcow2" % name
        assert disk_of(lab, "hv1", name, inactive=True) == SPARE + "/%s.qcow2" % name
        before = max(before, mid)
    elif how == "killed_pivoted":
        # the guest already writes to the copy: the next run finishes the move (the inactive definition names it)
        rerun = lab.ansible("hv1", "hostmaint.libvirt.disk_move", dict(args, copy_bandwidth_mib=0))["hv1"]
        assert not rerun.get("failed"), rerun.get("msg")
        assert [(r["target"], r["action"]) for r in rerun["recovered"]] == [("vda", "finish")], rerun["recovered"]
        assert rerun["plans"][0]["copies"] == [] and rerun["changed"] is True
        assert disk_of(lab, "hv1", name) == SPARE + "/%s.qcow2" % name
        assert disk_of(lab, "hv1", name, inactive=True) == SPARE + "/%s.qcow2" % name
    else:
        assert disk_of(lab, "hv1", name) == IMAGES + "/%s.qcow2" % name
        assert disk_of(lab, "hv1", name, inactive=True) == IMAGES + "/%s.qcow2" % name
        assert "%s.qcow2" % name not in volumes(lab, "hv1", "spare")
        assert "%s.qcow2" % name in volumes(lab, "hv1", "default")
    prober.stop()
    lab.assert_kept_answering(prober)
    no_leftovers(lab, "hv1", name)
    assert_every_write_there(guest["address"], before)


def test_a_libvirtd_restart_during_the_mirror_does_not_stop_the_move(lab, writer_guest):
    guest = writer_guest("dmr1")
    prober = Prober(guest)
    prober.start()
    proc = start_ad_hoc("hv1", "hostmaint.libvirt.disk_move", dict(
        guest="dmr1", from_pool="default", to_pool="spare", copy_bandwidth_mib=100))
    wait_for_mirror(lab, "hv1", "dmr1")
    before = acked(guest["address"])
    pid = lab.libvirtd_pid("hv1")
    lab.restart_libvirtd("hv1")
    assert lab.libvirtd_pid("hv1") != pid, "libvirtd on hv1 was not restarted"
    result = result_of(proc, "hv1")
    prober.stop()
    assert not result.get("failed"), result.get("msg")
    assert result["moves"][0]["outcome"] == "moved"
    lab.assert_kept_answering(prober)
    assert disk_of(lab, "hv1", "dmr1") == SPARE + "/dmr1.qcow2"
    assert disk_of(lab, "hv1", "dmr1", inactive=True) == SPARE + "/dmr1.qcow2"
    no_leftovers(lab, "hv1", "dmr1")
    assert_every_write_there(guest["address"], before)


def test_a_target_pool_too_small_refuses_with_a_sentence_and_changes_nothing(lab, writer_guest):
    writer_guest("dmf1")
    lab.cli("exec", "hv1", "sh", "-c", "mkdir -p /var/lib/libvirt/tiny && mount -t tmpfs -o size=256m tmpfs "
            "/var/lib/libvirt/tiny")
    try:
        lab.virsh("hv1", "pool-create-as", "tiny", "dir", "--target", "/var/lib/libvirt/tiny")
        args = dict(guest="dmf1", from_pool="default", to_pool="tiny")
        for check in (True, False):
            result = lab.ansible("hv1", "hostmaint.libvirt.disk_move", args, check=check)["hv1"]
            assert [r["code"] for r in result["plans"][0]["refused"]] == ["no_room"]
            assert "vda of dmf1 needs 1.0 GiB (its virtual size) in pool tiny, which has" in \
                result["plans"][0]["refused"][0]["reason"]
            if not check:
                assert result["failed"] is True and "pool tiny" in result["msg"]
        assert volumes(lab, "hv1", "tiny") == [] and disk_of(lab, "hv1", "dmf1") == IMAGES + "/dmf1.qcow2"
        unknown = lab.ansible("hv1", "hostmaint.libvirt.disk_move", dict(args, to_pool="nowhere"))["hv1"]
        assert unknown["failed"] is True and "storage pool nowhere is not defined on hv1" in unknown["msg"]
    finally:
        lab.virsh("hv1", "pool-destroy", "tiny", check=False)
        lab.cli("exec", "hv1", "umount", "/var/lib/libvirt/tiny", check=False)


def test_storage_evacuate_empties_a_pool_of_a_running_guest_a_stopped_one_and_leaves_an_unused_volume(lab, writer_guest,
                                                                                                      tmp_path):
    from conftest import ansible_playbook
    running = writer_guest("dse1")
    writer_guest("dse2")
    lab.virsh("hv1", "destroy", "dse2")  # defined, shut off
    lab.virsh("hv1", "vol-create-as", "default", "dse-unused.qcow2", "16M", "--format", "qcow2")
    try:
        reports = str(tmp_path / "reports")
        base = ["-i", ".lab/inventory.yml", "-l", "hv1", "-e", "storage_evacuate_pool=default",
                "-e", "storage_evacuate_to_pool=spare", "-e", "hostmaint_report_dir=%s" % reports]
        planned = ansible_playbook("playbooks/storage_evacuate.yml", "--check", *base)
        assert planned.returncode == 0, planned.stdout[-3000:]
        assert disk_of(lab, "hv1", "dse1") == IMAGES + "/dse1.qcow2" and volumes(lab, "hv1", "spare") == []

        before = acked(running["address"])
        prober = Prober(running)
        prober.start()
        done = ansible_playbook("playbooks/storage_evacuate.yml", *base)
        prober.stop()
        assert done.returncode == 0, done.stdout[-3000:]
        lab.assert_kept_answering(prober)
        # its progress, as the operator's terminal shows it: each phase of the running guest's disk, the offline copy
        for what in ("started (disk)", "pivoted to its copy", "checked: both definitions name the copy"):
            assert re.search(r"^\[hv1\] dse1 vda default->spare: %s \(at \S+\)$" % re.escape(what), done.stdout,
                             re.M), (what, done.stdout[-3000:])
        assert re.search(r"^\[hv1\] dse2 vda default->spare: started \(offline copy\)", done.stdout, re.M), \
            done.stdout[-3000:]
        assert disk_of(lab, "hv1", "dse1") == SPARE + "/dse1.qcow2"
        assert disk_of(lab, "hv1", "dse1", inactive=True) == SPARE + "/dse1.qcow2"
        assert disk_of(lab, "hv1", "dse2", inactive=True) == SPARE + "/dse2.qcow2"
        assert "dse2" not in lab.names("hv1")  # still shut off
        assert "dse-unused.qcow2" in volumes(lab, "hv1", "default")  # nobody used it: it stays
        no_leftovers(lab, "hv1", "dse1")
        assert_every_write_there(running["address"], before)

        import glob
        found = sorted(glob.glob(tmp_path.joinpath("reports", "*storage_evacuate*.json").as_posix()))
        assert found, "no report in %s" % reports
        with open(found[-1]) as fh:
            report = json.load(fh)
        rows = dict((m["guest"], m) for m in report["hosts"]["hv1"]["disk_moves"])
        assert sorted(rows) == ["dse1", "dse2"] and all(m["outcome"] == "moved" for m in rows.values())
        assert report["totals"]["disks_moved"] == 2 and report["status"] == "ok"
        assert rows["dse1"]["bytes"] > 0 and rows["dse1"]["seconds"] > 0 and rows["dse1"]["synchronous"] is False

        # asked to, a second run deletes what nothing uses: the unused volume and the two sources the first kept
        assert sorted(volumes(lab, "hv1", "default")) == ["dse-unused.qcow2", "dse1.qcow2", "dse2.qcow2"]
        tidy = ansible_playbook("playbooks/storage_evacuate.yml", *base, "-e", "storage_evacuate_delete_unused=true")
        assert tidy.returncode == 0, tidy.stdout[-3000:]
        assert volumes(lab, "hv1", "default") == []
        assert sorted(volumes(lab, "hv1", "spare")) == ["dse1.qcow2", "dse2.qcow2"]
        assert disk_of(lab, "hv1", "dse1") == SPARE + "/dse1.qcow2"
        assert_every_write_there(running["address"], before)
    finally:
        lab.virsh("hv1", "vol-delete", "dse-unused.qcow2", "--pool", "default", check=False)


def test_an_evacuation_of_guests_with_local_disks_leaves_no_source_disk_and_restore_brings_them_home(lab, writer_guest,
                                                                                                     tmp_path):
    from conftest import ansible_playbook
    guest = writer_guest("dsl1")
    before = acked(guest["address"])
    prober = Prober(guest)
    prober.start()
    extra = ["-i", ".lab/inventory.yml", "-l", "hv1", "-e", "hostmaint_libvirt_allow_storage_copy=true",
             "-e", "hostmaint_report_dir=%s" % (tmp_path / "reports")]
    try:
        away = ansible_playbook("playbooks/evacuate.yml", *extra)
        assert away.returncode == 0, away.stdout[-3000:]
        there = lab.running_on("dsl1")
        assert there in (["hv2"], ["hv3"]) and lab.defined_on("dsl1") == there
        assert "dsl1.qcow2" not in volumes(lab, "hv1", "default"), "the source disk was left on hv1"
        assert "dsl1.qcow2" in volumes(lab, there[0], "default")
        middle = assert_every_write_there(guest["address"], before)

        home = ansible_playbook("playbooks/restore.yml", *extra)
        assert home.returncode == 0, home.stdout[-3000:]
        assert lab.running_on("dsl1") == ["hv1"] and lab.defined_on("dsl1") == ["hv1"]
        assert "dsl1.qcow2" not in volumes(lab, there[0], "default"), "the disk was left on %s" % there[0]
        assert "dsl1.qcow2" in volumes(lab, "hv1", "default")
        prober.stop()
        lab.assert_kept_answering(prober)
        assert_every_write_there(guest["address"], middle)
    finally:
        lab.clear_maintenance("hv1")
        for host in ("hv2", "hv3"):
            lab.virsh(host, "vol-delete", "dsl1.qcow2", "--pool", "default", check=False)
