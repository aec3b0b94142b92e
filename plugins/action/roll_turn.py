# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.roll_turn on the controller: a host's turn in the roll, or an event of its cycle, against the
roll's state file (plugin_utils.roll_state; the decisions are module_utils.roll's)."""

from __future__ import annotations

from ansible.utils.display import Display

from ansible_collections.hostmaint.libvirt.plugins.module_utils.roll_options import ROLL_TURN_SPEC, TURN_ACTIONS
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils import roll_state
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils.controller_action import ControllerAction

display = Display()


class ActionModule(ControllerAction):
    argument_spec = ROLL_TURN_SPEC

    def work(self, params, task_vars):
        host = params["host"] or task_vars.get("inventory_hostname")
        if params["action"] in TURN_ACTIONS:
            turn = roll_state.take_turn(params["state_file"], host, params["action"], params["timeout"],
                                        say=lambda why: display.display("[%s] %s" % (host, why)),
                                        check_mode=self.check_mode)
            return dict(turn, changed=bool(turn["granted"]) and not self.check_mode)
        found = roll_state.report(params["state_file"], host, params["action"], moves=params["moves"],
                                  reason=params["reason"], check_mode=self.check_mode)
        return dict(found, granted=True, changed=not self.check_mode)
