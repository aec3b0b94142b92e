# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: emptying hv1 of the lab with hostmaint.libvirt against what operators write instead.

    make bench          # or: python tests/bench/bench_evacuate.py [--workloads idle8 mixed] [--json FILE]

On one lab, set up as a production fleet runs (playbooks/setup.yml: TLS for control and data), back to
back in one run and over the same transport, for each workload it empties hv1 with:

- A: the serial loop `for vm in ...; do virsh migrate --live --p2p --tls --persistent --undefinesource
  $vm qemu+tls://hv2/system; done`, run on hv1;
- B: the same migrations all backgrounded at once (`&`, then `wait`), alternating hv2 and hv3;
- C: `ansible-playbook playbooks/evacuate.yml -l hv1` at its defaults, Ansible's overhead included
  (playbooks/restore.yml then brings the guests home, also timed);
- the bound: the bytes the migrations moved, divided by the TCP throughput between two lab hosts over
  the migration network, measured in the same run.

Between contenders every guest is moved back to hv1 (not timed). For each contender it reports wall
time, QEMU's downtime per guest (p50 and max, from `virsh domjobinfo --completed` on the destination,
the same measure for every contender), bytes moved, and per guest the HTTP probe failures and the
longest gap (every guest polled at 20 Hz with a 1 s timeout), and guests that restarted (a new boot
id), and guests whose own memory check (tests/lab/guest/dirty.c) found a lost write. It also times
the planner on a synthetic cluster of 50 hosts and 5,000 guests, and reports the controller's peak
memory (ansible-playbook and its workers) and the module's (sampled on hv1). It prints the targets
and how far each one is, and writes everything as JSON. It asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "tests", "lab", "lab")
INVENTORY = os.path.join(ROOT, ".lab", "inventory.yml")
sys.path.insert(0, os.path.join(ROOT, ".build"))

# name -> [(guest, memory MiB, dirty MiB/s)]
WORKLOADS = {
    "idle8": [("idle%d" % i, 256, 0) for i in range(1, 9)],
    "mixed": ([("big1", 1024, 0), ("dirty1", 384, 20), ("dirty2", 384, 20)]
              + [("small%d" % i, 256, 0) for i in range(1, 6)]),
}

TARGETS = "C at most 0.35x A and faster than B; every downtime at most 150 ms, median at most 50 ms; " \
          "no failed probe and a longest gap per guest of at most 1 s; planning 5,000 guests over 50 hosts in at most 2 s"


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


def lab_set_up():
    """The lab up and set up as a production fleet runs (playbooks/setup.yml: TLS for control and data)."""
    sh(LAB, "up")
    log("setting the lab up (playbooks/setup.yml)")
    sh("ansible-playbook", "-i", INVENTORY, os.path.join(ROOT, "playbooks", "setup.yml"))


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


class Probe(threading.Thread):
    """Polls one guest at 20 Hz with a 1 s timeout: failures, longest time without an answer, answers seen."""

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
            time.sleep(0.05)

    def stop(self):
        self.done.set()
        self.join(5)
        self.longest_gap = max(self.longest_gap, time.time() - self.last_ok)


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


def timed_command(cmd, cwd=ROOT, sample_module=None):
    """Runs a command; returns (wall s, returncode, output, peak RSS MiB of it and its children, module peak MiB)."""
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    peak = {"module": 0.0}
    sampler = None
    if sample_module:
        def sample():
            while proc.poll() is None:
                out = on("hv1", "for p in $(pgrep -f %s); do grep VmHWM /proc/$p/status; done 2>/dev/null" % sample_module,
                         check=False).stdout
                for kib in re.findall(r"VmHWM:\s+(\d+)", out):
                    peak["module"] = max(peak["module"], int(kib) / 1024.0)
                time.sleep(0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    output = proc.stdout.read()
    _pid, status_code, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status_code)
    wall = time.time() - started
    if sampler:
        sampler.join(5)
    return wall, proc.returncode, output, usage.ru_maxrss / 1024.0, peak["module"] or None


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


def home(workload):
    """Every guest back on hv1 (serially, over TLS; not timed), and hv1 out of maintenance."""
    where = placement_now()
    for name, _m, _d in workload:
        host = where.get(name)
        if host and host != "hv1":
            on(host, "virsh migrate --live --p2p --tls --persistent --undefinesource %s qemu+tls://hv1/system" % name)
    for line in on("hv1", "virsh -q secret-list").stdout.splitlines():
        if "hostmaint:maintenance" in line:
            on("hv1", "virsh -q secret-undefine %s" % line.split()[0])
    where = placement_now()
    stray = [n for n, _m, _d in workload if where.get(n) != "hv1"]
    if stray:
        raise SystemExit("guests %s are not running on hv1 before a contender" % ", ".join(stray))


def memory_errors(address):
    """The lost writes a guest that dirties memory has found in its own memory so far (None: it does not check)."""
    try:
        with urllib.request.urlopen("http://%s/memcheck" % address, timeout=2) as resp:
            match = re.search(r"errors=(\d+)", resp.read().decode())
            return int(match.group(1)) if match else None
    except OSError:
        return None


def contender(label, workload, addresses, run, into_hv1=False):
    probes = [Probe(name, addresses[name]) for name, _m, _d in workload]
    errors_before = dict((p.name, memory_errors(p.address)) for p in probes)
    before = {}
    for probe in probes:
        try:
            before[probe.name] = answer(probe.address, 2.0)
        except OSError:  # a guest that went deaf earlier (a TCG fault): counted, not fatal to the benchmark
            before[probe.name] = None
            log("%s does not answer before %s" % (probe.name, label))
        probe.start()
    result = run()
    for probe in probes:
        probe.stop()
    memcheck = dict((p.name, memory_errors(p.address)) for p in probes)
    where = placement_now()
    if into_hv1:
        moved = [name for name, _m, _d in workload if where.get(name) == "hv1"]
    else:
        moved = [name for name, _m, _d in workload if where.get(name) not in (None, "hv1")]
    figures = dict((name, completed(where[name], name)) for name in moved)
    downtimes = sorted(f["downtime_ms"] for f in figures.values() if f["downtime_ms"] is not None)
    row = dict(contender=label, wall_s=round(result["wall"], 2), moved=len(moved), guests=len(workload),
               downtime_p50_ms=statistics.median(downtimes) if downtimes else None,
               downtime_max_ms=max(downtimes) if downtimes else None,
               bytes=int(sum(f["bytes"] or 0 for f in figures.values())),
               probes=dict((p.name, dict(failed=p.failed, longest_gap_s=round(p.longest_gap, 2),
                                         restarted=bool(p.answers - {before[p.name]}) if before[p.name] else None,
                                         answered_before=before[p.name] is not None,
                                         lost_writes=(memcheck[p.name] - errors_before[p.name]
                                                      if memcheck[p.name] is not None and errors_before[p.name] is not None
                                                      else None))) for p in probes),
               controller_peak_mib=result.get("controller_peak_mib"), module_peak_mib=result.get("module_peak_mib"),
               returncode=result.get("returncode", 0), breakdown=result.get("breakdown"))
    log("%s: %.1f s, %d/%d moved, downtime p50 %s max %s ms"
        % (label, row["wall_s"], row["moved"], row["guests"], row["downtime_p50_ms"], row["downtime_max_ms"]))
    return row


def virsh_loop(names, background):
    lines = []
    for index, name in enumerate(names):
        dest = "hv2" if not background or index % 2 == 0 else "hv3"
        cmd = "virsh migrate --live --p2p --tls --persistent --undefinesource %s qemu+tls://%s/system" % (name, dest)
        lines.append(cmd + (" &" if background else " || echo FAILED %s" % name))
    if background:
        lines.append("wait")
    script = "\n".join(lines)

    def run():
        started = time.time()
        proc = on("hv1", script, check=False)
        return dict(wall=time.time() - started, returncode=proc.returncode)
    return run


REPORTS = os.path.join(ROOT, ".cache", "bench", "reports")


def breakdown(wall, report_path):
    """Where a playbook's wall time went, from its run report's timelines (seconds since the engine's run
    started): the engine's span (first start to last done), the moves themselves (first start to last
    switchover), the settle check of the last one, the mean number of migrations at once, and the rest
    (Ansible: start-up, the plan, facts, the report)."""
    try:
        with open(report_path) as fh:
            report = json.load(fh)
    except (OSError, ValueError):
        return None
    moves = [m for host in report["hosts"].values() for m in host["moves"] if m["timeline"].get("started") is not None]
    if not moves:
        return None
    first = min(m["timeline"]["started"] for m in moves)
    last_switch = max(m["timeline"].get("switchover") or 0 for m in moves)
    last_done = max(m["timeline"].get("done") or 0 for m in moves)
    busy = sum((m["timeline"].get("switchover") or m["timeline"]["started"]) - m["timeline"]["started"] for m in moves)
    return dict(engine_s=round(last_done, 1), moving_s=round(last_switch - first, 1),
                settle_tail_s=round(last_done - last_switch, 1),
                concurrency=round(busy / max(last_switch - first, 1e-6), 2),
                migration_s_mean=round(busy / len(moves), 2), ansible_s=round(wall - last_done, 1))


def playbook(name):
    def run():
        os.makedirs(REPORTS, exist_ok=True)
        before = set(os.listdir(REPORTS))
        wall, code, output, controller, module = timed_command(
            ["ansible-playbook", "-i", INVENTORY, "playbooks/%s.yml" % name, "-l", "hv1",
             "-e", "hostmaint_report_dir=%s" % REPORTS], sample_module="AnsiballZ_%s" % name)
        if code != 0:
            log("%s.yml failed:\n%s" % (name, output[-3000:]))
        written = sorted(f for f in set(os.listdir(REPORTS)) - before if f.endswith(".json"))
        return dict(wall=wall, returncode=code, controller_peak_mib=round(controller, 1),
                    module_peak_mib=round(module, 1) if module else None,
                    breakdown=breakdown(wall, os.path.join(REPORTS, written[-1])) if written else None)
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
    from ansible_collections.hostmaint.libvirt.plugins.module_utils import placement  # pylint: disable=import-outside-toplevel
    from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (  # pylint: disable=import-outside-toplevel
        Disk, Guest, HostFacts, Limits, Nic)
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


def verdicts(results):
    """Each target, whether it is met and how far, from the measured rows."""
    out = []
    for workload, rows in results["workloads"].items():
        by = dict((r["contender"], r) for r in rows)
        a, b, c = by["A serial loop"], by["B backgrounded loop"], by["C evacuate.yml"]
        ratio = c["wall_s"] / a["wall_s"]
        out.append(("%s: C <= 0.35 x A" % workload, ratio <= 0.35, "C/A = %.2f" % ratio))
        out.append(("%s: C faster than B" % workload, c["wall_s"] < b["wall_s"], "C %.1f s, B %.1f s" % (c["wall_s"], b["wall_s"])))
        out.append(("%s: C downtime max <= 150 ms" % workload, (c["downtime_max_ms"] or 0) <= 150, "%s ms" % c["downtime_max_ms"]))
        out.append(("%s: C downtime p50 <= 50 ms" % workload, (c["downtime_p50_ms"] or 0) <= 50, "%s ms" % c["downtime_p50_ms"]))
        failed = sum(p["failed"] for p in c["probes"].values())
        gap = max(p["longest_gap_s"] for p in c["probes"].values())
        out.append(("%s: C no failed probe" % workload, failed == 0, "%d failed" % failed))
        out.append(("%s: C longest gap <= 1 s" % workload, gap <= 1.0, "%.2f s" % gap))
    plan = results["planning"]
    out.append(("planning 5,000 guests / 50 hosts <= 2 s", plan["seconds"] <= 2.0, "%.2f s" % plan["seconds"]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--workloads", nargs="+", default=sorted(WORKLOADS), choices=sorted(WORKLOADS))
    parser.add_argument("--json", default=os.path.join(ROOT, ".cache", "bench", "bench-%s.json"
                                                       % datetime.datetime.now().strftime("%Y%m%dT%H%M%S")))
    args = parser.parse_args()
    lab_set_up()
    results = dict(machine=dict(node=os.uname().nodename, cores=os.cpu_count(),
                                qemu=on("hv1", "virsh -q version | grep -i 'running hypervisor'").stdout.strip()),
                   workloads={})
    results["throughput_bytes_s"] = throughput()
    results["planning"] = planning_time()
    for workload_name in args.workloads:
        workload = WORKLOADS[workload_name]
        names = [n for n, _m, _d in workload]
        addresses = ensure_guests(workload)
        rows = []
        for label, run in (("A serial loop", virsh_loop(names, False)), ("B backgrounded loop", virsh_loop(names, True)),
                           ("C evacuate.yml", playbook("evacuate"))):
            home(workload)
            rows.append(contender(label, workload, addresses, run))
        rows.append(contender("C restore.yml", workload, addresses, playbook("restore"), into_hv1=True))
        moved = max(r["bytes"] for r in rows[:3])
        rows.append(dict(contender="bound (bytes / throughput)", wall_s=round(moved / results["throughput_bytes_s"], 2),
                         bytes=moved))
        results["workloads"][workload_name] = rows
        for name in names:
            sh(LAB, "guest", "rm", name)
    print("lab: %(node)s, %(cores)s cores, %(qemu)s" % results["machine"])
    print("TCP throughput hv2 -> hv1 over the migration network: %.0f MiB/s"
          % (results["throughput_bytes_s"] / 2 ** 20))
    print("%-8s %-28s %8s %6s %9s %9s %9s %7s %8s %5s %5s %9s %9s"
          % ("workload", "contender", "wall s", "moved", "dt p50", "dt max", "MiB", "probe", "gap s", "rst", "mem", "ctl MiB",
             "mod MiB"))
    for workload_name, rows in results["workloads"].items():
        for r in rows:
            probes = r.get("probes") or {}
            print("%-8s %-28s %8.1f %6s %9s %9s %9.0f %7s %8s %5s %5s %9s %9s" % (
                workload_name, r["contender"], r["wall_s"], r.get("moved", "-"), r.get("downtime_p50_ms", "-"),
                r.get("downtime_max_ms", "-"), r["bytes"] / 2 ** 20,
                sum(p["failed"] for p in probes.values()) if probes else "-",
                "%.2f" % max(p["longest_gap_s"] for p in probes.values()) if probes else "-",
                sum(1 for p in probes.values() if p["restarted"]) if probes else "-",
                sum(1 for p in probes.values() if p.get("lost_writes")) if probes else "-",
                r.get("controller_peak_mib") or "-", r.get("module_peak_mib") or "-"))
    for workload_name, rows in results["workloads"].items():
        for r in rows:
            if r.get("breakdown"):
                print("%-8s %-20s where the time went: %s" % (workload_name, r["contender"], ", ".join(
                    "%s %s" % (k, v) for k, v in r["breakdown"].items())))
    print("planner: %(guests)d guests over %(hosts)d hosts in %(seconds).2f s (%(moves)d moves, %(blocked)d blocked)"
          % results["planning"])
    print("targets: %s" % TARGETS)
    results["targets"] = []
    for name, met, how in verdicts(results):
        print("  %-40s %-4s %s" % (name, "met" if met else "MISS", how))
        results["targets"].append(dict(target=name, met=met, measured=how))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
