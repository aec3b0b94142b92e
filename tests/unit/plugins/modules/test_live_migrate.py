# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""live_migrate end to end on two fake hosts: what the user reads in the module's JSON, window changes included.

The shared fake cluster (tests/unit/plugins/fake_adapter.py) stands in for the adapter (facts, guests, a migration
job that finishes at once with the pause it is told to report), injected through the constructor; no libvirt.
"""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.modules import live_migrate
from ansible_collections.hostmaint.libvirt.tests.unit.plugins import fake_adapter


def World(downtime_ms):  # pylint: disable=invalid-name
    """hv1 runs web1 (512 MiB, on shared storage, bridged to br0), hv2 runs nothing; a migration pauses downtime_ms."""
    world = fake_adapter.FakeCluster("hv1", "hv2")
    world.add("hv1", "web1")
    world.downtime_ms["web1"] = downtime_ms
    return world


def guests_of(world):
    """{host: {guest: state}}."""
    return dict((host, world.states(host)) for host in world.hosts)


def run_module(capsys, world, **args):
    args = dict(dict(name="hv1", guest="web1", destination="hv2", destinations=[{"name": "hv2"}], settle_s=0), **args)
    return fake_adapter.run_module(capsys, live_migrate.LiveMigrate, world, **args)


def test_a_pause_within_the_target_changes_no_window(capsys):
    world = World(downtime_ms=42)
    code, result = run_module(capsys, world)
    assert code == 0 and result["changed"] is True, result
    assert result["outcome"]["outcome"] == "migrated" and result["outcome"]["downtime_ms"] == 42
    assert result["window_changes"] == []
    assert guests_of(world) == {"hv1": {}, "hv2": {"web1": "running"}}


def test_a_pause_over_the_target_is_reported_as_a_window_change_of_both_hosts(capsys):
    code, result = run_module(capsys, World(downtime_ms=300), max_outbound=3)
    assert code == 0 and result["outcome"]["outcome"] == "migrated", result
    reason = "web1 paused 300 ms at switchover, at least 80 % of the 150 ms pause target"
    assert [dict((k, v) for k, v in c.items() if k != "at") for c in result["window_changes"]] == [
        {"source": "hv1", "from": 3, "to": 2, "guest": "web1", "downtime_ms": 300, "reason": reason},
        {"destination": "hv2", "from": 2, "to": 1, "guest": "web1", "downtime_ms": 300, "reason": reason},
    ]
    assert all(change["at"] >= 0 for change in result["window_changes"])


def test_a_pause_target_of_zero_turns_the_reaction_off(capsys):
    code, result = run_module(capsys, World(downtime_ms=300), pause_target_ms=0)
    assert code == 0 and result["window_changes"] == []


def test_a_negative_pause_target_is_refused_before_anything_moves(capsys):
    world = World(downtime_ms=42)
    code, result = run_module(capsys, world, pause_target_ms=-1)
    assert code == 1 and result["msg"] == "pause_target_ms must be 0 or more, got -1"
    assert guests_of(world) == {"hv1": {"web1": "running"}, "hv2": {}}


# -- bad input: one sentence naming the option and the object, exit 1, nothing moved -----------------------------

def refused(capsys, down=(), **args):
    """The message of a run that must fail, after checking it moved nothing; also the hosts it opened (hosts in
    ``down`` cannot say which guests they have)."""
    world = World(downtime_ms=42)
    for host in down:
        world.fail("has_domain", host=host, at=None,
                   message="cannot connect to libvirt at %s: connection refused" % world.uri(host))
    args = dict(dict(name="hv1", guest="web1", destination="hv2", destinations=[{"name": "hv2"}], settle_s=0), **args)
    code, result = fake_adapter.run_module(capsys, live_migrate.LiveMigrate, world, **args)
    assert code == 1 and result["failed"] is True, result
    assert "Traceback" not in result["msg"] and "\n" not in result["msg"]
    assert guests_of(world) == {"hv1": {"web1": "running"}, "hv2": {}}
    return result["msg"], world.opened


def test_a_destination_that_is_the_source_is_refused_before_any_host_is_asked(capsys):
    msg, opened = refused(capsys, destination="hv1")
    assert msg == "destination hv1 is the source host hv1: a guest cannot migrate to the host it runs on"
    assert opened == []


def test_a_destination_that_is_the_source_is_refused_when_libvirt_names_this_host(capsys):
    msg, opened = refused(capsys, name=None, destination="hv1")
    assert msg == "destination hv1 is the source host hv1: a guest cannot migrate to the host it runs on"
    assert opened == ["hv1"]


def test_a_destination_that_is_not_listed(capsys):
    msg, opened = refused(capsys, destination="hv9")
    assert msg == "destination hv9 is not among destinations (hv2): name one of them, or add hv9 to destinations"
    assert opened == []
    msg, _opened = refused(capsys, destinations=[], destination="hv9")
    assert msg == "destination hv9 is not among destinations (none given): name one of them, or add hv9 to destinations"


def test_destinations_that_list_only_the_source(capsys):
    msg, opened = refused(capsys, destinations=[{"name": "hv1"}])
    assert msg == ("the only destination listed in destinations is hv1, the source host itself: list the other hosts "
                   "of its cluster")
    assert opened == []


@pytest.mark.parametrize("args, message", [
    (dict(uri_template="qemu+bogus://{host}/system"),
     "uri_template 'qemu+bogus://{host}/system' has the scheme qemu+bogus, which libvirt does not accept for QEMU: use "
     "one of qemu, qemu+tls, qemu+ssh, qemu+tcp, qemu+libssh, qemu+libssh2, qemu+ext"),
    (dict(uri="foo://x"), "uri 'foo://x' has the scheme foo, which libvirt does not accept for QEMU: use one of qemu, "
                          "qemu+tls, qemu+ssh, qemu+tcp, qemu+unix, qemu+libssh, qemu+libssh2, qemu+ext"),
    (dict(max_inbound=100000), "max_inbound must be 64 or less (libvirt's default migration port range has 64 ports, "
                               "one per incoming migration), got 100000"),
    (dict(downtime_steps_ms=[]), "downtime_steps_ms is empty: give at least one downtime limit in milliseconds, such "
                                 "as [50, 100, 200, 300, 500]"),
    (dict(guest=""), "guest is empty: name the guest to move"),
    (dict(destination=" "), "destination is empty: name the host to move web1 to"),
    (dict(max_inbound="lots"), "argument 'max_inbound' is of type str and we were unable to convert to int: \"'lots'\" "
                               "cannot be converted to an int"),
    (dict(destinations=[{"address": "10.0.0.12"}]), "missing required arguments: name found in destinations"),
])
def test_options_are_refused_before_any_host_is_asked(capsys, args, message):
    msg, opened = refused(capsys, **args)
    assert msg == message and opened == []


def test_a_guest_on_neither_host(capsys):
    msg, _opened = refused(capsys, guest="ghost")
    assert msg == "guest ghost is defined neither on hv1 nor on the destination hv2: name a guest of hv1"


def test_a_guest_not_here_while_the_destination_does_not_answer(capsys):
    msg, _opened = refused(capsys, guest="ghost", down=["hv2"])
    assert msg == ("guest ghost is not defined on hv1, and the destination hv2 cannot tell whether it runs there: "
                   "cannot connect to libvirt at qemu+tls://hv2/system: connection refused")


@pytest.mark.parametrize("args, message", [
    (dict(policies={"ghost": "shutdown"}),
     "policies names guest ghost, which is defined on none of hv1, hv2: name guests of these hosts, or remove ghost "
     "from policies"),
    (dict(probes={"web1": "tcp://10.0.0.1:22", "ghost": "tcp://10.0.0.9:22"}, settle_s=5),
     "probes names guest ghost, which is defined on none of hv1, hv2: name guests of these hosts, or remove ghost "
     "from probes"),
])
def test_options_naming_a_guest_no_host_has(capsys, args, message):
    msg, _opened = refused(capsys, **args)
    assert msg == message


def test_an_option_naming_a_guest_of_the_destination_is_fine(capsys):
    world = World(downtime_ms=42)
    world.add("hv2", "db1")
    code, result = run_module(capsys, world, policies={"db1": "skip"})
    assert code == 0 and result["outcome"]["outcome"] == "migrated", result


def test_a_guest_on_a_local_disk_moves_by_a_storage_copy_that_counts_the_disk_and_deletes_the_source(capsys):
    world = fake_adapter.FakeCluster("hv1", "hv2")
    disk = fake_adapter.LOCAL + "/web1.qcow2"
    world.add("hv1", "web1", disks=[fake_adapter.Disk(target="vda", path=disk, pool="default")])
    world.volumes["hv1"][disk] = dict(capacity=8 << 30, allocation=1 << 30)
    code, result = run_module(capsys, world, allow_storage_copy=True)
    assert code == 0, result
    move = result["plan"]["moves"][0]
    assert (move["copy_disks"], move["disk_bytes"]) == (["vda"], 8 << 30)
    assert move["expected_bytes"] == (512 << 20) + (8 << 30)
    assert result["outcome"]["source_disks_deleted"] == [disk]
    assert world.volumes == {"hv1": {}, "hv2": {disk: dict(capacity=8 << 30, allocation=1 << 30)}}
