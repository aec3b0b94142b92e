# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for tests on the lab: real libvirtd, real QEMU, real SSH."""

from __future__ import annotations

import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_CMD = os.path.join(ROOT, "tests", "lab", "lab")
INVENTORY = os.path.join(ROOT, ".lab", "inventory.yml")
# what prepare_lab.py leaves for the session fixture: the lab brought up and set up ahead of the lab tests
PREPARED = os.path.join(ROOT, ".lab", "prepared.json")

# A guest with a PCI device passed through from the host: definable, never startable here, never migratable.
PASSTHROUGH = """<domain type='qemu'>
  <name>%s</name>
  <memory unit='MiB'>128</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x3b' slot='0x00' function='0x2'/></source>
    </hostdev>
  </devices>
</domain>
"""


def lab_cli(*args, check=True, timeout=300):
    proc = subprocess.run([LAB_CMD] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                          universal_newlines=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("lab %s failed: %s" % (" ".join(args), proc.stderr.strip()))
    return proc


class Lab(object):
    """The lab as a user sees it: its CLI, virsh on each host, the guests' HTTP answers."""

    def status(self):
        return json.loads(lab_cli("status", "--json").stdout)

    def hosts(self):
        return dict((h["name"], h["address"]) for h in self.status()["hosts"])

    def cli(self, *args, check=True, timeout=300):
        return lab_cli(*args, check=check, timeout=timeout)

    def libvirtd_pid(self, host):
        return int(lab_cli("exec", host, "cat", "/run/libvirt/libvirtd.pid").stdout.strip())

    def restart_libvirtd(self, host, within=60):
        """Restart host's libvirtd as an operator would (service libvirtd restart); returns once it answers."""
        lab_cli("exec", host, "/etc/init.d/libvirtd", "restart", timeout=within)
        deadline = time.time() + within
        while self.virsh(host, "version", check=False).returncode != 0:
            assert time.time() < deadline, "libvirtd on %s did not answer within %d s of its restart" % (host, within)
            time.sleep(0.2)

    def virsh(self, host, *args, check=True):
        return lab_cli("exec", host, "virsh", "-q", "-c", "qemu:///system", *args, check=check)

    def names(self, host, *flags, check=True):
        """The guests virsh lists on host (virsh list --name and flags), one name per line: a name may hold
        spaces."""
        listing = self.virsh(host, "list", "--name", *flags, check=check).stdout
        return [line.strip() for line in listing.splitlines() if line.strip()]

    def defined_on(self, guest):
        """Every host where virsh lists the guest (running or only defined)."""
        return sorted(h for h in self.hosts() if guest in self.names(h, "--all"))

    def running_on(self, guest):
        return sorted(h for h in self.hosts() if guest in self.names(h))

    def placement(self):
        """{guest: host} for running guests, from each host's libvirt."""
        return dict((g["name"], g["host"]) for g in self.status()["guests"] if g["state"] == "running")

    def kept_instance(self, prober):
        """Asserts that the guest answered, all the time it was probed, only as the instance it was when the
        probing started (same boot id), that its console printed no kernel fault and no lost write
        (LAB-GUEST-CORRUPTION, from the memory check of guests that dirty memory) on any host meanwhile, and
        that its /memcheck, where it has one, reports no more errors than when the probing started.
        A live migration never restarts or corrupts a guest: every such sign is a failure, whatever caused it
        (the lab runs QEMU 10 and libvirt 11, on which TCG migrations showed none in the rates of
        tests/bench/rates.py). A test that sets out to restart a guest asserts on the answers itself.
        Returns True.
        """
        printed = prober.printed()
        for host, text in sorted(printed.items()):
            fault = GUEST_FAULT.search(text)
            assert not fault, "%s: its console on %s shows %r while it was probed" % (
                prober.guest, host, text[fault.start():fault.start() + 300])
        others = prober.answers - {prober.expected}
        assert not others, "%s answered as another instance (%s, was %s): it was restarted" % (
            prober.guest, sorted(others), prober.expected)
        errors = memory_errors(prober.address)
        if prober.memory_errors is not None and errors is not None:
            assert errors <= prober.memory_errors, "%s's memory check found %d lost writes while it was probed" % (
                prober.guest, errors - prober.memory_errors)
        return True

    def assert_kept_answering(self, prober):
        """The guest answered as itself all along (kept_instance), its pings never stopped for more than
        ICMP_GAP_MAX_S (its real outage), and over HTTP at most 5 probes failed and no 3 s passed without an
        answer (a connection whose SYN fell into the pause waits for TCP's 1 s retransmission). Prints the
        prober's summary."""
        print(prober.summary())
        self.kept_instance(prober)
        gap = prober.icmp.get("longest_gap_s")
        assert gap is not None and gap <= ICMP_GAP_MAX_S, "%s stopped answering pings for longer than %.1f s: %s" % (
            prober.guest, ICMP_GAP_MAX_S, prober.summary())
        assert prober.failed <= 5 and prober.longest_gap < 3.0, prober.summary()
        return True

    def record(self, host, guest):
        """The migration record element on a guest, as virsh shows it (None when there is none)."""
        proc = self.virsh(host, "metadata", guest, "--uri", "urn:hostmaint:libvirt:origin:1", check=False)
        # libvirt 9.0 exits 1 for a missing element; libvirt 11 exits 0 and prints nothing
        return (proc.stdout.strip() or None) if proc.returncode == 0 else None

    def in_maintenance(self, host):
        return "hostmaint:maintenance" in self.virsh(host, "secret-list").stdout

    def clear_maintenance(self, *hosts):
        """Remove the maintenance mark by hand (test clean-up), as an operator would with virsh."""
        for host in hosts or tuple(self.hosts()):
            for line in self.virsh(host, "secret-list").stdout.splitlines():
                if "hostmaint:maintenance" in line:
                    self.virsh(host, "secret-undefine", line.split()[0])

    def add_guest(self, name, host="hv1", *extra):
        return json.loads(lab_cli("guest", "add", name, "--host", host, *extra).stdout)

    def remove_guest(self, name):
        lab_cli("guest", "rm", name, check=False)

    def ansible(self, pattern, module, args=None, check=False):
        """Run one module ad hoc against lab hosts; returns {host: result}."""
        cmd = [shutil.which("ansible") or os.path.join(ROOT, ".venv", "bin", "ansible"), "-i", INVENTORY, pattern, "-m", module]
        if check:
            cmd.append("--check")
        if args is not None:
            cmd += ["-a", json.dumps(args)]
        env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="hostmaint.libvirt.oneline", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build")))
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False,
                              timeout=600, env=env, cwd=ROOT)
        results = {}
        for line in proc.stdout.splitlines():
            if " => " in line and " | " in line:
                host, rest = line.split(" | ", 1)
                results[host] = json.loads(rest.split(" => ", 1)[1])
                if rest.startswith(("FAILED!", "UNREACHABLE!")):
                    results[host]["failed"] = True
        if not results:
            raise AssertionError("ansible printed no result: %s %s" % (proc.stdout, proc.stderr))
        return results


def start_ad_hoc(host, module, args):
    """The module ad hoc in the background (ANSIBLE oneline output), as an operator's terminal would run it."""
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible"), "-i", INVENTORY, host, "-m", module]
    if args:  # ansible takes "{}" for raw parameters, which the collection's modules refuse
        cmd += ["-a", json.dumps(args)]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="hostmaint.libvirt.oneline", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build")))
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
                            cwd=ROOT, start_new_session=True)


def result_of(proc, host, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    for line in out.splitlines():
        if line.startswith("%s | " % host) and " => " in line:
            result = json.loads(line.split(" => ", 1)[1])
            result["failed"] = "FAILED" in line.split(" => ")[0] or result.get("failed", False)
            return result
    raise AssertionError("no result for %s: %s %s" % (host, out, err))


GUEST_FAULT = re.compile(r"Kernel panic|Oops: |kernel BUG at|BUG: unable to handle|general protection fault|LAB-GUEST-CORRUPTION")


def consoles(guest):
    """{host: text}: the guest's serial console as each lab host kept it (QEMU appends across migrations)."""
    found = {}
    for path in glob.glob(os.path.join(ROOT, ".lab", "hosts", "*", "var-log-libvirt", "qemu", "%s-serial.log" % glob.escape(guest))):
        with open(path, errors="replace") as fh:
            found[path.split(os.sep)[-4]] = fh.read()
    return found


HTTP_ERRORS = (OSError, http.client.HTTPException)


def http_answer(address, timeout):
    """The guest's HTTP answer ("<name> <boot id>"); raises one of HTTP_ERRORS."""
    with urllib.request.urlopen("http://%s/" % address, timeout=timeout) as resp:
        return resp.read().decode().strip()


def answer_of(address, within=30.0):
    """The guest's HTTP answer, polled for at most `within` seconds; None without one."""
    deadline = time.time() + within
    while True:
        try:
            return http_answer(address, 1.0)
        except HTTP_ERRORS:
            if time.time() >= deadline:
                return None
            time.sleep(0.3)


def memory_errors(address):
    """The lost writes a guest that dirties memory has found in its own memory (tests/lab/guest/dirty.c), from
    its /memcheck; None when it has no such check or does not answer."""
    try:
        with urllib.request.urlopen("http://%s/memcheck" % address, timeout=2) as resp:
            match = re.search(r"errors=(\d+)", resp.read().decode())
    except HTTP_ERRORS:
        return None
    return int(match.group(1)) if match else None


# The bench's ICMP probe (tests/bench/bench_evacuate.py: IcmpProbe, iputils ping at 50 Hz, its output parsed by
# figures.icmp_gap): the guest's real outage, with no TCP retransmission in it. Measured on the lab with plain
# `virsh migrate`: QEMU's downtime 65-85 ms, the longest ICMP gap 125-160 ms, the 20 Hz HTTP probe's 1.2-1.3 s.
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
from bench_evacuate import PING, IcmpProbe  # noqa: E402  pylint: disable=wrong-import-position

# The longest ICMP gap a guest may show while it is moved (issue 15's target is 0.5 s on an idle machine; the
# suite runs beside other load, so twice that).
ICMP_GAP_MAX_S = 1.0


class Prober(threading.Thread):
    """Polls a guest's HTTP answer every 100 ms (0.5 s client timeout), and pings it at 50 Hz, while something
    happens to it.

    start() first takes the guest's answer as it is (expected) and where its console stands on every host.
    longest_gap is the longest time without an HTTP answer, including the time from the last answer to stop();
    failures keeps (seconds since start, error) of every failed probe, so a report says what went wrong when.
    icmp (after stop()) holds figures.icmp_gap of the pings: icmp["longest_gap_s"] is the guest's real outage.
    HTTP at 50 Hz to TCG guests kept the machine's cores busy (tests/bench: 20 Hz to 8 guests took 71-95 % of
    2 cores); the pings cost nothing measurable.
    """

    def __init__(self, guest, interval=0.1, timeout=0.5, limit_s=300):
        super(Prober, self).__init__(daemon=True)
        self.guest = guest["name"]
        self.address = guest["address"]
        self.interval, self.timeout, self.limit_s = interval, timeout, limit_s
        self.ok = self.failed = 0
        self.answers = set()
        self.failures = []
        self.longest_gap = 0.0
        self.started = self.last_ok = self.expected = None
        self.memory_errors = None
        self.console_at = {}
        self._ping = IcmpProbe(self.guest, self.address)
        self.icmp = dict(self._ping.figures)
        self._stop_event = threading.Event()

    def start(self):
        assert PING, "no ping on this machine (Debian: iputils-ping, in requirements-apt.txt): the judge needs it"
        self.console_at = dict((host, len(text)) for host, text in consoles(self.guest).items())
        self.expected = answer_of(self.address)
        self.memory_errors = memory_errors(self.address)
        assert self.expected, "%s does not answer at %s before the test acts on it" % (self.guest, self.address)
        self.answers.add(self.expected)
        self._ping.start()
        super(Prober, self).start()

    def run(self):
        self.started = self.last_ok = time.time()
        while not self._stop_event.is_set() and time.time() - self.started < self.limit_s:
            try:
                self.answers.add(http_answer(self.address, self.timeout))
                now = time.time()
                self.longest_gap = max(self.longest_gap, now - self.last_ok)
                self.last_ok = now
                self.ok += 1
            except HTTP_ERRORS as exc:
                self.failed += 1
                self.failures.append((round(time.time() - self.started, 2), "%s: %s" % (type(exc).__name__, exc)))
            time.sleep(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join(10)
        if self.last_ok is not None:
            self.longest_gap = max(self.longest_gap, time.time() - self.last_ok)
        self.icmp = dict(self._ping.stop())
        return self

    def printed(self):
        """{host: text} the guest's console printed on each host since start()."""
        now = consoles(self.guest)
        return dict((host, text[self.console_at.get(host, 0):] if len(text) >= self.console_at.get(host, 0) else text)
                    for host, text in now.items())

    def summary(self):
        """One line for a test's output: counts, the longest gap and the first failures with their times."""
        kinds = sorted(set(error for at, error in self.failures))
        icmp = self.icmp.get("longest_gap_s")
        return "%s: %d ok, %d failed, longest gap %.0f ms, longest ICMP gap %s (%s of %s pings lost), failures at %s (%s)" % (
            self.guest, self.ok, self.failed, self.longest_gap * 1000,
            "%.0f ms" % (icmp * 1000) if icmp is not None else "unknown", self.icmp.get("lost"),
            self.icmp.get("transmitted"), [at for at, error in self.failures[:20]], "; ".join(kinds))


# The machine's own files that the setup roles write inside lab hosts: the lab gives each host private
# copies, so setting up the lab must leave these as they were.
MACHINE_FILES = ("/etc/hosts", "/etc/hostname", "/etc/nftables.conf", "/etc/default/libvirtd", "/etc/libvirt", "/etc/pki",
                 "/etc/nftables.d")


def machine_files():
    """{path: sha256} of every file under MACHINE_FILES (None for a path that does not exist)."""
    found = {}
    for top in MACHINE_FILES:
        if not os.path.exists(top):
            found[top] = None
            continue
        paths = [top] if os.path.isfile(top) else [os.path.join(d, f) for d, _dirs, files in os.walk(top) for f in files]
        for path in paths:
            with open(path, "rb") as fh:
                found[path] = hashlib.sha256(fh.read()).hexdigest()
    return found


def ansible_playbook(*args, timeout=900):
    """ansible-playbook from the repository root with the lab's inventory; returns the CompletedProcess."""
    cmd = [shutil.which("ansible-playbook") or os.path.join(ROOT, ".venv", "bin", "ansible-playbook")] + list(args)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build")))
    return subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=timeout, check=False)


def recap(output):
    """{host: {ok, changed, failed, ...}} from a playbook's PLAY RECAP."""
    found = {}
    for line in output.split("PLAY RECAP")[-1].splitlines():
        match = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if match:
            found[match.group(1)] = dict((k, int(v)) for k, v in re.findall(r"(\w+)=(\d+)", match.group(2)))
    return found


@pytest.fixture()
def changes_hosts(lab):
    """For a test that changes the hosts' configuration (certificates, /etc/hosts): after it, the lab goes back to
    what setup left (`lab reset setup`, seconds), so that later tests and the Molecule scenarios start from it."""
    yield lab
    if os.path.isdir(os.path.join(ROOT, ".lab", "saved", "setup")):
        lab_cli("reset", "setup", timeout=300)


@pytest.fixture(scope="session")
def lab():
    """The lab with three hosts, built bare and set up with playbooks/setup.yml (TLS, migration network,
    shared storage) once for the session, and removed at its end. Lab.machine_before holds the machine's
    own configuration files as they were before."""
    if os.environ.get("HOSTMAINT_LAB_PREPARED") and os.path.exists(PREPARED):
        # make test brought it up and set it up beside the checks that need no lab (prepare_lab.py)
        with open(PREPARED) as handle:
            prepared = json.load(handle)
        os.unlink(PREPARED)  # once: a later session builds its own
        the_lab = Lab()
        the_lab.machine_before = prepared["machine_before"]
        the_lab.setup_output = prepared["setup_output"]
        yield the_lab
        if not os.environ.get("HOSTMAINT_LAB_LEAVE_UP"):
            lab_cli("down", timeout=300)
        return
    before = machine_files()
    if os.environ.get("HOSTMAINT_LAB_KEEP") and os.path.exists(os.path.join(ROOT, ".lab", "state.json")):
        # a developer's shortcut: use the lab that is up (set up already) and leave it up
        the_lab = Lab()
        the_lab.machine_before = before
        the_lab.setup_output = ""
        yield the_lab
        return
    lab_cli("up", "--hosts", "3", timeout=900)
    setup = ansible_playbook("playbooks/setup.yml")
    assert setup.returncode == 0, setup.stdout[-4000:]
    lab_cli("save", "setup")  # what setup left: `lab reset setup` puts it back (the Molecule scenarios start there)
    the_lab = Lab()
    the_lab.machine_before = before
    the_lab.setup_output = setup.stdout
    yield the_lab
    if not os.environ.get("HOSTMAINT_LAB_LEAVE_UP"):  # make test leaves it up for make test-faults
        lab_cli("down", timeout=300)
