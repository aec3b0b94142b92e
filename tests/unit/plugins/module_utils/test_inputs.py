# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input judged before anything is read or changed: the exact sentence a user reads, for each kind of mistake.

Pure: the engine modules' options as AnsibleModule hands them over (every default, then the case's own), no libvirt.
"""

from __future__ import annotations

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import inputs, options
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    Blocked,
    Move,
    Plan,
    Problem,
    Skipped,
)


def params(module="evacuate", **given):
    found = dict((key, spec.get("default")) for key, spec in options.module_spec(module).items())
    found.update(name="hv1", destinations=[{"name": "hv2"}, {"name": "hv3"}])
    found.update(given)
    return found


def refused(module="evacuate", **given):
    with pytest.raises(HostmaintError) as error:
        inputs.check_engine_options(params(module, **given))
    return error.value.message


def test_the_defaults_pass():
    for module in options.ENGINE_MODULE_SPECS:
        inputs.check_engine_options(params(module))


@pytest.mark.parametrize("given, message", [
    (dict(uri="foo://x"), "uri 'foo://x' has the scheme foo, which libvirt does not accept for QEMU: use one of qemu, "
                          "qemu+tls, qemu+ssh, qemu+tcp, qemu+unix, qemu+libssh, qemu+libssh2, qemu+ext"),
    (dict(uri="qemu:///sytem"), "uri 'qemu:///sytem' has the path '/sytem', which libvirt's QEMU driver does not know: "
                                "end the URI with /system (or /session), as in qemu:///system"),
    (dict(uri="qemu+ssh://root@hv1"), "uri 'qemu+ssh://root@hv1' has the path '', which libvirt's QEMU driver does not "
                                      "know: end the URI with /system (or /session), as in qemu:///system"),
    (dict(uri="/var/run/libvirt/libvirt-sock"), "uri '/var/run/libvirt/libvirt-sock' is not a libvirt URI: give one "
                                                "such as qemu:///system"),
    (dict(uri=""), "uri is empty: give a libvirt URI such as qemu:///system"),
    (dict(uri_template="qemu+bogus://{host}/system"),
     "uri_template 'qemu+bogus://{host}/system' has the scheme qemu+bogus, which libvirt does not accept for QEMU: use "
     "one of qemu, qemu+tls, qemu+ssh, qemu+tcp, qemu+libssh, qemu+libssh2, qemu+ext"),
    (dict(uri_template="http://{host}:16514/"),
     "uri_template 'http://{host}:16514/' has the scheme http, which libvirt does not accept for QEMU: use one of qemu, "
     "qemu+tls, qemu+ssh, qemu+tcp, qemu+libssh, qemu+libssh2, qemu+ext"),
    (dict(uri_template="qemu+tls://nowhere/system"),
     "uri_template 'qemu+tls://nowhere/system' must contain {host}, where each peer's address goes, as in "
     "qemu+tls://{host}/system"),
    (dict(uri_template="qemu+ssh://hv/system?keyfile={host}"),
     "uri_template 'qemu+ssh://hv/system?keyfile={host}' must have {host} in its host part, as in "
     "qemu+tls://{host}/system"),
    (dict(uri_template="qemu+unix://{host}/system"),
     "uri_template 'qemu+unix://{host}/system' uses qemu+unix, which reaches only this host's own libvirt, never a "
     "peer: use qemu+tls, qemu+ssh or qemu+tcp"),
    (dict(uri_template="qemu+tls://{host}/sys"),
     "uri_template 'qemu+tls://{host}/sys' has the path '/sys', which libvirt's QEMU driver does not know: end the URI "
     "with /system (or /session), as in qemu+tls://{host}/system"),
    (dict(uri_template="{host}"), "uri_template '{host}' is not a libvirt URI: give one such as qemu+tls://{host}/system"),
])
def test_uris(given, message):
    assert refused(**given) == message


@pytest.mark.parametrize("uri", ["qemu:///system", "qemu:///session", "qemu+ssh://root@hv1/system?no_tty=1",
                                 "qemu+tls://hv1:16515/system/", "qemu+unix:///system?socket=/run/x.sock",
                                 "qemu+libssh2://hv1/system", "qemu+ext:///system?command=/bin/true"])
def test_uris_libvirt_accepts(uri):
    inputs.check_uri(uri)


@pytest.mark.parametrize("template", ["qemu+tls://{host}/system", "qemu+ssh://root@{host}/system",
                                      "qemu+tcp://{host}:16509/system", "qemu://{host}/system",
                                      "qemu+libssh://{host}/system?known_hosts_verify=ignore"])
def test_uri_templates_that_reach_a_peer(template):
    inputs.check_uri(template, "uri_template", template=True)


@pytest.mark.parametrize("given, message", [
    (dict(max_inbound=0), "max_inbound must be 1 or more, got 0"),
    (dict(max_inbound=100000), "max_inbound must be 64 or less (libvirt's default migration port range has 64 ports, "
                               "one per incoming migration), got 100000"),
    (dict(max_outbound=-2), "max_outbound must be 1 or more, got -2"),
    (dict(max_outbound=65), "max_outbound must be 64 or less (concurrent migrations out of this host, as many as one "
                            "destination can take in), got 65"),
    (dict(timeout_per_gib=0), "timeout_per_gib must be 1 or more, got 0"),
    (dict(timeout_per_gib=10 ** 9), "timeout_per_gib must be 3600 or less (seconds per GiB of guest memory), got "
                                    "1000000000"),
    (dict(min_timeout=-1), "min_timeout must be 1 or more, got -1"),
    (dict(min_timeout=86401), "min_timeout must be 86400 or less (seconds), got 86401"),
    (dict(connect_timeout=0), "connect_timeout must be 1 or more, got 0"),
    (dict(connect_timeout=301), "connect_timeout must be 300 or less (seconds), got 301"),
    (dict(shutdown_timeout=0), "shutdown_timeout must be 1 or more, got 0"),
    (dict(shutdown_timeout=86400), "shutdown_timeout must be 3600 or less (seconds), got 86400"),
    (dict(settle_s=-5), "settle_s must be 0 or more, got -5"),
    (dict(settle_s=10 ** 6), "settle_s must be 600 or less (seconds), got 1000000"),
    (dict(pause_target_ms=-1), "pause_target_ms must be 0 or more, got -1"),
    (dict(pause_target_ms=10 ** 7), "pause_target_ms must be 10000 or less (milliseconds), got 10000000"),
    (dict(bandwidth_mib=-1), "bandwidth_mib must be 0 or more, got -1"),
    (dict(bandwidth_mib=10 ** 6), "bandwidth_mib must be 100000 or less (MiB/s per migration), got 1000000"),
    (dict(reserve_mib=-1), "reserve_mib must be 0 or more, got -1"),
    (dict(reserve_mib=2 ** 21), "reserve_mib must be 1048576 or less (MiB), got 2097152"),
])
def test_numbers_out_of_bounds(given, message):
    assert refused(**given) == message


@pytest.mark.parametrize("option", sorted(inputs.BOUNDS))
def test_each_bound_itself_is_accepted(option):
    least, most, _unit = inputs.BOUNDS[option]
    inputs.check_bounds({option: least})
    inputs.check_bounds({option: most})
    assert options.ENGINE_SPEC[option]["type"] == "int"
    assert least <= options.ENGINE_SPEC[option]["default"] <= most


@pytest.mark.parametrize("steps, message", [
    ([], "downtime_steps_ms is empty: give at least one downtime limit in milliseconds, such as [50, 100, 200, 300, 500]"),
    ([-5, 100], "downtime_steps_ms must hold milliseconds of 1 or more, got -5 in [-5, 100]"),
    ([0], "downtime_steps_ms must hold milliseconds of 1 or more, got 0 in [0]"),
    ([50, 100000], "downtime_steps_ms must hold milliseconds of 10000 or less, got 100000 in [50, 100000]"),
    ([100, 50], "downtime_steps_ms must rise, each step above the one before, got [100, 50]"),
    ([50, 50, 100], "downtime_steps_ms must rise, each step above the one before, got [50, 50, 100]"),
])
def test_downtime_steps(steps, message):
    assert refused(downtime_steps_ms=steps) == message


@pytest.mark.parametrize("given, message", [
    (dict(destinations=[{"name": "hv1"}]),
     "the only destination listed in destinations is hv1, the source host itself: list the other hosts of its cluster"),
    (dict(destinations=[{"name": "hv2"}, {"name": "hv2", "address": "10.0.0.12"}]),
     "destinations lists hv2 more than once: give each host once"),
    (dict(destinations=[{"name": "qemu+tls://hv2/system"}]),
     "destinations lists 'qemu+tls://hv2/system', which is not a host name: give the host's name, and its address in "
     "address, without a scheme, path or spaces"),
    (dict(destinations=[{"name": " "}]), "destinations lists a host with an empty name: give each host's name"),
    (dict(destinations=[{"name": "hv2", "address": "hv2/system"}]),
     "address 'hv2/system' of destination hv2 in destinations is not a host name or address: give it alone, without a "
     "scheme, path or spaces"),
    (dict(destinations=[{"name": "hv2", "address": "2001:db8::12"}]),
     "address '2001:db8::12' of destination hv2 in destinations is an IPv6 address: write it in brackets, "
     "[2001:db8::12], so it fits in a URI"),
    (dict(name="hv 1"), "name 'hv 1' is not a host name: give it alone, without a scheme, path or spaces"),
    (dict(address="qemu+tls://10.0.0.11"),
     "address 'qemu+tls://10.0.0.11' is not a host name or address: give it alone, without a scheme, path or spaces"),
])
def test_identity(given, message):
    assert refused(**given) == message


def test_identity_that_is_fine():
    inputs.check_identity(params(destinations=[{"name": "hv1"}, {"name": "hv2", "address": "[2001:db8::12]"},
                                               {"name": "hv3", "address": "root@hv3"}]))
    # without a name the module asks libvirt later: nothing to compare yet
    inputs.check_identity(params(name=None, destinations=[{"name": "hv1"}]))
    inputs.check_identity(params(destinations=[]))


@pytest.mark.parametrize("given, message", [
    (dict(policies={"bl-plain": "later"}),
     "policies gives guest bl-plain the policy 'later', expected one of migrate, shutdown, skip, fail"),
    (dict(policies={"web1": None}), "policies gives guest web1 the policy None, expected one of migrate, shutdown, skip, "
                                    "fail"),
    (dict(probes={"web1": 80}), "probe 80 of guest web1 in probes must start with tcp:// or http://"),
    (dict(probes={"web1": "web1:80"}), "probe 'web1:80' of guest web1 in probes must start with tcp:// or http://"),
    (dict(probes={"web1": "tcp://web1"}), "probe 'tcp://web1' of guest web1 in probes needs a port (tcp://HOST:PORT)"),
])
def test_guest_options(given, message):
    assert refused(**given) == message


@pytest.mark.parametrize("module, given, message", [
    ("restore", dict(canary=False, canary_guest="web1"),
     "canary_guest web1 asks for a canary but canary is false: set canary to true or leave canary_guest out"),
    ("evacuate", dict(settle_s=0, probes={"web2": "tcp://10.0.0.2:22", "web1": "http://10.0.0.1/"}),
     "probes gives web1, web2 a probe but settle_s is 0, which turns off the settle check the probes run in: set "
     "settle_s to 1 or more, or leave probes out"),
])
def test_conflicts(module, given, message):
    assert refused(module, **given) == message


def test_options_that_only_look_alike_do_not_conflict():
    inputs.check_engine_options(params("restore", canary=True, canary_guest="web1"))
    inputs.check_engine_options(params("restore", canary=False))
    inputs.check_engine_options(params(settle_s=0))
    inputs.check_engine_options(params(postcopy=True, allow_storage_copy=True, auto_converge=False))


def test_named_guests():
    assert inputs.named_guests(params()) == {}
    assert inputs.named_guests(params(policies={"b": "skip", "a": "fail"}, probes={"c": "tcp://c:1"})) == {
        "policies": ["a", "b"], "probes": ["c"]}


def test_unknown_guests_messages():
    assert inputs.unknown_guests_message("policies", ["ghost"], ["hv1", "hv2", "hv3"]) == (
        "policies names guest ghost, which is defined on none of hv1, hv2, hv3: name guests of these hosts, or remove "
        "ghost from policies")
    assert inputs.unknown_guests_message("probes", ["a", "b"], ["hv1"]) == (
        "probes names guests a, b, which are defined on none of hv1: name guests of these hosts, or remove a, b from "
        "probes")
    assert inputs.unknown_guests_message("policies", ["ghost"], ["hv1", "hv2"], ["hv3"]) == (
        "policies names guest ghost, which is defined on none of hv1, hv2, and hv3 did not answer: check that ghost is "
        "there and not a typo")


def restore_plan():
    migrate = Move(guest="web1", action="migrate", source="hv2", destination="hv1")
    start = Move(guest="db1", action="start", source="hv1", destination="hv1")
    blocked = Blocked(guest="big1", policy="migrate", state="running", reasons=[
        Problem(code="memory", message="cannot bring big1 home to hv1: hv1 has 512 MiB free, big1 needs 4096 MiB",
                guest="big1", destination="hv1")])
    return Plan(kind="restore", home="hv1", moves=[migrate, start], not_home=[blocked],
                skipped=[Skipped(guest="app1", code="already_home", reason="app1 already runs on hv1")])


@pytest.mark.parametrize("named, message", [
    (None, None),
    ("web1", None),
    ("app1", None),
    ("ghost", "canary_guest ghost is not among the guests that migrate home to hv1 (web1): name one of them, or leave "
              "canary_guest out"),
    ("db1", "canary_guest db1 comes home to hv1 by start, not by live migration: name a guest that migrates home, or "
            "leave canary_guest out"),
    ("big1", "canary_guest big1 cannot come home to hv1 in this run (cannot bring big1 home to hv1: hv1 has 512 MiB "
             "free, big1 needs 4096 MiB): name another guest, or leave canary_guest out"),
])
def test_canary_guest(named, message):
    assert inputs.canary_problem(restore_plan(), named) == message


def test_canary_guest_when_nothing_migrates_home():
    assert inputs.canary_problem(Plan(kind="restore", home="hv1"), "web1") == (
        "canary_guest web1 is not among the guests that migrate home to hv1 (none in this run): name one of them, or "
        "leave canary_guest out")
