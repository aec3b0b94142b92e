# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""migration_preflight on fake hosts: bad input is one sentence naming the option and the guests, verdicts otherwise."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Disk, Guest, HostFacts, Nic
from ansible_collections.hostmaint.libvirt.plugins.modules import migration_preflight

SHARED = "/var/lib/libvirt/shared"
URIS = {"qemu:///system": "hv1", "qemu+tls://hv2/system": "hv2", "qemu+tls://hv3/system": "hv3"}
GUESTS = {"hv1": ["web1", "web2"], "hv2": ["db1"], "hv3": []}


class FakeAdapter(object):
    def __init__(self, uri):
        self.host = URIS[uri]

    def pools(self, shared_names=()):
        return []

    def guests(self, pools=None):
        return [Guest(name=name, uuid="uuid-" + name, state="running", memory_mib=512, max_memory_mib=512,
                      disks=[Disk(target="vda", path="%s/%s.qcow2" % (SHARED, name))],
                      interfaces=[Nic(type="bridge", source="br0")]) for name in GUESTS[self.host]]

    def has_domain(self, name):
        return name in GUESTS[self.host]

    def guest_cpu_xml(self, name):
        return None

    def host_identity(self):
        return dict(hostname=self.host, uuid="uuid-" + self.host)

    def host_facts(self, name, shared_names=(), guests=(), cpu_xml=None, paths=()):
        paths = ["%s/%s.qcow2" % (SHARED, n) for n in ("web1", "web2")]
        return HostFacts(name=name, uuid="uuid-" + name, hostname=name, hostname_resolves=True, memory_free_mib=8192,
                         memory_total_mib=8192, bridges=["br0"], volume_paths=paths)

    def close(self):
        pass


def run_module(capsys, **args):
    args = dict(dict(name="hv1", destinations=[{"name": "hv2"}, {"name": "hv3"}]), **args)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            migration_preflight.MigrationPreflight(adapter_factory=FakeAdapter).execute()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


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


def test_only_the_source_as_destination(capsys):
    code, result = run_module(capsys, destinations=[{"name": "hv1"}])
    assert code == 1 and result["msg"] == ("the only destination listed in destinations is hv1, the source host itself: "
                                           "list the other hosts of its cluster")
