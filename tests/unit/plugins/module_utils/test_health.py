# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate's verdicts (module_utils.health) and the rolling upgrade's order (module_utils.roll)."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import health, roll


def gathered(**overrides):
    base = dict(
        info={"hypervisor": {"generation": "qemu-10.0.2 libvirt-11.3.0 kernel-6.1.0-37 os-12.11"}},
        peers={"results": [{"item": "hv2", "rc": 0}, {"item": "hv3", "rc": 0}]},
        guests={"results": [{"item": "hv1", "guests": [{"name": "web1", "state": "running"}]},
                            {"item": "hv2", "guests": [{"name": "db1", "state": "shutoff"}]}]},
        room={"ready": True, "blocked": []},
        commands={"results": []},
    )
    base.update(overrides)
    return base


def test_a_healthy_host_passes_every_check_and_names_it():
    result = health.verdict(gathered(), "hv1", "before", "hypervisors", "qemu-10")
    assert result["ok"] is True and result["failed"] == []
    assert [c["check"] for c in result["checks"]] == ["libvirtd", "generation", "peer", "peer", "guests", "room"]
    assert all(c["msg"].startswith("hv1: ") for c in result["checks"])


def test_each_failed_check_is_one_sentence_naming_host_and_check():
    result = health.verdict(gathered(
        info={"failed": True, "msg": "Failed to connect socket to '/run/libvirt/libvirt-sock'"},
        peers={"results": [{"item": "hv2", "rc": 124}, {"item": "hv3", "rc": 1, "stderr": "error: unable to connect"}]},
        guests={"results": [{"item": "hv1", "guests": [{"name": "web1", "state": "paused"}]},
                            {"item": "hv3", "failed": True, "msg": "ssh: connect to host hv3 port 22: No route"}]},
        room={"ready": False, "blocked": [{"guest": "big1", "reasons": [{"message": "needs 8192 MiB, hv2 has 2048"}]}]},
        commands={"results": [{"item": {"name": "ceph healthy", "command": "ceph health"}, "rc": 2, "stdout": "HEALTH_WARN"}]},
    ), "hv1", "before", "cluster_a", "")
    assert result["ok"] is False
    assert result["failed"] == [
        "hv1: libvirtd does not answer: Failed to connect socket to '/run/libvirt/libvirt-sock'",
        "hv1: cannot reach hv2 over the migration transport: timed out",
        "hv1: cannot reach hv3 over the migration transport: error: unable to connect",
        "hv1: cannot list the guests of hv3: ssh: connect to host hv3 port 22: No route",
        "hv1: in cluster cluster_a, web1 is paused on hv1",
        "hv1: the rest of cluster cluster_a has no room for big1 (needs 8192 MiB, hv2 has 2048)",
        "hv1: check ceph healthy failed (exit 2): HEALTH_WARN",
    ]


def test_the_room_check_is_only_before_and_the_generation_only_when_asked():
    after = health.verdict(gathered(room=None), "hv1", "after", "hypervisors")
    assert "room" not in [c["check"] for c in after["checks"]] and "generation" not in [c["check"] for c in after["checks"]]
    assert after["ok"] is True


def test_an_older_generation_than_expected_fails():
    result = health.verdict(gathered(info={"hypervisor": {"generation": "os-12.9"}}), "hv1", "after", "h", "os-12.10")
    assert result["failed"] == ["hv1: generation os-12.9 is older than the expected os-12.10"]


CLUSTER = {"a1": "cluster_a", "a2": "cluster_a", "a3": "cluster_a", "b1": "cluster_b", "c1": None}


def test_a_serial_roll_takes_cluster_after_cluster_in_inventory_order():
    assert roll.order(["a1", "b1", "a2", "c1", "a3"], CLUSTER.get) == ["a1", "a2", "a3", "b1", "c1"]


def test_a_parallel_roll_takes_one_host_of_each_cluster_in_turn():
    assert roll.order(["a1", "b1", "a2", "c1", "a3"], CLUSTER.get, parallel=True) == ["a1", "b1", "c1", "a2", "a3"]


def test_the_roll_skips_a_host_at_its_target_and_never_one_with_a_cycle_to_resume():
    gen = "qemu-10.0.2 libvirt-11.3.0 kernel-6.1.0-37 os-12.11"
    assert roll.skip("hv1", False, False, gen, "qemu-10", True) == (
        True, "hv1 is at the target (%s, target qemu-10): skipped" % gen)
    assert roll.skip("hv1", False, False, gen, "qemu-11", False)[0] is False  # below: maintained
    assert roll.skip("hv1", False, False, gen, "", False) == (True, "hv1 is at the target (no update pending, %s): skipped" % gen)
    assert roll.skip("hv1", False, False, gen, "", True) == (False, "hv1 has updates pending")
    # a cycle to resume wins over the target and over nothing pending
    assert roll.skip("hv1", True, False, gen, "qemu-10", False) == (
        False, "hv1 has an unfinished maintenance cycle: its cycle resumes")
    assert roll.skip("hv1", False, True, gen, "", False) == (False, "hv1 has its maintenance mark: its cycle resumes")
