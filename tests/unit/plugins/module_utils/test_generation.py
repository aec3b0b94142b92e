# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host generations: what derive prints, and the order key and compare give (numeric, unknown first)."""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError, HostFacts


def v(major, minor, micro=0):
    """A version in libvirt's integer encoding."""
    return major * 1000000 + minor * 1000 + micro


BOOKWORM = generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", "12.11")
TRIXIE = generation.derive(v(11, 3), v(10, 0, 2), "6.12.48+deb13-amd64", "13.1")


def test_derive_prints_every_part_most_important_first():
    assert BOOKWORM == "qemu-7.2.0 libvirt-9.0.0 kernel-6.1.0-37 os-12.11"
    assert TRIXIE == "qemu-10.0.2 libvirt-11.3.0 kernel-6.12.48 os-13.1"


@pytest.mark.parametrize("release, kept", [
    ("6.1.0-37-amd64", "6.1.0-37"),
    ("6.1.0-37-cloud-amd64", "6.1.0-37"),
    ("6.12.48+deb13-amd64", "6.12.48"),
    ("6.8.0-45-generic", "6.8.0-45"),
    ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-427.13.1"),
    ("6.10.3-arch1-2", "6.10.3"),
    ("", "0"),
    ("weird", "0"),
])
def test_kernel_keeps_version_and_abi_not_flavour(release, kept):
    assert generation.kernel_version(release) == kept


def test_derive_leaves_out_an_unknown_os_and_knows_nothing_from_nothing():
    assert generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", None) == "qemu-7.2.0 libvirt-9.0.0 kernel-6.1.0-37"
    assert generation.derive(0, 0, "", None) is None
    assert generation.derive(0, 0, None, None) is None


@pytest.mark.parametrize("args", [(-1, 0, "6.1.0", None), ("nine", 0, "6.1.0", None), (True, 0, "6.1.0", None)])
def test_derive_refuses_a_version_that_is_not_libvirts_encoding(args):
    with pytest.raises(DecisionError, match="invalid libvirt version"):
        generation.derive(*args)


# older, newer: every pair is numeric where lexicographic order would get it wrong, or a part that decides
@pytest.mark.parametrize("older, newer", [
    (BOOKWORM, TRIXIE),
    # QEMU 9.0.0 < 11.3.0 (as text "9" > "1")
    (generation.derive(v(9, 0), v(9, 0), "6.1.0-37-amd64", "12.11"),
     generation.derive(v(9, 0), v(11, 3), "6.1.0-37-amd64", "12.11")),
    # libvirt 9.0.0 < 11.3.0 once QEMU is the same
    (generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", "12.11"),
     generation.derive(v(11, 3), v(7, 2), "6.1.0-37-amd64", "12.11")),
    # kernel 6.9 < 6.10; ABI 9 < 37; no ABI < an ABI
    (generation.derive(v(9, 0), v(7, 2), "6.9.0-1-amd64", None), generation.derive(v(9, 0), v(7, 2), "6.10.0-1-amd64", None)),
    (generation.derive(v(9, 0), v(7, 2), "6.1.0-9-amd64", "12.11"), generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", "12.11")),
    (generation.derive(v(9, 0), v(7, 2), "6.1.0+deb12-amd64", "12.11"), generation.derive(v(9, 0), v(7, 2), "6.1.0-1-amd64", "12.11")),
    # the OS point release decides last: 12.9 < 12.11; an unknown OS first
    (generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", "12.9"), generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", "12.11")),
    (generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", None), generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", "12.1")),
    # QEMU outweighs everything after it
    (generation.derive(v(11, 3), v(7, 2), "6.12.48+deb13-amd64", "13.1"), generation.derive(v(9, 0), v(8, 0), "6.1.0-1-amd64", "12.1")),
    # operators' own strings
    ("7", "10"),
    ("2026.9", "2026.11"),
    ("2026.11", "2027.1"),
    ("2026.11", "2026.11.1"),
    ("rc-9", "rc-10"),
    (None, "0"),
    (None, BOOKWORM),
    ("", "1"),
])
def test_generations_order_numerically(older, newer):
    assert generation.compare(older, newer) == -1
    assert generation.compare(newer, older) == 1
    assert generation.key(older) < generation.key(newer)


@pytest.mark.parametrize("a, b", [
    (None, None), (None, ""), ("  ", None), ("7", " 7 "), ("2026.01", "2026.1"), (BOOKWORM, BOOKWORM),
    # a kernel flavour is not a generation
    (generation.derive(v(9, 0), v(7, 2), "6.1.0-37-amd64", "12.11"),
     generation.derive(v(9, 0), v(7, 2), "6.1.0-37-cloud-amd64", "12.11")),
])
def test_same_generation_compares_equal(a, b):
    assert generation.compare(a, b) == 0


def test_sorting_hosts_by_generation():
    names = ["2026.11", None, "2026.9", "7", "2026.10"]
    assert sorted(names, key=generation.key) == [None, "7", "2026.9", "2026.10", "2026.11"]


def test_a_number_from_yaml_must_be_quoted():
    with pytest.raises(DecisionError, match="invalid generation 2026.1: give it as a string"):
        generation.key(2026.10)
    assert generation.compare(7, "7") == 0


def test_host_facts_carry_a_generation():
    facts = HostFacts(name="hv1", generation=BOOKWORM)
    assert facts.as_dict()["generation"] == BOOKWORM
    assert HostFacts(name="hv2").as_dict()["generation"] is None
