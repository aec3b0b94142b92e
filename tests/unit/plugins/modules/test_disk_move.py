# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""disk_move's bad input: one sentence naming the option, before any connection is opened (the moves themselves are
tested in module_utils/test_disk_mover.py and on the lab, tests/integration/test_disk_move.py)."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.module_utils import options
from ansible_collections.hostmaint.libvirt.plugins.modules import disk_move


@pytest.mark.parametrize("args, message", [
    (dict(to_pool=" "), "to_pool is empty: name the storage pool the disks move into"),
    (dict(to_pool="new"), "name a guest, or the pool whose disks move (from_pool)"),
    (dict(to_pool="new", from_pool="old", disks=["vda"]), "disks (vda) names disks of one guest: name the guest too"),
    (dict(to_pool="new", from_pool="old", guest="web1", delete_unused=True),
     "delete_unused deletes the unused volumes of a pool: give from_pool without guest"),
    (dict(to_pool="new", guest="web1", max_copies=0), "max_copies must be from 1 to 16, got 0"),
    (dict(to_pool="new", guest="web1", stall_timeout=1), "stall_timeout must be from 5 to 3600, got 1"),
    (dict(to_pool="new", guest="web1", copy_bandwidth_mib=-1), "copy_bandwidth_mib must be from 0 to 100000, got -1"),
])
def test_bad_input_is_one_sentence_and_nothing_is_opened(args, message):
    opened = []
    output = io.StringIO()
    with patch_module_args(dict(args, name="hv1")), contextlib.redirect_stdout(output):
        with pytest.raises(SystemExit) as exit_info:
            disk_move.DiskMove(adapter_factory=opened.append).execute()
    result = json.loads(output.getvalue())
    assert exit_info.value.code == 1 and result["msg"] == message
    assert opened == []


def test_its_bandwidth_is_its_own_option_not_the_migrations():
    assert "copy_bandwidth_mib" in options.DISK_MOVE_SPEC and "bandwidth_mib" not in options.DISK_MOVE_SPEC
    assert "copy_bandwidth_mib" in options.inventory_options(options.module_spec("hostmaint.libvirt.disk_move"))
