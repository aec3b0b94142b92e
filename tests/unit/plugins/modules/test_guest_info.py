# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.module_utils import domain_xml
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.libvirt_adapter import mount_fs_type
from ansible_collections.hostmaint.libvirt.plugins.modules import guest_info


class FakeAdapter(object):
    """Stands in for LibvirtAdapter: same methods, canned data, records what was asked."""

    def __init__(self, uri, guests_xml=(), fail=None):
        self.uri = uri
        self.guests_xml = guests_xml
        self.fail = fail
        self.closed = False
        self.shared_names = None

    def pools(self, shared_names=()):
        if self.fail:
            raise HostmaintError(self.fail, uri=self.uri)
        self.shared_names = list(shared_names)
        return [dict(name="shared", type="dir", path="/srv/shared", active=True,
                     shared="shared" in shared_names, shared_by=None)]

    def guests(self, pools=None):
        return [domain_xml.parse_domain(xml, state="running", pools=pools) for xml in self.guests_xml]

    def host_identity(self):
        return dict(hostname="hv9", uuid="uuid-9", uri=self.uri)

    def close(self):
        self.closed = True


GUESTS = [
    "<domain><name>b</name><uuid>u-b</uuid><memory unit='MiB'>512</memory><devices>"
    "<disk type='file'><source file='/srv/shared/b.qcow2'/><target dev='vda'/></disk></devices></domain>",
    "<domain><name>a</name><uuid>u-a</uuid><memory unit='MiB'>256</memory></domain>",
]


def run_module(capsys, args, adapter, warned=None):
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            module = guest_info.GuestInfo(adapter_factory=lambda uri: adapter)
            if warned is not None:
                real_warn = module.module.warn
                module.module.warn = lambda msg: (warned.append(msg), real_warn(msg))
            module.execute()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def test_lists_every_guest_and_marks_shared_pools(capsys):
    adapter = FakeAdapter("qemu:///system", GUESTS)
    code, result = run_module(capsys, {"shared_pools": ["shared"]}, adapter)
    assert code == 0 and result["changed"] is False
    assert [g["name"] for g in result["guests"]] == ["b", "a"]
    assert result["guests"][0]["disks"][0]["pool"] == "shared" and result["guests"][0]["disks"][0]["shared"] is True
    assert result["host"] == {"hostname": "hv9", "uuid": "uuid-9", "uri": "qemu:///system"}
    assert adapter.shared_names == ["shared"] and adapter.closed


def test_an_unknown_policy_is_shown_as_written_with_the_problem_it_is(capsys):
    teleport = ("<domain><name>web1</name><uuid>u-w</uuid><memory unit='MiB'>256</memory><metadata>"
                "<s:settings xmlns:s='urn:hostmaint:libvirt:settings:1' policy='teleport'/></metadata></domain>")
    code, result = run_module(capsys, {}, FakeAdapter("qemu:///system", GUESTS + [teleport]))
    assert code == 0 and result["changed"] is False, result
    by_name = dict((g["name"], g) for g in result["guests"])
    assert by_name["web1"]["policy"] == "teleport"
    assert by_name["web1"]["problems"] == [{
        "code": "unknown_policy", "guest": "web1", "destination": None,
        "message": 'cannot evacuate web1: its policy "teleport" (settings metadata) is not one of migrate, shutdown, '
                   'skip, fail'}]
    assert (by_name["a"]["policy"], by_name["a"]["problems"]) == ("migrate", [])


def test_the_return_attribute_of_the_settings_is_shown_as_written(capsys):
    homing = ("<domain><name>web1</name><uuid>u-w</uuid><memory unit='MiB'>256</memory><metadata>"
              "<s:settings xmlns:s='urn:hostmaint:libvirt:settings:1' return='home'/></metadata></domain>")
    code, result = run_module(capsys, {}, FakeAdapter("qemu:///system", GUESTS + [homing]))
    assert code == 0, result
    by_name = dict((g["name"], g) for g in result["guests"])
    assert (by_name["web1"]["return_to"], by_name["a"]["return_to"]) == ("home", None)


def test_a_malformed_domain_xml_fails_with_one_sentence(capsys):
    code, result = run_module(capsys, {}, FakeAdapter("qemu:///system", GUESTS + ["<domain"]))
    assert code == 1 and result["msg"].startswith("unreadable domain XML: ") and "\n" not in result["msg"], result


def test_names_filter_reports_missing_with_a_warning(capsys):
    warned = []
    code, result = run_module(capsys, {"names": ["a", "zz"]}, FakeAdapter("qemu:///system", GUESTS), warned)
    assert code == 0
    assert [g["name"] for g in result["guests"]] == ["a"]
    assert result["missing"] == ["zz"]
    assert warned == ["host qemu:///system has no guest named zz"]


def test_connection_failure_is_one_sentence_and_closes(capsys):
    adapter = FakeAdapter("qemu+ssh://nowhere/system", fail="cannot connect to libvirt at qemu+ssh://nowhere/system: no route")
    code, result = run_module(capsys, {"uri": "qemu+ssh://nowhere/system"}, adapter)
    assert code == 1 and result["failed"] is True
    assert result["msg"] == "cannot connect to libvirt at qemu+ssh://nowhere/system: no route"
    assert result["uri"] == "qemu+ssh://nowhere/system" and adapter.closed


def test_malformed_option_is_rejected(capsys):
    code, result = run_module(capsys, {"names": "a", "bogus": 1}, FakeAdapter("qemu:///system", GUESTS))
    assert code == 1 and "bogus" in result["msg"]


@pytest.mark.parametrize("uri, message", [
    ("foo://x", "uri 'foo://x' has the scheme foo, which libvirt does not accept for QEMU: use one of qemu, qemu+tls, "
                "qemu+ssh, qemu+tcp, qemu+unix, qemu+libssh, qemu+libssh2, qemu+ext"),
    ("qemu+bogus://hv1/system", "uri 'qemu+bogus://hv1/system' has the scheme qemu+bogus, which libvirt does not accept "
                                "for QEMU: use one of qemu, qemu+tls, qemu+ssh, qemu+tcp, qemu+unix, qemu+libssh, "
                                "qemu+libssh2, qemu+ext"),
])
def test_a_uri_libvirt_would_refuse_fails_before_connecting(capsys, uri, message):
    opened = []
    with patch_module_args({"uri": uri}):
        with pytest.raises(SystemExit) as exit_info:
            guest_info.GuestInfo(adapter_factory=opened.append).execute()
    result = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 1 and result["msg"] == message and opened == []


MOUNTS = """/dev/vda / ext4 rw 0 0
server:/export /srv/shared nfs4 rw 0 0
/dev/vdb /srv/shared/local ext4 rw 0 0
"""


@pytest.mark.parametrize("path, fs", [
    ("/var/lib/libvirt/images", "ext4"),
    ("/srv/shared", "nfs4"),
    ("/srv/shared/vm", "nfs4"),
    ("/srv/shared/local/x", "ext4"),
    ("/srv/sharedother", "ext4"),
])
def test_mount_fs_type_picks_the_deepest_mount(path, fs):
    assert mount_fs_type(path, MOUNTS) == fs
