# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine modules' action plugin: what it hands the module, given task arguments and inventory.

The plugin runs with a real templar; the module run is replaced by recording its arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.hostmaint.libvirt.plugins.plugin_utils import engine_action

HOSTVARS = {"hv1": {"ansible_host": "10.0.0.11"}, "hv2": {"ansible_host": "10.0.0.12"}, "hv3": {}}


class Recorder(engine_action.EngineAction):
    """The plugin with the module run replaced by recording what it would be given."""

    def __init__(self, action, args, task_vars):
        # no ActionBase.__init__: it wants a connection, a play context and a loader it does not use here
        self._task = types.SimpleNamespace(args=args, action=action, resolved_action=action, async_val=0,
                                           check_mode=False)
        self._templar = Templar(loader=DataLoader(), variables=task_vars)
        self._connection = types.SimpleNamespace(_shell=types.SimpleNamespace(tmpdir="/tmp/unused"))
        self.sent = None

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        self.sent = dict(module=module_name, args=module_args)
        return dict(changed=False)


def run(args, host_vars=None, action="hostmaint.libvirt.evacuate"):
    task_vars = dict(inventory_hostname="hv1", group_names=["hypervisors"], groups={"hypervisors": ["hv1", "hv2", "hv3"]},
                     hostvars=HOSTVARS, **(host_vars or {}))
    plugin = Recorder(action, dict(args), task_vars)
    plugin.run(task_vars=task_vars)
    return plugin.sent


def without_identity(args):
    return dict((k, v) for k, v in args.items() if k not in ("name", "address", "destinations"))


def test_identity_comes_from_the_inventory():
    sent = run({})
    assert sent["module"] == "hostmaint.libvirt.evacuate"
    assert sent["args"] == {"name": "hv1", "address": "10.0.0.11",
                            "destinations": [{"name": "hv2", "address": "10.0.0.12", "generation": None,
                                              "capacity_mib": None},
                                             {"name": "hv3", "address": "hv3", "generation": None, "capacity_mib": None}]}


def cluster_run(me, host_vars=None, hostvars=None):
    groups = {"hypervisors": ["a1", "a2", "b1", "b2"], "cluster_a": ["a1", "a2"], "cluster_b": ["b1", "b2"]}
    task_vars = dict(inventory_hostname=me, group_names=["hypervisors", "cluster_" + me[0]], groups=groups,
                     hostvars=hostvars or {}, **(host_vars or {}))
    plugin = Recorder("hostmaint.libvirt.evacuate", {}, task_vars)
    plugin.run(task_vars=task_vars)
    return [d["name"] for d in plugin.sent["args"]["destinations"]], plugin.sent["args"]["destinations"]


def test_destinations_are_the_other_hosts_of_the_cluster_group():
    # default: every other host of hypervisors
    assert cluster_run("a1")[0] == ["a2", "b1", "b2"]
    # a cluster named by the host variable: never a host of another cluster
    assert cluster_run("a1", {"hostmaint_libvirt_cluster_group": "cluster_a"})[0] == ["a2"]
    assert cluster_run("b2", {"hostmaint_libvirt_cluster_group": "cluster_b"})[0] == ["b1"]


def test_a_host_outside_the_cluster_group_it_was_given_fails_naming_both():
    with pytest.raises(AnsibleActionFail, match="a1 is not in its cluster group cluster_b"):
        cluster_run("a1", {"hostmaint_libvirt_cluster_group": "cluster_b"})


def test_destinations_carry_the_generation_the_inventory_or_the_playbooks_recorded():
    hostvars = {"a2": {"hostmaint_libvirt_generation": "7"},
                "b1": {"hostmaint_libvirt_observed_generation": "qemu-10.0.2 libvirt-11.3.0"},
                "b2": {"hostmaint_libvirt_generation": "8", "hostmaint_libvirt_observed_generation": "x"}}
    found = dict((d["name"], d["generation"]) for d in cluster_run("a1", hostvars=hostvars)[1])
    assert found == {"a2": "7", "b1": "qemu-10.0.2 libvirt-11.3.0", "b2": "8"}


def test_destinations_carry_the_capacity_each_host_declares_given_ones_too_unless_they_give_one():
    hostvars = {"a2": {"hostmaint_libvirt_capacity_mib": 4096}, "b1": {"hostmaint_libvirt_capacity_mib": "2048"},
                "b2": {}}
    found = dict((d["name"], d["capacity_mib"]) for d in cluster_run("a1", hostvars=hostvars)[1])
    assert found == {"a2": 4096, "b1": "2048", "b2": None}  # as the inventory gives it: the module judges it
    task_vars = dict(inventory_hostname="hv1", group_names=["hypervisors"], groups={"hypervisors": ["hv1", "hv2", "hv3"]},
                     hostvars=dict(HOSTVARS, hv2={"ansible_host": "10.0.0.12", "hostmaint_libvirt_capacity_mib": 4096},
                                   hv3={"hostmaint_libvirt_capacity_mib": 1024}),
                     hostmaint_libvirt_capacity_mib=8192)
    given = [{"name": "hv2"}, {"name": "hv3", "capacity_mib": 512}, {"name": "elsewhere"}]
    plugin = Recorder("hostmaint.libvirt.evacuate", {"destinations": given}, task_vars)
    plugin.run(task_vars=task_vars)
    assert plugin.sent["args"]["destinations"] == [{"name": "hv2", "address": "10.0.0.12", "capacity_mib": 4096},
                                                   {"name": "hv3", "address": "hv3", "capacity_mib": 512},
                                                   {"name": "elsewhere"}]
    assert plugin.sent["args"]["capacity_mib"] == 8192  # this host's own, like every engine option


def test_task_argument_beats_inventory_variable_beats_default():
    sent = run({"max_outbound": 3, "allow_partial": None},
               {"hostmaint_libvirt_max_outbound": 1, "hostmaint_libvirt_min_timeout": 90,
                "hostmaint_libvirt_allow_partial": True})
    assert without_identity(sent["args"]) == {"max_outbound": 3, "min_timeout": 90, "allow_partial": True}


def test_inventory_values_are_templated_with_the_hosts_variables():
    sent = run({}, {"site_reserve": 2048, "hostmaint_libvirt_reserve_mib": trust_as_template("{{ site_reserve * 2 }}"),
                    "hostmaint_libvirt_downtime_steps_ms": [50, 500]})
    assert without_identity(sent["args"]) == {"reserve_mib": 4096, "downtime_steps_ms": [50, 500]}


def test_each_module_reads_only_its_own_options():
    host_vars = {"hostmaint_libvirt_fail_on_not_home": True, "hostmaint_libvirt_guests": ["web1"]}
    assert without_identity(run({}, host_vars, "hostmaint.libvirt.restore")["args"]) == {"fail_on_not_home": True}
    assert without_identity(run({}, host_vars, "hostmaint.libvirt.migration_preflight")["args"]) == {"guests": ["web1"]}
    assert without_identity(run({}, host_vars, "hostmaint.libvirt.evacuate")["args"]) == {}


def test_identity_variables_are_ignored_with_a_warning(monkeypatch):
    warned = []
    monkeypatch.setattr(engine_action.display, "warning", warned.append)
    sent = run({}, {"hostmaint_libvirt_destinations": [{"name": "hv9"}], "hostmaint_libvirt_name": "other"})
    assert sent["args"]["name"] == "hv1" and [d["name"] for d in sent["args"]["destinations"]] == ["hv2", "hv3"]
    ignored = [w.split(" is ignored for hv1: ")[0] for w in warned]
    assert ignored == ["hostmaint_libvirt_destinations", "hostmaint_libvirt_name"]


def test_a_module_that_is_not_an_engine_module_fails_with_one_sentence():
    with pytest.raises(AnsibleActionFail) as error:
        run({}, action="hostmaint.libvirt.guest_info")
    assert "hostmaint.libvirt.guest_info is not an engine module" in str(error.value)


@pytest.mark.parametrize("destinations, message", [
    ("hv2,hv3", "destinations must be a list of hosts, each a dict such as {name: hv2}, got 'hv2,hv3'"),
    (["hv2"], "destinations lists 'hv2', which is not a dict: give each host as a dict such as {name: hv2, address: "
              "192.0.2.12}"),
    ([{"address": "10.0.0.12"}], "destinations lists {'address': '10.0.0.12'} without a host name: give each host's "
                                 "name in name"),
    ([{"name": ["hv2"]}], "destinations lists {'name': ['hv2']} without a host name: give each host's name in name"),
])
def test_malformed_destinations_are_one_sentence_naming_the_entry(destinations, message):
    with pytest.raises(AnsibleActionFail) as error:
        run({"destinations": destinations})
    assert str(error.value) == message


def test_given_destinations_get_their_inventory_address_and_null_means_the_inventory():
    sent = run({"destinations": [{"name": "hv2"}, {"name": "hv9", "address": "192.0.2.9"}]})
    assert sent["args"]["destinations"] == [{"name": "hv2", "address": "10.0.0.12"}, {"name": "hv9", "address": "192.0.2.9"}]
    assert [d["name"] for d in run({"destinations": None})["args"]["destinations"]] == ["hv2", "hv3"]


def test_an_ipv6_ansible_host_goes_in_brackets():
    """uris.inventory_address (its cases in test_uris), which the roles' peer_uri filter uses too."""
    hostvars = {"hv1": {"ansible_host": "2001:db8::11"}, "hv2": {"ansible_host": "[2001:db8::12]"},
                "hv3": {"ansible_host": "10.0.0.13"}}
    task_vars = dict(inventory_hostname="hv1", group_names=["hypervisors"], groups={"hypervisors": ["hv1", "hv2", "hv3"]},
                     hostvars=hostvars)
    plugin = Recorder("hostmaint.libvirt.evacuate", {}, task_vars)
    plugin.run(task_vars=task_vars)
    assert plugin.sent["args"]["address"] == "[2001:db8::11]"
    assert [d["address"] for d in plugin.sent["args"]["destinations"]] == ["[2001:db8::12]", "10.0.0.13"]


def test_the_plugin_does_not_import_libvirt_or_the_engine():
    code = ("import sys; "
            "import ansible_collections.hostmaint.libvirt.plugins.plugin_utils.engine_action; "
            "print(sorted(m for m in sys.modules if m == 'libvirt' or m.endswith(('.engine', '.libvirt_adapter'))))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=":".join(sys.path))).stdout
    assert out.strip() == "[]"


# -- progress: the file the module writes, which the plugin reads while it runs ---------------------------------
def sent_over(transport, args=None, host_vars=None, action="hostmaint.libvirt.evacuate", check_mode=False):
    task_vars = dict(inventory_hostname="hv1", group_names=["hypervisors"], groups={"hypervisors": ["hv1", "hv2"]},
                     hostvars=HOSTVARS, **(host_vars or {}))
    plugin = Recorder(action, dict(args or {}), task_vars)
    plugin._connection.transport = transport
    plugin._task.check_mode = check_mode
    plugin.run(task_vars=task_vars)
    return plugin.sent["args"]


def test_the_modules_that_move_get_a_progress_file_nobody_can_guess_over_ssh_and_local():
    first, second = sent_over("ssh"), sent_over("local")
    assert first["progress_file"].startswith("/tmp/hostmaint-progress-") and first["progress_file"].endswith(".json")
    assert first["progress_file"] != second["progress_file"]
    assert "progress_file" in sent_over("ssh", action="hostmaint.libvirt.disk_move")
    assert sent_over("ssh", {"progress_file": "/run/mine.json"})["progress_file"] == "/run/mine.json"


@pytest.mark.parametrize("case", [
    dict(transport="paramiko_ssh"),  # its commands share one transport with the module's: not read
    dict(transport="ssh", check_mode=True),
    dict(transport="ssh", args={"progress": False}),
    dict(transport="ssh", host_vars={"hostmaint_libvirt_progress": "false"}),  # an extra var is a string
    dict(transport="ssh", action="hostmaint.libvirt.migration_preflight"),  # moves nothing
])
def test_no_progress_file_when_progress_is_off_or_cannot_be_read(case):
    assert "progress_file" not in sent_over(**case)


def test_no_progress_with_a_stdout_callback_that_prints_one_json_document(monkeypatch):
    monkeypatch.setattr(engine_action.C, "DEFAULT_STDOUT_CALLBACK", "ansible.posix.json")
    assert "progress_file" not in sent_over("ssh")
    monkeypatch.setattr(engine_action.C, "DEFAULT_STDOUT_CALLBACK", "default")
    assert "progress_file" in sent_over("ssh")
