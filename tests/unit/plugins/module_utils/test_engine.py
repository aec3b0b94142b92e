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
    module = types.SimpleNamespace(params=defaults(name="hv1", connect_timeout=7))
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


@pytest.mark.parametrize("given, expected", [(dict(), "delete"), (dict(storage_copy_source="keep"), "keep")])
def test_storage_copy_source_reaches_the_executor_and_deletes_by_default(given, expected):
    subject = engine.EngineModule(module=types.SimpleNamespace(params=defaults(name="hv1", **given)),
                                  adapter_factory=lambda uri: None)
    subject.validate()
    assert subject.executor().storage_copy_source == expected


@pytest.mark.parametrize("given, message", [
    (dict(pause_target_ms=-1), "pause_target_ms must be 0 or more, got -1"),
    (dict(pause_target_ms=0), None),
    (dict(pause_target_ms=150), None),
    (dict(settle_s=-5), "settle_s must be 0 or more, got -5"),
    (dict(settle_s=10 ** 6), "settle_s must be 600 or less (seconds), got 1000000"),
    (dict(uri_template="qemu+bogus://{host}/system"),
     "uri_template 'qemu+bogus://{host}/system' has the scheme qemu+bogus, which libvirt does not accept for QEMU: use "
     "one of qemu, qemu+tls, qemu+ssh, qemu+tcp, qemu+libssh, qemu+libssh2, qemu+ext"),
    (dict(destinations=[{"name": "hv1"}]),
     "the only destination listed in destinations is hv1, the source host itself: list the other hosts of its cluster"),
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


@pytest.mark.parametrize("destination, uri", [
    ({"name": "hv2", "address": "[2001:db8::12]"}, "qemu+tls://[2001:db8::12]/system"),
    ({"name": "hv2", "address": "192.0.2.12"}, "qemu+tls://192.0.2.12/system"),
    ({"name": "hv2"}, "qemu+tls://hv2/system"),
    # a host known only by a name that is an IPv6 address: in brackets all the same (uris.peer_uri)
    ({"name": "2001:db8::12"}, "qemu+tls://[2001:db8::12]/system"),
])
def test_a_peers_uri_is_the_template_with_its_address_an_ipv6_address_in_brackets(destination, uri):
    subject = engine.EngineModule(module=types.SimpleNamespace(params=defaults(name="hv1", destinations=[destination])),
                                  adapter_factory=lambda uri: None)
    assert subject.peer_uri(destination["name"]) == uri


# -- reaching a peer: its address looked up within connect_timeout, then its libvirt port -------------------

class Connection(object):
    def close(self):
        pass


def test_a_peer_whose_address_resolves_and_answers_is_reached():
    tried = []
    engine.reach("hv2", "10.0.0.12", 16514, 3, resolver=lambda address, timeout: True,
                 connect=lambda pair, timeout: tried.append((pair, timeout)) or Connection())
    assert tried == [(("10.0.0.12", 16514), 3)]


def refused_reach(resolver, connect=None):
    def never(pair, timeout):
        raise AssertionError("no connection may be tried")
    with pytest.raises(HostmaintError) as error:
        engine.reach("ghost", "ghost.example", 16514, 2, resolver=resolver, connect=connect or never)
    return error.value.message


def test_a_peer_whose_address_does_not_resolve_is_named_with_the_option():
    assert refused_reach(lambda address, timeout: False) == (
        "cannot reach ghost: its address ghost.example (destinations) does not resolve on this host; give its address "
        "in destinations or add the name to DNS or /etc/hosts")


def test_a_look_up_without_an_answer_is_bounded_by_connect_timeout():
    assert refused_reach(lambda address, timeout: None) == (
        "cannot reach ghost: looking up its address ghost.example (destinations) gave no answer within 2 s "
        "(connect_timeout)")


def test_a_peer_that_refuses_the_connection():
    def refuse(pair, timeout):
        raise ConnectionRefusedError(111, "Connection refused")
    assert refused_reach(lambda address, timeout: True, refuse) == (
        "cannot reach ghost at ghost.example port 16514: [Errno 111] Connection refused")


# -- guests named in options: looked for here, then on each destination ---------------------------------------

class Host(object):
    """A host that knows its guests by name, or does not answer."""

    def __init__(self, guests=(), down=False):
        self.guests, self.down, self.asked = set(guests), down, []

    def has_domain(self, name):
        if self.down:
            raise HostmaintError("cannot connect to libvirt: connection refused")
        self.asked.append(name)
        return name in self.guests

    def close(self):
        pass


def named_engine(hosts, **given):
    warned = []
    uris = {"qemu:///system": "hv1", "qemu+tls://hv2/system": "hv2", "qemu+tls://hv3/system": "hv3"}
    module = types.SimpleNamespace(params=defaults(name="hv1", destinations=[{"name": "hv2"}, {"name": "hv3"}],
                                                   **given), warn=warned.append)
    subject = engine.EngineModule(module=module, adapter_factory=lambda uri: hosts[uris[uri]],
                                  reach=lambda host, address, port, timeout, resolver: None)
    return subject, warned


def local_guests(*names):
    return [types.SimpleNamespace(name=name) for name in names]


def test_guests_named_in_options_that_run_here_ask_no_host():
    hosts = dict(hv1=Host(), hv2=Host(), hv3=Host())
    subject, warned = named_engine(hosts, policies={"web1": "shutdown"}, probes={"web2": "tcp://10.0.0.2:22"})
    subject.check_named_guests(local_guests("web1", "web2"))
    assert [h.asked for h in hosts.values()] == [[], [], []] and warned == []


def test_a_guest_of_another_host_may_be_named_by_a_cluster_wide_variable():
    hosts = dict(hv1=Host(["web1"]), hv2=Host(), hv3=Host(["db1"]))
    subject, warned = named_engine(hosts, policies={"web1": "shutdown", "db1": "skip"})
    subject.check_named_guests(local_guests("web1"))
    assert hosts["hv1"].asked == ["db1"] and hosts["hv2"].asked == ["db1"] and hosts["hv3"].asked == ["db1"]
    assert warned == []


def test_restore_tells_which_guests_it_saw_elsewhere():
    hosts = dict(hv1=Host(), hv2=Host(), hv3=Host())
    subject, _warned = named_engine(hosts, policies={"db1": "skip"})
    subject.check_named_guests(local_guests("web1"), known_elsewhere=["db1"])
    assert [h.asked for h in hosts.values()] == [[], [], []]


def test_a_guest_no_host_has_fails_naming_the_option_and_every_host_looked_on():
    hosts = dict(hv1=Host(["web1"]), hv2=Host(), hv3=Host())
    subject, _warned = named_engine(hosts, policies={"ghost": "shutdown"}, probes={"web1": "tcp://10.0.0.1:22",
                                                                                   "phantom": "tcp://10.0.0.9:22"})
    with pytest.raises(HostmaintError) as error:
        subject.check_named_guests(local_guests("web1"))
    assert error.value.message == ("policies names guest ghost, which is defined on none of hv1, hv2, hv3: name guests "
                                   "of these hosts, or remove ghost from policies")
    assert error.value.details == dict(option="policies", guests=["ghost"])


def test_a_guest_only_a_silent_host_might_have_is_a_warning():
    hosts = dict(hv1=Host(), hv2=Host(), hv3=Host(down=True))
    subject, warned = named_engine(hosts, probes={"ghost": "tcp://10.0.0.9:22"})
    subject.check_named_guests(local_guests("web1"))
    assert warned == ["probes names guest ghost, which is defined on none of hv1, hv2, and hv3 did not answer: check "
                      "that ghost is there and not a typo"]


def test_no_guest_named_asks_nothing():
    hosts = dict(hv1=Host(down=True), hv2=Host(down=True), hv3=Host(down=True))
    subject, warned = named_engine(hosts)
    subject.check_named_guests([])
    assert warned == []


def test_the_canary_guest_of_a_restore_plan():
    from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Move, Plan

    plan = Plan(kind="restore", home="hv1", moves=[Move(guest="web1", action="migrate", source="hv2", destination="hv1")])
    subject, _warned = named_engine({}, canary_guest="web1")
    subject.check_canary_guest(plan)
    subject, _warned = named_engine({}, canary_guest="ghost")
    with pytest.raises(HostmaintError) as error:
        subject.check_canary_guest(plan)
    assert error.value.message == ("canary_guest ghost is not among the guests that migrate home to hv1 (web1): name "
                                   "one of them, or leave canary_guest out")
    assert error.value.details == dict(option="canary_guest", guest="ghost")


def test_a_peer_is_reached_through_the_injected_reach_before_its_connection_and_the_defaults_are_the_real_ones():
    from ansible_collections.hostmaint.libvirt.plugins.module_utils import base, runs

    reached = []
    module = types.SimpleNamespace(params=defaults(name="hv1", destinations=[{"name": "hv2", "address": "10.0.0.2"}],
                                                   connect_timeout=3))
    subject = engine.EngineModule(module=module, adapter_factory=lambda uri: uri,
                                  reach=lambda *args: reached.append(args[:4]))
    assert subject.peer("hv2") == "qemu+tls://10.0.0.2/system" and reached == [("hv2", "10.0.0.2", 16514, 3)]
    assert subject.connection("hv1") == "qemu:///system" and reached == [("hv2", "10.0.0.2", 16514, 3)]
    real = engine.EngineModule(module=module)
    assert (real._factory, real._reach, real._resolver) == (base.open_adapter, engine.reach, engine.resolves)
    assert (real._install_stop_watch, real._keep_log) == (runs.StopWatch.install, runs.keep_log)
