# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the health_gate and report roles and the maintenance playbooks (the logic is in module_utils)."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation, health, roll


def health_verdict(gathered, host, phase="before", cluster="hypervisors", min_generation=""):
    return health.verdict(gathered, host, phase, cluster, min_generation)


def generation_at_least(found, minimum):
    return generation.compare(found, minimum) >= 0


# what the report role collects from each host's variables, by the report's key
REPORT_VARIABLES = dict(steps="maintain_steps", gates="health_gate_checks", evacuate="evacuate_result",
                        restore="restore_result", patch="hypervisor_patch_result", storage="storage_evacuate_result")


def report_hosts(hostvars, hosts):
    """{host: {steps, gates, evacuate, restore, patch}} from the hosts' variables, for the run_report module."""
    found = {}
    for host in hosts or []:
        values = hostvars[host]
        data = dict((key, values.get(name)) for key, name in REPORT_VARIABLES.items())
        if any(value is not None for value in data.values()):  # hosts of later batches have not run yet
            found[host] = data
    return found


def _cluster_of(hostvars):
    return lambda host: (hostvars[host] or {}).get("hostmaint_libvirt_cluster_group")


def roll_order(hosts, hostvars, parallel=False):
    """The rolling upgrade's host order (module_utils.roll.order)."""
    return roll.order(list(hosts or []), _cluster_of(hostvars), bool(parallel))


def roll_batches(hosts, hostvars):
    """The batch sizes of a parallel roll (module_utils.roll.batches), for a play's serial."""
    return roll.batches(list(hosts or []), _cluster_of(hostvars))


def roll_skip(host, unfinished, marked, found, target="", pending=True):
    """module_utils.roll.skip, as a dict {skipped, reason} for the playbook."""
    skipped, reason = roll.skip(host, bool(unfinished), bool(marked), found, target or "", bool(pending))
    return dict(skipped=skipped, reason=reason)


class FilterModule(object):
    def filters(self):
        return dict(health_verdict=health_verdict, generation_at_least=generation_at_least, report_hosts=report_hosts,
                    roll_order=roll_order, roll_batches=roll_batches, roll_skip=roll_skip)
