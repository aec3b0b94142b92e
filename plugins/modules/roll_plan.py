#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: roll_plan
short_description: Plan a rolling upgrade on the controller, refuse options that cannot hold, forecast it
version_added: 0.1.0
description:
  - Runs once on the controller (its action plugin) in C(playbooks/rolling_upgrade.yml), after every host reported
    what it holds. Builds the roll's state (the decisions are C(module_utils/roll.py)'s), writes it to O(state_file)
    for the hosts' turns (M(hostmaint.libvirt.roll_turn)), and returns the plan line by line.
  - Refuses, in one sentence and before anything changes, a roll whose first batch cannot leave at once - with
    O(parallel_hosts) above 1, the hosts left in service must hold every guest of the first O(parallel_hosts)
    hosts of each cluster with O(reserve_mib) on each (N+k).
  - With O(forecast), the fleet simulator runs the roll (the same decisions, the collection's own placement and
    migration window) and gives its duration with a range, calibrated on the run reports in O(report_dir) when
    there are some, on the lab's measured figures otherwise.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.controller.attributes
attributes:
  check_mode:
    description: Can run in check mode and return the changes a real run would make.
    support: full
    details: Returns the plan and the forecast; writes no state file.
options:
  batch_size:
    description: How many hosts the roll's play runs at once (its C(serial), from the controller's forks); V(0) - all.
    type: int
    default: 0
  forecast:
    description: Whether to simulate the roll and return its forecast.
    type: bool
    default: true
  hosts:
    description:
      - One entry per host of the roll, in inventory order - C(name), C(cluster), C(capacity_mib) (the memory it can
        give guests in all), C(phase) (V(queued), V(skipped) with C(reason), V(entered) for a host in maintenance,
        V(upgrading) for one whose cycle stopped after its evacuation) and C(guests) (C(name), C(memory_mib), C(home),
        C(anti_affinity), C(home_demanded), C(active)).
    type: list
    elements: dict
    required: true
  overlap:
    description: Whether a host's restore may run beside the next host's evacuation (when the room holds).
    type: bool
    default: false
  parallel_clusters:
    description: Whether clusters roll at the same time (one drain at a time in each).
    type: bool
    default: false
  parallel_hosts:
    description: How many hosts of a cluster may be in maintenance at once (k); only while the others hold every guest.
    type: int
    default: 1
  report_dir:
    description: Where the fleet's past run reports are (C(*.json)), to calibrate the forecast on.
    type: path
  reserve_mib:
    description: Memory kept free on every host that takes guests.
    type: int
    default: 1024
  return_mode:
    description: V(home) - guests go back to their host after its upgrade; V(stay) - they stay where they land, and
      only guests whose settings say C(return="home") go back.
    type: str
    default: home
    choices: [home, stay]
  run_id:
    description: The run's id, kept in the state.
    type: str
  state_file:
    description: Where to write the roll's state (not in check mode).
    type: path
"""

EXAMPLES = r"""
- name: Plan the roll
  hostmaint.libvirt.roll_plan:
    hosts: "{{ ansible_play_hosts | map('extract', hostvars, 'rolling_upgrade_entry') | list }}"
    parallel_hosts: 2
    return_mode: stay
    state_file: /srv/reports/rolls/20261207T220000Z-1a2b3c.json
  run_once: true
  register: roll
"""

RETURN = r"""
state_file:
  description: The state file written, or null (check mode).
  returned: always
  type: str
  sample: /srv/reports/rolls/20261207T220000Z-1a2b3c.json
order:
  description: The hosts of the roll in inventory order.
  returned: always
  type: list
  elements: str
  sample: [hv1, hv2, hv3]
options:
  description: The roll's options as it will apply them.
  returned: always
  type: dict
  sample: {parallel_hosts: 2, return_mode: stay, overlap: false, parallel_clusters: false, reserve_mib: 1024}
phases:
  description: The hosts in each phase at the start (V(queued), V(skipped), V(entered), V(upgrading)).
  returned: always
  type: dict
  sample: {queued: [hv1, hv3], skipped: [hv2]}
forecast:
  description: The simulated roll - C(makespan_s), C(range_s), C(moves), C(bytes), C(calibration), C(steps) - or null.
  returned: always
  type: dict
  sample: {makespan_s: 131.0, range_s: [112.0, 160.0], moves: 6, bytes: 1610612736, calibration: the lab}
lines:
  description: The plan and the forecast, one line each, as the playbook prints them.
  returned: always
  type: list
  elements: str
  sample: ["roll of 3 host(s): 1 host at a time, guests return home"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostmaint.libvirt.plugins.module_utils.roll_options import ROLL_PLAN_SPEC


def main():
    module = AnsibleModule(argument_spec=ROLL_PLAN_SPEC, supports_check_mode=True)
    module.fail_json(msg="roll_plan runs on the controller through its action plugin; it cannot run on a host")


if __name__ == "__main__":
    main()
