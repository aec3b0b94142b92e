# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which disks a disk move copies and why it refuses the others; the record of a move; resuming a dead run's."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import disk_moves, domain_xml
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError, Disk, Guest

GIB = 1024 ** 3
POOLS = {"default": dict(active=True, available=100 * GIB, path="/var/lib/libvirt/images"),
         "new": dict(active=True, available=3 * GIB, path="/srv/new"),
         "off": dict(active=False, available=0, path="/srv/off")}


def volume(name, capacity=GIB, allocation=GIB // 4):
    return dict(name=name, capacity=capacity, allocation=allocation, format="qcow2", pool="default")


def guest(*disks, state="running"):
    return Guest(name="web1", uuid="u", state=state, disks=list(disks))


def disk(target, path, **kw):
    kw.setdefault("pool", "default")
    return Disk(target=target, path=path, format="qcow2", **kw)


def test_every_disk_on_the_pool_is_copied_into_a_volume_of_the_same_name_and_format():
    g = guest(disk("vda", "/var/lib/libvirt/images/a.qcow2"), disk("vdb", "/var/lib/libvirt/images/b.qcow2"))
    volumes = {"/var/lib/libvirt/images/a.qcow2": volume("a.qcow2"), "/var/lib/libvirt/images/b.qcow2": volume("b.qcow2")}
    plan = disk_moves.plan(g, "hv1", "new", POOLS, volumes, from_pool="default")
    assert [(c.target, c.dest, c.format) for c in plan.copies] == [
        ("vda", "/srv/new/a.qcow2", "qcow2"), ("vdb", "/srv/new/b.qcow2", "qcow2")]
    assert plan.live and plan.bytes == GIB // 2 and not plan.refused


@pytest.mark.parametrize("the_disk, snapshots, jobs, names, code", [
    (disk("hda", "/var/lib/libvirt/images/a.iso", device="cdrom"), 0, {}, (), "not_a_disk"),
    (disk("vda", "/var/lib/libvirt/images/a.qcow2", readonly=True), 0, {}, (), "read_only"),
    (disk("vda", "/var/lib/libvirt/images/a.qcow2", shareable=True), 0, {}, (), "shareable"),
    (disk("vda", "/var/lib/libvirt/images/a.qcow2"), 2, {}, (), "snapshots"),
    (disk("vda", "/var/lib/libvirt/images/a.qcow2"), 0, {"vda": "commit"}, (), "block_job"),
    (disk("vda", "/var/lib/libvirt/images/a.qcow2"), 0, {}, ("a.qcow2",), "exists"),
    (disk("vda", "/var/lib/libvirt/images/a.qcow2", source_type="block"), 0, {}, (), "not_a_file"),
    (disk("vda", "/srv/new/a.qcow2", pool="new"), 0, {}, (), "already_there"),
])
def test_each_refused_disk_gets_its_code_and_a_sentence_naming_it(the_disk, snapshots, jobs, names, code):
    volumes = {the_disk.path: volume("a.qcow2")}
    plan = disk_moves.plan(guest(the_disk), "hv1", "new", POOLS, volumes, disks=[the_disk.target],
                           snapshots=snapshots, block_jobs=jobs, names_in_target=names)
    assert not plan.copies
    assert [r.code for r in plan.refused] == [code]
    assert the_disk.target in plan.refused[0].reason or "web1" in plan.refused[0].reason


def test_room_is_judged_by_virtual_size_and_added_up_in_order():
    paths = ["/var/lib/libvirt/images/%s.qcow2" % n for n in "abc"]
    g = guest(*[disk("vd" + n, p) for n, p in zip("abc", paths)])
    volumes = dict((p, volume(p.rsplit("/", 1)[1], capacity=GIB + GIB // 2, allocation=1)) for p in paths)
    plan = disk_moves.plan(g, "hv1", "new", POOLS, volumes, from_pool="default")
    assert [c.target for c in plan.copies] == ["vda", "vdb"]
    assert [(r.target, r.code) for r in plan.refused] == [("vdc", "no_room")]
    assert "needs 1.5 GiB (its virtual size) in pool new, which has 0.0 GiB free" in plan.refused[0].reason


@pytest.mark.parametrize("kwargs, message", [
    (dict(to_pool="nope", from_pool="default"), "storage pool nope is not defined on hv1"),
    (dict(to_pool="off", from_pool="default"), "storage pool off on hv1 is not active"),
    (dict(to_pool="new", from_pool="gone"), "storage pool gone is not defined on hv1"),
    (dict(to_pool="new", from_pool="new"), "from_pool and to_pool are both new"),
    (dict(to_pool="new", disks=["vdz"]), "guest web1 on hv1 has no disk vdz (it has vda)"),
    (dict(to_pool="new"), "name the disks of web1"),
    (dict(to_pool="new", from_pool="default", migrating=True), "web1 is migrating on hv1"),
])
def test_bad_input_is_one_sentence_naming_the_object(kwargs, message):
    g = guest(disk("vda", "/var/lib/libvirt/images/a.qcow2"))
    to_pool = kwargs.pop("to_pool")
    with pytest.raises(DecisionError) as caught:
        disk_moves.plan(g, "hv1", to_pool, POOLS, {}, **kwargs)
    assert message in caught.value.message


def test_the_ready_bound_grows_with_the_bytes_held_not_the_virtual_size():
    assert disk_moves.ready_bound_s(0, 100 * GIB) == 60
    assert disk_moves.ready_bound_s(GIB) == 60 + 128


def test_the_record_survives_its_xml_round_trip():
    record = dict(run_id="r1", time="t", source_after="delete",
                  disks=[dict(target="vda", source="/a b&c", dest="/n/a", created=True, phase="copying")])
    element = domain_xml.disk_move_record_xml(record)
    # as libvirt gives it back: the element and its children in the namespace
    xml = ("<domain><name>g</name><metadata>%s</metadata></domain>"
           % element.replace("<diskmove", "<hostmaint:diskmove xmlns:hostmaint='%s'" % domain_xml.DISK_MOVE_NS, 1)
           .replace("</diskmove>", "</hostmaint:diskmove>").replace("<disk ", "<hostmaint:disk "))
    assert domain_xml.disk_move_record(xml) == record
    assert domain_xml.disk_move_record("<domain><name>g</name></domain>") is None


LIVE = """<domain><name>g</name><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/old/g.qcow2'/>
<backingStore/><target dev='vda' bus='virtio'/>
<mirror type='file' job='copy' ready='yes'><format type='qcow2'/><source file='/new/g.qcow2'/></mirror></disk>
</devices></domain>"""


def test_the_mirror_and_the_sources_are_read_from_the_xml():
    assert domain_xml.disk_source(LIVE, "vda") == "/old/g.qcow2"
    assert domain_xml.disk_source(LIVE, "vdb") is None
    assert domain_xml.disk_mirror(LIVE, "vda") == dict(dest="/new/g.qcow2", ready=True, job="copy")


def test_the_definition_is_made_to_name_the_copy():
    changed = domain_xml.with_disk_source(LIVE.replace("<mirror", "<!--").replace("</mirror>", "-->"), "vda",
                                          "/new/g.qcow2", "qcow2")
    assert domain_xml.disk_source(changed, "vda") == "/new/g.qcow2"
    assert "backingStore" not in changed
    with pytest.raises(domain_xml.DomainXMLError):
        domain_xml.with_disk_source(LIVE, "vdz", "/x")


@pytest.mark.parametrize("now, job, action", [("/n", None, "finish"), ("/s", "/n", "abort"), ("/s", None, "undo"),
                                              ("/z", None, "leave")])
def test_resume_decides_per_disk(now, job, action):
    record = dict(disks=[dict(target="vda", source="/s", dest="/n", created=True)])
    assert [a for _d, a in disk_moves.resume(record, {"vda": now}, {"vda": job})] == [action]


def _vol(name, pool="/var/lib/libvirt/images"):
    return dict(name=name, path="%s/%s" % (pool, name))


def test_unused_deletes_only_what_nothing_names_or_is_backed_by():
    volumes = [_vol("used.qcow2"), _vol("base.qcow2"), _vol("free.qcow2")]
    decided = disk_moves.unused(volumes, named={"/var/lib/libvirt/images/used.qcow2"},
                                backing={"/var/lib/libvirt/images/base.qcow2"})
    assert [(v["name"], action) for v, action, _reason in decided] == [
        ("base.qcow2", "keep"), ("free.qcow2", "delete"), ("used.qcow2", "keep")]
    reasons = dict((v["name"], reason) for v, _action, reason in decided)
    assert reasons["used.qcow2"] == "used.qcow2 is in use: a guest of this host names it"
    assert reasons["base.qcow2"] == "base.qcow2 backs another volume"


def test_unused_on_a_shared_pool_asks_the_other_hosts_and_keeps_all_when_one_is_silent():
    volumes = [_vol("a.qcow2", "/mnt/shared"), _vol("b.qcow2", "/mnt/shared")]
    elsewhere = {"/mnt/shared/a.qcow2": ["hv3"]}
    decided = disk_moves.unused(volumes, set(), set(), shared=True, named_elsewhere=elsewhere)
    assert [(v["name"], action, reason) for v, action, reason in decided] == [
        ("a.qcow2", "keep", "a.qcow2 is in use on hv3"), ("b.qcow2", "delete", "b.qcow2 is used by nothing")]
    silent = disk_moves.unused(volumes, set(), set(), shared=True, unanswered=["hv2"])
    assert [action for _v, action, _reason in silent] == ["keep", "keep"]
    assert "hv2 did not answer" in silent[1][2]
    # a local pool's volume is not asked about elsewhere: another host's file of the same path is another file
    local = disk_moves.unused(volumes, set(), set(), shared=False, named_elsewhere=elsewhere, unanswered=["hv2"])
    assert [action for _v, action, _reason in local] == ["delete", "delete"]
