# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that give roles and playbooks the engine modules' options and peer URIs, from the code the modules use.

The logic is in module_utils: ``options.resolve`` (task or role value, else ``hostmaint_libvirt_<option>``, else
the argument spec's default) and ``uris`` (a peer's URI, an IPv6 address in brackets). Documentation:
engine_option.yml, engine_options.yml and peer_uri.yml beside this file.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostmaint.libvirt.plugins.module_utils import options, uris
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError


def _mapping(value, what):
    if not hasattr(value, "get") or not hasattr(value, "__contains__"):
        raise AnsibleFilterError("%s must be a host's variables (vars, or hostvars[host]), got %r" % (what, value))
    return value


def engine_option(variables, option, value=None, module=None):
    """options.resolve(option, variables, value, module), its error as the filter's."""
    try:
        return options.resolve(option, _mapping(variables, "engine_option's input"), value, module)
    except HostmaintError as exc:
        raise AnsibleFilterError(exc.message) from None


def engine_options(variables, values=None, module=None):
    """options.resolve_all(variables, values, module), its error as the filter's."""
    if values is not None and not isinstance(values, dict):
        raise AnsibleFilterError("engine_options' values must be a dict of option values by name, got %r" % (values,))
    try:
        return options.resolve_all(_mapping(variables, "engine_options' input"), values, module)
    except HostmaintError as exc:
        raise AnsibleFilterError(exc.message) from None


def peer_uri(uri_template, host, hostvars=None):
    """uris.peer_uri: with ``hostvars``, ``host`` is an inventory host reached at uris.inventory_address."""
    if not isinstance(uri_template, str) or "{host}" not in uri_template:
        raise AnsibleFilterError("peer_uri's uri_template %r must be a string with {host} where the peer's address "
                                 "goes, such as qemu+tls://{host}/system" % (uri_template,))
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError("peer_uri's host %r must be a host name or address" % (host,))
    if hostvars is not None:
        host = uris.inventory_address(_mapping(hostvars, "peer_uri's hostvars"), host)
    return uris.peer_uri(uri_template, host)


class FilterModule(object):
    def filters(self):
        return dict(engine_option=engine_option, engine_options=engine_options, peer_uri=peer_uri)
