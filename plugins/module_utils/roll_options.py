# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The argument specs of the rolling upgrade's controller-side actions (roll_plan, roll_turn): shared by their
action plugins, which judge the options, and their documentation modules."""

from __future__ import annotations

TURN_ACTIONS = ["enter", "drain"]
TURN_EVENTS = ["drained", "upgraded", "restored", "failed", "released"]

ROLL_TURN_SPEC = dict(
    action=dict(type="str", required=True, choices=TURN_ACTIONS + TURN_EVENTS),
    host=dict(type="str"),
    moves=dict(type="list", elements="dict", default=[]),
    reason=dict(type="str"),
    state_file=dict(type="path", required=True),
    timeout=dict(type="int", default=86400),
)

ROLL_PLAN_SPEC = dict(
    batch_size=dict(type="int", default=0),
    forecast=dict(type="bool", default=True),
    hosts=dict(type="list", elements="dict", required=True),
    overlap=dict(type="bool", default=False),
    parallel_clusters=dict(type="bool", default=False),
    parallel_hosts=dict(type="int", default=1),
    report_dir=dict(type="path"),
    reserve_mib=dict(type="int", default=1024),
    return_mode=dict(type="str", default="home", choices=["home", "stay"]),
    run_id=dict(type="str"),
    state_file=dict(type="path"),
)
