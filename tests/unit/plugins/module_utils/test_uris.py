# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A peer's libvirt URI: the template with the peer's address, a bare IPv6 address in brackets.

Pure: plain strings and dicts in, strings out.
"""

from __future__ import annotations

import ast

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import uris

TEMPLATE = "qemu+tls://{host}/system"


@pytest.mark.parametrize("address, uri", [
    # a bare IPv6 address goes in brackets, as RFC 3986 wants it in a URI
    ("2001:db8::12", "qemu+tls://[2001:db8::12]/system"),
    ("::1", "qemu+tls://[::1]/system"),
    ("fe80::1%br0", "qemu+tls://[fe80::1%br0]/system"),
    # already in brackets: unchanged, never twice
    ("[2001:db8::12]", "qemu+tls://[2001:db8::12]/system"),
    ("[2001:db8::12]:16514", "qemu+tls://[2001:db8::12]:16514/system"),
    # IPv4, host names and host:port go in as they are
    ("192.0.2.12", "qemu+tls://192.0.2.12/system"),
    ("hv2", "qemu+tls://hv2/system"),
    ("hv2.example.org", "qemu+tls://hv2.example.org/system"),
    ("hv2:16600", "qemu+tls://hv2:16600/system"),
])
def test_a_peers_uri_has_its_address_with_an_ipv6_address_in_brackets(address, uri):
    assert uris.peer_uri(TEMPLATE, address) == uri


def test_the_address_goes_where_the_template_says_and_every_host_is_replaced():
    assert uris.peer_uri("qemu+ssh://root@{host}:2222/system?keyfile=/k", "2001:db8::12") == \
        "qemu+ssh://root@[2001:db8::12]:2222/system?keyfile=/k"
    assert uris.peer_uri("qemu+ext://{host}/system?command=/bin/go-{host}", "hv2") == \
        "qemu+ext://hv2/system?command=/bin/go-hv2"


@pytest.mark.parametrize("address, bare", [
    ("2001:db8::12", True), ("::", True), ("[2001:db8::12]", False), ("192.0.2.12", False), ("hv2", False),
    ("hv2:16600", False), ("", False),
])
def test_bare_ipv6(address, bare):
    assert uris.bare_ipv6(address) is bare
    assert uris.bracketed(address) == ("[%s]" % address if bare else address)


@pytest.mark.parametrize("hostvars, address", [
    ({"hv2": {"ansible_host": "2001:db8::12"}}, "[2001:db8::12]"),
    ({"hv2": {"ansible_host": "[2001:db8::12]"}}, "[2001:db8::12]"),
    ({"hv2": {"ansible_host": "10.0.0.12"}}, "10.0.0.12"),
    # no ansible_host, an empty one, no variables, not in the inventory: the host's name
    ({"hv2": {}}, "hv2"),
    ({"hv2": {"ansible_host": ""}}, "hv2"),
    ({"hv2": None}, "hv2"),
    ({}, "hv2"),
])
def test_an_inventory_host_is_reached_at_its_ansible_host_else_its_name(hostvars, address):
    assert uris.inventory_address(hostvars, "hv2") == address


def test_an_inventory_host_whose_name_is_an_ipv6_address_goes_in_brackets_too():
    assert uris.inventory_address({}, "2001:db8::12") == "[2001:db8::12]"


def test_uris_imports_nothing_but_future():
    """The modules, the action plugin and the filters all import it: it may need nothing."""
    with open(uris.__file__) as source:
        tree = ast.parse(source.read())
    imported = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [getattr(node, "module", None) for node in imported] == ["__future__"]
