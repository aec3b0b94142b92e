# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab guests' disk writer (tests/lab/guest/diskwriter.c) on a file: it sees every lost or damaged record.

Built with gcc as the lab builds it, run against a sparse file on a filesystem that takes O_DIRECT (skipped
where there is none, or no gcc): write, kill -9, boot scan, verify; then damage the file as a bad storage
migration would (a flipped byte, a zeroed record, lost tail writes, an old lap's record, a torn block, a lost
header) and see the verdict name the record.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

SOURCE = os.path.join(os.path.dirname(__file__), "..", "lab", "guest", "diskwriter.c")
BLOCK = 4096
REGION = 1024 * 1024
MAGIC = b"LABDWREC"


def direct_io_dir(candidates):
    for base in candidates:
        try:
            path = tempfile.mkdtemp(prefix="diskwriter-", dir=base)
        except OSError:
            continue
        probe = os.path.join(path, "probe")
        try:
            with open(probe, "wb") as fh:
                fh.truncate(BLOCK)
            os.close(os.open(probe, os.O_RDWR | os.O_DIRECT))
            return path
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
    return None


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    out = str(tmp_path_factory.mktemp("diskwriter-bin") / "diskwriter")
    build = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", out, SOURCE], capture_output=True, text=True, check=False)
    if build.returncode != 0:  # no static libc here: the logic is the same dynamically linked
        build = subprocess.run(["gcc", "-O2", "-Wall", "-o", out, SOURCE], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    return out


@pytest.fixture
def lab(program, tmp_path):
    where = direct_io_dir([str(tmp_path), "/var/tmp"])
    if where is None:
        pytest.skip("no filesystem here takes O_DIRECT (tmpfs refuses it)")
    www = os.path.join(where, "www")
    os.makedirs(www)
    yield Writer(program, os.path.join(where, "disk.img"), www)
    shutil.rmtree(where, ignore_errors=True)


class Writer:
    def __init__(self, program, disk, www):
        self.program, self.disk, self.www = program, disk, www
        self.env = dict(os.environ, DISKWRITER_WWW=www)
        self.env.pop("DISKWRITER_SLOTS", None)

    def make_disk(self, size):
        with open(self.disk, "wb") as fh:
            fh.truncate(size)

    def run(self, *args, slots=None):
        env = dict(self.env, DISKWRITER_SLOTS=str(slots)) if slots else self.env
        return subprocess.run([self.program] + list(args), env=env, capture_output=True, text=True, timeout=30, check=False)

    def write_for(self, seconds, rate=2000, slots=None):
        """The writer at rate for a while, then kill -9 (no chance to finish anything)."""
        env = dict(self.env, DISKWRITER_SLOTS=str(slots)) if slots else self.env
        proc = subprocess.Popen([self.program, "write", self.disk, str(rate)], env=env, stdout=subprocess.DEVNULL)
        deadline = time.time() + 10
        while "acked=" not in self.read("diskcheck") and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(seconds)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return self.acked()

    def read(self, name):
        try:
            with open(os.path.join(self.www, name)) as fh:
                return fh.read().strip()
        except OSError:
            return ""

    def acked(self):
        return int(field(self.read("diskcheck"), "acked"))

    def scan(self):
        """The boot scan alone (rate 0): its line in diskscan."""
        self.run("write", self.disk, "0")
        return self.read("diskscan")

    def verify(self):
        proc = self.run("verify", self.disk)
        return proc.returncode, proc.stdout.strip()

    def slot_offset(self, k, slots=65536):
        return REGION + ((k - 1) % slots) * BLOCK

    def patch(self, offset, data):
        with open(self.disk, "r+b") as fh:
            fh.seek(offset)
            fh.write(data)

    def block(self, offset):
        with open(self.disk, "rb") as fh:
            fh.seek(offset)
            return fh.read(BLOCK)


def field(line, key):
    for word in line.split():
        if word.startswith(key + "="):
            return word.split("=", 1)[1]
    raise AssertionError("no %s= in %r" % (key, line))


def test_acknowledged_records_survive_a_kill_and_numbering_goes_on(lab):
    lab.make_disk(300 * 1024 * 1024)
    code, line = lab.verify()
    assert code == 0 and line.startswith("empty acked=0 writer=none"), line
    acked = lab.write_for(0.4)
    assert acked > 0 and lab.read("diskcheck").startswith("ok acked=")
    writer = field(lab.read("diskcheck"), "writer")
    code, line = lab.verify()
    assert code == 0 and line.startswith("ok verified=1.."), line
    assert int(field(line, "verified").split("..")[1]) >= acked and field(line, "writer") == writer
    scan = lab.scan()
    assert scan.startswith("ok last=") and int(field(scan, "last")) >= acked and field(scan, "writer") == writer
    last = int(field(scan, "last"))
    again = lab.write_for(0.2)
    assert again > last and field(lab.read("diskcheck"), "writer") == writer
    assert lab.verify()[0] == 0


def test_damage_is_named(lab):
    lab.make_disk(8 * 1024 * 1024)
    acked = lab.write_for(0.3, rate=1000)  # well inside the ring of this small disk (1792 slots)
    assert 50 <= acked < 1792
    with open(lab.disk, "rb") as fh:
        pristine = fh.read()

    def restore():
        with open(lab.disk, "wb") as fh:
            fh.write(pristine)

    # a flipped byte in record 7's pattern
    lab.patch(lab.slot_offset(7) + 1000, b"\xff")
    code, line = lab.verify()
    assert code == 1 and line.startswith("corrupt first_bad=7 reason=checksum"), line
    assert lab.scan().startswith("corrupt first_bad=7 reason=checksum")
    restore()
    # record 20 gone (a zeroed block)
    lab.patch(lab.slot_offset(20), b"\0" * BLOCK)
    code, line = lab.verify()
    assert code == 1 and line.startswith("missing first_missing=20 reason=absent"), line
    assert lab.scan().startswith("corrupt first_bad=20 reason=absent")
    restore()
    # a torn block: record 30's first half from record 31
    lab.patch(lab.slot_offset(30), lab.block(lab.slot_offset(31))[:BLOCK // 2])
    assert lab.verify()[1].startswith("corrupt first_bad=30 reason=checksum")
    restore()
    # record 40 in record 41's place
    lab.patch(lab.slot_offset(41), lab.block(lab.slot_offset(40)))
    assert lab.verify()[1].startswith("corrupt first_bad=41 reason=wrongslot")
    restore()
    # the last acknowledged writes lost: the scan cannot tell (the harness compares), verify can
    last = int(field(lab.scan(), "last"))
    assert lab.acked() == last  # after its scan the writer counts what it found as acknowledged
    for k in range(last - 2, last + 1):
        lab.patch(lab.slot_offset(k), b"\0" * BLOCK)
    code, line = lab.verify()
    assert code == 1 and line.startswith("missing first_missing=%d reason=absent acked=%d" % (last - 2, last)), line
    assert lab.scan() == "ok last=%d writer=%s" % (last - 3, field(line, "writer"))
    restore()
    # the header lost: no new writer over the old records, the writer refuses to write
    lab.patch(0, b"\0" * BLOCK)
    assert lab.verify()[1].startswith("corrupt first_bad=0 reason=header")
    assert lab.run("write", lab.disk, "100").returncode == 1
    assert lab.read("diskscan") == "corrupt first_bad=0 reason=header last=0 writer=none"
    assert lab.block(0) == b"\0" * BLOCK
    # a blank disk where records were acknowledged (a pivot to an empty copy)
    lab.make_disk(8 * 1024 * 1024)
    code, line = lab.verify()
    assert code == 1 and line.startswith("missing first_missing=1 reason=no-header acked="), line


def test_the_ring_wraps_and_an_old_lap_is_stale(lab):
    slots = 64
    lab.make_disk(4 * 1024 * 1024)
    lab.write_for(0.1, rate=1000, slots=slots)
    first_lap = lab.block(lab.slot_offset(11, slots))
    assert first_lap[:8] == MAGIC
    acked = lab.write_for(0.3, rate=1000)  # the ring's size is the header's from now on
    assert acked > 2 * slots
    code, line = lab.verify()
    last = int(field(line, "verified").split("..")[1])
    assert code == 0 and line.startswith("ok verified=%d..%d" % (last - slots + 1, last)), line
    # slot 10 back to what it held a lap (or more) ago
    lab.patch(lab.slot_offset(11, slots), first_lap)
    code, line = lab.verify()
    assert code == 1 and line.startswith("missing first_missing=") and "reason=stale" in line, line
    assert (int(field(line, "first_missing")) - 11) % slots == 0


def test_verify_beside_the_writer_sees_no_false_damage(lab):
    lab.make_disk(8 * 1024 * 1024)
    env = dict(lab.env, DISKWRITER_SLOTS="256")
    proc = subprocess.Popen([lab.program, "write", lab.disk, "2000"], env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while "acked=" not in lab.read("diskcheck") and time.time() < deadline:
            time.sleep(0.02)
        lines = [lab.verify() for dummy in range(40)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert all(code == 0 and line.startswith("ok verified=") for code, line in lines), [l for l in lines if l[0]]
    assert int(field(lines[-1][1], "acked")) > int(field(lines[0][1], "acked"))
