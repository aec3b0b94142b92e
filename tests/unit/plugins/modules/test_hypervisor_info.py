# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hypervisor_info on the shared fake cluster: the host's memory as the engine sees it, with and without a declared
capacity, and a capacity that is none in one sentence."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Guest
from ansible_collections.hostmaint.libvirt.plugins.modules import hypervisor_info
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.fake_adapter import FakeCluster


def run_module(cluster, **args):
    output = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(output):
        with pytest.raises(SystemExit) as exit_info:
            hypervisor_info.HypervisorInfo(adapter_factory=cluster.factory).execute()
    return exit_info.value.code, json.loads(output.getvalue())


def busy():
    """hv1 (16 GiB, all measured free but for its guests) runs two 256 MiB guests; one of 128 MiB is arriving."""
    cluster = FakeCluster("hv1", "hv2")
    cluster.add("hv1", "r1", memory_mib=256)
    cluster.add("hv1", "r2", memory_mib=256)
    cluster.add("hv1", "off", state="shutoff", memory_mib=4096)
    cluster.arriving["hv1"]["in1"] = Guest(name="in1", uuid="uuid-in1", state="paused", memory_mib=128,
                                           max_memory_mib=128)
    return cluster


def test_without_a_declared_capacity_the_memory_is_as_the_host_measures_it():
    code, result = run_module(busy())
    assert code == 0 and result["changed"] is False, result
    facts = result["hypervisor"]
    assert (facts["capacity_mib"], facts["memory_free_mib"], facts["memory_measured_free_mib"]) == (0, 15872, 15872)


def test_a_declared_capacity_and_the_free_memory_within_it_are_returned():
    cluster = busy()
    code, result = run_module(cluster, capacity_mib=1024)
    assert code == 0, result
    facts = result["hypervisor"]
    # 1024 less the two running guests and the one arriving; the shut-off guest holds nothing
    assert (facts["capacity_mib"], facts["memory_free_mib"], facts["memory_measured_free_mib"]) == (1024, 384, 15872)
    assert facts["running_memory_mib"] == 512 and facts["guests"] == 3
    assert cluster.changes() == []


@pytest.mark.parametrize("given, message", [
    (-1024, "capacity_mib of hv1 must be 0 (not declared) or more, got -1024"),
    ("1.5 GiB", "capacity_mib of hv1 must be a whole number of MiB (0: not declared), got '1.5 GiB'"),
])
def test_a_capacity_that_is_none_fails_in_one_sentence_naming_the_host_before_libvirt_is_asked(given, message):
    cluster = busy()
    code, result = run_module(cluster, capacity_mib=given, name="hv1")
    assert code == 1 and result["msg"] == message, result
    assert cluster.calls == []
