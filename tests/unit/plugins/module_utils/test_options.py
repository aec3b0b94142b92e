# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where an engine module's options come from: task argument, else hostmaint_libvirt_<option>, else the default.

Pure: options.merge is fed task arguments and host variables as the action plugin would get them.
"""

from __future__ import annotations

import ast
import copy
import sys

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import options
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

ENGINE_MODULES = sorted(options.ENGINE_MODULE_SPECS)

# What each engine module accepts, written out: a new option must land here and in the specs alike.
MODULE_OPTIONS = dict(
    evacuate=["avoid", "return_home"],
    live_migrate=["destination", "guest"],
    migration_preflight=["avoid", "guests"],
    restore=["canary", "canary_guest", "fail_on_not_home"],
)
SHARED_OPTIONS = [
    "allow_partial", "allow_storage_copy", "auto_converge", "bandwidth_mib", "capacity_mib", "connect_timeout",
    "downtime_steps_ms",
    "generation", "max_inbound", "max_outbound", "min_timeout", "pause_target_ms", "policies", "postcopy", "probes", "progress",
    "progress_file", "reserve_mib",
    "settle_s", "shared_pools", "shutdown_timeout", "storage_copy_source", "timeout_per_gib", "tls", "uri",
    "uri_template",
]


def settable(module):
    return options.inventory_options(options.module_spec(module))


def test_settable_options_are_every_option_of_the_spec_but_the_identity_ones():
    for module in ENGINE_MODULES:
        assert settable(module) == sorted(SHARED_OPTIONS + MODULE_OPTIONS[module])
        spec = options.module_spec(module)
        assert set(spec) == set(settable(module)) | {"name", "address", "destinations"}


def test_the_six_options_the_old_hand_written_list_left_out_are_settable():
    for option in ("allow_partial", "allow_storage_copy", "downtime_steps_ms", "min_timeout", "shutdown_timeout",
                   "timeout_per_gib"):
        assert all(option in settable(module) for module in ENGINE_MODULES)


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_every_option_of_every_engine_module_can_come_from_the_inventory(module):
    names = settable(module)
    host_vars = dict(("hostmaint_libvirt_%s" % option, "value of %s" % option) for option in names)
    assert options.merge({}, host_vars, names) == dict((option, "value of %s" % option) for option in names)


@pytest.mark.parametrize("task_args, host_vars, expected", [
    # the task's argument wins over the inventory variable
    ({"reserve_mib": 512}, {"hostmaint_libvirt_reserve_mib": 4096}, {"reserve_mib": 512}),
    # the inventory variable wins over the default (which is: not passing the option)
    ({}, {"hostmaint_libvirt_reserve_mib": 4096}, {"reserve_mib": 4096}),
    # neither: the option is not passed at all, so the module's default applies
    ({}, {}, {}),
    # falsy values are values: false, 0, {} and [] are passed, not skipped
    ({"allow_partial": False}, {"hostmaint_libvirt_allow_partial": True}, {"allow_partial": False}),
    ({}, {"hostmaint_libvirt_bandwidth_mib": 0, "hostmaint_libvirt_policies": {}, "hostmaint_libvirt_shared_pools": []},
     {"bandwidth_mib": 0, "policies": {}, "shared_pools": []}),
    # a null task argument is not given: the inventory applies, else nothing is passed
    ({"max_inbound": None}, {"hostmaint_libvirt_max_inbound": 3}, {"max_inbound": 3}),
    ({"max_inbound": None}, {}, {}),
    # a null inventory variable is not set
    ({}, {"hostmaint_libvirt_max_inbound": None}, {}),
    # the identity options never come from variables; given ones pass as they are
    ({}, {"hostmaint_libvirt_name": "x", "hostmaint_libvirt_address": "10.0.0.9",
          "hostmaint_libvirt_destinations": [{"name": "hv9"}]}, {}),
    ({"name": "hv1", "destinations": [{"name": "hv2"}]}, {"hostmaint_libvirt_name": "x"},
     {"name": "hv1", "destinations": [{"name": "hv2"}]}),
    # unrelated variables and unprefixed names are not options
    ({}, {"reserve_mib": 1, "libvirt_reserve_mib": 2, "hostmaint_libvirt_no_such_option": 3}, {}),
])
def test_task_argument_beats_inventory_variable_beats_default(task_args, host_vars, expected):
    assert options.merge(task_args, host_vars, settable("evacuate")) == expected


def test_each_option_is_decided_on_its_own():
    task_args = {"max_outbound": 3, "guests": ["web1"]}
    host_vars = {"hostmaint_libvirt_max_outbound": 1, "hostmaint_libvirt_max_inbound": 4,
                 "hostmaint_libvirt_uri_template": "qemu+ssh://root@{host}/system", "hostmaint_libvirt_tls": False}
    assert options.merge(task_args, host_vars, settable("migration_preflight")) == {
        "max_outbound": 3, "guests": ["web1"], "max_inbound": 4, "uri_template": "qemu+ssh://root@{host}/system",
        "tls": False}


def test_an_option_the_module_does_not_have_is_not_read_from_the_inventory():
    host_vars = {"hostmaint_libvirt_fail_on_not_home": True, "hostmaint_libvirt_guests": ["a"]}
    assert options.merge({}, host_vars, settable("restore")) == {"fail_on_not_home": True}
    assert options.merge({}, host_vars, settable("evacuate")) == {}


def test_only_inventory_values_in_use_are_templated():
    templated = []

    def template(value):
        templated.append(value)
        return int(value.strip("{} ")) * 2 if isinstance(value, str) else value

    host_vars = {"hostmaint_libvirt_reserve_mib": "{{ 1024 }}", "hostmaint_libvirt_max_inbound": "{{ 9 }}"}
    args = options.merge({"max_inbound": 1, "tls": "{{ not templated }}"}, host_vars, settable("evacuate"), template)
    assert args == {"max_inbound": 1, "tls": "{{ not templated }}", "reserve_mib": 2048}
    assert templated == ["{{ 1024 }}"]


def test_an_inventory_value_that_templates_to_null_is_not_passed():
    args = options.merge({}, {"hostmaint_libvirt_reserve_mib": "{{ none }}"}, settable("evacuate"), lambda v: None)
    assert args == {}


def test_merge_changes_neither_input():
    task_args = {"policies": {"a": "skip"}, "max_inbound": None}
    host_vars = {"hostmaint_libvirt_max_inbound": 2, "hostmaint_libvirt_policies": {"b": "fail"}}
    before = copy.deepcopy((task_args, host_vars))
    options.merge(task_args, host_vars, settable("evacuate"))
    assert (task_args, host_vars) == before


def test_ignored_variables_names_the_identity_variables_an_inventory_sets():
    host_vars = {"hostmaint_libvirt_destinations": [], "hostmaint_libvirt_reserve_mib": 1, "ansible_host": "x"}
    assert options.ignored_variables(host_vars) == ["hostmaint_libvirt_destinations"]
    assert options.ignored_variables({}) == []


@pytest.mark.parametrize("name", ["restore", "hostmaint.libvirt.restore"])
def test_module_spec_takes_short_and_qualified_names_and_adds_the_connection_options(name):
    spec = options.module_spec(name)
    assert spec["uri"] == options.CONNECTION_SPEC["uri"]
    assert spec["fail_on_not_home"] == {"type": "bool", "default": True}


@pytest.mark.parametrize("name", ["guest_info", "hostmaint.libvirt.hypervisor_info", "", None])
def test_module_spec_of_a_module_that_is_not_an_engine_module_is_one_sentence(name):
    with pytest.raises(HostmaintError) as error:
        options.module_spec(name)
    assert error.value.message == ("%s is not an engine module of hostmaint.libvirt (one of disk_move, evacuate, "
                                   "live_migrate, migration_preflight, restore)" % name)


def test_the_engine_modules_use_these_specs():
    from ansible_collections.hostmaint.libvirt.plugins.modules import evacuate, live_migrate, migration_preflight, restore

    assert evacuate.Evacuate.argument_spec is options.EVACUATE_SPEC
    assert live_migrate.LiveMigrate.argument_spec is options.LIVE_MIGRATE_SPEC
    assert migration_preflight.MigrationPreflight.argument_spec is options.MIGRATION_PREFLIGHT_SPEC
    assert restore.Restore.argument_spec is options.RESTORE_SPEC


def test_options_imports_only_the_standard_library_and_the_errors_module():
    """The action plugin imports it on the controller, where neither libvirt nor the engine may be needed."""
    with open(options.__file__) as source:
        tree = ast.parse(source.read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    collection = [name for name in imported if name.startswith("ansible")]
    assert collection == ["ansible_collections.hostmaint.libvirt.plugins.module_utils.errors"]
    assert all(name.split(".")[0] in sys.stdlib_module_names for name in imported - set(collection) - {"__future__"})


# -- resolve: one option for one host with the default filled in (the roles' engine_option filter) ------------------

@pytest.mark.parametrize("value, host_vars, expected", [
    # the task's or role's value wins over the inventory variable
    (512, {"hostmaint_libvirt_reserve_mib": 4096}, 512),
    # the inventory variable wins over the default
    (None, {"hostmaint_libvirt_reserve_mib": 4096}, 4096),
    # neither: the default of the argument spec
    (None, {}, 1024),
    # falsy values are values
    (0, {"hostmaint_libvirt_reserve_mib": 4096}, 0),
    (None, {"hostmaint_libvirt_reserve_mib": 0}, 0),
    # a null inventory variable is not set
    (None, {"hostmaint_libvirt_reserve_mib": None}, 1024),
])
def test_resolve_value_beats_inventory_variable_beats_default(value, host_vars, expected):
    assert options.resolve("reserve_mib", host_vars, value) == expected


@pytest.mark.parametrize("module", [None] + ENGINE_MODULES)
def test_resolve_without_value_or_variable_gives_the_argument_specs_default(module):
    spec = options.module_spec(module) if module else dict(options.CONNECTION_SPEC, **options.ENGINE_SPEC)
    for option in options.inventory_options(spec):
        assert options.resolve(option, {}, module=module) == spec[option].get("default")
    assert options.resolve("uri_template", {}, module=module) == "qemu+tls://{host}/system"


def test_resolve_gives_a_copy_of_a_default_that_is_a_list_or_a_dict():
    steps = options.resolve("downtime_steps_ms", {})
    steps.append(10000)
    assert options.resolve("downtime_steps_ms", {}) == [50, 100, 200, 300, 500]
    assert options.ENGINE_SPEC["downtime_steps_ms"]["default"] == [50, 100, 200, 300, 500]


def test_resolve_agrees_with_merge_and_the_module_default_for_every_option_and_source():
    for module in ENGINE_MODULES:
        spec = options.module_spec(module)
        for option in settable(module):
            host_vars = {options.variable(option): "from the inventory"}
            assert options.resolve(option, host_vars, module=module) == \
                options.merge({}, host_vars, settable(module))[option]
            assert options.resolve(option, host_vars, "from the task", module) == \
                options.merge({option: "from the task"}, host_vars, settable(module))[option]
            assert option not in options.merge({}, {}, settable(module))
            assert options.resolve(option, {}, module=module) == spec[option].get("default")


def test_the_cluster_group_resolves_as_the_action_plugin_reads_it():
    assert options.resolve("cluster_group", {}) == options.DEFAULT_CLUSTER_GROUP == "hypervisors"
    assert options.resolve("cluster_group", {"hostmaint_libvirt_cluster_group": "cluster_a"}) == "cluster_a"
    assert options.resolve("cluster_group", {"hostmaint_libvirt_cluster_group": "cluster_a"}, "cluster_b",
                           "restore") == "cluster_b"


def test_a_modules_own_option_resolves_only_with_that_module():
    assert options.resolve("canary", {"hostmaint_libvirt_canary": False}, module="hostmaint.libvirt.restore") is False
    assert options.resolve("canary", {}, module="restore") is True
    with pytest.raises(HostmaintError) as error:
        options.resolve("canary", {})
    assert error.value.message.startswith("canary is not an option every engine module shares: name the engine "
                                          "module that has it (module), or use one of allow_partial, ")
    with pytest.raises(HostmaintError) as error:
        options.resolve("canary", {}, module="evacuate")
    assert error.value.message.startswith("canary is not an option of evacuate that hostmaint_libvirt_<option> can "
                                          "set (one of allow_partial, ")


@pytest.mark.parametrize("option", ["name", "address", "destinations"])
def test_the_identity_options_do_not_resolve(option):
    with pytest.raises(HostmaintError) as error:
        options.resolve(option, {options.variable(option): "x"}, "y")
    assert error.value.message == (
        "%s is not read from hostmaint_libvirt_%s: the engine modules take name, address and destinations from the "
        "inventory (inventory_hostname, ansible_host, the other hosts of the host's groups) or from the task"
        % (option, option))


def test_resolve_of_a_module_that_is_not_an_engine_module_is_one_sentence():
    with pytest.raises(HostmaintError, match="guest_info is not an engine module of hostmaint.libvirt"):
        options.resolve("uri", {}, module="guest_info")


def test_resolve_all_gives_every_option_a_role_can_ask_for():
    found = options.resolve_all({"hostmaint_libvirt_max_inbound": 4, "hostmaint_libvirt_canary_guest": "web1"},
                                {"max_inbound": None, "max_outbound": 1}, "restore")
    assert sorted(found) == sorted(settable("restore") + ["cluster_group"])
    picked = dict((option, found[option]) for option in ("max_inbound", "max_outbound", "canary_guest", "reserve_mib"))
    assert picked == {"max_inbound": 4, "max_outbound": 1, "canary_guest": "web1", "reserve_mib": 1024}
    with pytest.raises(HostmaintError, match="^max_outbond is not an option of restore"):
        options.resolve_all({}, {"max_outbond": 1}, "restore")
