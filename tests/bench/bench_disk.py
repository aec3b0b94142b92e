# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: moving a running guest's 1 GiB disk between two pools of its host with hostmaint.libvirt.disk_move
against what an operator types instead, `virsh blockcopy --pivot`, in the same run.

    make bench-disk     # or: python tests/bench/bench_disk.py [--rounds 3] [--fill-mib 512] [--rate 100]
                        #     [--rest 2] [--no-setup] [--keep-guest] [--json FILE]

On the lab (brought up if it is not, and set up with playbooks/setup.yml unless it already was: `lab save setup`
left its mark, or --no-setup), one guest on hv1 (benchdisk) with a 1 GiB sparse qcow2 disk on pool default
(/var/lib/libvirt/images) and its disk writer at --rate records/s (tests/lab/guest/diskwriter.c: numbered,
checksummed O_DIRECT|O_DSYNC records in the disk's first 257 MiB). Before the bench the guest is shut off once
and --fill-mib MiB of data are written into its disk from the host (`qemu-io -c 'write -P 0x5a ...'` from
300 MiB on, clear of the writer's records), so that every copy has real data to move; then it boots again and its
boot scan must find every record. Each round measures both contenders, each moving the disk from pool default to
pool spare (/var/lib/libvirt/spare) while the writer runs:

- A: `virsh blockcopy benchdisk vda --dest /var/lib/libvirt/spare/benchdisk.qcow2 --format qcow2 --transient-job
  --wait --pivot` run on hv1 (`tests/lab/lab exec hv1 bash -c ...`); its wall time is taken on hv1 around the
  virsh command (the operator's view), the lab's exec overhead left out (kept in the JSON as outer_wall_s);
- D: `ansible -i .lab/inventory.yml hv1 -m hostmaint.libvirt.disk_move -a '{"guest": "benchdisk", "from_pool":
  "default", "to_pool": "spare"}'` from the controller, Ansible's start-up and SSH included; also the module's
  own figure for the copy (moves[0].seconds: block copy start to pivot) and the task's duration (Ansible's json
  callback).

Between two measurements the disk goes home, untimed and the same way whoever moved it: the old source is
deleted, `virsh blockcopy ... --dest /var/lib/libvirt/images/benchdisk.qcow2 --pivot` copies it back, the copy in
spare is deleted; then --rest seconds pass. So both contenders start from the same state (disk on default, with
the same data, nothing in spare). The contenders alternate which goes first (round 1: A then D, round 2: D then
A, ...).

Every measurement is judged afterwards, and a failed check invalidates its row (kept in the JSON, left out of the
medians): both definitions (live and inactive) must name the copy in spare, the guest must be the same instance
(boot id), and its writer's verify (/cgi-bin/diskverify) must say ok and cover at least the record acknowledged
before the move. Meanwhile the controller polls the writer's /diskcheck at 20 Hz: the longest time between two
polls that saw the acknowledged number grow is the writer's worst stall as seen from outside (20 Hz resolution;
an HTTP answer that does not come counts as a stall too).

It prints per contender the median wall time and range, the data moved (the disk's allocation before the move,
as qemu-img reports it) and MiB/s of data over the wall time, the module's own seconds for D, the worst writer
stall; then D/A per round, its median and range, and the ratio of the medians. Everything goes to JSON
(.cache/bench/bench-disk-<time>.json). It asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import figures  # noqa: E402  pylint: disable=wrong-import-position
from bench_evacuate import (  # noqa: E402  pylint: disable=wrong-import-position
    disk_acked as acked, disk_verified, page,
    INVENTORY, LAB, ROOT, ansible_env, answer, log, on, sh, timed_command, tool, write_json)

GUEST = "benchdisk"
IMAGES, SPARE = "/var/lib/libvirt/images", "/var/lib/libvirt/spare"
FILL_OFFSET_MIB = 300  # the writer's records live in 1-257 MiB (diskwriter.c REGION_START, MAX_SLOTS)
FILL_CHUNK_MIB = 64
POLL_S = 0.05
CONTENDERS = (("A", "virsh blockcopy --pivot"), ("D", "disk_move ad hoc"))


def wait_for(what, probe, within=90.0):
    deadline = time.time() + within
    while True:
        try:
            found = probe()
            if found:
                return found
        except OSError:
            pass
        if time.time() > deadline:
            raise SystemExit("bench: %s did not happen within %.0f s" % (what, within))
        time.sleep(0.2)


def lab_ready(setup):
    """The lab up, and set up unless it was (its saved state `setup`) or setup is false."""
    sh(LAB, "up")
    if setup and not os.path.exists(os.path.join(ROOT, ".lab", "saved", "setup", "meta.json")):
        log("setting the lab up (playbooks/setup.yml)")
        sh(tool("ansible-playbook"), "-i", INVENTORY, os.path.join(ROOT, "playbooks", "setup.yml"))
        sh(LAB, "save", "setup")


def sources(name=GUEST):
    """(live, inactive) source file of vda."""
    found = []
    for extra in ("", " --inactive"):
        xml = on("hv1", "virsh dumpxml %s%s" % (name, extra)).stdout
        match = re.search(r"<disk\b(?:(?!</disk>).)*?<source file='([^']+)'(?:(?!</disk>).)*?<target dev='vda'",
                          xml, re.S)
        found.append(match.group(1) if match else None)
    return tuple(found)


def allocation(path):
    """Bytes the image holds on the host (qemu-img's actual-size)."""
    out = on("hv1", "qemu-img info -U --output=json %s" % path).stdout
    return int(json.loads(out)["actual-size"])


def make_guest(fill_mib, rate):
    """benchdisk on hv1 with its writer, shut off once to write fill_mib MiB into its disk, booted again with
    every record; returns its address and its HTTP answer (name and boot id)."""
    sh(LAB, "guest", "rm", GUEST, check=False)
    for pool in ("default", "spare"):
        on("hv1", "virsh pool-refresh %s >/dev/null; virsh vol-delete %s.qcow2 --pool %s >/dev/null 2>&1; true"
           % (pool, GUEST, pool))
    added = json.loads(sh(LAB, "guest", "add", GUEST, "--host", "hv1", "--disk", "local", "--disk-writer",
                          str(rate)).stdout)
    address = added["address"]
    wait_for("the writer's first records", lambda: (acked(address) or 0) > 10)
    path = "%s/%s.qcow2" % (IMAGES, GUEST)
    writes = " ".join("-c 'write -q -P 0x5a %dM %dM'" % (FILL_OFFSET_MIB + i, min(FILL_CHUNK_MIB, fill_mib - i))
                      for i in range(0, fill_mib, FILL_CHUNK_MIB))
    on("hv1", "virsh destroy %s >/dev/null && qemu-io -f qcow2 %s %s && virsh start %s >/dev/null"
       % (GUEST, writes, path, GUEST))
    scan = wait_for("the boot scan after the fill", lambda: page(address, "diskscan", timeout=2))
    if not scan.startswith("ok "):
        raise SystemExit("bench: after the fill the boot scan says %r" % scan)
    wait_for("the writer after the fill", lambda: (acked(address) or 0) > int(re.search(r"last=(\d+)", scan).group(1)))
    log("%s at %s: %d MiB written at %d MiB, disk holds %.0f MiB; boot scan %s"
        % (GUEST, address, fill_mib, FILL_OFFSET_MIB, allocation(path) / 2 ** 20, scan))
    return address, answer(address, timeout=5)


class StallProbe(threading.Thread):
    """Polls /diskcheck at 1/POLL_S Hz: the longest time between two polls that saw acked grow."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.address, self.done = address, threading.Event()
        self.worst_s, self.polls, self.failed = 0.0, 0, 0

    def run(self):
        last, since = None, time.time()
        while not self.done.is_set():
            try:
                now_acked = acked(self.address)
            except OSError:
                now_acked = None
                self.failed += 1
            self.polls += 1
            now = time.time()
            if now_acked is not None and last is not None and now_acked > last:
                self.worst_s = max(self.worst_s, now - since)
                since = now
            elif last is None and now_acked is not None:
                since = now
            if now_acked is not None:
                last = now_acked if last is None else max(last, now_acked)
            self.done.wait(POLL_S)
        self.worst_s = max(self.worst_s, time.time() - since)  # the time since the last growth counts too

    def stop(self):
        self.done.set()
        self.join(10)
        return round(self.worst_s, 3)


def blockcopy_script(dest):
    return ("s=$(date +%%s.%%N); virsh blockcopy %s vda --dest %s --format qcow2 --transient-job --wait --pivot; "
            "rc=$?; e=$(date +%%s.%%N); echo \"TIMED $s $e $rc\"" % (GUEST, dest))


def contender_a():
    result = timed_command([LAB, "exec", "hv1", "bash", "-c", blockcopy_script("%s/%s.qcow2" % (SPARE, GUEST))])
    match = re.search(r"^TIMED (\S+) (\S+) (\d+)$", result["output"], re.M)
    row = dict(outer_wall_s=round(result["wall"], 3), returncode=result["returncode"] or (int(match.group(3)) if match else 1))
    row["wall_s"] = round(float(match.group(2)) - float(match.group(1)), 3) if match else None
    if row["returncode"]:
        row["error"] = (result["errors"] or result["output"])[-1000:]
    return row


def contender_d():
    args = dict(guest=GUEST, from_pool="default", to_pool="spare")
    result = timed_command([tool("ansible"), "-i", INVENTORY, "hv1", "-m", "hostmaint.libvirt.disk_move",
                            "-a", json.dumps(args)], env=ansible_env())
    found, task_s = figures.task_result(result["output"], "hv1", "disk_move")
    move = ((found or {}).get("moves") or [{}])[0]
    row = dict(wall_s=round(result["wall"], 3), task_s=task_s, module_s=move.get("seconds"),
               module_bytes=move.get("bytes"), job_bytes=move.get("job_bytes"), synchronous=move.get("synchronous"),
               outcome=move.get("outcome"), returncode=result["returncode"] or (1 if (found or {}).get("failed") else 0))
    if row["returncode"] or move.get("outcome") != "moved":
        row["error"] = ((found or {}).get("msg") or result["output"] + result["errors"])[-1000:]
        row["returncode"] = row["returncode"] or 1
    return row


def move_home():
    """The disk back on pool default, nothing in spare (untimed, the same after either contender)."""
    live, _inactive = sources()
    if live != "%s/%s.qcow2" % (SPARE, GUEST):
        raise SystemExit("bench: %s's disk is at %s before its move home, not in spare" % (GUEST, live))
    home, away = "%s/%s.qcow2" % (IMAGES, GUEST), "%s/%s.qcow2" % (SPARE, GUEST)
    # the copy in spare is deleted only once the guest runs on the copy home (rc is the blockcopy's)
    out = on("hv1", "rc=1; rm -f %s && { %s; }; if [ \"$rc\" = 0 ]; then rm -f %s; fi; "
             "virsh pool-refresh default >/dev/null; virsh pool-refresh spare >/dev/null"
             % (home, blockcopy_script(home), away), check=False)
    if "TIMED" not in out.stdout or not out.stdout.strip().endswith(" 0") or sources() != (home, home):
        raise SystemExit("bench: the move home failed (%s): %s %s" % (sources(), out.stdout, out.stderr))


def measure(key, round_no, address, instance):
    before_acked = acked(address)
    data = allocation("%s/%s.qcow2" % (IMAGES, GUEST))
    probe = StallProbe(address)
    probe.start()
    row = contender_a() if key == "A" else contender_d()
    row["writer_stall_s"] = probe.stop()
    row.update(key=key, round=round_no, data_bytes=data, acked_before=before_acked,
               loadavg=[round(v, 2) for v in os.getloadavg()])
    problems = []
    if row["returncode"]:
        problems.append("the command failed: %s" % row.get("error"))
    live, inactive = sources()
    row["live"], row["inactive"] = live, inactive
    want = "%s/%s.qcow2" % (SPARE, GUEST)
    if live != want or inactive != want:
        problems.append("the definitions name %s (live) and %s (inactive), not %s" % (live, inactive, want))
    try:
        now = answer(address, timeout=5)
    except OSError as exc:
        now = "no answer (%s)" % exc
    if now != instance:
        problems.append("the guest answers %r, was %r" % (now, instance))
    upper, line = disk_verified(address)
    row["diskverify"] = line
    if upper is None or upper < (before_acked or 0):
        problems.append("the writer's verify says %r (%s acknowledged before)" % (line, before_acked))
    row["valid"], row["problems"] = not problems, problems
    if row["wall_s"] and data:
        row["data_mib_s"] = round(data / 2 ** 20 / row["wall_s"], 1)
    log("round %d %s: %s s%s, stall %.2f s, %s%s" % (
        round_no, key, row["wall_s"], " (module %s s)" % row.get("module_s") if key == "D" else "",
        row["writer_stall_s"], line, "" if row["valid"] else "; INVALID: " + "; ".join(problems)))
    return row


def summarise(runs):
    out = {}
    for key, label in CONTENDERS:
        mine = [r for r in runs if r["key"] == key and r["valid"]]
        out[key] = dict(label=label, runs=len(mine), invalid=len([r for r in runs if r["key"] == key and not r["valid"]]),
                        wall=figures.spread(r["wall_s"] for r in mine),
                        module=figures.spread(r.get("module_s") for r in mine),
                        task=figures.spread(r.get("task_s") for r in mine),
                        data_mib=figures.spread(r["data_bytes"] / 2 ** 20 for r in mine),
                        data_mib_s=figures.spread(r.get("data_mib_s") for r in mine),
                        stall=figures.spread(r["writer_stall_s"] for r in mine))
    walls = dict((key, dict((r["round"], r["wall_s"]) for r in runs if r["key"] == key and r["valid"]))
                 for key, _label in CONTENDERS)
    per_round = dict((rnd, walls["D"][rnd] / walls["A"][rnd]) for rnd in sorted(walls["D"]) if rnd in walls["A"])
    medians = [out[k]["wall"] and out[k]["wall"]["median"] for k in ("D", "A")]
    module_over_a = dict((r["round"], r["module_s"] / walls["A"][r["round"]]) for r in runs
                         if r["key"] == "D" and r["valid"] and r.get("module_s") and r["round"] in walls["A"])
    out["D/A"] = dict(per_round=per_round, spread=figures.spread(per_round.values()),
                      ratio_of_medians=medians[0] / medians[1] if all(medians) else None,
                      module_over_a=figures.spread(module_over_a.values()))
    return out


def _range(s, spec="%.2f"):
    return (spec + " (" + spec + "-" + spec + ")") % (s["median"], s["min"], s["max"]) if s else "-"


def report(results):
    s = results["summary"]
    print("lab: %(node)s, %(cores)s cores, %(qemu)s" % results["machine"])
    print("disk: 1 GiB qcow2, %d MiB of data written at %d MiB, the writer at %d records/s; default -> spare on hv1"
          % (results["options"]["fill_mib"], FILL_OFFSET_MIB, results["options"]["rate"]))
    print("%-2s %-24s %5s %24s %20s %10s %18s %20s" % (
        "", "contender", "runs", "wall s median (min-max)", "module s (min-max)", "data MiB", "MiB/s of data",
        "writer stall s max"))
    for key, _label in CONTENDERS:
        row = s[key]
        print("%-2s %-24s %5s %24s %20s %10s %18s %20s" % (
            key, row["label"], "%d%s" % (row["runs"], " !%d" % row["invalid"] if row["invalid"] else ""),
            _range(row["wall"]), _range(row["module"]) if key == "D" else "-",
            "%.0f" % row["data_mib"]["median"] if row["data_mib"] else "-", _range(row["data_mib_s"], "%.0f"),
            "%.2f" % row["stall"]["max"] if row["stall"] else "-"))
    ratio = s["D/A"]
    print("D/A same round: %s; median %s; ratio of the medians %s; D's module seconds / A: %s" % (
        " ".join("r%d %.2f" % (rnd, v) for rnd, v in sorted(ratio["per_round"].items())) or "-",
        _range(ratio["spread"]), "%.2f" % ratio["ratio_of_medians"] if ratio["ratio_of_medians"] else "-",
        _range(ratio["module_over_a"])))
    if s["D"]["task"]:
        print("D: the disk_move task itself (Ansible's json callback, task start to result) %s s; the rest of D's wall "
              "is Ansible's start-up and SSH" % _range(s["D"]["task"]))
    for rnd in results["rounds"]:
        print("round %d: order %s, load %s at its start" % (
            rnd["round"], " ".join(rnd["order"]), " ".join("%.2f" % v for v in rnd["loadavg_start"])))
    print("(wall: A on hv1 around virsh, D the ansible command on the controller; MiB/s: data held over wall; "
          "stall: the longest time /diskcheck polled at 20 Hz did not see acked grow, over the runs; "
          "! invalid runs, left out)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each contender, interleaved (default 3)")
    parser.add_argument("--fill-mib", type=int, default=512, help="MiB written into the disk before (default 512)")
    parser.add_argument("--rate", type=int, default=100, help="the writer's records per second (default 100)")
    parser.add_argument("--rest", type=float, default=2.0, help="seconds between a move home and a measurement")
    parser.add_argument("--no-setup", action="store_true", help="skip playbooks/setup.yml on a lab that is not set up")
    parser.add_argument("--keep-guest", action="store_true", help="leave the guest on hv1 at the end")
    parser.add_argument("--json", default=os.path.join(ROOT, ".cache", "bench", "bench-disk-%s.json"
                                                       % datetime.datetime.now().strftime("%Y%m%dT%H%M%S")))
    args = parser.parse_args()
    if args.rounds < 1 or not 1 <= args.fill_mib <= 700 or args.rate < 1:
        parser.error("--rounds must be 1 or more, --fill-mib from 1 to 700 (the disk is 1 GiB, the data starts at "
                     "%d MiB), --rate 1 or more" % FILL_OFFSET_MIB)
    lab_ready(setup=not args.no_setup)
    address, instance = make_guest(args.fill_mib, args.rate)
    results = dict(machine=dict(node=os.uname().nodename, cores=os.cpu_count(),
                                qemu=on("hv1", "virsh -q version | grep -i 'running hypervisor'").stdout.strip()),
                   options=dict(rounds=args.rounds, fill_mib=args.fill_mib, rate=args.rate, rest_s=args.rest,
                                poll_s=POLL_S), runs=[], rounds=[])
    try:
        for round_no in range(1, args.rounds + 1):
            order = ["A", "D"] if round_no % 2 else ["D", "A"]
            results["rounds"].append(dict(round=round_no, order=order,
                                          loadavg_start=[round(v, 2) for v in os.getloadavg()]))
            for key in order:
                time.sleep(args.rest)
                results["runs"].append(measure(key, round_no, address, instance))
                move_home()
    finally:
        if not args.keep_guest:
            sh(LAB, "guest", "rm", GUEST, check=False)
            on("hv1", "rm -f %s/%s.qcow2 %s/%s.qcow2; virsh pool-refresh default >/dev/null; "
               "virsh pool-refresh spare >/dev/null" % (IMAGES, GUEST, SPARE, GUEST), check=False)
    results["summary"] = summarise(results["runs"])
    report(results)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
