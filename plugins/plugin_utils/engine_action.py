# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin base for the engine modules: fills options from the inventory, then runs the module.

- ``name``: inventory_hostname; ``address``: this host's ansible_host.
- ``destinations``: the other hosts of this host's groups (all but 'all' and 'ungrouped'), each with
  its ansible_host, so that `-l host3` needs no other host in the play. Given destinations that name
  inventory hosts without an address get that host's ansible_host.
- every other engine option not given in the task: the host variable ``hostmaint_libvirt_<option>``
  when the inventory sets one (for example ``hostmaint_libvirt_uri_template``).
"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

INVENTORY_OPTIONS = ("uri_template", "tls", "shared_pools", "policies", "reserve_mib", "max_inbound",
                     "max_outbound", "bandwidth_mib", "connect_timeout", "postcopy", "auto_converge")


def _address(hostvars, host):
    vars_of = hostvars.get(host) or {}
    return str(vars_of.get("ansible_host") or host)


class EngineAction(ActionBase):
    """Supplies inventory-derived defaults; the module does all the work."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(EngineAction, self).run(tmp, task_vars)
        args = dict(self._task.args)
        me = task_vars.get("inventory_hostname")
        hostvars = task_vars.get("hostvars") or {}
        args.setdefault("name", me)
        args.setdefault("address", _address(hostvars, me))
        if "destinations" not in args:
            groups = task_vars.get("groups") or {}
            peers = []
            for group in task_vars.get("group_names") or []:
                for host in groups.get(group, []):
                    if host != me and host not in peers:
                        peers.append(host)
            args["destinations"] = [dict(name=host, address=_address(hostvars, host)) for host in peers]
        elif isinstance(args["destinations"], list):
            # destinations named after inventory hosts get their ansible_host unless given an address
            args["destinations"] = [
                dict(d, address=_address(hostvars, d["name"])) if isinstance(d, dict) and d.get("name") in hostvars
                and not d.get("address") else d for d in args["destinations"]]
        for option in INVENTORY_OPTIONS:
            var = "hostmaint_libvirt_%s" % option
            if option not in args and var in task_vars:
                args[option] = self._templar.template(task_vars[var])
        result.update(self._execute_module(module_name=self._task.resolved_action or self._task.action,
                                           module_args=args, task_vars=task_vars))
        return result
