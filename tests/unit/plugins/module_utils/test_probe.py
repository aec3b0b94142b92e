# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes of a guest's service: URLs judged in one sentence, and real bounded attempts on loopback."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import probe
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError


@pytest.mark.parametrize("url, parsed", [
    ("tcp://10.0.0.5:22", ("tcp", "10.0.0.5", 22, "/")),
    ("http://web1.example", ("http", "web1.example", 80, "/")),
    ("http://10.0.0.5:8080/health?deep=1", ("http", "10.0.0.5", 8080, "/health?deep=1")),
])
def test_urls(url, parsed):
    assert probe.parse(url) == parsed


@pytest.mark.parametrize("url, message", [
    ("10.0.0.5:22", "probe '10.0.0.5:22' of guest web1 must start with tcp:// or http://"),
    ("https://10.0.0.5/", "probe 'https://10.0.0.5/' of guest web1 must start with tcp:// or http://"),
    ("tcp://10.0.0.5", "probe 'tcp://10.0.0.5' of guest web1 needs a port (tcp://HOST:PORT)"),
    ("tcp://:22", "probe 'tcp://:22' of guest web1 names no host"),
    ("http://10.0.0.5:0/", "probe 'http://10.0.0.5:0/' of guest web1 has a port that is not between 1 and 65535"),
    ("tcp://10.0.0.5:http", "probe 'tcp://10.0.0.5:http' of guest web1 has a port that is not between 1 and 65535"),
])
def test_bad_urls_are_one_sentence(url, message):
    with pytest.raises(HostmaintError) as exc:
        probe.parse(url, "web1")
    assert exc.value.message == message


@pytest.mark.parametrize("url, source, message", [
    ("web1:80", "probes", "probe 'web1:80' of guest web1 in probes must start with tcp:// or http://"),
    ("ftp://web1/", "its settings metadata",
     "probe 'ftp://web1/' of guest web1 in its settings metadata must start with tcp:// or http://"),
    (8080, "probes", "probe 8080 of guest web1 in probes must start with tcp:// or http://"),
    (None, "probes", "probe None of guest web1 in probes must start with tcp:// or http://"),
    (["tcp://web1:22"], "probes", "probe ['tcp://web1:22'] of guest web1 in probes must start with tcp:// or http://"),
])
def test_a_bad_url_says_where_it_comes_from_and_any_type_is_one_sentence(url, source, message):
    with pytest.raises(HostmaintError) as exc:
        probe.parse(url, "web1", source=source)
    assert exc.value.message == message


def test_tcp_on_loopback():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert probe.check("tcp://127.0.0.1:%d" % port, 1.0) is None
    finally:
        server.close()
    assert probe.check("tcp://127.0.0.1:%d" % port, 1.0).startswith("ConnectionRefusedError")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(500 if self.path == "/broken" else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_http_on_loopback():
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = "http://127.0.0.1:%d" % server.server_address[1]
    try:
        assert probe.check(base + "/", 1.0) is None
        assert probe.check(base + "/broken", 1.0) == "HTTP 500"
    finally:
        server.shutdown()
        server.server_close()
