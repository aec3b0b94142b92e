# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.roll_plan on the controller: the roll's state from what every host reported (module_utils.roll),
refused in one sentence when its options cannot hold, written for the hosts' turns (plugin_utils.roll_state), with
the plan printed line by line and, from the fleet simulator, its forecast."""

from __future__ import annotations

import os

from ansible_collections.hostmaint.libvirt.plugins.module_utils import roll, roll_forecast
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.roll_options import ROLL_PLAN_SPEC
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils import roll_state
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils.controller_action import ControllerAction


class ActionModule(ControllerAction):
    argument_spec = ROLL_PLAN_SPEC

    def work(self, params, task_vars):
        return plan(params, check_mode=self.check_mode)


def plan(params, check_mode=False):
    """The roll's plan: its state (written to ``state_file`` unless in check mode), the lines that say it, and the
    forecast; HostmaintError with one sentence when the options cannot hold."""
    hosts, guests = [], []
    for entry in params["hosts"]:
        hosts.append(dict((k, entry.get(k)) for k in ("name", "cluster", "capacity_mib", "phase", "reason")))
        guests.extend(dict(guest, host=entry.get("name")) for guest in entry.get("guests") or [])
    try:
        state = roll.new(hosts, guests, parallel_hosts=params["parallel_hosts"], return_mode=params["return_mode"],
                         overlap=params["overlap"], parallel_clusters=params["parallel_clusters"],
                         reserve_mib=params["reserve_mib"], run_id=params["run_id"])
    except DecisionError as exc:
        raise HostmaintError(exc.message)
    refused = roll.refusal(state)
    if refused:
        raise HostmaintError("%s; nothing was changed" % refused, refused=True)
    forecast = None
    if params["forecast"]:
        forecast = roll_forecast.forecast(state, report_dir=params["report_dir"], batch_size=params["batch_size"])
    written = None
    if params["state_file"] and not check_mode:
        roll_state.write(params["state_file"], state)
        written = os.path.abspath(params["state_file"])
    return dict(changed=False, state_file=written, order=state["order"], options=state["options"],
                phases=roll.summary(state)["phases"], forecast=forecast,
                lines=roll_forecast.lines(state, forecast))
