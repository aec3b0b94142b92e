# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles' filters engine_option, engine_options and peer_uri: rendered by Ansible's templar as a role renders
them, and held against what the engine modules' action plugin and EngineModule compute for the same inventory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest

from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.hostmaint.libvirt.plugins.filter import engine as engine_filters
from ansible_collections.hostmaint.libvirt.plugins.module_utils import engine, options, uris
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils import engine_action

GROUPS = {"hypervisors": ["hv1", "hv2", "hv3", "hv4", "hv5"]}
# hv2 bare IPv6, hv3 IPv6 already in brackets, hv4 IPv4, hv5 no ansible_host (its name)
HOSTVARS = {"hv1": {"ansible_host": "192.0.2.11"}, "hv2": {"ansible_host": "2001:db8::12"},
            "hv3": {"ansible_host": "[2001:db8::13]"}, "hv4": {"ansible_host": "192.0.2.14"}, "hv5": {}}
EXPECTED_URIS = {"hv2": "qemu+tls://[2001:db8::12]/system", "hv3": "qemu+tls://[2001:db8::13]/system",
                 "hv4": "qemu+tls://192.0.2.14/system", "hv5": "qemu+tls://hv5/system"}


def render(expression, **variables):
    """``expression`` rendered as a role's template is: the host's variables, ``vars`` and ``hostvars`` defined."""
    variables.setdefault("hostvars", HOSTVARS)
    variables["vars"] = dict(variables)
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template("{{ %s }}" % expression))


# -- engine_option: the role's value, else hostmaint_libvirt_<option>, else the argument spec's default -------------

@pytest.mark.parametrize("variables, expected", [
    # the role's own value wins
    (dict(role_value=512, hostmaint_libvirt_reserve_mib=4096), 512),
    # else the host variable
    (dict(role_value=None, hostmaint_libvirt_reserve_mib=4096), 4096),
    # else the module's default
    (dict(role_value=None), 1024),
    # false and 0 are values; a null host variable is not set
    (dict(role_value=0, hostmaint_libvirt_reserve_mib=4096), 0),
    (dict(role_value=None, hostmaint_libvirt_reserve_mib=None), 1024),
])
def test_engine_option_role_value_beats_host_variable_beats_default(variables, expected):
    assert render("vars | hostmaint.libvirt.engine_option('reserve_mib', role_value)", **variables) == expected


def test_engine_option_without_a_value_is_the_host_variable_else_the_default():
    assert render("vars | hostmaint.libvirt.engine_option('uri_template')") == "qemu+tls://{host}/system"
    assert render("vars | hostmaint.libvirt.engine_option('uri_template')",
                  hostmaint_libvirt_uri_template="qemu+ssh://root@{host}/system") == "qemu+ssh://root@{host}/system"
    assert render("vars | hostmaint.libvirt.engine_option('cluster_group')") == "hypervisors"
    assert render("vars | hostmaint.libvirt.engine_option('cluster_group')",
                  hostmaint_libvirt_cluster_group="cluster_a") == "cluster_a"


def test_engine_option_templates_a_host_variable_with_the_hosts_variables():
    assert render("vars | hostmaint.libvirt.engine_option('uri_template')", site_port=16600,
                  hostmaint_libvirt_uri_template=trust_as_template("qemu+tls://{host}:{{ site_port }}/system")) == \
        "qemu+tls://{host}:16600/system"


def test_engine_option_of_another_host_reads_its_hostvars():
    hostvars = dict(HOSTVARS, hv2=dict(HOSTVARS["hv2"], hostmaint_libvirt_generation="7"))
    assert render("hostvars['hv2'] | hostmaint.libvirt.engine_option('generation')", hostvars=hostvars) == "7"
    assert render("hostvars['hv4'] | hostmaint.libvirt.engine_option('generation')", hostvars=hostvars) is None


def test_engine_option_names_the_module_for_a_modules_own_option():
    assert render("vars | hostmaint.libvirt.engine_option('canary', module='restore')") is True
    assert render("vars | hostmaint.libvirt.engine_option('canary', none, 'hostmaint.libvirt.restore')",
                  hostmaint_libvirt_canary=False) is False


@pytest.mark.parametrize("expression, message", [
    ("vars | hostmaint.libvirt.engine_option('address')", "address is not read from hostmaint_libvirt_address"),
    ("vars | hostmaint.libvirt.engine_option('canary')", "canary is not an option every engine module shares"),
    ("vars | hostmaint.libvirt.engine_option('uri', module='guest_info')", "guest_info is not an engine module"),
    ("'hv1' | hostmaint.libvirt.engine_option('uri')", "engine_option's input must be a host's variables"),
    ("vars | hostmaint.libvirt.engine_options(['tls'])", "engine_options' values must be a dict"),
    ("'qemu+tls://hv2/system' | hostmaint.libvirt.peer_uri('hv2')", "must be a string with {host}"),
    ("'qemu+tls://{host}/system' | hostmaint.libvirt.peer_uri('')", "peer_uri's host '' must be a host name"),
])
def test_bad_input_fails_the_template_with_one_sentence(expression, message):
    with pytest.raises(AnsibleError, match=message.replace("{", r"\{").replace("(", r"\(")):
        render(expression)


def test_engine_options_give_what_the_module_would_use():
    found = render("vars | hostmaint.libvirt.engine_options({'max_outbound': 1}, module='evacuate')",
                   hostmaint_libvirt_max_outbound=3, hostmaint_libvirt_max_inbound=4)
    assert (found["max_outbound"], found["max_inbound"], found["reserve_mib"]) == (1, 4, 1024)
    assert found == options.resolve_all({"hostmaint_libvirt_max_outbound": 3, "hostmaint_libvirt_max_inbound": 4},
                                        {"max_outbound": 1}, "evacuate")


# -- peer_uri: an IPv6 address in brackets ---------------------------------------------------------------------

@pytest.mark.parametrize("address, uri", [
    ("2001:db8::12", "qemu+tls://[2001:db8::12]/system"),
    ("[2001:db8::12]", "qemu+tls://[2001:db8::12]/system"),
    ("192.0.2.12", "qemu+tls://192.0.2.12/system"),
    ("hv2.example.org", "qemu+tls://hv2.example.org/system"),
])
def test_peer_uri_of_an_address(address, uri):
    assert render("'qemu+tls://{host}/system' | hostmaint.libvirt.peer_uri(address)", address=address) == uri


@pytest.mark.parametrize("host", sorted(EXPECTED_URIS))
def test_peer_uri_of_an_inventory_host_is_at_its_ansible_host_else_its_name(host):
    assert render("'qemu+tls://{host}/system' | hostmaint.libvirt.peer_uri(item, hostvars)", item=host) == \
        EXPECTED_URIS[host]


# -- the filters and the engine share one function -------------------------------------------------------------

class Recorder(engine_action.EngineAction):
    """The engine modules' action plugin with the module run replaced by recording its arguments."""

    def __init__(self, task_vars):
        # no ActionBase.__init__: it wants a connection, a play context and a loader it does not use here
        self._task = types.SimpleNamespace(args={}, action="hostmaint.libvirt.evacuate",
                                           resolved_action="hostmaint.libvirt.evacuate", async_val=0, check_mode=False)
        self._templar = Templar(loader=DataLoader(), variables=task_vars)
        self._connection = types.SimpleNamespace(_shell=types.SimpleNamespace(tmpdir="/tmp/unused"))
        self.sent = None

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        self.sent = module_args
        return dict(changed=False)


def engine_module_of(host_vars):
    """The EngineModule of hv1's evacuation: what the action plugin sends, with the argument spec's defaults."""
    task_vars = dict(host_vars, inventory_hostname="hv1", group_names=["hypervisors"], groups=GROUPS, hostvars=HOSTVARS)
    plugin = Recorder(task_vars)
    plugin.run(task_vars=task_vars)
    params = dict((key, spec.get("default")) for key, spec in options.module_spec("evacuate").items())
    params.update(plugin.sent)
    return engine.EngineModule(module=types.SimpleNamespace(params=params), adapter_factory=lambda uri: None)


SSH_URIS = {"hv2": "qemu+ssh://root@[2001:db8::12]:2222/system", "hv3": "qemu+ssh://root@[2001:db8::13]:2222/system",
            "hv4": "qemu+ssh://root@192.0.2.14:2222/system", "hv5": "qemu+ssh://root@hv5:2222/system"}


@pytest.mark.parametrize("host_vars, expected", [
    ({}, EXPECTED_URIS),
    ({"hostmaint_libvirt_uri_template": "qemu+ssh://root@{host}:2222/system"}, SSH_URIS),
])
def test_the_health_gates_uris_are_the_uris_the_engine_migrates_to(host_vars, expected):
    """What roles/health_gate renders for each peer, against EngineModule.peer_uri with the action plugin's arguments."""
    subject = engine_module_of(host_vars)
    for host in sorted(expected):
        rendered = render("vars | hostmaint.libvirt.engine_option('uri_template') | hostmaint.libvirt.peer_uri(item, "
                          "hostvars)", item=host, **host_vars)
        assert rendered == subject.peer_uri(host) == expected[host]


def test_the_filter_the_engine_and_the_action_plugin_call_the_same_functions(monkeypatch):
    called = []
    real_peer_uri, real_address, real_resolve = uris.peer_uri, uris.inventory_address, options.resolve
    monkeypatch.setattr(uris, "peer_uri", lambda *a: called.append("peer_uri") or real_peer_uri(*a))
    monkeypatch.setattr(uris, "inventory_address", lambda *a: called.append("inventory_address") or real_address(*a))
    monkeypatch.setattr(options, "resolve", lambda *a: called.append("resolve") or real_resolve(*a))

    engine_filters.peer_uri("qemu+tls://{host}/system", "hv2", HOSTVARS)
    assert called == ["inventory_address", "peer_uri"]
    del called[:]
    engine_filters.engine_option({}, "uri_template")
    assert called == ["resolve"]
    del called[:]
    subject = engine_module_of({})  # the action plugin: hv1's address and each destination's
    assert called == ["inventory_address"] * 5
    del called[:]
    subject.peer_uri("hv2")
    assert called == ["peer_uri"]


def test_engine_option_resolves_with_the_merge_the_action_plugin_uses(monkeypatch):
    merged = []
    real_merge = options.merge
    monkeypatch.setattr(options, "merge", lambda *a, **k: merged.append(a[2]) or real_merge(*a, **k))
    engine_filters.engine_option({"hostmaint_libvirt_max_inbound": 3}, "max_inbound")
    engine_module_of({"hostmaint_libvirt_max_inbound": 3})
    assert merged[0] == ["max_inbound"] and "max_inbound" in merged[1]


def test_the_filters_do_not_import_libvirt_or_the_engine():
    """They run on the controller, where libvirt may be missing."""
    code = ("import sys; "
            "import ansible_collections.hostmaint.libvirt.plugins.filter.engine; "
            "print(sorted(m for m in sys.modules if m == 'libvirt' or m.endswith(('.engine', '.libvirt_adapter')) "
            "and '.filter.' not in m))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=":".join(sys.path))).stdout
    assert out.strip() == "[]"
