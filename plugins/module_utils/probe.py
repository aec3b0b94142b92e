# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes of a guest's own service after it lands: does it answer where its users reach it?

A probe is a URL: ``tcp://HOST:PORT`` (a TCP connection is accepted) or ``http://HOST[:PORT][/PATH]``
(an HTTP answer below 500). ``parse()`` is pure and says in one sentence what is wrong with a URL;
``check()`` makes one bounded attempt from the host the module runs on. Standard library only.
"""

from __future__ import annotations

import http.client
import socket

from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

SCHEMES = ("tcp", "http")


def parse(url, guest=None, source=None):
    """(scheme, host, port, path) of a probe URL; raises HostmaintError naming the guest and the URL, and where the
    URL comes from when ``source`` says it (an option such as ``probes``, or the guest's settings metadata)."""
    owner = "probe %r%s%s" % (url, " of guest %s" % guest if guest else "", " in %s" % source if source else "")
    scheme, sep, rest = (url if isinstance(url, str) else "").partition("://")
    if not sep or scheme not in SCHEMES:
        raise HostmaintError("%s must start with tcp:// or http://" % owner)
    hostport, slash, path = rest.partition("/")
    host, colon, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
    if not host:
        raise HostmaintError("%s names no host" % owner)
    if scheme == "tcp" and not colon:
        raise HostmaintError("%s needs a port (tcp://HOST:PORT)" % owner)
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        raise HostmaintError("%s has a port that is not between 1 and 65535" % owner)
    return scheme, host, int(port) if colon else 80, "/" + path if slash else "/"


def check(url, timeout=1.0):
    """None when the guest answered the probe within ``timeout`` seconds, else what went wrong (a short text)."""
    scheme, host, port, path = parse(url)
    try:
        if scheme == "tcp":
            socket.create_connection((host, port), timeout=timeout).close()
            return None
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path)
            status = conn.getresponse().status
        finally:
            conn.close()
        return None if status < 500 else "HTTP %d" % status
    except (OSError, http.client.HTTPException) as exc:
        return "%s: %s" % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
