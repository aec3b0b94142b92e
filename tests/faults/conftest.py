# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the fault suite (make test-faults): the lab of the integration tests, a clean lab for every
case, the faults themselves, and the record of every case (name, bound, measured time, verdict) that
tests/faults/table.py turns into docs/FAULTS.md."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from labkit import ROOT, kit

RESULTS = os.path.join(ROOT, ".cache", "faults", "results.jsonl")
start_ad_hoc, result_of = kit.start_ad_hoc, kit.result_of  # shared with the integration tests
lab = kit.lab  # the session's lab: three hosts set up by playbooks/setup.yml (pytest fixture)


def pytest_configure(config):
    config.addinivalue_line("markers", "case(kind, name, bound_s): a fault or bad-input case and its time bound")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    if not os.environ.get("HOSTMAINT_FAULTS_APPEND"):
        open(RESULTS, "w").close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("case")
    if marker is None or report.when != "call":
        return
    kind, name, bound = marker.args
    measured = getattr(item, "case_seconds", None)
    with open(RESULTS, "a") as handle:
        handle.write(json.dumps(dict(
            kind=kind, name=name, bound_s=bound, seconds=round(measured if measured is not None else report.duration, 1),
            passed=report.passed, test=item.nodeid.split("::")[-1], notes=getattr(item, "case_notes", []))) + "\n")


@pytest.fixture()
def case(request):
    """Times the case (only what it does to the lab, not its clean-up) and keeps its notes for the table;
    asserts the bound of its marker."""
    marker = request.node.get_closest_marker("case")
    bound = marker.args[2] if marker else None

    class Case(object):
        notes = []

        def note(self, text):
            self.notes.append(text)
            print(text)

    handle = Case()
    handle.notes = []
    request.node.case_notes = handle.notes
    started = time.time()
    yield handle
    request.node.case_seconds = time.time() - started
    if bound is not None:
        assert request.node.case_seconds <= bound, "the case took %.0f s, over its bound of %s s" % (
            request.node.case_seconds, bound)


@pytest.fixture(scope="session")
def cleaned_once(lab):
    """The lab as the session found it, emptied once before the first case."""
    restore_lab(lab)
    return lab


@pytest.fixture()
def clean(cleaned_once):
    """Every case starts on a lab with no guest, no mark and no hold, every libvirtd running and every link up
    (each case leaves it so, whatever happened in it)."""
    yield cleaned_once
    restore_lab(cleaned_once)


# Run inside each lab host: every secret of the collection, guest and leftover local disk removed.
EMPTY_HOST = r"""
for s in $(virsh secret-list | awk '/hostmaint:/ {print $1}'); do virsh -q secret-undefine "$s"; done
virsh -q list --all --name | while IFS= read -r d; do
    [ -n "$d" ] || continue
    virsh -q destroy "$d" 2>/dev/null
    virsh -q undefine "$d" --nvram --remove-all-storage 2>/dev/null || virsh -q undefine "$d" 2>/dev/null
done
virsh -q pool-refresh default >/dev/null 2>&1
for v in $(virsh -q vol-list default 2>/dev/null | awk '$1 ~ /[.]qcow2$/ {print $1}'); do
    virsh -q vol-delete "$v" --pool default >/dev/null
done
true
"""


def restore_lab(lab):
    for host in lab.hosts():
        links(host, "up")
        if not libvirtd_alive(host):
            libvirtd(host, "start")
        kit.lab_cli("exec", host, "sh", "-c", EMPTY_HOST, check=False, timeout=120)


# -- faults ---------------------------------------------------------------------------------------
def libvirtd(host, action):
    kit.lab_cli("exec", host, "sh", "-c", {
        "kill": "kill -9 $(cat /run/libvirt/libvirtd.pid)",
        "start": "rm -f /run/libvirt/libvirtd.pid; /etc/init.d/libvirtd start",
        "restart": "pid=$(cat /run/libvirt/libvirtd.pid); kill -9 $pid; while kill -0 $pid 2>/dev/null; do sleep 0.1; "
                   "done; rm -f /run/libvirt/libvirtd.pid; /etc/init.d/libvirtd start",
    }[action])


def libvirtd_alive(host):
    return kit.lab_cli("exec", host, "virsh", "-c", "qemu:///system", "version", check=False, timeout=30).returncode == 0


def links(host, state, which=("mig", "sw")):
    """Take host's links in the lab's switches down or up: ``mig`` (the migration network) and ``sw`` (the
    management network, where libvirt's own connections and the guests' traffic go)."""
    lab_prefix = os.environ.get("HOSTMAINT_LAB_PREFIX", "")  # tests/lab/lab's namespaces carry it
    for prefix, ns in (("mig", lab_prefix + "hvmig"), ("sw", lab_prefix + "hvlab")):
        if prefix in which:
            subprocess.run(["ip", "-n", ns, "link", "set", "%s-%s" % (prefix, host), state], check=False)


def qemu_pid(host, guest):
    """The pid of guest's QEMU on host (read from that host's own /run), or None."""
    proc = kit.lab_cli("exec", host, "cat", "/run/libvirt/qemu/%s.pid" % guest, check=False)
    return int(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def wait_for(what, predicate, within=120.0, every=0.1):
    deadline = time.time() + within
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("%s did not happen within %g s" % (what, within))


def incoming(lab, host):
    """Guests on host that are the destination side of a migration under way (paused for it, transient)."""
    return lab.names(host, "--transient", check=False)


def outgoing_job(lab, host, guest):
    proc = lab.virsh(host, "domjobinfo", guest, check=False)
    return proc.returncode == 0 and "Unbounded" in proc.stdout


def start_playbook(playbook, *args):
    """ansible-playbook in the background, in its own process group (so that it can be killed as a whole)."""
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), playbook] + list(args)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build")))
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, start_new_session=True)


def kill_group(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def finish_playbook(proc, timeout=400):
    """(return code, output) of a playbook started with start_playbook."""
    out = proc.communicate(timeout=timeout)[0]
    return proc.returncode, out
