# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: emptying hv1 of the lab with hostmaint.libvirt against what operators write instead, and the
engine's own cost.

    make bench          # or: python tests/bench/bench_evacuate.py [--rounds 3] [--workloads idle8 [mixed]]
                        #     [--contenders A B P2 C M M11 W E E2] [--no-setup] [--rest 2] [--json FILE]
                        #     [--progress-pairs 3]

On one lab, set up as a production fleet runs (playbooks/setup.yml: TLS for control and data; --no-setup
skips setup.yml on a lab that already ran it), every contender in the same run and over the same transport,
for each workload (default idle8: 8 idle guests of 256 MiB; mixed: one of 1 GiB, two of 384 MiB rewriting
20 MiB/s, five of 256 MiB) it empties hv1 with:

- A: the serial loop `virsh migrate --live --p2p --tls --persistent --undefinesource $vm qemu+tls://hv2/system`,
  one guest after the other, run on hv1 (`tests/lab/lab exec hv1 bash -c ...`);
- B: the same migrations all backgrounded at once (`&`, then `wait`), alternating hv2 and hv3;
- P2: the same migrations two at a time (`xargs -P2`), alternating hv2 and hv3;
- C: `ansible-playbook -i .lab/inventory.yml playbooks/evacuate.yml -l hv1` at its defaults, Ansible's
  overhead included, with its run report in .cache/bench/reports; then, as an extra row, playbooks/restore.yml
  brings the guests home ("C restore.yml", also timed);
- M: the module ad hoc at its defaults, `ansible -i .lab/inventory.yml hv1 -m hostmaint.libvirt.evacuate`;
- M11: the module with max_outbound=1 max_inbound=1 pause_target_ms=0 (the window fixed) settle_s=0;
- W: the module with max_outbound=2 max_inbound=2 pause_target_ms=0 settle_s=0;
- E: the module ad hoc on the host M has just emptied (in maintenance, no guest): its fixed cost;
- E2: evacuate.yml on the host C has just emptied.

Each contender runs --rounds times (default 3), interleaved: round 1 runs every contender, then round 2, and
so on, each round starting one contender later than the one before (E runs right after M, E2 and the restore
right after C). Before each contender every guest is moved back to hv1 (serially, not timed) and hv1's
maintenance mark, which the engine's contenders leave, is removed; then --rest seconds (default 2) pass.

For each run it records wall time; QEMU's downtime per guest (`virsh domjobinfo --completed` on the
destination, the same measure for every contender); bytes moved; per guest two probes from the controller:
HTTP at 2 Hz with a 1 s timeout (failures, longest gap: includes TCP's 1 s SYN retransmission when a connect
falls into the pause; it is the guest's service answering as the same instance, not the outage's measure) and
ICMP echo at 50 Hz (iputils `ping -D -i 0.02 -W 1`; the longest time between two
replies is the guest's real outage); guests that restarted (a new boot id) and guests whose own memory check
(tests/lab/guest/dirty.c) found a lost write; the load average at its start; the controller's peak memory
(ansible and its workers) and the module's (python processes in hv1's network namespace, read from /proc:
the lab hosts share the controller's process table). And where the time went (figures.phases): the virsh
scripts print `date +%s.%N` around each `virsh migrate`; the engine's contenders give their outcomes'
timelines (queued, started, switchover, checked, done: the module's JSON result, Ansible's json stdout
callback, and for C the run report) and the engine task's duration (the json callback's), hence fixed cost,
time to the first start, moving span, mean migration time, migrations at once, the settle tail, Ansible's
share and the module's outside its executor.

Per workload it prints, per contender, the median wall time and range over the rounds, the ratio of its median
to A's and the same-round ratios to A (median and range: the machine is noisy), pauses (p50 and max over every
run), probes, and the medians of its phases; the ratios C/A, C/P2, M11/A, W/P2, M/A, C/M; the load average
per round and now. It also measures the TCP throughput between two lab hosts over the migration network (the
bound: the bytes A moved over it) and times the planner on a synthetic cluster of 50 hosts and 5,000 guests.
After the rounds, --progress-pairs pairs (default 3) of evacuate.yml with progress on and off, back to back with
the default stdout callback, on hv1 with its guests and then on hv1 just emptied (progress_pairs): the medians of
each setting and of the pairs' differences, and the progress lines printed (figures.progress_pair_lines).
Then the targets of issue 15, each met or MISS with the measured figure, judged on the medians of the rounds
(figures.TARGETS), and everything as JSON (.cache/bench/). It asserts nothing.

A default run (idle8, 3 rounds, 9 contenders) makes 112 migrations a round: 64 timed (A, B, P2, C, its
restore, M, M11, W: 8 each; E and E2 move nothing) and 48 untimed moves home (after A, B, P2, M, M11, W), 336
in all, about 7-10 minutes a round on a 2-core machine (the timed runs about 200 s, the moves home about 180 s):
30-40 minutes with setup.yml and the guests' creation.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figures  # noqa: E402  pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "tests", "lab", "lab")
INVENTORY = os.path.join(ROOT, ".lab", "inventory.yml")
REPORTS = os.path.join(ROOT, ".cache", "bench", "reports")
sys.path.insert(0, os.path.join(ROOT, ".build"))
from ansible_collections.hostmaint.libvirt.plugins.module_utils import fleetsim  # noqa: E402  pylint: disable=wrong-import-position

# name -> [(guest, memory MiB, dirty MiB/s)]
WORKLOADS = {
    "idle8": [("idle%d" % i, 256, 0) for i in range(1, 9)],
    "mixed": ([("big1", 1024, 0), ("dirty1", 384, 20), ("dirty2", 384, 20)]
              + [("small%d" % i, 256, 0) for i in range(1, 6)]),
}

ICMP_INTERVAL = 0.02  # 50 Hz; iputils ping takes intervals below 0.2 s from root only
# HTTP at 2 Hz: measured on the lab (8 idle guests, 2 cores, TCG), HTTP at 20 Hz to each guest kept 71-95 % of
# both cores busy (each request is a connection the emulated guest serves), which slowed every contender 2.5x
# (A 56.9 s against 21-27 s unprobed); ICMP at 50 Hz costs 2 %, as much as no probe at all.
HTTP_INTERVAL = 0.5
PING = shutil.which("ping")


def log(msg):
    print("bench: %s" % msg, file=sys.stderr, flush=True)


def sh(*cmd, check=True, timeout=1800):
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(cmd), (proc.stderr or proc.stdout)[-2000:]))
    return proc


def on(host, script, check=True, timeout=1800):
    return sh(LAB, "exec", host, "bash", "-c", script, check=check, timeout=timeout)


def status():
    return json.loads(sh(LAB, "status", "--json").stdout)


def lab_set_up(setup=True):
    """The lab up (`tests/lab/lab up`, which leaves a lab that is up as it is) and set up as a production fleet
    runs (playbooks/setup.yml: TLS for control and data), unless ``setup`` is false."""
    sh(LAB, "up")
    if setup:
        log("setting the lab up (playbooks/setup.yml)")
        sh(tool("ansible-playbook"), "-i", INVENTORY, os.path.join(ROOT, "playbooks", "setup.yml"))


def tool(name):
    """An Ansible command from the repository's .venv when it has one (as the tests run it), else from PATH."""
    path = os.path.join(ROOT, ".venv", "bin", name)
    return path if os.path.exists(path) else name


def write_json(path, results):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2)
    print("JSON: %s" % path)


def placement_now():
    return dict((g["name"], g["host"]) for g in status()["guests"] if g["state"] == "running")


def answer(address, timeout=1.0):
    with urllib.request.urlopen("http://%s/" % address, timeout=timeout) as resp:
        return resp.read().decode().strip()


def page(address, path, timeout=10.0):
    """A lab guest's HTTP page ``path`` (its disk writer's diskcheck, diskscan, cgi-bin/diskverify), stripped."""
    with urllib.request.urlopen("http://%s/%s" % (address, path), timeout=timeout) as resp:
        return resp.read().decode().strip()


def disk_acked(address):
    """The last record the guest's disk writer had acknowledged (its /diskcheck), or None when it reports no ok."""
    match = re.match(r"^ok acked=(\d+) ", page(address, "diskcheck", timeout=5))
    return int(match.group(1)) if match else None


def disk_verified(address):
    """(the highest record the writer's verify read back with none missing or damaged below it, or None when it says
    anything but ok; its line) from /cgi-bin/diskverify (tests/lab/guest/diskwriter.c)."""
    line = page(address, "cgi-bin/diskverify", timeout=30)
    upper = re.match(r"^ok verified=\d+\.\.(\d+) ", line)
    return (int(upper.group(1)) if upper else None), line


class Probe(threading.Thread):
    """Polls one guest over HTTP at 2 Hz (HTTP_INTERVAL) with a 1 s timeout: failures, longest time without an answer, answers
    seen (a new boot id is a restart)."""

    def __init__(self, name, address):
        super(Probe, self).__init__(daemon=True)
        self.name, self.address = name, address
        self.failed, self.longest_gap, self.answers = 0, 0.0, set()
        self.done = threading.Event()
        self.last_ok = None

    def run(self):
        self.last_ok = time.time()
        deadline = self.last_ok + 1800
        while not self.done.is_set() and time.time() < deadline:
            try:
                self.answers.add(answer(self.address))
                now = time.time()
                self.longest_gap = max(self.longest_gap, now - self.last_ok)
                self.last_ok = now
            except OSError:
                self.failed += 1
            time.sleep(HTTP_INTERVAL)

    def stop(self):
        self.done.set()
        self.join(5)
        self.longest_gap = max(self.longest_gap, time.time() - self.last_ok)


class IcmpProbe(object):
    """ICMP echo to one guest at 50 Hz from the controller (iputils ping, its output in a file so that it never
    blocks on a full pipe); stop() gives figures.icmp_gap of it. No TCP, so no retransmission: the longest gap
    between two replies is how long the guest did not answer."""

    def __init__(self, name, address):
        self.name, self.address = name, address
        self.proc = self.out = None
        self.started = None
        self.figures = dict(longest_gap_s=None, lost=None, transmitted=None, received=None, basis=None)

    def start(self):
        if not PING:
            return
        self.out = tempfile.TemporaryFile(mode="w+")
        self.started = time.time()
        self.proc = subprocess.Popen([PING, "-D", "-n", "-i", str(ICMP_INTERVAL), "-W", "1", self.address],
                                     stdout=self.out, stderr=subprocess.STDOUT, universal_newlines=True)

    def stop(self):
        if self.proc is None:
            return self.figures
        stopped = time.time()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.seek(0)
        self.figures = figures.icmp_gap(self.out.read(), ICMP_INTERVAL, self.started, stopped)
        sent = self.figures["transmitted"]
        self.figures["rate_hz"] = round(sent / (stopped - self.started), 1) if sent else None
        self.out.close()
        self.proc = None  # stopped: a second stop() gives the same figures
        return self.figures


def completed(host, guest):
    """QEMU's figures of the guest's last migration, as libvirt keeps them on the host it landed on."""
    out = on(host, "virsh -q domjobinfo --completed %s" % guest, check=False).stdout
    found = {}
    for key, name in (("Total downtime", "downtime_ms"), ("Data processed", "data"), ("Memory processed", "memory")):
        match = re.search(r"^%s:\s+([0-9.]+)\s*(\S*)" % key, out, re.M)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            scale = {"KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}.get(unit, 1)
            found[name] = value if name == "downtime_ms" else value * scale
    return dict(downtime_ms=found.get("downtime_ms"), bytes=found.get("data", found.get("memory")))


def netns_of(host):
    """The network namespace of a lab host as /proc shows it ("net:[4026532...]"), or None."""
    proc = on(host, "readlink /proc/self/ns/net", check=False)
    text = proc.stdout.strip()
    return text if proc.returncode == 0 and text.startswith("net:") else None


def python_peak_mib(netns):
    """The largest VmHWM (MiB) of the python processes in network namespace ``netns``: on hv1 during a run, the
    module (with pipelining its command line is only the interpreter). The lab's hosts are namespaces of this
    machine's process table, so /proc shows them; a readlink and two small reads a process."""
    peak = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/ns/net" % pid) != netns:
                continue
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                argv0 = fh.read().split(b"\0")[0]
            if b"python" not in os.path.basename(argv0):
                continue
            with open("/proc/%s/status" % pid) as fh:
                match = re.search(r"VmHWM:\s+(\d+)", fh.read())
        except OSError:
            continue
        if match:
            peak = max(peak, int(match.group(1)) / 1024.0)
    return peak


def timed_command(cmd, env=None, netns=None):
    """Runs a command from the repository root. Returns {wall, returncode, output (stdout), errors (stderr),
    controller_peak_mib (its and its children's peak RSS), module_peak_mib (python on netns, sampled at 5 Hz)}."""
    peak = {"module": 0.0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak["module"] = max(peak["module"], python_peak_mib(netns))
            done.wait(0.2)

    with tempfile.TemporaryFile(mode="w+") as errors:
        started = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=errors, universal_newlines=True,
                                env=env)
        sampler = threading.Thread(target=sample, daemon=True) if netns else None
        if sampler:
            sampler.start()
        output = proc.stdout.read()
        _pid, status_code, usage = os.wait4(proc.pid, 0)
        wall = time.time() - started
        proc.returncode = os.waitstatus_to_exitcode(status_code)
        proc.stdout.close()
        done.set()
        if sampler:
            sampler.join(5)
        errors.seek(0)
        return dict(wall=wall, started=started, returncode=proc.returncode, output=output, errors=errors.read(),
                    controller_peak_mib=round(usage.ru_maxrss / 1024.0, 1),
                    module_peak_mib=round(peak["module"], 1) if peak["module"] else None)


def ensure_guests(workload):
    have = dict((g["name"], g) for g in status()["guests"])
    wanted = set(name for name, _m, _d in workload)
    for name in sorted(set(have) - wanted):
        sh(LAB, "guest", "rm", name)
    for name, memory, dirty in workload:
        if name not in have:
            sh(LAB, "guest", "add", name, "--host", "hv1", "--memory", str(memory), "--dirty", str(dirty))
    home(workload)
    return dict((g["name"], g["address"]) for g in status()["guests"] if g["name"] in wanted)


# The migration record the engine writes into each guest it moves (domain_xml.ORIGIN_NS).
ORIGIN_NS = "urn:hostmaint:libvirt:origin:1"


def home(workload):
    """Every guest back on hv1 (serially, over TLS; not timed), and hv1 as a fresh run finds it: out of maintenance
    (its mark, a secret of usage hostmaint:maintenance, which evacuate leaves and restore would remove, is
    undefined) and no migration record in the guests (restore clears them; without it the next engine contender
    would find records and not write its own)."""
    where = placement_now()
    names = [name for name, _m, _d in workload]
    for name in names:
        host = where.get(name)
        if host and host != "hv1":
            on(host, "virsh migrate --live --p2p --tls --persistent --undefinesource %s qemu+tls://hv1/system" % name)
    on("hv1", "for g in %s; do virsh -q metadata --domain \"$g\" --uri %s --remove --live --config "
              ">/dev/null 2>&1; done; true" % (" ".join(names), ORIGIN_NS))
    for line in on("hv1", "virsh -q secret-list").stdout.splitlines():
        if "hostmaint:maintenance" in line:
            on("hv1", "virsh -q secret-undefine %s" % line.split()[0])
    state = status()
    where = dict((g["name"], g["host"]) for g in state["guests"] if g["state"] == "running")
    stray = [n for n, _m, _d in workload if where.get(n) != "hv1"]
    if stray:
        raise SystemExit("guests %s are not running on hv1 before a contender" % ", ".join(stray))
    if any(h["name"] == "hv1" and h.get("maintenance") for h in state["hosts"]):
        raise SystemExit("hv1 is still in maintenance before a contender")


def memory_errors(address):
    """The lost writes a guest that dirties memory has found in its own memory so far (None: it does not check)."""
    try:
        with urllib.request.urlopen("http://%s/memcheck" % address, timeout=2) as resp:
            match = re.search(r"errors=(\d+)", resp.read().decode())
            return int(match.group(1)) if match else None
    except OSError:
        return None


def measure(key, round_no, workload, addresses, run, into_hv1=False, guests_move=True):
    """One run of one contender: probes around ``run()``, then where the guests are and QEMU's figures of the
    migrations. ``guests_move`` False (E, E2: hv1 is already empty) skips the probes and the figures."""
    names = [name for name, _m, _d in workload]
    loadavg = [round(v, 2) for v in os.getloadavg()]
    http = [Probe(name, addresses[name]) for name in names] if guests_move else []
    icmp = [IcmpProbe(name, addresses[name]) for name in names] if guests_move else []
    errors_before = dict((p.name, memory_errors(p.address)) for p in http)
    before = {}
    for probe in http:
        try:
            before[probe.name] = answer(probe.address, 2.0)
        except OSError:  # a guest that went deaf earlier (a TCG fault): counted, not fatal to the benchmark
            before[probe.name] = None
            log("%s does not answer before %s" % (probe.name, key))
    for probe in icmp + http:
        probe.start()
    result = run()
    for probe in http + icmp:
        probe.stop()
    memcheck = dict((p.name, memory_errors(p.address)) for p in http)
    moved, figures_of = [], {}
    if guests_move:
        where = placement_now()
        if into_hv1:
            moved = [name for name in names if where.get(name) == "hv1"]
        else:
            moved = [name for name in names if where.get(name) not in (None, "hv1")]
        figures_of = dict((name, completed(where[name], name)) for name in moved)
    downtimes = sorted(f["downtime_ms"] for f in figures_of.values() if f["downtime_ms"] is not None)
    probes = {}
    for probe, ping in zip(http, icmp):
        after, earlier, found_before = memcheck[probe.name], errors_before[probe.name], before[probe.name]
        probes[probe.name] = dict(
            http_failed=probe.failed, http_gap_s=round(probe.longest_gap, 2),
            icmp_gap_s=ping.figures["longest_gap_s"], icmp_lost=ping.figures["lost"], icmp_basis=ping.figures["basis"],
            icmp_hz=ping.figures.get("rate_hz"),
            restarted=bool(probe.answers - {found_before}) if found_before else None,
            answered_before=found_before is not None,
            lost_writes=(after - earlier) if after is not None and earlier is not None else None)
    row = dict(key=key, label=figures.CONTENDERS[key], round=round_no, wall_s=round(result["wall"], 2),
               returncode=result.get("returncode", 0), moved=len(moved), guests=len(workload),
               downtimes_ms=downtimes, downtime_p50_ms=statistics.median(downtimes) if downtimes else None,
               downtime_max_ms=max(downtimes) if downtimes else None,
               bytes=int(sum(f["bytes"] or 0 for f in figures_of.values())), probes=probes, loadavg=loadavg,
               phases=result.get("phases"), window_changes=result.get("window_changes"),
               controller_peak_mib=result.get("controller_peak_mib"), module_peak_mib=result.get("module_peak_mib"),
               started=datetime.datetime.fromtimestamp(result.get("started") or time.time()).isoformat(
                   timespec="seconds"))
    gaps = [p["icmp_gap_s"] for p in probes.values() if p["icmp_gap_s"] is not None]
    log("round %d %s: %.1f s (rc %s), %d/%d moved, pause p50 %s max %s ms, longest ICMP gap %s s, load %s"
        % (round_no, key, row["wall_s"], row["returncode"], row["moved"], row["guests"], row["downtime_p50_ms"],
           row["downtime_max_ms"], max(gaps) if gaps else "-", loadavg[0]))
    return row


def virsh_contender(key, names):
    script = figures.virsh_script(key, names)

    def run():
        result = timed_command([LAB, "exec", "hv1", "bash", "-c", script])
        migrations = figures.virsh_times(result["output"])
        failed = [m["guest"] for m in migrations if m["rc"] != 0]
        if failed or result["returncode"] != 0:
            log("%s: failed migrations %s (rc %s): %s" % (key, ", ".join(failed) or "-", result["returncode"],
                                                          result["errors"][-1000:]))
        result["phases"] = figures.phases(result["wall"], figures.virsh_timelines(migrations, result["started"]))
        result["returncode"] = result["returncode"] or (1 if failed else 0)
        return result
    return run


def ansible_env():
    """The environment of the Ansible contenders: Ansible's json stdout callback (one JSON document, with each
    task's duration), also for ad hoc commands (ANSIBLE_LOAD_CALLBACK_PLUGINS), deprecation warnings off."""
    return dict(os.environ, ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build")))


def _failure(key, result, found):
    if result["returncode"] != 0:
        msg = (found or {}).get("msg") if found else None
        log("%s failed (rc %d): %s" % (key, result["returncode"], msg or (result["output"] + result["errors"])[-3000:]))


def playbook_contender(key, name, netns):
    """ansible-playbook playbooks/<name>.yml -l hv1, its run report in REPORTS; phases from the report's moves
    (the module's outcomes) and the json callback's duration of the engine task."""
    def run():
        os.makedirs(REPORTS, exist_ok=True)
        before = set(os.listdir(REPORTS))
        result = timed_command([tool("ansible-playbook"), "-i", INVENTORY, "playbooks/%s.yml" % name, "-l", "hv1",
                                "-e", "hostmaint_report_dir=%s" % REPORTS], env=ansible_env(), netns=netns)
        found, task_s = figures.task_result(result["output"], "hv1", name)
        _failure(key, result, found)
        written = sorted(f for f in set(os.listdir(REPORTS)) - before if f.endswith(".json"))
        report = None
        if written:
            try:
                with open(os.path.join(REPORTS, written[-1])) as fh:
                    report = json.load(fh)
            except (OSError, ValueError):
                report = None
        moves = figures.report_moves(report, name) if report else (found or {}).get("outcomes")
        result["phases"] = figures.phases(result["wall"], figures.outcome_timelines(moves), task_s)
        changes = figures.report_window_changes(report, name) if report else (found or {}).get("window_changes")
        result["window_changes"] = changes or []
        return result
    return run


def module_contender(key, netns):
    """ansible hv1 -m hostmaint.libvirt.evacuate [-a ARGS] (figures.MODULE_ARGS); phases from the result's
    outcomes and the json callback's task duration."""
    args = figures.MODULE_ARGS[key]
    cmd = [tool("ansible"), "-i", INVENTORY, "hv1", "-m", "hostmaint.libvirt.evacuate"]
    if args:  # ansible takes "{}" for raw parameters, which the collection's modules refuse
        cmd += ["-a", json.dumps(args)]

    def run():
        result = timed_command(cmd, env=ansible_env(), netns=netns)
        found, task_s = figures.task_result(result["output"], "hv1", "evacuate")
        _failure(key, result, found)
        if found is None:
            log("%s: no module result in the output: %s" % (key, result["output"][-1000:]))
        outcomes = (found or {}).get("outcomes")
        result["phases"] = figures.phases(result["wall"], figures.outcome_timelines(outcomes), task_s)
        result["window_changes"] = (found or {}).get("window_changes") or []
        return result
    return run


def throughput():
    """TCP throughput hv2 -> hv1 over the migration network (one stream, 512 MiB), in bytes per second."""
    state = status()
    target = [h for h in state["hosts"] if h["name"] == "hv1"][0]["migration_address"]
    receiver = subprocess.Popen([LAB, "exec", "hv1", "python3", "-c", (
        "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        "s.bind(('%s', 5999)); s.listen(1); c, _ = s.accept()\nn = 0\nwhile True:\n"
        "    b = c.recv(1 << 20)\n    if not b: break\n    n += len(b)\nprint(n)\n") % target],
        stdout=subprocess.PIPE, universal_newlines=True)
    time.sleep(1.0)
    started = time.time()
    on("hv2", "python3 -c \"import socket; s=socket.create_connection(('%s', 5999)); b=bytes(1 << 20)\n"
              "for _ in range(512): s.sendall(b)\ns.close()\"" % target)
    received = int(receiver.communicate(timeout=120)[0].strip() or 0)
    return received / max(time.time() - started, 1e-6)


def planning_time(guests=5000, hosts=50, seed=7):
    """Seconds the planner takes for a synthetic cluster (stdlib only: no libvirt, no Ansible)."""
    # pylint: disable=import-outside-toplevel
    from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement
    from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import Disk, Guest, HostFacts, Limits, Nic
    rng = random.Random(seed)
    shared = "/var/lib/libvirt/shared"
    paths = ["%s/g%d.qcow2" % (shared, i) for i in range(guests)]
    sizes = [rng.choice((512, 1024, 2048, 4096, 8192)) for index in range(guests)]
    members = [Guest(name="g%d" % i, uuid="u%d" % i, state="running", memory_mib=m, max_memory_mib=m,
                     disks=[Disk(target="vda", path=paths[i])], interfaces=[Nic(type="bridge", source="br0")])
               for i, m in enumerate(sizes)]
    facts = [HostFacts(name="h%d" % i, uuid="uuid-h%d" % i, hostname="h%d" % i, memory_free_mib=1024 * 1024,
                       bridges=["br0"], volume_paths=paths) for i in range(hosts)]
    started = time.time()
    plan = placement.plan(members, facts[0], facts[1:], Limits(reserve_mib=1024))
    took = time.time() - started
    return dict(seconds=round(took, 3), guests=guests, hosts=hosts, moves=len(plan.moves), blocked=len(plan.blocked))


def progress_pairs(workload, netns, pairs=3, rest=2.0):
    """Paired runs of evacuate.yml -l hv1 with progress on and off (-e hostmaint_libvirt_progress=...), with the
    default stdout callback (which prints the lines; the json one gets none): each pair runs both settings back to
    back, alternating which goes first; each setting empties hv1 of the workload ("guests"), then runs once more on
    the host it has just emptied ("empty": the cost of progress where nothing moves, which the 2 s before the first
    read should make nil). Returns the runs: {pair, state, progress, wall, returncode, progress_lines}."""
    env = dict(ansible_env(), ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_LOAD_CALLBACK_PLUGINS="0")
    runs = []
    for index in range(pairs):
        order = (True, False) if index % 2 == 0 else (False, True)
        for setting in order:
            for state in ("guests", "empty"):
                if state == "guests":
                    home(workload)
                    time.sleep(rest)
                result = timed_command([tool("ansible-playbook"), "-i", INVENTORY, "playbooks/evacuate.yml", "-l", "hv1",
                                        "-e", "hostmaint_report_dir=%s" % REPORTS,
                                        "-e", "hostmaint_libvirt_progress=%s" % ("true" if setting else "false")],
                                       env=env, netns=netns)
                shown = len([line for line in result["output"].splitlines() if line.startswith("[hv1] ")])
                log("progress pair %d, %s, progress %s: %.2f s (rc %d, %d progress lines)" % (
                    index + 1, state, "on" if setting else "off", result["wall"], result["returncode"], shown))
                runs.append(dict(pair=index + 1, state=state, progress=setting, wall=round(result["wall"], 3),
                                 returncode=result["returncode"], progress_lines=shown))
    home(workload)
    return runs


def hv1_empty(workload):
    where = placement_now()
    return not [name for name, _m, _d in workload if where.get(name) == "hv1"]


def run_workload(workload_name, args, netns):
    """Every round of every chosen contender on one workload: {runs, rounds (load averages)}."""
    workload = WORKLOADS[workload_name]
    names = [n for n, _m, _d in workload]
    addresses = ensure_guests(workload)
    runners = {"C": playbook_contender("C", "evacuate", netns), "E2": playbook_contender("E2", "evacuate", netns),
               "R": playbook_contender("R", "restore", netns), figures.EMPTY: module_contender(figures.EMPTY, None)}
    runners.update((key, virsh_contender(key, names)) for key in ("A", "B", "P2"))
    runners.update((key, module_contender(key, netns)) for key in ("M", "M11", "W", "E"))
    blocks = figures.round_blocks(args.contenders)
    runs, rounds = [], []
    for index in range(args.rounds):
        round_no = index + 1
        load_start = [round(v, 2) for v in os.getloadavg()]
        order = figures.rotated(blocks, index)
        log("%s round %d/%d: %s (load %s)" % (workload_name, round_no, args.rounds,
                                              " | ".join(" ".join(b) for b in order), load_start[0]))
        for block in order:
            home(workload)
            time.sleep(args.rest)
            for key in block:
                if key == figures.EMPTY:
                    log("emptying hv1 with the module, untimed, for %s" % block[-1])
                    runners[key]()
                    continue
                empty_host = key in ("E", "E2")
                if empty_host and not hv1_empty(workload):
                    log("round %d %s: skipped, hv1 is not empty" % (round_no, key))
                    continue
                runs.append(measure(key, round_no, workload, addresses, runners[key], into_hv1=key == "R",
                                    guests_move=not empty_host))
        rounds.append(dict(round=round_no, order=[k for b in order for k in b if k != figures.EMPTY],
                           loadavg_start=load_start, loadavg_end=[round(v, 2) for v in os.getloadavg()]))
    home(workload)
    return dict(runs=runs, rounds=rounds)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--workloads", nargs="+", default=["idle8"], choices=sorted(WORKLOADS))
    parser.add_argument("--contenders", nargs="+", default=list(figures.SELECTABLE), choices=figures.SELECTABLE,
                        help="a subset of the contenders (C brings its restore.yml row)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contender, interleaved (default 3)")
    parser.add_argument("--rest", type=float, default=2.0, help="seconds between a move home and a contender")
    parser.add_argument("--no-setup", action="store_true", help="skip playbooks/setup.yml (the lab already ran it)")
    parser.add_argument("--keep-guests", action="store_true", help="leave the workload's guests on hv1 at the end")
    parser.add_argument("--progress-pairs", type=int, default=3,
                        help="pairs of evacuate.yml runs with progress on and off, per workload (default 3; 0: none)")
    parser.add_argument("--json", default=os.path.join(ROOT, ".cache", "bench", "bench-%s.json"
                                                       % datetime.datetime.now().strftime("%Y%m%dT%H%M%S")))
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    if not PING:
        log("no ping on this machine (Debian: iputils-ping, in requirements-apt.txt): no ICMP probe")
    lab_set_up(setup=not args.no_setup)
    netns = netns_of("hv1")
    if not netns:
        log("hv1's network namespace is not readable: no module memory peak")
    results = dict(machine=dict(node=os.uname().nodename, cores=os.cpu_count(),
                                qemu=on("hv1", "virsh -q version | grep -i 'running hypervisor'").stdout.strip()),
                   options=dict(rounds=args.rounds, contenders=args.contenders, workloads=args.workloads,
                                rest_s=args.rest, icmp_interval_s=ICMP_INTERVAL if PING else None),
                   workloads={})
    results["throughput_bytes_s"] = throughput()
    results["planning"] = planning_time()
    for workload_name in args.workloads:
        data = run_workload(workload_name, args, netns)
        data["summary"] = figures.summarise(data["runs"])
        data["pairs"] = [figures.pair(data["runs"], num, den) for num, den in figures.PAIRS]
        if args.progress_pairs:
            data["progress_pairs"] = progress_pairs(WORKLOADS[workload_name], netns, args.progress_pairs, args.rest)
        by = dict((s["key"], s) for s in data["summary"])
        moved = (by.get("A") or by.get("P2") or by.get("B") or by.get("C") or {}).get("bytes")
        if moved:
            data["bound"] = dict(bytes=moved["median"],
                                 seconds=round(moved["median"] / results["throughput_bytes_s"], 2))
        if workload_name == "idle8":  # the workload the simulator's lab calibration describes
            calibration = fleetsim.Calibration.lab()
            data["simulator"] = figures.simulator_check(
                data["summary"], lambda **kwargs: fleetsim.predict_evacuation(calibration=calibration, **kwargs))
            data["simulator"]["calibration"] = calibration.source
        results["workloads"][workload_name] = data
        if not args.keep_guests:
            for name, _m, _d in WORKLOADS[workload_name]:
                sh(LAB, "guest", "rm", name)
    results["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    report(results)
    write_json(args.json, results)


def report(results):
    print("lab: %(node)s, %(cores)s cores, %(qemu)s" % results["machine"])
    print("TCP throughput hv2 -> hv1 over the migration network: %.0f MiB/s"
          % (results["throughput_bytes_s"] / 2 ** 20))
    print("load average now (1, 5, 15 min): %s" % " ".join("%.2f" % v for v in results["loadavg_end"]))
    print(figures.TABLE_HEAD)
    for name, data in results["workloads"].items():
        for line in figures.table_lines(name, data["summary"]):
            print(line)
        if data.get("bound"):
            print("%-8s %-23s %10.2f s (%.0f MiB moved by A, over the throughput)"
                  % (name, "bound", data["bound"]["seconds"], data["bound"]["bytes"] / 2 ** 20))
    print("(x A: ratio of medians; same round: median and range of the rounds' own ratios; pauses: QEMU's downtime "
          "over every run; HTTPx: failed HTTP probes summed over guests and runs; gaps: the longest of any guest "
          "in any run; rst/lost: guests restarted / with lost writes; mod: module peak MiB; ! a run failed)")
    rates = [p["icmp_hz"] for data in results["workloads"].values() for r in data["runs"]
             for p in r["probes"].values() if p.get("icmp_hz")]
    if rates:
        print("ICMP echo sent at %.0f Hz per guest (median; asked for %.0f Hz)" % (
            statistics.median(rates), 1 / ICMP_INTERVAL))
    print("where the time went, medians over the rounds (figures.phases; seconds, at once: migrations):")
    print(figures.PHASE_HEAD)
    for name, data in results["workloads"].items():
        for line in figures.phase_lines(name, data["summary"]):
            print(line)
    for name, data in results["workloads"].items():
        for line in figures.pair_lines(name, data["runs"]):
            print(line)
        for line in figures.progress_pair_lines(data.get("progress_pairs") or []):
            print("%-8s %s" % (name, line))
        if data.get("simulator"):
            for line in figures.simulator_lines(data["simulator"], data["simulator"]["calibration"]):
                print("%-8s %s" % (name, line))
        for rnd in data["rounds"]:
            print("%-8s round %d: load %s at its start, %s at its end; order %s" % (
                name, rnd["round"], " ".join("%.2f" % v for v in rnd["loadavg_start"]),
                " ".join("%.2f" % v for v in rnd["loadavg_end"]), " ".join(rnd["order"])))
    print("planner: %(guests)d guests over %(hosts)d hosts in %(seconds).2f s (%(moves)d moves, %(blocked)d blocked)"
          % results["planning"])
    print("targets: %s" % figures.TARGETS)
    found = figures.verdicts(results["workloads"], results["planning"])
    for line in figures.verdict_lines(found):
        print(line)
    results["targets"] = [dict(target=name, met=met, measured=how) for name, met, how in found]


if __name__ == "__main__":
    main()
