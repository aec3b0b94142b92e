# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A peer's libvirt URI: ``uri_template`` with ``{host}`` replaced by the peer's address.

Standard library only, and nothing imported: the engine modules (EngineModule.peer_uri, on the managed host),
their action plugin (the addresses it fills in from the inventory) and the roles' filters
(``hostmaint.libvirt.peer_uri``, on the controller) all build peer URIs here, so that a role reaches a peer at the
URI a migration to it uses.

An address with more than one colon that does not start with ``[`` is a bare IPv6 address: it goes in brackets,
``[2001:db8::12]``, as RFC 3986 wants a literal IPv6 host in a URI. Anything else (a host name, an IPv4 address, an
address already in brackets, ``host:port``) goes in as it is.
"""

from __future__ import annotations


def bare_ipv6(address):
    """Whether ``address`` is an IPv6 address without its brackets (more than one colon, no leading ``[``)."""
    return address.count(":") > 1 and not address.startswith("[")


def bracketed(address):
    """``address`` as the host part of a URI: a bare IPv6 address in brackets, anything else unchanged."""
    return "[%s]" % address if bare_ipv6(address) else address


def peer_uri(uri_template, address):
    """The libvirt URI of the peer at ``address``: every ``{host}`` of ``uri_template`` replaced by ``bracketed(address)``."""
    return uri_template.replace("{host}", bracketed(address))


def inventory_address(hostvars, host):
    """The address an inventory host is reached at: its ``ansible_host``, else its name, ``bracketed``.

    ``hostvars`` maps host names to their variables (Ansible's ``hostvars``); a host it does not hold is reached at
    its name.
    """
    host_vars = (hostvars[host] if host in hostvars else None) or {}
    return bracketed(str(host_vars.get("ansible_host") or host))
