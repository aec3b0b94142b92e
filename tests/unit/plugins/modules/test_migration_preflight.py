# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration_preflight on fake hosts: bad input is one sentence naming the option and the guests, verdicts otherwise."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.modules import migration_preflight
from ansible_collections.hostmaint.libvirt.tests.unit.plugins import fake_adapter

GUESTS = {"hv1": ["web1", "web2"], "hv2": ["db1"], "hv3": []}


def cluster_of():
    cluster = fake_adapter.FakeCluster("hv1", "hv2", "hv3")
    for host, names in GUESTS.items():
        for name in names:
            cluster.add(host, name)
    return cluster


def run_module(capsys, cluster=None, **args):
    return fake_adapter.run_module(capsys, migration_preflight.MigrationPreflight, cluster or cluster_of(), **args)


def test_every_guest_can_go_everywhere(capsys):
    code, result = run_module(capsys)
    assert code == 0 and result["ready"] is True, result
    assert sorted(result["verdicts"]) == ["web1", "web2"]


def test_guests_it_does_not_have(capsys):
    code, result = run_module(capsys, guests=["web1", "ghost", "db1"])
    assert code == 1 and result["msg"] == ("guests names db1, ghost, which hv1 does not have: name guests of hv1, or "
                                           "leave guests out to judge them all")


def test_policies_for_a_guest_of_a_peer_are_fine_and_for_a_guest_of_none_fail(capsys):
    code, result = run_module(capsys, policies={"db1": "skip", "web1": "shutdown"})
    assert code == 0, result
    code, result = run_module(capsys, policies={"ghost": "skip"})
    assert code == 1 and result["msg"] == ("policies names guest ghost, which is defined on none of hv1, hv2, hv3: "
                                           "name guests of these hosts, or remove ghost from policies")


def test_a_guest_whose_policy_is_unknown_is_ready_for_no_destination(capsys):
    cluster = cluster_of()
    cluster.add("hv1", "odd", policy="teleport")
    code, result = run_module(capsys, cluster)
    assert code == 0 and result["ready"] is False, result
    message = ('cannot evacuate odd: its policy "teleport" (settings metadata) is not one of migrate, shutdown, skip, '
               'fail')
    for destination in ("hv2", "hv3"):
        assert result["verdicts"]["odd"][destination] == {"ok": False, "problems": [
            {"code": "unknown_policy", "message": message, "guest": "odd", "destination": destination}]}
        assert result["verdicts"]["web1"][destination]["ok"] is True


def test_only_the_source_as_destination(capsys):
    code, result = run_module(capsys, destinations=[{"name": "hv1"}])
    assert code == 1 and result["msg"] == ("the only destination listed in destinations is hv1, the source host itself: "
                                           "list the other hosts of its cluster")


def test_the_plan_counts_the_disks_a_storage_copy_would_copy_as_evacuate_does(capsys):
    cluster = fake_adapter.FakeCluster("hv1", "hv2")
    disk = fake_adapter.LOCAL + "/db1.qcow2"
    cluster.add("hv1", "db1", disks=[fake_adapter.Disk(target="vda", path=disk, pool="default")])
    cluster.volumes["hv1"][disk] = dict(capacity=20 << 30, allocation=3 << 30)
    code, result = run_module(capsys, cluster, allow_storage_copy=True)
    assert code == 0 and result["ready"] is True, result
    move = result["plan"]["moves"][0]
    assert (move["copy_disks"], move["disk_bytes"]) == (["vda"], 20 << 30)
    assert move["expected_bytes"] == (512 << 20) + (20 << 30)
    assert cluster.changes() == []  # it only reads


def test_a_declared_capacity_is_the_room_each_verdict_and_the_plan_see(capsys):
    cluster = fake_adapter.FakeCluster("hv1", "hv2")  # hv2 measures 16 GiB free
    cluster.add("hv1", "g3", memory_mib=600)
    cluster.add("hv2", "r1", memory_mib=256)
    cluster.add("hv2", "r2", memory_mib=256)
    code, result = run_module(capsys, cluster, reserve_mib=0, destinations=[{"name": "hv2", "capacity_mib": 1024}])
    assert code == 0 and result["ready"] is False, result
    message = ("cannot live-migrate g3 to hv2: destination has 512 MiB free (512 MiB less the 0 MiB reserve), guest "
               "needs 600 MiB")
    assert result["verdicts"]["g3"]["hv2"] == {"ok": False, "problems": [
        {"code": "memory", "message": message, "guest": "g3", "destination": "hv2"}]}
    assert [(b["guest"], [r["message"] for r in b["reasons"]]) for b in result["blocked"]] == [("g3", [message])]
    code, result = run_module(capsys, cluster, reserve_mib=0, destinations=[{"name": "hv2"}])
    assert code == 0 and result["ready"] is True, result  # undeclared, the host as it measures
    code, result = run_module(capsys, cluster, destinations=[{"name": "hv2", "capacity_mib": "plenty"}])
    assert code == 1 and result["msg"] == ("capacity_mib of hv2 must be a whole number of MiB (0: not declared), got "
                                           "'plenty'"), result
    assert cluster.changes() == []


def test_the_plan_takes_avoided_destinations_last_and_the_verdicts_judge_them_alike(capsys):
    code, result = run_module(capsys, avoid=["hv2", "hv7"])
    assert code == 0 and result["ready"] is True, result
    assert sorted((m["guest"], m["destination"]) for m in result["plan"]["moves"]) == [("web1", "hv3"), ("web2", "hv3")]
    assert all(result["verdicts"][g]["hv2"]["ok"] for g in ("web1", "web2"))
    said = "".join(result.get("warnings", [])) + capsys.readouterr().err  # where Ansible puts a module's warning
    assert "avoid names hv7, which is not a destination of hv1 (hv2, hv3): ignored" in said
