# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for the health_gate and report roles and the maintenance playbooks (the logic is in module_utils)."""

from __future__ import annotations

import base64
import binascii
import json

from ansible.errors import AnsibleFilterError

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation, health, roll
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError


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


def roll_skip(host, unfinished, marked, found, target="", pending=True):
    """module_utils.roll.skip, as a dict {skipped, reason} for the playbook."""
    skipped, reason = roll.skip(host, bool(unfinished), bool(marked), found, target or "", bool(pending))
    return dict(skipped=skipped, reason=reason)


def _done_steps(state_file):
    """The steps a stopped cycle kept, from the slurp of its state file (absent or unreadable: none)."""
    content = (state_file or {}).get("content")
    if not content:
        return []
    try:
        return list((json.loads(base64.b64decode(content).decode("utf-8")) or {}).get("done") or [])
    except (ValueError, TypeError, AttributeError, binascii.Error):
        raise AnsibleFilterError("the maintenance state file of the host cannot be read: it is not the JSON that "
                                 "maintain writes; remove it if no cycle is under way")


def maintain_cycle(state_file, host, path=""):
    """What maintain runs (module_utils.roll.cycle) given the slurp of its state file: {run, done, resume}."""
    try:
        return roll.cycle(host, _done_steps(state_file), path)
    except DecisionError as exc:
        raise AnsibleFilterError(exc.message)


def maintain_step_done(done, step):
    return roll.step_done(done, step)


def maintain_stopped(host, step, message, done):
    return roll.stopped(host, step, message, done)


def _memory(guest):
    return max(int(guest.get("memory_mib") or 0), int(guest.get("max_memory_mib") or 0))


def roll_entry(host, cluster, info, guests, state_file, skip):
    """One host's entry for roll_plan, from what it reported: hypervisor_info's result (``info``), guest_info's
    (``guests``), the slurp of its maintenance state file and the skip decision. Its capacity is what it can give
    guests in all: its free memory (capped by a declared capacity) and what its active guests use."""
    facts = (info or {}).get("hypervisor") or {}
    found = [g for g in (guests or {}).get("guests") or [] if g.get("persistent", True) or g.get("state") == "running"]
    active = [g for g in found if g.get("state") not in ("shutoff", "shutdown", "crashed", "nostate")]
    done = _done_steps(state_file)
    if (skip or {}).get("skipped"):
        phase = roll.SKIPPED
    elif "evacuate" in done:
        phase = roll.UPGRADING
    elif facts.get("maintenance"):
        phase = roll.ENTERED
    else:
        phase = roll.QUEUED
    entries = []
    for guest in found:
        record = guest.get("record") or {}
        entries.append(dict(name=guest["name"], memory_mib=_memory(guest), home=record.get("origin_host"),
                            anti_affinity=guest.get("anti_affinity"), home_demanded=guest.get("return_to") == "home",
                            active=guest in active))
    return dict(name=host, cluster=cluster or roll.DEFAULT_CLUSTER, phase=phase, reason=(skip or {}).get("reason"),
                capacity_mib=int(facts.get("memory_free_mib") or 0) + sum(_memory(g) for g in active),
                guests=entries)


def roll_destinations(cluster_hosts, host, down=()):
    """The destinations of an engine run of ``host`` in a roll: the other hosts of its cluster less those ``down``
    (emptied and rebooting), as the engine modules take them ({name}; the action plugin fills in the rest)."""
    leave = set([host] + list(down or []))
    return [dict(name=name) for name in cluster_hosts or [] if name not in leave]


def roll_batch_size(hosts, forks):
    """The roll's play batch: every host when the forks allow it (each host waiting for its turn holds a fork),
    else as many as there are forks."""
    count = len(list(hosts or []))
    return max(1, min(count, int(forks or 1)))


class FilterModule(object):
    def filters(self):
        return dict(health_verdict=health_verdict, generation_at_least=generation_at_least, report_hosts=report_hosts,
                    roll_order=roll_order, roll_skip=roll_skip, roll_entry=roll_entry, roll_batch_size=roll_batch_size,
                    roll_destinations=roll_destinations,
                    maintain_cycle=maintain_cycle, maintain_step_done=maintain_step_done,
                    maintain_stopped=maintain_stopped)
