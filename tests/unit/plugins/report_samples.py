# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Synthetic runs shaped like what the playbooks gather (engine outcomes as MigrationOutcome.as_dict gives them),
for the HTML report's tests and for looking at the page:

    PYTHONPATH=.build python tests/unit/plugins/report_samples.py /tmp/reports

writes one page per sample (evacuate, maintain, storage, check, big) into the folder given."""

from __future__ import annotations

import os
import sys

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report, report_html
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MigrationOutcome, Move, Plan

RUN_ID = "20261203T020000Z-5e6f7a"
MIB = 1024 * 1024


def outcome(guest, outcome_name, destination, source="hv1", wave=1, **fields):
    """An outcome dict exactly as the evacuate module returns it."""
    move = Move(guest=guest, action="migrate", source=source, destination=destination, wave=wave)
    return MigrationOutcome.of(move, outcome_name, **fields).as_dict()


def rung(value, at_s, why="the dirty set did not shrink in 2 passes"):
    return dict(kind="set_downtime", value=value, reason="at %.1f s: %s" % (at_s, why), at_s=at_s)


def timeline(queued, started, switchover, settle=5.0):
    checked = None if switchover is None else round(switchover + settle, 2)
    done = checked if checked is not None else None
    return dict(queued=queued, started=started, switchover=switchover, checked=checked, done=done)


def eight_guests():
    """Eight moves out of hv1, two at a time: ladder rungs on the busy ones, db2 failed with its reason."""
    spec = [
        # guest, destination, queued, started, copy s, pause ms, MiB, rungs
        ("web1", "hv2", 0.0, 0.4, 2.1, 36, 92, []),
        ("web2", "hv3", 0.0, 0.4, 4.7, 61, 171, []),
        ("cache1", "hv2", 0.0, 2.6, 9.8, 118, 1450, [rung(100, 4.0), rung(200, 6.1)]),
        ("db1", "hv3", 0.0, 5.2, 14.3, 212, 2300, [rung(100, 4.2), rung(200, 6.4), rung(300, 8.5),
                                                   dict(kind="auto_converge", value=20, at_s=10.7,
                                                        reason="at 10.7 s: downtime steps used up")]),
        ("mail1", "hv2", 0.0, 12.5, 3.2, 44, 300, []),
        ("build1", "hv3", 0.0, 15.8, 6.4, 87, 820, [rung(100, 4.1)]),
        ("queue1", "hv2", 0.0, 19.6, 2.8, 29, 210, []),
    ]
    moves = []
    for guest, destination, queued, started, copy, pause, mib, rungs in spec:
        switchover = round(started + copy, 2)
        moves.append(outcome(guest, "migrated", destination, duration_s=copy, downtime_ms=pause,
                             bytes_transferred=mib * MIB, iterations=3 + len(rungs), ladder_steps=rungs,
                             runs_on=[destination], state_after="running",
                             timeline=timeline(queued, started, switchover)))
    moves.insert(5, outcome(
        "db2", "failed", "hv3", duration_s=7.5, bytes_transferred=640 * MIB, iterations=2,
        ladder_steps=[rung(100, 4.0)],
        reason="cannot live-migrate db2 to hv3: operation failed: migration out job: unexpectedly failed",
        runs_on=["hv1"], timeline=dict(queued=0.0, started=19.5, switchover=None, checked=None, done=27.1)))
    return moves


def evacuation(outcomes, source="hv1", kind="evacuate"):
    plan = Plan(kind=kind, source=source if kind == "evacuate" else None, home=source if kind == "restore" else None,
                run_id=RUN_ID).as_dict()
    result = dict(changed=True, run_id=RUN_ID, plan=plan, outcomes=outcomes, remaining=[], empty=True,
                  summary=dict(moves=len(outcomes)), window_changes=[])
    if kind == "evacuate":
        result["maintenance"] = dict(since="2026-12-03T02:00:02Z", run_id=RUN_ID, reason="evacuate")
    else:
        result["maintenance_cleared"] = True
    return result


def evacuate_run():
    """evacuate.yml of hv1: eight guests, ladder rungs, one failed move."""
    return dict(run_id=RUN_ID, playbook="evacuate", started="2026-12-03T02:00:00Z", ended="2026-12-03T02:00:41Z",
                hosts=dict(hv1=dict(evacuate=evacuation(eight_guests()))))


def step(name, started, ended, status="ok", msg=""):
    return dict(name=name, status=status, started="2026-12-03T%s" % started, ended="2026-12-03T%s" % ended, msg=msg)


def maintain_run():
    """rolling_upgrade.yml of hv1 and hv2: both hosts' lanes, hv2's restore with a guest that did not come home."""
    hv1_out = [outcome("web%d" % n, "migrated", "hv%d" % (2 + n % 2), duration_s=2.0 + n, downtime_ms=30 + 7 * n,
                       bytes_transferred=(100 + 60 * n) * MIB, runs_on=["hv2"], state_after="running",
                       timeline=timeline(0.0, 0.3 + 2.5 * (n // 2), 0.3 + 2.5 * (n // 2) + 2.0 + n))
               for n in range(4)]
    hv1_back = [outcome("web%d" % n, "migrated", "hv1", source="hv%d" % (2 + n % 2), duration_s=1.8 + n,
                        downtime_ms=25 + 5 * n, bytes_transferred=(90 + 50 * n) * MIB, runs_on=["hv1"],
                        state_after="running", timeline=timeline(0.0, 0.2 + 6 * n, 0.2 + 6 * n + 1.8 + n))
                for n in range(4)]
    hv2_out = [outcome("app%d" % n, "migrated", "hv3", source="hv2", duration_s=3.0, downtime_ms=48,
                       bytes_transferred=400 * MIB, runs_on=["hv3"], state_after="running",
                       timeline=timeline(0.0, 0.3 + 3.2 * n, 3.3 + 3.2 * n)) for n in range(3)]
    hv2_back = [outcome("app0", "migrated", "hv2", source="hv3", duration_s=2.9, downtime_ms=51,
                        bytes_transferred=390 * MIB, runs_on=["hv2"], state_after="running",
                        timeline=timeline(0.0, 0.2, 3.1)),
                outcome("app1", "failed", "hv2", source="hv3", duration_s=1.2,
                        reason="app1 was reset on hv2 within its settle period", runs_on=["hv2"],
                        state_after="running", timeline=dict(queued=0.0, started=3.3, switchover=4.5, checked=6.0,
                                                             done=6.1)),
                outcome("app2", "not_run", "hv2", source="hv3", reason="the run stopped after app1 failed",
                        timeline=dict(queued=0.0, started=None, switchover=None, checked=None, done=None))]

    def lanes(start_minute, patch_s, reboot_s, last_status="ok"):
        minute = start_minute

        def at(offset):
            total = minute * 60 + offset
            return "02:%02d:%02dZ" % (total // 60, total % 60)

        t = [0, 4, 12, 40, 40 + patch_s, 40 + patch_s + reboot_s, 48 + patch_s + reboot_s,
             70 + patch_s + reboot_s]
        return [step("preflight", at(t[0]), at(t[0] + 3)), step("gate_before", at(t[1]), at(t[2])),
                step("evacuate", at(t[2] + 1), at(t[3])), step("patch", at(t[3] + 1), at(t[4])),
                step("reboot", at(t[4]), at(t[5])), step("gate_after", at(t[5] + 1), at(t[6])),
                step("restore", at(t[6] + 1), at(t[7]), status=last_status,
                     msg="app1 did not come home" if last_status == "failed" else "")]

    gates = [dict(check="libvirtd", host="hv1", ok=True, msg="libvirtd answers"),
             dict(check="cluster_capacity", host="hv1", ok=True, msg="2 of 2 peers in service")]
    return dict(run_id=RUN_ID, playbook="rolling_upgrade", started="2026-12-03T02:00:00Z",
                ended="2026-12-03T02:09:30Z",
                hosts=dict(hv1=dict(steps=lanes(0, 95, 70), gates=gates, evacuate=evacuation(hv1_out),
                                    restore=evacuation(hv1_back, kind="restore")),
                           hv2=dict(steps=lanes(4, 80, 65, "failed"), evacuate=evacuation(hv2_out, source="hv2"),
                                    restore=evacuation(hv2_back, source="hv2", kind="restore"))))


def storage_run():
    """storage_evacuate.yml of hv1: two disks moved, one failed, one refused."""
    moves = [dict(guest="db1", target="vda", source="/var/lib/libvirt/images/db1.qcow2",
                  dest="/srv/spare/db1.qcow2", to_pool="spare", outcome="moved", bytes=4 * 1024 * MIB,
                  seconds=41.2, rate_mib_s=99.4, synchronous=True, source_after="deleted", reason=None),
             dict(guest="db1", target="vdb", source="/var/lib/libvirt/images/db1-data.qcow2",
                  dest="/srv/spare/db1-data.qcow2", to_pool="spare", outcome="moved", bytes=1024 * MIB,
                  seconds=12.0, rate_mib_s=85.3, synchronous=True, source_after="deleted", reason=None),
             dict(guest="web1", target="vda", source="/var/lib/libvirt/images/web1.qcow2",
                  dest="/srv/spare/web1.qcow2", to_pool="spare", outcome="failed", bytes=None, seconds=3.1,
                  rate_mib_s=None, synchronous=False, source_after="kept",
                  reason="block copy of web1 vda failed: no space left on spare")]
    plans = [dict(guest="cd1", refused=[dict(target="hdc", code="readonly", reason="hdc of cd1 is a read-only cdrom")])]
    return dict(run_id=RUN_ID, playbook="storage_evacuate", started="2026-12-03T02:00:00Z",
                ended="2026-12-03T02:01:10Z",
                hosts=dict(hv1=dict(storage=dict(changed=True, moves=moves, plans=plans, failed=True))))


def check_run():
    """evacuate.yml --check of hv1: a plan of three moves, one guest blocked."""
    plan = Plan(kind="evacuate", source="hv1", run_id=RUN_ID).as_dict()
    plan["moves"] = [dict(guest="web%d" % n, action="migrate", source="hv1", destination="hv%d" % (2 + n % 2),
                          wave=1 + n // 2, order=n + 1, memory_mib=1024) for n in range(3)]
    plan["blocked"] = [dict(guest="gpu1", policy="migrate", state="running", reasons=[dict(
        code="host_device", message="gpu1 has a PCI device passed through", guest="gpu1")])]
    return dict(run_id=RUN_ID, playbook="evacuate", check_mode=True, started="2026-12-03T02:00:00Z",
                ended="2026-12-03T02:00:03Z", hosts=dict(hv1=dict(evacuate=dict(changed=True, plan=plan))))


def big_run(count=5000, slots=8):
    """An evacuation of ``count`` guests, ``slots`` at a time, a failure every 97th."""
    moves = []
    for n in range(count):
        started = (n // slots) * 3.0 + (n % slots) * 0.1
        copy = 2.0 + (n * 37 % 23) / 4.0
        if n % 97 == 13:
            moves.append(outcome("guest-%05d" % n, "aborted", "hv%d" % (2 + n % 9), wave=1 + n // 500,
                                 duration_s=copy, bytes_transferred=200 * MIB, ladder_steps=[rung(100, 1.0)],
                                 reason="aborted: no data transferred for guest-%05d for 60 s" % n,
                                 timeline=dict(queued=0.0, started=started, switchover=None, checked=None,
                                               done=started + copy)))
            continue
        moves.append(outcome("guest-%05d" % n, "migrated", "hv%d" % (2 + n % 9), wave=1 + n // 500, duration_s=copy,
                             downtime_ms=20 + n * 13 % 180, bytes_transferred=(300 + n % 700) * MIB,
                             ladder_steps=[rung(100, 1.5)] if n % 5 == 0 else [], runs_on=["hv2"],
                             state_after="running", timeline=timeline(0.0, started, started + copy)))
    return dict(run_id=RUN_ID, playbook="evacuate", started="2026-12-03T02:00:00Z", ended="2026-12-03T02:35:00Z",
                hosts=dict(hv1=dict(evacuate=evacuation(moves))))


SAMPLES = dict(evacuate=evacuate_run, maintain=maintain_run, storage=storage_run, check=check_run, big=big_run)


def main(directory):
    os.makedirs(directory, exist_ok=True)
    for name, make in sorted(SAMPLES.items()):
        path = os.path.join(directory, name + ".html")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(report_html.render(report.build(make())))
        print(path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
