# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input, tried as an operator would on the lab: every case exits non-zero with one sentence naming the
object and the option, never a traceback, within its bound, and changes nothing on any host (every host's
guests, their definitions, the maintenance marks and holds are compared before and after)."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from labkit import ROOT, kit

BOUND_S = 30

# What each host's libvirtd holds, read with libvirt's own bindings: guests (state, definition) and secrets.
STATE_SCRIPT = r"""
import hashlib, json, libvirt
conn = libvirt.open("qemu:///system")
guests = {}
for dom in conn.listAllDomains(0):
    xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) if dom.isPersistent() else ""
    guests[dom.name()] = [dom.state()[0], dom.isPersistent(), hashlib.sha256(xml.encode()).hexdigest()]
secrets = sorted(s.usageID() or "" for s in conn.listAllSecrets(0))
print(json.dumps(dict(guests=guests, secrets=secrets), sort_keys=True))
"""


def lab_state(lab):
    return dict((host, kit.lab_cli("exec", host, "python3", "-c", STATE_SCRIPT).stdout) for host in sorted(lab.hosts()))


# (id, host, module, args, the parts the one sentence must hold)
MODULE_CASES = [
    ("destination-is-source", "hv1", "live_migrate", {"guest": "bi1", "destination": "hv1"},
     ["destination hv1 is the source host hv1"]),
    ("unknown-destination", "hv1", "live_migrate", {"guest": "bi1", "destination": "hv9"},
     ["destination hv9 is not among destinations"]),
    ("only-destination-is-source", "hv1", "live_migrate",
     {"guest": "bi1", "destination": "hv2", "destinations": [{"name": "hv1"}]},
     ["the only destination listed in destinations is hv1, the source host itself"]),
    ("evacuate-only-destination-is-source", "hv1", "evacuate", {"destinations": [{"name": "hv1"}]},
     ["the only destination listed in destinations is hv1"]),
    ("bogus-uri-template-scheme", "hv1", "live_migrate",
     {"guest": "bi1", "destination": "hv2", "uri_template": "qemu+bogus://{host}/system"},
     ["uri_template", "qemu+bogus", "scheme"]),
    ("bogus-uri-scheme", "hv1", "evacuate", {"uri": "foo://x"}, ["uri 'foo://x'", "scheme foo"]),
    ("guest-info-bogus-uri", "hv1", "guest_info", {"uri": "foo://x"}, ["uri 'foo://x'", "scheme foo"]),
    ("hypervisor-info-bogus-uri", "hv1", "hypervisor_info", {"uri": "qemu+bogus:///system"}, ["qemu+bogus"]),
    ("uri-template-without-host", "hv1", "evacuate", {"uri_template": "qemu+tls://nowhere/system"},
     ["uri_template", "must contain {host}"]),
    ("uri-template-unix", "hv1", "evacuate", {"uri_template": "qemu+unix://{host}/system"},
     ["uri_template", "qemu+unix"]),
    ("uri-path-typo", "hv1", "migration_preflight", {"uri": "qemu:///sytem"}, ["uri 'qemu:///sytem'", "/sytem"]),
    ("max-inbound-absurd", "hv1", "evacuate", {"max_inbound": 100000}, ["max_inbound must be 64 or less"]),
    ("max-inbound-zero", "hv1", "evacuate", {"max_inbound": 0}, ["max_inbound must be 1 or more, got 0"]),
    ("max-outbound-negative", "hv1", "evacuate", {"max_outbound": -1}, ["max_outbound must be 1 or more, got -1"]),
    ("timeout-per-gib-absurd", "hv1", "evacuate", {"timeout_per_gib": 1000000000}, ["timeout_per_gib must be 3600"]),
    ("min-timeout-zero", "hv1", "restore", {"min_timeout": 0}, ["min_timeout must be 1 or more, got 0"]),
    ("connect-timeout-zero", "hv1", "evacuate", {"connect_timeout": 0}, ["connect_timeout must be 1 or more"]),
    ("connect-timeout-absurd", "hv1", "evacuate", {"connect_timeout": 3600}, ["connect_timeout must be 300 or less"]),
    ("settle-absurd", "hv1", "live_migrate", {"guest": "bi1", "destination": "hv2", "settle_s": 1000000},
     ["settle_s must be 600 or less"]),
    ("pause-target-absurd", "hv1", "live_migrate", {"guest": "bi1", "destination": "hv2", "pause_target_ms": 1000000},
     ["pause_target_ms must be 10000 or less"]),
    ("bandwidth-negative", "hv1", "evacuate", {"bandwidth_mib": -1}, ["bandwidth_mib must be 0 or more, got -1"]),
    ("shutdown-timeout-zero", "hv1", "evacuate", {"shutdown_timeout": 0}, ["shutdown_timeout must be 1 or more"]),
    ("reserve-negative", "hv1", "restore", {"reserve_mib": -1}, ["reserve_mib must be 0 or more, got -1"]),
    ("downtime-steps-empty", "hv1", "evacuate", {"downtime_steps_ms": []}, ["downtime_steps_ms is empty"]),
    ("downtime-steps-negative", "hv1", "evacuate", {"downtime_steps_ms": [-5, 100]}, ["downtime_steps_ms", "-5"]),
    ("downtime-steps-falling", "hv1", "evacuate", {"downtime_steps_ms": [100, 50]}, ["downtime_steps_ms must rise"]),
    ("unknown-policy", "hv1", "evacuate", {"policies": {"bi1": "later"}}, ["policies", "bi1", "'later'"]),
    ("malformed-probe", "hv1", "evacuate", {"probes": {"bi1": "bi1:80"}}, ["probe 'bi1:80' of guest bi1 in probes"]),
    ("probes-without-settle", "hv1", "evacuate", {"probes": {"bi1": "tcp://10.0.0.5:22"}, "settle_s": 0},
     ["probes", "settle_s is 0"]),
    ("canary-conflict", "hv1", "restore", {"canary": False, "canary_guest": "bi1"},
     ["canary_guest bi1", "canary is false"]),
    ("duplicate-destination", "hv1", "evacuate", {"destinations": [{"name": "hv2"}, {"name": "hv2"}]},
     ["destinations lists hv2 more than once"]),
    ("destination-with-scheme", "hv1", "evacuate", {"destinations": [{"name": "qemu+tls://hv2/system"}]},
     ["destinations lists 'qemu+tls://hv2/system'", "not a host name"]),
    ("destination-not-a-dict", "hv1", "evacuate", {"destinations": ["hv2"]}, ["destinations lists 'hv2'"]),
    ("destination-without-name", "hv1", "evacuate", {"destinations": [{"address": "192.0.2.12"}]},
     ["without a host name"]),
    ("empty-guest", "hv1", "live_migrate", {"guest": "", "destination": "hv2"}, ["guest is empty"]),
    ("wrong-type", "hv1", "evacuate", {"max_inbound": "lots"}, ["max_inbound", "int"]),
    ("missing-required", "hv1", "live_migrate", {"guest": "bi1"}, ["missing required arguments: destination"]),
    ("unknown-guest", "hv1", "live_migrate", {"guest": "ghost", "destination": "hv2"},
     ["guest ghost is defined neither on hv1 nor on the destination hv2"]),
    ("policy-for-unknown-guest", "hv1", "evacuate", {"policies": {"ghost": "shutdown"}},
     ["policies names guest ghost"]),
    ("probe-for-unknown-guest", "hv1", "restore", {"probes": {"ghost": "tcp://192.0.2.1:22"}},
     ["probes names guest ghost"]),
    ("preflight-unknown-guest", "hv1", "migration_preflight", {"guests": ["ghost"]}, ["guests names ghost"]),
    ("canary-unknown-guest", "hv1", "restore", {"canary_guest": "ghost"}, ["canary_guest ghost"]),
    ("unresolvable-destination", "hv1", "live_migrate",
     {"guest": "bi1", "destination": "nohost.invalid", "destinations": [{"name": "hv2"}, {"name": "nohost.invalid"}]},
     ["nohost.invalid", "does not resolve"]),
    ("silent-destination", "hv1", "live_migrate",
     {"guest": "bi1", "destination": "ghost", "destinations": [{"name": "ghost", "address": "192.0.2.250"}],
      "connect_timeout": 2}, ["cannot live-migrate bi1 to ghost", "192.0.2.250"]),
    ("stop-run-wait-absurd", "hv1", "stop_run", {"wait_s": 0}, ["wait_s must be from 1 to 3600"]),
]


@pytest.fixture(scope="module")
def bad_input_lab(lab):
    for guest in lab.status()["guests"]:
        lab.remove_guest(guest["name"])
    lab.clear_maintenance()
    lab.add_guest("bi1", "hv1")
    yield lab
    lab.remove_guest("bi1")


@pytest.fixture(scope="module")
def module_results(bad_input_lab):
    """Every module case as one task of one playbook run (each task fails on its own, ignore_errors lets the
    next one run): {case id: (task result, seconds the task took)}, and the lab's state before and after."""
    lab = bad_input_lab
    tasks = [{"name": "case %s" % name, "hostmaint.libvirt.%s" % module: args, "ignore_errors": True}
             for name, host, module, args, _parts in MODULE_CASES]
    path = os.path.join(ROOT, ".cache", "faults", "bad-input.yml")
    with open(path, "w") as handle:
        json.dump([{"name": "Bad input", "hosts": "hv1", "gather_facts": False, "tasks": tasks}], handle, indent=1)
    before = lab_state(lab)
    env = dict(os.environ, ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="json",
               ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build")))
    proc = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, cwd=ROOT,
                          timeout=BOUND_S * len(tasks), check=False)
    after = lab_state(lab)
    assert "Traceback (most recent call last)" not in proc.stdout + proc.stderr
    found = {}
    for task in json.loads(proc.stdout)["plays"][0]["tasks"]:
        name = task["task"]["name"][len("case "):]
        duration = task["task"]["duration"]
        took = (_stamp(duration["end"]) - _stamp(duration["start"]))
        found[name] = (task["hosts"]["hv1"], took)
    return found, before, after


def _stamp(text):
    return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + float("0." + text[20:26].rstrip("Z") or 0)


def one_sentence(message):
    return "\n" not in message.strip() and "Traceback" not in message and message.count(". ") == 0


@pytest.mark.parametrize("name,host,module,args,parts", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_bad_module_input(module_results, request, name, host, module, args, parts):
    results, before, after = module_results
    request.node.add_marker(pytest.mark.case("bad input", "%s: %s %s" % (name, module, json.dumps(args)), BOUND_S))
    result, took = results[name]
    request.node.case_seconds = took
    message = result.get("msg", "")
    request.node.case_notes = [message]
    print(message)
    assert result.get("failed") and one_sentence(message), message
    for part in parts:
        assert part in message, "%r not in %r" % (part, message)
    assert took <= BOUND_S, "%.0f s" % took
    assert after == before, "a host changed during the bad-input cases"


# (id, playbook arguments, the parts the output must hold)
PLAYBOOK_CASES = [
    ("limit-matches-no-host", ["playbooks/evacuate.yml", "-l", "nohost"], ["nohost"]),
    ("several-hosts", ["playbooks/evacuate.yml", "-l", "hv1,hv2"], ["hv1", "hv2", "hostmaint_allow_many"]),
    ("no-limit", ["playbooks/maintain.yml"], ["-l"]),
    ("bad-role-variable", ["playbooks/evacuate.yml", "-l", "hv1", "-e", "evacuate_max_outbound=lots"],
     ["evacuate_max_outbound"]),
    ("bad-inventory-variable", ["playbooks/evacuate.yml", "-l", "hv1", "-e", "hostmaint_libvirt_max_inbound=0"],
     ["max_inbound must be 1 or more, got 0"]),
    ("unreachable-host", ["playbooks/evacuate.yml", "-l", "hv1", "-e", "ansible_host=192.0.2.77",
                          "-e", "ansible_ssh_common_args='-o ConnectTimeout=3'"], ["hv1", "UNREACHABLE"]),
    ("role-canary-unknown-guest", ["playbooks/restore.yml", "-l", "hv1", "-e", "restore_canary_guest=ghost"],
     ["ghost"]),
]


@pytest.mark.parametrize("name,args,parts", PLAYBOOK_CASES, ids=[c[0] for c in PLAYBOOK_CASES])
def test_bad_playbook_input(bad_input_lab, request, name, args, parts):
    lab = bad_input_lab
    request.node.add_marker(pytest.mark.case("bad input", "%s: ansible-playbook %s" % (name, " ".join(args)), 60))
    before = lab_state(lab)
    started = time.time()
    proc = kit.ansible_playbook(*args, timeout=240)
    took = time.time() - started
    request.node.case_seconds = took
    out = proc.stdout
    lines = [line for line in out.splitlines() if "ERROR" in line or "msg:" in line or "fatal:" in line]
    request.node.case_notes = lines[:2]
    print("\n".join(lines))
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback (most recent call last)" not in out
    for part in parts:
        assert part in out, "%r not in the output:\n%s" % (part, out[-3000:])
    assert took <= 60, "%.0f s" % took
    assert lab_state(lab) == before, "a host changed"
