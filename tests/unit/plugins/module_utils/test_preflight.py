# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight rules: every blocking reason, with a code and a sentence naming guest and destination."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import preflight
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    DecisionError,
    Disk,
    Guest,
    HostFacts,
    Limits,
    Nic,
)

SHARED = "/var/lib/libvirt/shared/web01.qcow2"
LOCAL_DIR = "/var/lib/libvirt/images"


def host(name="hv2", **changes):
    facts = HostFacts(
        name=name,
        uri="qemu+tls://%s/system" % name,
        uuid="uuid-%s" % name,
        hostname="%s.lab" % name,
        libvirt_version=9000000,
        qemu_version=7002000,
        arch="x86_64",
        memory_total_mib=32768,
        memory_free_mib=16384,
        machine_types=["pc", "q35", "pc-i440fx-7.2", "pc-q35-7.2"],
        bridges=["br0"],
        networks=["default"],
        pools=[{"name": "lab-shared", "type": "netfs", "path": "/var/lib/libvirt/shared", "shared": True,
                "active": True}],
        volume_paths=[SHARED],
    )
    return dataclasses.replace(facts, **changes)


def guest(name="web01", **changes):
    base = Guest(
        name=name,
        uuid="uuid-%s" % name,
        state="running",
        memory_mib=2048,
        max_memory_mib=2048,
        machine="pc-q35-7.2",
        arch="x86_64",
        disks=[Disk(target="vda", path=SHARED, format="qcow2", pool="lab-shared", shared=True)],
        interfaces=[Nic(type="bridge", source="br0", mac="52:54:00:00:00:01")],
    )
    return dataclasses.replace(base, **changes)


SOURCE = host("hv1")


def codes_of(problems):
    return sorted(set(problem.code for problem in problems))


def test_a_clean_pair_has_no_problems():
    assert preflight.check(guest(), SOURCE, host()) == []


@pytest.mark.parametrize("code, the_guest, destination, limits", [
    ("same_host", guest(), host("hv1"), None),
    ("same_host", guest(), host("hv9", uuid="uuid-hv1"), None),
    ("unreachable", guest(), host(reachable=False, unreachable_reason="connection refused"), None),
    ("maintenance", guest(), host(maintenance=True, maintenance_info={"run_id": "r1"}), None),
    ("hostname_unresolvable", guest(), host(hostname_resolves=False), None),
    ("arch", guest(), host(arch="aarch64"), None),
    ("cpu_incompatible", guest(), host(cpu_compatible={"web01": (False, "host CPU lacks avx512f")}), None),
    ("cpu_incompatible", guest(), host(cpu_compatible={"uuid-web01": [False, "lacks avx2"]}), None),
    ("cpu_incompatible", guest(), host(cpu_compatible={"web01": {"compatible": False, "reason": "x"}}), None),
    ("cpu_incompatible", guest(), host(cpu_compatible={"web01": False}), None),
    ("machine_type", guest(machine="pc-q35-9.0"), host(), None),
    ("memory", guest(memory_mib=16000, max_memory_mib=16000), host(), None),
    ("memory", guest(memory_mib=1024, max_memory_mib=15872), host(), None),
    ("memory", guest(hugepages=True), host(hugepages_free_mib={2048: 1024}), None),
    ("memory", guest(hugepages=True), host(), None),
    ("bridge_missing", guest(), host(bridges=["br1"]), None),
    ("network_missing", guest(interfaces=[Nic(type="network", source="default")]), host(networks=[]), None),
    ("disk_not_shared", guest(), host(volume_paths=[]), None),
    ("disk_not_shared", guest(disks=[Disk(target="vda", source_type="block", path="/dev/vg/web01")]),
     host(), Limits(allow_storage_copy=True)),
    ("storage_copy_no_pool", guest(disks=[Disk(target="vda", path=LOCAL_DIR + "/web01.qcow2")]), host(),
     Limits(allow_storage_copy=True)),
    ("libvirt_older", guest(), host(libvirt_version=8010000), None),
    ("qemu_older", guest(), host(qemu_version=7001000), None),
    ("host_device", guest(non_migratable_reasons=["host device passthrough (PCI 0000:01:00.0) pins the guest to "
                                                  "its host"]), host(), None),
    ("state", guest(state="crashed"), host(), None),
])
def test_each_blocking_reason_has_its_code_and_names_guest_and_destination(code, the_guest, destination, limits):
    problems = preflight.check(the_guest, SOURCE, destination, limits)
    assert codes_of(problems) == [code]
    for problem in problems:
        assert problem.guest == the_guest.name
        assert problem.destination == destination.name
        verb = "live-migrate" if the_guest.active else "move"
        assert problem.message.startswith("cannot %s %s to %s: " % (verb, the_guest.name, destination.name))


def test_memory_message_reads_like_the_house_example():
    problems = preflight.check(guest(), SOURCE, host(memory_free_mib=1536), Limits(reserve_mib=1024))
    assert [p.message for p in problems] == [
        "cannot live-migrate web01 to hv2: destination has 512 MiB free (1536 MiB less the 1024 MiB reserve), "
        "guest needs 2048 MiB"]


@pytest.mark.parametrize("free, reserve, ok", [
    (3072, 1024, True),
    (3071, 1024, False),
    (2048, 0, True),
    (2047, 0, False),
])
def test_memory_boundary_counts_the_reserve(free, reserve, ok):
    problems = preflight.check(guest(), SOURCE, host(memory_free_mib=free), Limits(reserve_mib=reserve))
    assert (problems == []) is ok


def test_hugepage_guest_needs_hugepages_not_free_memory():
    the_guest = guest(hugepages=True)
    assert preflight.check(the_guest, SOURCE, host(memory_free_mib=0, hugepages_free_mib={2048: 2048})) == []
    problems = preflight.check(the_guest, SOURCE, host(hugepages_free_mib={2048: 1024, 1048576: 1024}))
    assert "1024 MiB of free hugepages, guest needs 2048 MiB backed by hugepages" in problems[0].message


def test_every_reason_is_reported_not_only_the_first():
    destination = host(maintenance=True, arch="aarch64", bridges=[], volume_paths=[], memory_free_mib=100,
                       libvirt_version=1000000, qemu_version=1000000, machine_types=["virt"],
                       cpu_compatible={"web01": (False, None)}, hostname_resolves=False)
    the_guest = guest(non_migratable_reasons=["virtiofs filesystem cannot be live-migrated"])
    assert codes_of(preflight.check(the_guest, SOURCE, destination)) == sorted([
        "maintenance", "hostname_unresolvable", "arch", "cpu_incompatible", "machine_type", "memory",
        "bridge_missing", "disk_not_shared", "libvirt_older", "qemu_older", "host_device"])


def test_unreachable_destination_reports_only_what_is_known():
    problems = preflight.check(guest(), SOURCE, host("hv1", reachable=False, bridges=[], volume_paths=[],
                                                     hostname_resolves=False))
    assert codes_of(problems) == ["same_host", "unreachable"]


def test_unresolvable_hostname_message_names_guest_destination_hostname_and_source():
    problems = preflight.check(guest("web1"), SOURCE, host(hostname="hv2.example", hostname_resolves=False))
    assert [p.message for p in problems] == [
        "cannot live-migrate web1 to hv2: hv2's hostname hv2.example does not resolve from hv1"]
    assert problems[0].as_dict() == dict(code="hostname_unresolvable", message=problems[0].message, guest="web1",
                                         destination="hv2")


@pytest.mark.parametrize("resolves", [True, None])
def test_a_hostname_that_resolves_or_was_not_checked_blocks_nothing(resolves):
    assert preflight.check(guest(), SOURCE, host(hostname_resolves=resolves)) == []


def test_unresolvable_hostname_without_a_source_or_a_name_still_reads_as_a_sentence():
    problems = preflight.check(guest(state="shutoff"), None, host(hostname=None, hostname_resolves=False))
    assert [p.message for p in problems] == [
        "cannot move web01 to hv2: hv2's hostname (unknown) does not resolve from the source"]


def test_shut_off_guest_needs_no_memory_and_says_move():
    problems = preflight.check(guest(state="shutoff"), SOURCE, host(memory_free_mib=0, bridges=[]))
    assert codes_of(problems) == ["bridge_missing"]
    assert problems[0].message.startswith("cannot move web01 to hv2: ")


@pytest.mark.parametrize("disk", [
    Disk(target="hdc", device="cdrom", readonly=True),
    Disk(target="vdb", source_type="network", path="rbd:pool/web01", shared=True),
    Disk(target="vdc", path=SHARED),
])
def test_disks_that_need_nothing_on_the_destination_or_are_there(disk):
    assert preflight.check(guest(disks=[disk]), SOURCE, host()) == []


def test_cdrom_with_an_iso_must_exist_on_the_destination():
    iso = Disk(target="hdc", device="cdrom", readonly=True, path="/srv/iso/debian.iso")
    assert codes_of(preflight.check(guest(disks=[iso]), SOURCE, host())) == ["disk_not_shared"]


def test_a_local_disk_is_copied_even_when_a_file_of_its_name_is_on_the_destination():
    disk = Disk(target="vda", pool="default", path="/var/lib/libvirt/images/web01.qcow2", shared=False)
    present = host(volume_paths=["/var/lib/libvirt/images/web01.qcow2"])
    assert codes_of(preflight.check(guest(disks=[disk]), SOURCE, present)) == ["disk_not_shared"]
    assert preflight.disks_to_copy(guest(disks=[disk]), present) == [disk]


def test_volume_disks_are_located_by_pool_and_volume():
    disk = Disk(target="vda", source_type="volume", pool="lab-shared", path="web01.qcow2", shared=True)
    assert preflight.disk_location(disk) == "lab-shared/web01.qcow2"
    assert preflight.check(guest(disks=[disk]), SOURCE, host(volume_paths=["lab-shared/web01.qcow2"])) == []
    assert codes_of(preflight.check(guest(disks=[disk]), SOURCE, host())) == ["disk_not_shared"]


@pytest.mark.parametrize("allow, ok", [(True, True), (["web01"], True), (["db01"], False), (False, False)])
def test_storage_copy_is_allowed_per_guest(allow, ok):
    local = Disk(target="vda", path=LOCAL_DIR + "/web01.qcow2")
    destination = host(pools=[{"name": "default", "type": "dir", "path": LOCAL_DIR + "/", "active": True}])
    problems = preflight.check(guest(disks=[local]), SOURCE, destination, Limits(allow_storage_copy=allow))
    assert (problems == []) is ok
    assert [d.target for d in preflight.disks_to_copy(guest(disks=[local]), destination)] == ["vda"]


def test_storage_copy_needs_an_active_pool():
    local = Disk(target="vda", path=LOCAL_DIR + "/web01.qcow2")
    destination = host(pools=[{"name": "default", "type": "dir", "path": LOCAL_DIR, "active": False}])
    problems = preflight.check(guest(disks=[local]), SOURCE, destination, Limits(allow_storage_copy=True))
    assert codes_of(problems) == ["storage_copy_no_pool"]


def test_unknown_versions_and_newer_destinations_pass():
    assert preflight.check(guest(), SOURCE, host(libvirt_version=0, qemu_version=0)) == []
    assert preflight.check(guest(), SOURCE, host(libvirt_version=10000000, qemu_version=8000000)) == []
    assert preflight.check(guest(), None, host()) == []


def test_version_message_spells_versions():
    problems = preflight.check(guest(), SOURCE, host(libvirt_version=8010002))
    assert problems[0].message.endswith("destination libvirt 8.10.2 is older than the source's 9.0.0")


def test_missing_facts_do_not_invent_problems():
    # no machine list, no arch, no CPU verdict: nothing to judge, nothing reported
    assert preflight.check(guest(), SOURCE, host(machine_types=[], arch=None, cpu_compatible={})) == []


def test_one_problem_per_missing_bridge():
    nics = [Nic(type="bridge", source="br0"), Nic(type="bridge", source="br0"), Nic(type="bridge", source="br9")]
    problems = preflight.check(guest(interfaces=nics), SOURCE, host(bridges=[]))
    reasons = [p.message.split(": ")[1] for p in problems]
    assert reasons == ["destination has no bridge br0", "destination has no bridge br9"]


@pytest.mark.parametrize("the_guest, expected", [
    (guest(), []),
    (guest(state="paused"), []),
    (guest(state="shutoff"), []),
    (guest(state="shutoff", persistent=False), ["not_defined"]),
    (guest(state="crashed"), ["state"]),
    (guest(non_migratable_reasons=["a", "b"]), ["host_device", "host_device"]),
    (guest(policy="teleport"), ["unknown_policy"]),
    (guest(policy="teleport", state="shutoff"), ["unknown_policy"]),
])
def test_check_guest_reports_guest_only_reasons(the_guest, expected):
    problems = preflight.check_guest(the_guest)
    assert [p.code for p in problems] == expected
    assert all(p.destination is None for p in problems)


def test_verdicts_cover_every_guest_and_destination_as_json():
    guests = [guest(), guest("db01", interfaces=[])]
    result = preflight.verdicts(guests, SOURCE, [host(), host("hv3", bridges=[])])
    assert sorted(result) == ["db01", "web01"]
    assert result["web01"]["hv2"] == {"ok": True, "problems": []}
    assert result["web01"]["hv3"]["ok"] is False
    assert result["web01"]["hv3"]["problems"][0]["code"] == "bridge_missing"
    assert result["db01"]["hv3"] == {"ok": True, "problems": []}
    json.dumps(result)


def test_an_unknown_policy_is_a_verdict_against_every_destination_naming_guest_and_policy():
    message = ('cannot evacuate web1: its policy "teleport" (settings metadata) is not one of migrate, shutdown, '
               'skip, fail')
    assert [(p.code, p.message) for p in preflight.check_guest(guest("web1", policy="teleport"))] == [
        ("unknown_policy", message)]
    result = preflight.verdicts([guest("web1", policy="teleport"), guest("db01", policy="skip")], SOURCE,
                                [host(), host("hv3")])
    for destination in ("hv2", "hv3"):
        assert result["web1"][destination] == {"ok": False, "problems": [
            {"code": "unknown_policy", "message": message, "guest": "web1", "destination": destination}]}
        assert result["db01"][destination] == {"ok": True, "problems": []}


def test_codes_keeps_first_seen_order():
    problems = preflight.check(guest(), SOURCE, host(bridges=[], volume_paths=[], maintenance=True))
    assert preflight.codes(problems) == ["maintenance", "bridge_missing", "disk_not_shared"]


@pytest.mark.parametrize("call, message", [
    (lambda: preflight.check(guest(name=""), SOURCE, host()), "a guest has no name"),
    (lambda: preflight.check(guest(memory_mib=-1), SOURCE, host()), "invalid guest web01"),
    (lambda: preflight.check(guest(), SOURCE, host(name="")), "invalid host facts for web01"),
    (lambda: preflight.check(guest(), SOURCE, host(), Limits(reserve_mib=-1)), "reserve_mib"),
    (lambda: preflight.check(guest(), SOURCE, host(), Limits(max_inbound=0)), "max_inbound"),
    (lambda: preflight.verdicts([guest(), guest()], SOURCE, [host()]), "duplicate guest web01"),
])
def test_bad_input_raises_one_error_type_naming_the_object(call, message):
    with pytest.raises(DecisionError, match=message):
        call()


def test_a_destination_that_cannot_list_its_bridges_is_not_judged_on_them():
    # bridges None: its libvirt has no interface driver; libvirt itself refuses a missing bridge at migration
    assert "bridge_missing" not in codes_of(preflight.check(guest(), SOURCE, host(bridges=None)))
    assert "bridge_missing" in codes_of(preflight.check(guest(), SOURCE, host(bridges=[])))


def test_a_guest_with_a_block_job_running_is_blocked_everywhere_with_a_sentence_naming_the_disk():
    problems = preflight.check_guest(guest(block_jobs={"vda": "copy"}))
    assert codes_of(problems) == ["block_job"]
    assert "a block job (copy) runs on its disk vda" in problems[0].message and "web01" in problems[0].message
    assert codes_of(preflight.check(guest(block_jobs={"vda": "copy"}), SOURCE, host())) == ["block_job"]
