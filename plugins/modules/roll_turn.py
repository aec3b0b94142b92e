#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: roll_turn
short_description: Take a host's turn in a rolling upgrade, or tell the roll what the host did
version_added: 0.1.0
description:
  - Runs on the controller (its action plugin), in the hosts' cycles of C(playbooks/rolling_upgrade.yml), which run
    side by side (the roll's play uses the free strategy). The roll's state is one JSON file on the controller
    (O(state_file), written by M(hostmaint.libvirt.roll_plan)); every read and write holds an exclusive lock on
    C(<state_file>.lock).
  - O(action=enter) waits until the host may enter maintenance - it is the next host of its cluster, fewer than
    the roll's C(parallel_hosts) hosts of the cluster are in maintenance, and the hosts left in service can hold
    every guest that has to leave with the reserve on each (N+k). The answer lists, in RV(mark), the hosts the
    caller marks in maintenance now (itself first, then the rest of its batch), so that no guest is placed on a
    host about to be emptied.
  - O(action=drain) waits until the host may be emptied - one evacuation at a time per cluster, in order, and with
    overlap not while a guest coming home to a restoring host still runs on it.
  - The events V(drained), V(upgraded) and V(restored) (with the engine's O(moves)), V(failed) (with O(reason)) and
    V(released) (a host the roll marked that leaves it untouched because the roll stopped) move the host's phase
    on. After V(failed) the roll stops - no host enters after it.
  - While it waits it prints why, once for each new reason (C([hv3] waits - hv1 is being emptied ...)).
  - The decisions are those of C(module_utils/roll.py), which the fleet simulator drives too.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
extends_documentation_fragment:
  - hostmaint.libvirt.controller.attributes
attributes:
  check_mode:
    description: Can run in check mode and return the changes a real run would make.
    support: full
    details: Decides without waiting and writes nothing.
options:
  action:
    description: The turn the host asks for (V(enter), V(drain)), or what it reports (V(drained), V(upgraded),
      V(restored), V(failed), V(released)).
    type: str
    required: true
    choices: [enter, drain, drained, upgraded, restored, failed, released]
  host:
    description: The host whose turn it is; the task's C(inventory_hostname) when not given.
    type: str
  moves:
    description: For V(drained) and V(restored) - the engine's outcomes (C(guest), C(destination), C(outcome)), so
      that the roll knows where each guest runs now.
    type: list
    elements: dict
    default: []
  reason:
    description: For V(failed) and V(released) - why, in one sentence.
    type: str
  state_file:
    description: The roll's state file on the controller (M(hostmaint.libvirt.roll_plan) writes it).
    type: path
    required: true
  timeout:
    description: Seconds a host may wait for its turn before it fails (the roll then stops).
    type: int
    default: 86400
"""

EXAMPLES = r"""
- name: Wait for this host's turn to enter maintenance
  hostmaint.libvirt.roll_turn:
    state_file: /srv/reports/rolls/20261207T220000Z-1a2b3c.json
    action: enter
  register: turn

- name: Tell the roll that the host is empty
  hostmaint.libvirt.roll_turn:
    state_file: /srv/reports/rolls/20261207T220000Z-1a2b3c.json
    action: drained
    moves: "{{ evacuate_result.outcomes }}"
"""

RETURN = r"""
granted:
  description: Whether the turn asked for was granted (V(true) for an event).
  returned: always
  type: bool
  sample: true
final:
  description: The turn will never be granted (the roll stopped, or the host finished) - the host leaves the roll.
  returned: for enter and drain
  type: bool
  sample: false
why:
  description: One sentence - why the turn was granted or refused.
  returned: for enter and drain
  type: str
  sample: hv3 enters maintenance with hv4
mark:
  description: The hosts the caller marks in maintenance now, itself first.
  returned: for enter
  type: list
  elements: str
  sample: [hv3, hv4]
avoid:
  description: Hosts the next evacuation uses last (the next ones to be emptied).
  returned: for enter and drain
  type: list
  elements: str
  sample: [hv5]
in_maintenance:
  description: The hosts of the host's cluster in maintenance (they may be rebooting - its gates leave them out).
  returned: always
  type: list
  elements: str
  sample: [hv1, hv3]
down:
  description: The other hosts of the cluster that may not answer now (emptied and upgrading - patch, reboot, gate);
    they hold no guest, so the host's next evacuation or restore leaves them out.
  returned: always
  type: list
  elements: str
  sample: [hv1]
waited_s:
  description: Seconds the host waited for its turn.
  returned: for enter and drain
  type: float
  sample: 41.2
phase:
  description: The host's phase in the roll - for a turn, when it asked (V(queued), V(entered), ...); for an event,
    after it.
  returned: always
  type: str
  sample: upgrading
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostmaint.libvirt.plugins.module_utils.roll_options import ROLL_TURN_SPEC


def main():
    module = AnsibleModule(argument_spec=ROLL_TURN_SPEC, supports_check_mode=True)
    module.fail_json(msg="roll_turn runs on the controller through its action plugin; it cannot run on a host")


if __name__ == "__main__":
    main()
