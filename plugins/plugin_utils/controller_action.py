# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base of the actions that run in the controller's own process (run_report, roll_plan, roll_turn): no module
is sent to a host; the options are judged by the action's argument spec (the one its documentation module
declares); the one error type of the collection becomes the task's failure, with its one sentence."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError


class ControllerAction(ActionBase):
    """Subclasses set ``argument_spec`` and write ``work(params, task_vars)``, which returns the result's keys or
    raises HostmaintError."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False
    argument_spec = {}

    def run(self, tmp=None, task_vars=None):
        result = super(ControllerAction, self).run(tmp, task_vars)
        _validation, params = self.validate_argument_spec(argument_spec=self.argument_spec)
        try:
            result.update(self.work(params, task_vars or {}))
        except HostmaintError as exc:
            result.update(exc.details, failed=True, msg=exc.message)
        return result

    @property
    def check_mode(self):
        return bool(self._task.check_mode)

    def work(self, params, task_vars):
        raise NotImplementedError
