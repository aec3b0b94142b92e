# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin base for the engine modules: fills options from the inventory, then runs the module.

- ``name``: inventory_hostname; ``address``: this host's ansible_host.
- ``destinations``: the other hosts of this host's cluster, the inventory group named by the host
  variable ``hostmaint_libvirt_cluster_group`` (default ``hypervisors``), each with its ansible_host and
  its generation (``hostmaint_libvirt_generation``, else ``hostmaint_libvirt_observed_generation``, which
  the maintenance playbooks record), so that `-l host3` needs no other host in the play. A host outside
  the default group gets the other hosts of its own groups (all but 'all' and 'ungrouped'); one outside
  a group it was given fails. Given destinations must be a list of dicts with a name (one sentence
  otherwise); those that name inventory hosts without an address get that host's ansible_host. An IPv6
  ansible_host is put in brackets, as a URI needs it (``uris.inventory_address``, which the roles' peer_uri filter
  uses too). Destinations given as null count as not given.
- every other option of the module (the list comes from its argument spec, module_utils.options):
  the task's argument, else the host variable ``hostmaint_libvirt_<option>`` (templated), else
  nothing, so that the module's default applies (``options.merge``). The identity options above are
  never read from ``hostmaint_libvirt_name``, ``_address`` or ``_destinations``; setting one warns.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostmaint.libvirt.plugins.module_utils import options, uris
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

display = Display()

DEFAULT_CLUSTER_GROUP = options.DEFAULT_CLUSTER_GROUP


def check_destinations(destinations):
    """Given ``destinations``: a list of dicts, each with a name (the module judges the rest). Raises
    AnsibleActionFail with one sentence naming the entry, where the module's argument spec would say only
    "dictionary requested"."""
    if not isinstance(destinations, list):
        raise AnsibleActionFail("destinations must be a list of hosts, each a dict such as {name: hv2}, got %r"
                                % (destinations,))
    for entry in destinations:
        if not isinstance(entry, dict):
            raise AnsibleActionFail("destinations lists %r, which is not a dict: give each host as a dict such as "
                                    "{name: hv2, address: 192.0.2.12}" % (entry,))
        if not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise AnsibleActionFail("destinations lists %r without a host name: give each host's name in name"
                                    % (entry,))


def _generation(hostvars, host):
    vars_of = hostvars.get(host) or {}
    found = vars_of.get("hostmaint_libvirt_generation") or vars_of.get("hostmaint_libvirt_observed_generation")
    return str(found) if found else None


def cluster_peers(me, group_names, groups, cluster=None):
    """The hosts evacuating ``me`` may use: the other hosts of its cluster group (``cluster``, default
    'hypervisors'); without a cluster given, a host outside 'hypervisors' gets the other hosts of its groups."""
    name = cluster or DEFAULT_CLUSTER_GROUP
    if me in groups.get(name, []):
        return [host for host in groups[name] if host != me]
    if cluster:
        raise AnsibleActionFail("%s is not in its cluster group %s (hostmaint_libvirt_cluster_group): add it to that "
                                "group or name another" % (me, cluster))
    peers = []
    for group in group_names or []:
        for host in groups.get(group, []):
            if host != me and host not in peers:
                peers.append(host)
    return peers


class EngineAction(ActionBase):
    """Supplies inventory-derived arguments; the module does all the work."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(EngineAction, self).run(tmp, task_vars)
        module = self._task.resolved_action or self._task.action
        try:
            settable = options.inventory_options(options.module_spec(module))
        except HostmaintError as exc:
            raise AnsibleActionFail(exc.message) from None
        args = options.merge(self._task.args, task_vars, settable, template=self._templar.template)
        me = task_vars.get("inventory_hostname")
        for variable in options.ignored_variables(task_vars):
            display.warning("%s is ignored for %s: its name, address and destinations come from the inventory "
                            "(inventory_hostname, ansible_host, the other hosts of its groups) or from the task's "
                            "arguments" % (variable, me))
        hostvars = task_vars.get("hostvars") or {}
        args.setdefault("name", me)
        args.setdefault("address", uris.inventory_address(hostvars, me))
        if args.get("destinations") is None:
            cluster = task_vars.get("hostmaint_libvirt_cluster_group")
            cluster = self._templar.template(cluster) if cluster else None
            peers = cluster_peers(me, task_vars.get("group_names"), task_vars.get("groups") or {}, cluster)
            args["destinations"] = [dict(name=host, address=uris.inventory_address(hostvars, host),
                                         generation=_generation(hostvars, host)) for host in peers]
        else:
            check_destinations(args["destinations"])
            # destinations named after inventory hosts get their ansible_host unless given an address
            args["destinations"] = [dict(d, address=uris.inventory_address(hostvars, d["name"]))
                                    if d["name"] in hostvars and not d.get("address") else d
                                    for d in args["destinations"]]
        result.update(self._execute_module(module_name=module, module_args=args, task_vars=task_vars))
        return result
