# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The attributes of the actions that run only on the controller (roll_plan, roll_turn), beside their own
    # check_mode attribute.
    DOCUMENTATION = r"""
options: {}
"""

    ATTRIBUTES = r"""
attributes:
  diff_mode:
    description: Will return details on what has changed (or might change in check mode) when in diff mode.
    support: none
  platform:
    description: Runs on the controller.
    support: full
    platforms: posix
"""
