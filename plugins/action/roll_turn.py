# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.roll_turn on the controller: a host's turn in the roll, or an event of its cycle, against the
roll's state file (plugin_utils.roll_state; the decisions are module_utils.roll's)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.roll_options import ROLL_TURN_SPEC, TURN_ACTIONS
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils import roll_state

display = Display()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, params = self.validate_argument_spec(argument_spec=ROLL_TURN_SPEC)
        host = params["host"] or (task_vars or {}).get("inventory_hostname")
        check = bool(self._task.check_mode)
        try:
            if params["action"] in TURN_ACTIONS:
                turn = roll_state.take_turn(params["state_file"], host, params["action"], params["timeout"],
                                            say=lambda why: display.display("[%s] %s" % (host, why)),
                                            check_mode=check)
                result.update(turn, changed=bool(turn["granted"]) and not check)
            else:
                result.update(roll_state.report(params["state_file"], host, params["action"], moves=params["moves"],
                                                reason=params["reason"], check_mode=check),
                              granted=True, changed=not check)
        except HostmaintError as exc:
            result.update(exc.details, failed=True, msg=exc.message)
        return result
