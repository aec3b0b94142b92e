# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # The options of the modules that move something and print their progress while they run
    # (module_utils/progress.py, plugin_utils/engine_action.py).
    DOCUMENTATION = r"""
options:
  progress:
    description:
      - Print the run's progress while it runs (the action plugin on the controller reads the progress file the
        module keeps on its host every 2 s, from 2 s after the module started) - a line when a move starts, switches
        over (a disk - pivots), passes its check (a migration - its settle check; a disk - both definitions name the
        copy) or fails, and at least every 10 s while anything is in flight a heartbeat with the moves done of the
        total, each move in flight (guest, route, % copied, MiB/s, a migration's convergence ladder rung) and an
        estimate of the time left. The lines go to the controller's standard output, as the default stdout
        callback prints (and AWX's job output shows).
      - V(false) reads nothing and writes no file; a run on an empty host, over within 2 s, reads nothing either.
      - Progress is read only over the C(ssh) and C(local) connections, whose commands may run beside the module's;
        not in check mode, and not with a stdout callback that prints one JSON document (C(json), C(jsonl)), whose
        output the lines would break.
    type: bool
    default: true
  progress_file:
    description:
      - Where the module keeps its progress while it runs (JSON, created 0600 and replaced atomically, removed when
        the module ends). The action plugin sets it when O(progress) is on (a name nobody can guess under C(/tmp));
        a task need not. Without it the module writes no progress.
    type: path
"""
