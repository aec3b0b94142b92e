# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the collection's modules, and where an engine module's options come from.

Standard library only (and the collection's errors module): the modules (on the managed host) build
their argument specs from here, and the engine modules' action plugin (on the controller, where
libvirt is not needed) derives from the same specs which options the inventory may set.

One precedence for every option of an engine module (evacuate, restore, migration_preflight,
live_migrate), however the module is called (ad hoc, from a role, from a playbook):

1. the task's argument (``module_defaults`` count as task arguments: Ansible merges them into the
   task's arguments before the action plugin runs; an argument set to null counts as not given);
2. the host variable ``hostmaint_libvirt_<option>`` (a Jinja template is templated first);
3. the module's default (the option is not passed at all).

``merge()`` is that rule. The identity options ``name``, ``address`` and ``destinations`` are not
settable this way: the action plugin computes them from the inventory itself (the inventory name,
``ansible_host``, the other hosts of the host's groups), so ``hostmaint_libvirt_name`` and friends are
ignored (``ignored_variables()`` names the ones an inventory sets, for a warning).

``resolve()`` is the same rule for one option with the default filled in, for the roles (the
``hostmaint.libvirt.engine_option`` filter): a role that needs an engine option (the peers' URI template, the
cluster group) gets the value the engine module would use, instead of rebuilding it in Jinja.
"""

from __future__ import annotations

import copy

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

VARIABLE_PREFIX = "hostmaint_libvirt_"

# Computed by the engine modules' action plugin from the inventory, never read from a variable.
IDENTITY_OPTIONS = ("address", "destinations", "name")

# The inventory group that is a host's cluster when hostmaint_libvirt_cluster_group does not name one.
DEFAULT_CLUSTER_GROUP = "hypervisors"

# Read by the engine modules' action plugin from hostmaint_libvirt_cluster_group and never passed to a module: the
# inventory group whose other hosts are the destinations. Without it the plugin falls back to the host's own groups
# when the host is not in DEFAULT_CLUSTER_GROUP (engine_action.cluster_peers); resolve() gives the default.
ACTION_SPEC = dict(
    cluster_group=dict(type="str", default=DEFAULT_CLUSTER_GROUP),
)

# Options every module shares (documented in the hostmaint.libvirt.connection doc fragment).
CONNECTION_SPEC = dict(
    uri=dict(type="str", default="qemu:///system"),
)

# Options every engine module shares (documented in the hostmaint.libvirt.engine doc fragment).
ENGINE_SPEC = dict(
    address=dict(type="str"),
    allow_partial=dict(type="bool", default=False),
    allow_storage_copy=dict(type="bool", default=False),
    auto_converge=dict(type="bool", default=True),
    bandwidth_mib=dict(type="int", default=0),
    # raw, judged by inputs.capacity: a value that is not a whole number of MiB gets one sentence naming its host
    capacity_mib=dict(type="raw", default=0),
    connect_timeout=dict(type="int", default=10),
    destinations=dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        address=dict(type="str"),
        capacity_mib=dict(type="raw"),
        generation=dict(type="str"),
    )),
    downtime_steps_ms=dict(type="list", elements="int", default=[50, 100, 200, 300, 500]),
    generation=dict(type="str"),
    max_inbound=dict(type="int", default=2),
    max_outbound=dict(type="int", default=2),
    min_timeout=dict(type="int", default=60),
    name=dict(type="str"),
    pause_target_ms=dict(type="int", default=150),
    policies=dict(type="dict", default={}),
    postcopy=dict(type="bool", default=False),
    probes=dict(type="dict", default={}),
    progress=dict(type="bool", default=True),
    progress_file=dict(type="path"),
    reserve_mib=dict(type="int", default=1024),
    settle_s=dict(type="int", default=2),
    shared_pools=dict(type="list", elements="str", default=[]),
    shutdown_timeout=dict(type="int", default=120),
    storage_copy_source=dict(type="str", default="delete", choices=["delete", "keep"]),
    timeout_per_gib=dict(type="int", default=150),
    tls=dict(type="bool", default=True),
    uri_template=dict(type="str", default="qemu+tls://{host}/system"),
)


def _engine_spec(**extra):
    spec = copy.deepcopy(ENGINE_SPEC)
    spec.update(extra)
    return spec


# Each engine module's argument spec (its DOCUMENTATION: the engine fragment plus its own options).
EVACUATE_SPEC = _engine_spec(avoid=dict(type="list", elements="str", default=[]),
                             return_home=dict(type="bool", default=True))
LIVE_MIGRATE_SPEC = _engine_spec(destination=dict(type="str", required=True), guest=dict(type="str", required=True))
MIGRATION_PREFLIGHT_SPEC = _engine_spec(avoid=dict(type="list", elements="str", default=[]),
                                        guests=dict(type="list", elements="str"))
RESTORE_SPEC = _engine_spec(canary=dict(type="bool", default=True), canary_guest=dict(type="str"),
                            fail_on_not_home=dict(type="bool", default=True))

# disk_move: the peers' options it needs (to learn whether they name a disk of a shared pool) and its own. Its
# bandwidth is copy_bandwidth_mib, not the migrations' bandwidth_mib: an inventory that caps migrations
# (hostmaint_libvirt_bandwidth_mib) does not cap disk copies.
DISK_MOVE_SPEC = dict(
    address=dict(type="str"),
    connect_timeout=dict(type="int", default=10),
    copy_bandwidth_mib=dict(type="int", default=0),
    delete_unused=dict(type="bool", default=False),
    destinations=copy.deepcopy(ENGINE_SPEC["destinations"]),
    disks=dict(type="list", elements="str", default=[]),
    from_pool=dict(type="str"),
    guest=dict(type="str"),
    max_copies=dict(type="int", default=2),
    name=dict(type="str"),
    progress=dict(type="bool", default=True),
    progress_file=dict(type="path"),
    ready_timeout=dict(type="int", default=0),
    shared_pools=dict(type="list", elements="str", default=[]),
    source_after=dict(type="str", default="keep", choices=["delete", "keep"]),
    stall_timeout=dict(type="int", default=60),
    synchronous_writes=dict(type="str", default="auto", choices=["always", "auto", "never"]),
    to_pool=dict(type="str", required=True),
    uri_template=dict(type="str", default="qemu+tls://{host}/system"),
)

# The engine modules by short name (what the action plugin runs).
ENGINE_MODULE_SPECS = dict(
    evacuate=EVACUATE_SPEC,
    live_migrate=LIVE_MIGRATE_SPEC,
    migration_preflight=MIGRATION_PREFLIGHT_SPEC,
    restore=RESTORE_SPEC,
)

# Every module whose options the action plugin fills from the inventory: the engine modules and disk_move.
INVENTORY_MODULE_SPECS = dict(ENGINE_MODULE_SPECS, disk_move=DISK_MOVE_SPEC)

# The modules that move something and write their progress while they run (module_utils/progress.py), which the
# action plugin reads (the others have the option too, from the shared spec, and nothing to tell).
PROGRESS_MODULES = ("disk_move", "evacuate", "live_migrate", "restore")


def variable(option):
    """The inventory variable that sets an option: ``hostmaint_libvirt_<option>``."""
    return VARIABLE_PREFIX + option


def module_spec(module):
    """The full argument spec of an engine module (or disk_move) by short or fully qualified name (connection
    options too).

    Raises HostmaintError naming the module and the engine modules when it is not one of them.
    """
    short = (module or "").rpartition(".")[2]
    if short not in INVENTORY_MODULE_SPECS:
        raise HostmaintError("%s is not an engine module of hostmaint.libvirt (one of %s)"
                             % (module, ", ".join(sorted(INVENTORY_MODULE_SPECS))))
    spec = dict(CONNECTION_SPEC)
    spec.update(INVENTORY_MODULE_SPECS[short])
    return spec


def inventory_options(spec):
    """The options of an argument spec that ``hostmaint_libvirt_<option>`` may set, sorted: all but the identity ones."""
    return sorted(option for option in spec if option not in IDENTITY_OPTIONS)


def merge(task_args, host_vars, options, template=None):
    """The module arguments for one host: task argument, else inventory variable, else nothing.

    ``task_args`` are the task's arguments, ``host_vars`` the host's variables, ``options`` the option
    names the inventory may set (``inventory_options()``). For each of those options: the task's
    argument when it gives one that is not null; else the host variable ``hostmaint_libvirt_<option>``,
    passed through ``template`` (the plugin's templar; identity when None) when the host sets it and
    it is not null after templating; else the option is left out, so the module's default applies.
    Arguments that are not among ``options`` (identity options, options the module does not know)
    are passed as given, for the module to judge. Neither input is changed.
    """
    template = template or (lambda value: value)
    args = dict((key, value) for key, value in task_args.items() if value is not None or key not in options)
    for option in options:
        name = variable(option)
        if option not in args and name in host_vars:
            value = template(host_vars[name])
            if value is not None:
                args[option] = value
    return args


def resolvable_spec(module=None):
    """What ``resolve()`` knows for ``module`` (an engine module's short or full name; None: the options every engine
    module shares): the module's argument spec with the action plugin's own settings (ACTION_SPEC), less the identity
    options."""
    spec = module_spec(module) if module else dict(CONNECTION_SPEC, **ENGINE_SPEC)
    spec.update(ACTION_SPEC)
    return dict((option, spec[option]) for option in inventory_options(spec))


def resolve(option, host_vars, value=None, module=None):
    """One option for one host, by ``merge()``'s precedence, with the default filled in.

    ``value`` (the task's or the role's own) when it is not None; else the host variable
    ``hostmaint_libvirt_<option>`` of ``host_vars`` when it is set and not null (values are used as ``host_vars``
    gives them: Ansible's hostvars and template variables are templated on access); else a copy of the option's
    default in ``resolvable_spec(module)`` (None for an option without one). Raises HostmaintError naming the option
    when it is an identity option or not an option of ``module``.
    """
    spec = resolvable_spec(module)
    if option not in spec:
        if option in IDENTITY_OPTIONS:
            raise HostmaintError("%s is not read from %s: the engine modules take name, address and destinations from "
                                 "the inventory (inventory_hostname, ansible_host, the other hosts of the host's "
                                 "groups) or from the task" % (option, variable(option)), option=option)
        if module:
            raise HostmaintError("%s is not an option of %s that %s can set (one of %s)"
                                 % (option, module, variable("<option>"), ", ".join(sorted(spec))), option=option)
        raise HostmaintError("%s is not an option every engine module shares: name the engine module that has it "
                             "(module), or use one of %s" % (option, ", ".join(sorted(spec))), option=option)
    args = merge({option: value}, host_vars, [option])
    if option in args:
        return args[option]
    return copy.deepcopy(spec[option].get("default"))


def resolve_all(host_vars, values=None, module=None):
    """Every option of ``resolvable_spec(module)`` for one host, {option: value}, each as ``resolve()`` gives it;
    ``values`` are the task's or role's own, by option (one that is not among those options raises, as in resolve())."""
    values = values or {}
    names = sorted(set(resolvable_spec(module)) | set(values))
    return dict((option, resolve(option, host_vars, values.get(option), module)) for option in names)


def ignored_variables(host_vars):
    """The ``hostmaint_libvirt_<option>`` variables set for identity options, which nothing reads."""
    return [variable(option) for option in IDENTITY_OPTIONS if variable(option) in host_vars]
