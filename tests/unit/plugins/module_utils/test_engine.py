# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine's look-up of peers' hostnames on the source, with fake resolvers and adapters injected."""

from __future__ import annotations

import socket
import threading
import time
import types

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import engine
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import HostFacts


def answers(hostname, port, family, kind):
    return [(socket.AF_INET, kind, 6, "", ("192.0.2.7", 0))]


def unknown(hostname, port, family, kind):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def test_a_name_that_resolves():
    asked = []
    assert engine.resolves("hv2.example", 1, lookup=lambda *a: asked.append(a) or answers(*a)) is True
    assert asked == [("hv2.example", None, 0, socket.SOCK_STREAM)]


def test_a_name_that_does_not_resolve():
    assert engine.resolves("hv2.example", 1, lookup=unknown) is False


def test_no_name_is_unknown_and_not_looked_up():
    assert engine.resolves(None, 1, lookup=unknown) is None
    assert engine.resolves("", 1, lookup=unknown) is None


def test_a_look_up_that_does_not_answer_in_time_is_unknown():
    release = threading.Event()
    started = time.monotonic()
    try:
        assert engine.resolves("slow.example", 0.2, lookup=lambda *a: release.wait(5)) is None
    finally:
        release.set()
    assert time.monotonic() - started < 2


class FakePeer(object):
    def __init__(self, hostname, fail=None):
        self.hostname, self.fail = hostname, fail

    def host_facts(self, name, shared_names=(), guests=(), cpu_xml=None, paths=()):
        if self.fail:
            raise HostmaintError(self.fail)
        return HostFacts(name=name, hostname=self.hostname)


def engine_module(resolver):
    module = types.SimpleNamespace(params=dict(name="hv1", connect_timeout=7, shared_pools=[]))
    return engine.EngineModule(module=module, adapter_factory=lambda uri: None, resolver=resolver)


def test_facts_of_a_peer_say_whether_its_hostname_resolves_here():
    asked = []

    def resolver(hostname, timeout):
        asked.append((hostname, timeout))
        return hostname != "hv3.example"

    subject = engine_module(resolver)
    peers = dict(hv2=FakePeer("hv2.example"), hv3=FakePeer("hv3.example"))
    assert subject.facts("hv2", peers.get).hostname_resolves is True
    assert subject.facts("hv3", peers.get).hostname_resolves is False
    assert asked == [("hv2.example", 7), ("hv3.example", 7)]


def test_this_hosts_own_facts_and_an_unreachable_peer_are_not_looked_up():
    asked = []
    subject = engine_module(lambda hostname, timeout: asked.append(hostname) or False)
    assert subject.facts("hv1", lambda _name: FakePeer("hv1.example")).hostname_resolves is None
    unreachable = subject.facts("hv2", lambda _name: FakePeer("hv2.example", fail="connection refused"))
    assert (unreachable.reachable, unreachable.hostname_resolves) == (False, None)
    assert asked == []


def defaults(**given):
    """An engine module's parameters as AnsibleModule would give them: every default, then ``given``."""
    from ansible_collections.hostmaint.libvirt.plugins.module_utils import options

    params = dict((key, spec.get("default")) for key, spec in options.module_spec("evacuate").items())
    params.update(given)
    return params


@pytest.mark.parametrize("given, message", [
    (dict(pause_target_ms=-1), "pause_target_ms must be 0 or more, got -1"),
    (dict(pause_target_ms=0), None),
    (dict(pause_target_ms=150), None),
    (dict(settle_s=-5), "settle_s must be 0 or more, got -5"),
])
def test_options_are_checked_before_anything_is_read(given, message):
    subject = engine.EngineModule(module=types.SimpleNamespace(params=defaults(name="hv1", **given)),
                                  adapter_factory=lambda uri: None)
    if message is None:
        subject.validate()
        assert subject.executor().pause_target_ms == given["pause_target_ms"]
        return
    with pytest.raises(HostmaintError) as error:
        subject.validate()
    assert error.value.message == message
