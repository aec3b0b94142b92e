# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report: what the operator reads in the JSON and the Markdown, from results shaped like the engine's."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import MigrationOutcome, Move, Plan

RUN_ID = "20261125T180000Z-1a2b3c"


def outcome(guest, outcome_name, destination, **fields):
    """An outcome dict exactly as the evacuate module returns it (MigrationOutcome.as_dict)."""
    move = Move(guest=guest, action="migrate", source=fields.pop("source", "hv1"), destination=destination, wave=1)
    return MigrationOutcome.of(move, outcome_name, **fields).as_dict()


def evacuation(outcomes, **changes):
    """A successful evacuate result for hv1, as registered."""
    plan = Plan(kind="evacuate", source="hv1", run_id=RUN_ID).as_dict()
    result = dict(changed=True, run_id=RUN_ID, plan=plan, outcomes=outcomes, remaining=[], empty=True,
                  maintenance=dict(since="2026-11-25T18:00:00Z", run_id=RUN_ID, reason="evacuate"),
                  summary=dict(moves=len(outcomes)), window_changes=[])
    result.update(changes)
    return result


def moved_two():
    return [
        outcome("web1", "migrated", "hv2", duration_s=2.1, downtime_ms=36, bytes_transferred=96676954,
                runs_on=["hv2"], state_after="running",
                timeline=dict(queued=0.0, started=0.41, switchover=2.51, checked=7.52, done=7.53)),
        outcome("web2", "migrated", "hv3", duration_s=4.7, downtime_ms=61, bytes_transferred=180000000,
                runs_on=["hv3"], state_after="running"),
    ]


def run_of(hosts, playbook="evacuate", **changes):
    run = dict(run_id=RUN_ID, playbook=playbook, started="2026-11-25T18:00:00Z", ended="2026-11-25T18:02:10Z",
               hosts=hosts)
    run.update(changes)
    return run


def test_a_clean_evacuation_has_its_moves_in_the_table_and_the_host_left_in_maintenance():
    built = report.build(run_of({"hv1": {"evacuate": evacuation(moved_two())}}))
    assert built["status"] == "ok" and built["duration_s"] == 130.0
    assert built["hosts"]["hv1"]["maintenance"] is True
    web1 = built["hosts"]["hv1"]["moves"][0]
    assert (web1["guest"], web1["source"], web1["destination"], web1["outcome"]) == ("web1", "hv1", "hv2", "migrated")
    assert web1["timeline"] == dict(queued=0.0, started=0.41, switchover=2.51, checked=7.52, done=7.53)
    assert built["totals"]["moved"] == 2 and built["totals"]["failed"] == 0
    assert built["totals"]["bytes_transferred"] == 96676954 + 180000000
    assert built["next_steps"] == ["hv1 is still in maintenance: run playbooks/restore.yml -l hv1 once it is healthy."]
    text = report.markdown(built)
    assert text.startswith("# evacuate run %s: ok\n" % RUN_ID)
    assert "| guest | from | to | outcome | pause ms | took s |" in text
    assert "| web1 | hv1 | hv2 | migrated | 36 | 2.1 |" in text
    assert "| web2 | hv1 | hv3 | migrated | 61 | 4.7 |" in text
    assert "- Started 2026-11-25T18:00:00Z, ended 2026-11-25T18:02:10Z (130.0 s)" in text
    assert "1. hv1 is still in maintenance: run playbooks/restore.yml -l hv1 once it is healthy." in text


def test_the_worst_pause_and_the_longest_move_name_their_guest():
    slow = outcome("db1", "migrated", "hv2", duration_s=42.34, downtime_ms=12, bytes_transferred=10)
    failed_long = outcome("web3", "aborted", "hv3", duration_s=120.0, reason="did not converge in 120 s",
                          runs_on=["hv1"])
    built = report.build(run_of({"hv1": {"evacuate": evacuation(moved_two() + [slow, failed_long])}}))
    totals = built["totals"]
    assert totals["worst_pause"] == dict(guest="web2", host="hv1", kind="evacuate", source="hv1", destination="hv3",
                                         downtime_ms=61)
    # an aborted migration is not a move that happened: the longest one is db1's
    assert totals["longest_move"]["guest"] == "db1" and totals["longest_move"]["duration_s"] == 42.34
    text = report.markdown(built)
    assert "- Worst pause: web2, 61 ms (hv1 -> hv3)" in text
    assert "- Longest move: db1, 42.3 s (hv1 -> hv2)" in text


def test_a_failed_move_gives_its_reason_where_it_runs_and_how_to_retry():
    aborted = outcome("web3", "aborted", "hv3", duration_s=120.0,
                      reason="migration of web3 to hv3 did not converge in 120 s", runs_on=["hv1"])
    result = evacuation(moved_two() + [aborted], remaining=["web3"], empty=False, failed=True,
                        msg="hv1 is not empty: web3 still run there")
    built = report.build(run_of({"hv1": {"evacuate": result}}))
    assert built["status"] == "failed" and built["hosts"]["hv1"]["status"] == "failed"
    assert built["totals"]["failed"] == 1 and built["totals"]["moved"] == 2
    assert dict(host="hv1", what="move", name="web3", outcome="aborted", source="hv1", destination="hv3",
                reason="migration of web3 to hv3 did not converge in 120 s") in built["failures"]
    assert built["next_steps"] == [
        "web3 did not move (migration of web3 to hv3 did not converge in 120 s): it runs on hv1; fix the cause, "
        "then run playbooks/evacuate.yml -l hv1 again.",
        "hv1 is still in maintenance: run playbooks/restore.yml -l hv1 once it is healthy.",
    ]
    text = report.markdown(built)
    assert "| web3 | hv1 | hv3 | aborted | - | 120.0 |" in text
    assert "- web3 (hv1 -> hv3): aborted: migration of web3 to hv3 did not converge in 120 s" in text
    assert "- evacuate on hv1: hv1 is not empty: web3 still run there" in text


def test_a_plan_that_cannot_proceed_names_the_blocked_guest_and_leaves_no_maintenance():
    plan = Plan(kind="evacuate", source="hv1", run_id=RUN_ID).as_dict()
    plan["blocked"] = [dict(guest="db9", policy="migrate", state="running", reasons=[
        dict(code="memory", guest="db9", destination="hv2",
             message="cannot live-migrate db9 to hv2: destination has 512 MiB free, guest needs 2048 MiB"),
        dict(code="memory", guest="db9", destination="hv3",
             message="cannot live-migrate db9 to hv3: destination has 1024 MiB free, guest needs 2048 MiB")])]
    result = dict(failed=True, changed=False, run_id=RUN_ID, plan=plan,
                  msg="cannot evacuate hv1: 1 guest(s) cannot be placed, nothing was moved: db9 (...)")
    built = report.build(run_of({"hv1": {"evacuate": result}}))
    assert built["status"] == "failed"
    assert built["hosts"]["hv1"]["maintenance"] is None  # the mark was rolled back: nothing says it is set
    blocked = built["hosts"]["hv1"]["blocked"][0]
    assert blocked["codes"] == ["memory"]
    assert blocked["reason"] == ("cannot live-migrate db9 to hv2: destination has 512 MiB free, guest needs 2048 MiB; "
                                 "cannot live-migrate db9 to hv3: destination has 1024 MiB free, guest needs 2048 MiB")
    assert len(built["next_steps"]) == 1
    assert built["next_steps"][0].startswith("db9 cannot leave hv1 (cannot live-migrate db9 to hv2: ")
    assert built["next_steps"][0].endswith("then run playbooks/evacuate.yml -l hv1 again.")
    assert "No guest moved." in report.markdown(built)
    assert "- db9 on hv1: blocked (memory): cannot live-migrate db9 to hv2" in report.markdown(built)


def test_a_maintain_run_that_brought_the_guests_home_leaves_nothing_to_do():
    restore = dict(changed=True, run_id=RUN_ID, plan=Plan(kind="restore", home="hv1").as_dict(),
                   outcomes=[outcome("web1", "migrated", "hv1", source="hv2", duration_s=1.5, downtime_ms=20)],
                   maintenance_cleared=True, home=["web1"], records_cleared=["web1"])
    built = report.build(run_of({"hv1": {"evacuate": evacuation(moved_two()), "restore": restore}},
                                playbook="maintain"))
    assert built["status"] == "ok" and built["hosts"]["hv1"]["maintenance"] is False
    assert built["next_steps"] == []
    assert [(m["kind"], m["guest"]) for m in built["hosts"]["hv1"]["moves"]] == [
        ("evacuate", "web1"), ("evacuate", "web2"), ("restore", "web1")]
    assert "Nothing left to do." in report.markdown(built)


def test_a_guest_that_cannot_come_home_makes_the_run_partial():
    plan = Plan(kind="restore", home="hv1").as_dict()
    plan["not_home"] = [dict(guest="db1", policy="migrate", state="running", reasons=[
        dict(code="capacity", guest="db1", destination="hv1", message="hv1 has 900 MiB free, db1 needs 4096 MiB")])]
    restore = dict(changed=False, run_id=RUN_ID, plan=plan, outcomes=[], maintenance_cleared=True, home=[])
    built = report.build(run_of({"hv1": {"restore": restore}}, playbook="restore"))
    assert built["status"] == "partial" and built["totals"]["blocked"] == 1
    assert built["next_steps"] == [
        "db1 cannot come home to hv1 (hv1 has 900 MiB free, db1 needs 4096 MiB): it keeps running where it is; "
        "make room on hv1, then run playbooks/restore.yml -l hv1 again."]


def test_a_failed_restore_move_points_at_restore():
    failed = outcome("web1", "failed", "hv1", source="hv2", reason="web1 was reset on hv1 within its settle period",
                     downtime_ms=40, runs_on=["hv1"])
    restore = dict(changed=True, run_id=RUN_ID, plan=Plan(kind="restore", home="hv1").as_dict(), outcomes=[failed],
                   maintenance_cleared=True)
    built = report.build(run_of({"hv1": {"restore": restore}}, playbook="maintain"))
    assert built["status"] == "failed"
    assert built["next_steps"] == [
        "web1 did not come home to hv1 (web1 was reset on hv1 within its settle period): it runs on hv1; "
        "fix the cause, then run playbooks/restore.yml -l hv1 again."]
    # a guest that landed and was reset did pause: that pause counts
    assert built["totals"]["worst_pause"]["downtime_ms"] == 40 and built["totals"]["longest_move"] is None


def test_moves_left_queued_and_moves_blocked_mid_run_make_the_run_partial():
    outcomes = moved_two() + [
        outcome("web4", "blocked", None, reason="hv3 left the run and no other host can take web4", runs_on=["hv1"]),
        outcome("web5", "not_run", "hv2"),
    ]
    built = report.build(run_of({"hv1": {"evacuate": evacuation(outcomes, allow_partial=True)}}))
    assert built["status"] == "partial"
    assert built["totals"]["blocked"] == 1 and built["totals"]["not_run"] == 1
    assert ("web4 could not be placed once its destination left the run (hv3 left the run and no other host can "
            "take web4): make room, then run playbooks/evacuate.yml -l hv1 again.") in built["next_steps"]
    assert ("web5 was not moved (the run stopped before its turn): once the failures above are fixed, run "
            "playbooks/evacuate.yml -l hv1 again.") in built["next_steps"]


def test_a_gate_that_did_not_pass_and_a_failed_step_fail_the_run():
    hosts = {
        "hv1": {"evacuate": evacuation(moved_two()),
                "steps": [dict(name="Upgrade packages", status="failed", started="2026-11-25T18:01:00Z",
                               ended="2026-11-25T18:01:30Z", msg="E: dpkg was interrupted")]},
        "hv2": {"gates": [dict(check="libvirtd", ok=False, msg="libvirtd does not answer")]},
    }
    built = report.build(run_of(hosts, playbook="rolling_upgrade"))
    assert built["status"] == "failed"
    assert built["hosts"]["hv2"]["status"] == "failed" and built["hosts"]["hv2"]["gates"][0]["host"] == "hv2"
    assert built["hosts"]["hv1"]["steps"][0]["duration_s"] == 30.0
    assert built["totals"]["steps_failed"] == 1 and built["totals"]["gates_failed"] == 1
    assert built["next_steps"] == [
        "hv1: step 'Upgrade packages' failed (E: dpkg was interrupted): fix that, then run "
        "playbooks/rolling_upgrade.yml -l hv1 again.",
        "hv1 is still in maintenance: run playbooks/restore.yml -l hv1 once it is healthy.",
        "hv2 did not pass the libvirtd check (libvirtd does not answer): fix that, then run "
        "playbooks/rolling_upgrade.yml -l hv2 again.",
    ]
    text = report.markdown(built)
    assert "- hv1, step 'Upgrade packages': E: dpkg was interrupted" in text
    assert "- hv2, gate libvirtd: libvirtd does not answer" in text


def test_a_check_mode_run_lists_the_planned_moves_and_changes_nothing():
    plan = Plan(kind="evacuate", source="hv1").as_dict()
    plan["moves"] = [dict(guest="web1", action="migrate", source="hv1", destination="hv2", wave=1, order=1),
                     dict(guest="lic1", action="shutdown", source="hv1", destination=None, wave=1, order=2)]
    result = dict(changed=True, run_id=RUN_ID, plan=plan, maintenance=None, empty=True, remaining=[])
    built = report.build(run_of({"hv1": {"evacuate": result}}))
    assert built["check_mode"] is True and built["status"] == "ok"
    assert built["totals"]["planned"] == 2 and built["totals"]["moves"] == 0
    assert built["hosts"]["hv1"]["maintenance"] is False
    text = report.markdown(built)
    assert "(check mode, nothing changed)" in text.splitlines()[0]
    assert "| web1 | hv1 | hv2 | planned | - | - |" in text
    assert "| lic1 | hv1 | - | planned (shutdown) | - | - |" in text
    assert built["next_steps"] == ["This was a check-mode run and changed nothing: run the playbook without "
                                   "--check to carry out the plan."]


@pytest.mark.parametrize("result", [
    None,
    {},
    {"skipped": True},
    {"skipped": True, "skip_reason": "Conditional result was False"},
    "not a result",
    {"failed": True},
    {"failed": True, "msg": "cannot connect to libvirt at qemu:///system: no route"},
    {"failed": True, "msg": ["a", "b"], "outcomes": [None, "x", {}]},
    {"unreachable": True, "msg": "ssh: connect to host hv1 port 22: No route to host"},
    {"plan": None, "outcomes": None},
    {"plan": {"moves": "x", "blocked": [None], "skipped": [{}]},
     "outcomes": [{"outcome": "migrated", "downtime_ms": "12"}]},
])
def test_any_shape_of_result_gives_a_report(result):
    run = run_of({"hv1": {"evacuate": result, "restore": result, "steps": [None, {}], "gates": [None, {}]}})
    built = report.build(run)
    assert built["status"] in report.STATUSES
    json.loads(report.to_json(built))
    assert report.markdown(built).startswith("# evacuate run %s: " % RUN_ID)


def test_a_module_failure_without_details_says_what_to_do():
    built = report.build(run_of({"hv1": {"evacuate": {"failed": True, "msg": "cannot connect to libvirt: no route"}}}))
    assert built["status"] == "failed"
    assert built["next_steps"] == ["evacuate failed on hv1 (cannot connect to libvirt: no route): fix the cause, then "
                                   "run playbooks/evacuate.yml -l hv1 again."]


def test_a_skipped_result_is_neither_a_failure_nor_a_next_step():
    built = report.build(run_of({"hv1": {"evacuate": {"skipped": True, "changed": False}}}))
    assert built["status"] == "ok" and built["next_steps"] == [] and built["failures"] == []
    assert built["hosts"]["hv1"]["evacuate"]["status"] == "skipped"


def all_keys(value, hosts=False):
    """Every dict key in value, the host names (the keys of ``hosts``) aside."""
    keys = []
    if isinstance(value, dict):
        for key, item in value.items():
            if not hosts:
                keys.append(key)
            keys += all_keys(item, hosts=(key == "hosts" and not hosts))
    elif isinstance(value, list):
        for item in value:
            keys += all_keys(item)
    return keys


def test_no_secret_reaches_the_report():
    result = evacuation(moved_two(), invocation={"module_args": {"tls_password": "hunter2"}})
    result["outcomes"][0]["Password"] = "hunter2"
    result["outcomes"][0]["ladder_steps"] = [dict(kind="set_downtime", value=100, api_token="hunter2")]
    result["plan"]["secret"] = "hunter2"
    result["maintenance"]["private_key"] = "hunter2"
    run = run_of({"keystone1": {
        "evacuate": result,
        "steps": [dict(name="Evacuate", status="changed", password="hunter2")],
        "gates": [dict(check="tls", ok=True, msg="certificate valid", key_file="/etc/pki/hunter2.pem")],
        "password": "hunter2",
    }}, password="hunter2", vault_token="hunter2")
    before = copy.deepcopy(run)
    built = report.build(run)
    for text in (report.to_json(built), report.markdown(built)):
        assert "hunter2" not in text and "password" not in text.lower()
    keys = all_keys(json.loads(report.to_json(built)))
    assert keys and not [key for key in keys if any(word in key.lower() for word in report.SECRET_WORDS)]
    # a host name is data, not a key to scrub
    assert list(built["hosts"]) == ["keystone1"] and built["hosts"]["keystone1"]["moves"][0]["guest"] == "web1"
    assert run == before  # the input is not changed


def test_a_pipe_in_a_reason_does_not_break_the_table():
    failed = outcome("web|3", "failed", "hv3", reason="libvirt said: a | b\nthen c")
    text = report.markdown(report.build(run_of({"hv1": {"evacuate": evacuation([failed])}})))
    assert "| web\\|3 | hv1 | hv3 | failed | - | 0.0 |" in text
    assert "- web|3 (hv1 -> hv3): failed: libvirt said: a | b then c" in text


def test_the_same_run_gives_the_same_bytes():
    run = run_of({"hv2": {"evacuate": evacuation(moved_two())}, "hv1": {"evacuate": evacuation(moved_two())}})
    assert report.to_json(report.build(run)) == report.to_json(report.build(copy.deepcopy(run)))
    assert list(report.build(run)["hosts"]) == ["hv1", "hv2"]


@pytest.mark.parametrize("started, ended, seconds", [
    ("2026-11-25T18:00:00Z", "2026-11-25T18:02:10Z", 130.0),
    ("2026-11-25T18:00:00+00:00", "2026-11-25T19:00:00.500000+01:00", 0.5),
    ("2026-11-25T18:00:00", "2026-11-25T18:00:01Z", 1.0),
    ("2026-11-25 18:00:00.250000", "2026-11-25 18:00:01", 0.75),
    ("2026-11-25T18:00:10Z", "2026-11-25T18:00:00Z", None),
    ("yesterday", "2026-11-25T18:00:00Z", None),
    (None, "2026-11-25T18:00:00Z", None),
])
def test_duration_from_iso_times(started, ended, seconds):
    built = report.build(dict(run_id=RUN_ID, started=started, ended=ended))
    assert built["duration_s"] == seconds


@pytest.mark.parametrize("value, name", [
    ("evacuate", "evacuate"), ("evacuate.yml", "evacuate"), ("playbooks/rolling_upgrade.yaml", "rolling_upgrade"),
    (None, None), ("", None),
])
def test_playbook_name(value, name):
    assert report.playbook_name(value) == name


def test_an_unknown_playbook_still_gives_a_retry():
    built = report.build(dict(run_id=RUN_ID, hosts={"hv1": {"gates": [dict(check="ping", ok=False)]}}))
    assert built["next_steps"] == ["hv1 did not pass the ping check: fix that, then run the playbook with -l hv1 "
                                   "again."]
    assert report.markdown(built).startswith("# maintenance run %s: failed" % RUN_ID)


@pytest.mark.parametrize("run_id, names", [
    (RUN_ID, (RUN_ID + ".json", RUN_ID + ".md", RUN_ID + ".html")),
    ("a/b", ("a-b.json", "a-b.md", "a-b.html")),
    ("../../etc/passwd", ("etc-passwd.json", "etc-passwd.md", "etc-passwd.html")),
    ("2026-11-25T18:00:00Z", ("2026-11-25T18-00-00Z.json", "2026-11-25T18-00-00Z.md", "2026-11-25T18-00-00Z.html")),
    (".hidden run", ("hidden-run.json", "hidden-run.md", "hidden-run.html")),
    (12345, ("12345.json", "12345.md", "12345.html")),
])
def test_file_names_are_safe(run_id, names):
    assert report.file_names(run_id) == names


@pytest.mark.parametrize("run_id", ["", "..", "///", " ", None, "-.-"])
def test_a_run_id_that_cannot_name_a_file_is_rejected(run_id):
    with pytest.raises(HostmaintError) as info:
        report.file_names(run_id)
    assert "cannot name a report file" in info.value.message


@pytest.mark.parametrize("run, message", [
    (dict(playbook="evacuate"), "cannot build the run report: the run has no run_id"),
    (dict(run_id=None), "cannot build the run report: the run has no run_id"),
    (dict(run_id="   "), "cannot build the run report: the run has no run_id"),
    (None, "cannot build the run report: the run must be a dict, got NoneType"),
    (dict(run_id="/"), "run id '/' cannot name a report file: it has no letter or digit"),
])
def test_bad_runs_fail_with_one_sentence(run, message):
    with pytest.raises(HostmaintError) as info:
        report.build(run)
    assert info.value.message == message


def test_summary_is_the_totals_with_the_status():
    built = report.build(run_of({"hv1": {"evacuate": evacuation(moved_two())}}))
    summary = report.summary(built)
    assert summary["status"] == "ok" and summary["moved"] == 2 and summary["worst_pause"]["guest"] == "web2"


def disk_result(*moves, refused=()):
    return dict(changed=True, moves=list(moves), plans=[dict(guest="web1", refused=list(refused), copies=[])])


def disk_row(guest, outcome_name, **fields):
    row = dict(guest=guest, target="vda", source="/old/%s.qcow2" % guest, dest="/new/%s.qcow2" % guest, to_pool="new",
               outcome=outcome_name, bytes=512 << 20, job_bytes=1 << 30, seconds=4.0, rate_mib_s=256.0,
               synchronous=False, source_after="kept", reason="%s %s" % (guest, outcome_name))
    row.update(fields)
    return row


def test_disk_moves_are_rows_of_their_host_with_their_figures_and_totals():
    built = report.build(run_of({"hv1": dict(storage=disk_result(disk_row("web1", "moved"),
                                                                 disk_row("db1", "moved", synchronous=True)))},
                                playbook="storage_evacuate"))
    rows = built["hosts"]["hv1"]["disk_moves"]
    assert [(r["guest"], r["outcome"], r["host"]) for r in rows] == [("web1", "moved", "hv1"), ("db1", "moved", "hv1")]
    assert built["status"] == "ok" and built["totals"]["disks_moved"] == 2 and built["totals"]["disk_bytes"] == 1 << 30
    text = report.markdown(built)
    assert "## Disk moves" in text and "| hv1 | db1 | vda | new | moved | 512.0 MiB | 4.0 | 256.0 | yes | kept |" in text


def test_a_failed_disk_move_fails_the_host_and_a_refused_disk_makes_it_partial():
    failed = report.build(run_of({"hv1": dict(storage=disk_result(disk_row("web1", "aborted", bytes=None)))}))
    assert failed["status"] == "failed" and failed["totals"]["disks_failed"] == 1
    assert failed["failures"][0]["what"] == "disk" and failed["failures"][0]["reason"] == "web1 aborted"
    refused = report.build(run_of({"hv1": dict(storage=disk_result(refused=[dict(
        target="vdb", code="shareable", reason="vdb of web1 is shareable")]))}))
    assert refused["status"] == "partial" and refused["totals"]["disks_refused"] == 1
    assert any("vdb of web1 stays where it is" in s for s in refused["next_steps"])


def test_a_roll_reports_its_forecast_beside_the_time_it_took_and_the_hosts_it_left_empty():
    from ansible_collections.hostmaint.libvirt.plugins.module_utils import report_html, roll  # pylint: disable=import-outside-toplevel
    state = roll.new([dict(name=h, cluster="c", capacity_mib=8192) for h in ("hv1", "hv2", "hv3")],
                     [dict(name="a", host="hv1", memory_mib=512), dict(name="b", host="hv2", memory_mib=512)],
                     return_mode="stay")
    for host, moves in (("hv1", {"a": "hv2"}), ("hv2", {"a": "hv1", "b": "hv1"}), ("hv3", {})):
        state = roll.apply(state, host, "enter", turn=roll.decide(state, host, "enter"), at="t")
        state = roll.apply(state, host, "drain", at="t")
        state = roll.apply(state, host, "drained", moves=[dict(guest=g, destination=d, outcome="migrated")
                                                          for g, d in moves.items()], at="t")
        state = roll.apply(roll.apply(state, host, "upgraded"), host, "restored")
    plan = dict(options=state["options"], order=state["order"],
                forecast=dict(makespan_s=100.0, range_s=[90.0, 120.0], calibration="the lab"))
    built = report.build(run_of({}, playbook="rolling_upgrade", started="2026-12-07T10:00:00Z",
                                ended="2026-12-07T10:01:50Z", roll=dict(plan=plan, state=state)))
    rolled = built["roll"]
    assert rolled["forecast_s"] == 100.0 and rolled["forecast_range_s"] == [90.0, 120.0]
    assert rolled["measured_s"] == 110.0 and rolled["empty_at_end"] == ["hv2", "hv3"]
    assert rolled["turns"][0] == dict(host="hv1", what="entered", at="t", note=None)
    assert "hv2, hv3 end the roll with no guest (guests stayed on the upgraded hosts): they are ready to take " \
           "guests again" in built["next_steps"]
    assert ("- Roll: 1 host(s) of a cluster at once, guests stay where they land; forecast 100.0 s (90.0 to 120.0 s, "
            "calibrated on the lab), took 110.0 s; empty at the end: hv2, hv3") in report.markdown(built)
    page = report_html.render(built)
    assert "roll: 1 host(s) of a cluster at once; guests stay where they land; forecast " in page
    assert "; empty at the end: hv2, hv3</p>" in page
    assert report.build(run_of({}))["roll"] is None
