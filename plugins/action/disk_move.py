# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fills hostmaint.libvirt.disk_move's destinations and options from the inventory (see plugin_utils.engine_action)."""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.plugin_utils.engine_action import EngineAction


class ActionModule(EngineAction):
    pass
