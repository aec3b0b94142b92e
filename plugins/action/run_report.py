# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.run_report on the controller, in the controller's own process: the report is the controller's
file, and running the module through a local connection cost every playbook about 0.6 s (measured on the lab:
0.65 s of evacuate.yml's 2.4 s on an empty host). The options are judged by the module's own argument spec and the
files written by the same code (module_utils.report_files); the module stays for its documentation and for a run
without this plugin."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report_files
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    argument_spec = report_files.ARGUMENT_SPEC

    def work(self, params, task_vars):
        return report_files.write(params, check_mode=self.check_mode)
