# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared fake adapter keeps to the real adapter's interface: a method the fake has, the real one has, with the
same parameters (a renamed or reshaped method of LibvirtAdapter fails here, not in a test that trusts the fake)."""

from __future__ import annotations

import inspect

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.libvirt_adapter import LibvirtAdapter, MigrationJob
from ansible_collections.hostmaint.libvirt.tests.unit.plugins.fake_adapter import FakeAdapter, FakeCluster, FakeJob


def public(cls):
    return sorted(name for name, member in vars(cls).items() if not name.startswith("_") and callable(member))


def parameters(method):
    return [(p.name, p.default) for p in inspect.signature(method).parameters.values()]


@pytest.mark.parametrize("method", public(FakeAdapter))
def test_every_method_of_the_fake_adapter_is_the_real_adapters_with_its_parameters(method):
    assert hasattr(LibvirtAdapter, method), "LibvirtAdapter has no %s" % method
    assert parameters(getattr(FakeAdapter, method)) == parameters(getattr(LibvirtAdapter, method))


@pytest.mark.parametrize("method", public(FakeJob))
def test_every_method_of_the_fake_job_is_the_real_jobs(method):
    assert parameters(getattr(FakeJob, method)) == parameters(getattr(MigrationJob, method))


def test_a_fault_is_injected_at_the_call_it_names_only():
    cluster = FakeCluster("hv1", "hv2")
    cluster.add("hv1", "web1")
    cluster.fail("guest_state", at=2)
    adapter = cluster.factory("qemu:///system")
    assert adapter.guest_state("web1") == ("running", True)
    with pytest.raises(HostmaintError) as error:
        adapter.guest_state("web1")
    assert error.value.message == "cannot guest_state on qemu:///system: injected fault"
    assert adapter.guest_state("web1") == ("running", True)
    assert cluster.calls == [("hv1", "guest_state", "web1")] * 3
    cluster.fail("alive", host="hv2")
    assert cluster.factory("qemu+tls://hv2/system").alive() is False  # as the real one answers a silent host
