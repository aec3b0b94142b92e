# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report role at the end of a run, in a real ansible-playbook on localhost (tests/playbooks/report_run.yml, two
hosts one per batch as evacuate.yml runs them): what its last line says, the summary it gives the playbook's stats
once for the whole run (not added up across batches, and also when the run stops at a failed host), and, with
ARA's callback on, the report attached to the playbook in ARA's database.

ARA is not in the project's venv: the ARA test installs it (ARA_REQUIREMENT, with its server extra for the local
SQLite database) with ``pip install --target`` into .build/ara/<version>, kept for the next run, and points Ansible
at its callback and action plugins the way ``python3 -m ara.setup.env`` does."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zlib

import pytest

from ansible_collections.hostmaint.libvirt.tests.unit.plugins import report_samples

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK = os.path.join(ROOT, "tests", "playbooks", "report_run.yml")
BIN = os.path.dirname(sys.executable)

# ara 1.8.0 (PyPI, 2025) is the release that runs its callback on ansible-core 2.19 (checked here: its callback and
# ara_record recorded this test's playbook); its server extra brings Django 5.2 for the local SQLite database.
ARA_VERSION = "1.8.0"
ARA_REQUIREMENT = "ara[server]==%s" % ARA_VERSION


def results(folder, kind="evacuate"):
    """hv1's and hv2's engine results as the playbook reads them (hostmaint_test_results/<host>.json)."""
    if kind == "storage":
        data = dict(hv1=report_samples.storage_run()["hosts"]["hv1"]["storage"],
                    hv2=dict(changed=True, moves=[dict(guest="app1", target="vda", outcome="moved", bytes=1024,
                                                       seconds=2.0, to_pool="spare", synchronous=True)], plans=[]))
    else:
        data = dict(hv1=report_samples.evacuation(report_samples.eight_guests()),
                    hv2=report_samples.maintain_run()["hosts"]["hv2"]["evacuate"])
    os.makedirs(str(folder), exist_ok=True)
    for host, result in data.items():
        (folder / (host + ".json")).write_text(json.dumps(result))
    return str(folder)


def play(tmp_path, *extra, env=None, kind="evacuate"):
    """Run the playbook with the json stdout callback; returns (return code, its JSON output, the reports folder)."""
    reports = tmp_path / "reports"
    command = [os.path.join(BIN, "ansible-playbook"), "-i", "hv1,hv2,", "-e", "ansible_connection=local",
               "-e", "ansible_python_interpreter=" + sys.executable, "-e", "hostmaint_test_kind=" + kind,
               "-e", "hostmaint_test_results=" + results(tmp_path / "results", kind),
               "-e", "hostmaint_report_dir=%s" % reports, "-e", "hostmaint_run_id=20261203T020000Z-evacuate-abcdef",
               PLAYBOOK] + list(extra)
    environment = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_SHOW_CUSTOM_STATS="1",
                       ANSIBLE_NOCOLOR="1", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                       ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH",
                                                               os.path.join(ROOT, ".build")))
    for key in ("ANSIBLE_CALLBACK_PLUGINS", "ANSIBLE_ACTION_PLUGINS", "ANSIBLE_CALLBACKS_ENABLED"):
        environment.pop(key, None)
    environment.update(env or {})
    done = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=str(tmp_path), timeout=300,
                          check=False)
    try:
        output = json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        raise AssertionError("no JSON from ansible-playbook: %s %s" % (done.stdout[-3000:], done.stderr[-3000:]))
    return done.returncode, output, reports, done.stderr


def task_results(output, name):
    """[(host, result)] of the tasks whose name ends with name, in the order they ran."""
    return [(host, result) for play_data in output["plays"] for task in play_data["tasks"]
            if task["task"]["name"].endswith(name) for host, result in task["hosts"].items()]


def ran(output, name):
    return [(host, result) for host, result in task_results(output, name) if not result.get("skipped")]


def test_the_whole_runs_summary_is_set_once_and_the_last_line_names_the_html_report(tmp_path):
    code, output, reports, _err = play(tmp_path)
    assert code == 0
    stats = output["global_custom_stats"]["hostmaint_run"]
    # hv1 moved 7 (db2 failed), hv2 3: the second batch's report holds both hosts, set once, not added up
    assert (stats["moved"], stats["failed"], stats["blocked"], stats["status"]) == (10, 1, 0, "failed")
    assert stats["worst_pause"]["guest"] == "db1" and stats["worst_pause"]["downtime_ms"] == 212
    assert stats["reports"] == dict(json=str(reports / "20261203T020000Z-evacuate-abcdef.json"),
                                    markdown=str(reports / "20261203T020000Z-evacuate-abcdef.md"),
                                    html=str(reports / "20261203T020000Z-evacuate-abcdef.html"))
    assert "disks_moved" not in stats and stats["run_id"] == "20261203T020000Z-evacuate-abcdef"
    assert [host for host, _result in ran(output, "Give the run's summary to the playbook's stats")] == ["hv2"]
    assert sorted(os.listdir(str(reports))) == sorted(os.path.basename(path) for path in stats["reports"].values())
    said = [result["msg"] for _host, result in ran(output, "and where the report is")]
    assert said[-1] == ("failed: 10 guest(s) moved, 1 failed, worst pause 212 ms (db1); report %s (JSON %s, HTML %s)"
                        % (stats["reports"]["markdown"], stats["reports"]["json"], stats["reports"]["html"]))
    # no ARA here: its task file is not even included
    assert not ran(output, "Attach the report to the playbook in ARA")


def test_a_run_that_stops_at_a_failed_host_still_sets_its_summary(tmp_path):
    code, output, _reports, _err = play(tmp_path, "-e", "hostmaint_test_fail=hv1")
    assert code != 0
    assert [host for host, _result in ran(output, "Give the run's summary to the playbook's stats")] == ["hv1"]
    stats = output["global_custom_stats"]["hostmaint_run"]
    assert (stats["moved"], stats["failed"]) == (7, 1)  # hv2 never ran: the play stopped after hv1's batch


def test_a_storage_run_counts_disks_not_guests(tmp_path):
    code, output, _reports, _err = play(tmp_path, kind="storage")
    assert code == 0
    said = [result["msg"] for _host, result in ran(output, "and where the report is")]
    assert said[-1].startswith("failed: 3 disk(s) moved, 1 failed, 1 refused; report ")
    assert "guest(s)" not in said[-1]
    stats = output["global_custom_stats"]["hostmaint_run"]
    assert (stats["disks_moved"], stats["disks_failed"], stats["moved"]) == (3, 1, 0)


@pytest.fixture(scope="module")
def ara():
    """ARA installed with pip --target into .build/ara/<version> (once; later runs reuse it): its folder."""
    target = os.path.join(ROOT, ".build", "ara", ARA_VERSION)
    marker = os.path.join(target, ".installed")
    if not os.path.exists(marker):
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               "--no-warn-script-location", "--target", target, ARA_REQUIREMENT],
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, "pip could not install %s from PyPI: %s" % (ARA_REQUIREMENT, done.stderr[-3000:])
        with open(marker, "w") as handle:
            handle.write(ARA_REQUIREMENT + "\n")
    return target


def test_with_aras_callback_the_report_is_attached_to_the_playbook(tmp_path, ara):
    base = tmp_path / "ara"
    paths = [ara] + [path for path in os.environ.get("PYTHONPATH", "").split(os.pathsep) if path]
    env = dict(PYTHONPATH=os.pathsep.join(paths),
               ANSIBLE_CALLBACK_PLUGINS=os.path.join(ara, "ara", "plugins", "callback"),
               ANSIBLE_ACTION_PLUGINS=os.path.join(ara, "ara", "plugins", "action"),
               ARA_API_CLIENT="offline", ARA_BASE_DIR=str(base), ARA_DEBUG="false")
    code, output, reports, err = play(tmp_path, env=env)
    assert code == 0, err[-3000:]
    attached = ran(output, "Attach the JSON report to the playbook in ARA")
    assert [host for host, _result in attached] == ["hv1", "hv2"], err[-3000:]  # once per batch, updating it
    database = sqlite3.connect(str(base / "ansible.sqlite"))
    try:
        playbooks = database.execute("SELECT id, path FROM playbooks").fetchall()
        records = dict((key, (kind, playbook, value)) for key, kind, playbook, value in
                       database.execute("SELECT key, type, playbook_id, value FROM records"))
    finally:
        database.close()
    assert len(playbooks) == 1 and playbooks[0][1] == PLAYBOOK
    assert sorted(records) == ["hostmaint_report", "hostmaint_report_html"]
    kind, playbook, value = records["hostmaint_report"]
    assert kind == "json" and playbook == playbooks[0][0]
    with open(str(reports / "20261203T020000Z-evacuate-abcdef.json")) as handle:
        written = json.load(handle)
    recorded = json.loads(zlib.decompress(value).decode("utf-8"))
    assert recorded == written and sorted(recorded["hosts"]) == ["hv1", "hv2"]  # the whole run's, from hv2's batch
    kind, playbook, value = records["hostmaint_report_html"]
    assert (kind, playbook) == ("text", playbooks[0][0])
    assert json.loads(zlib.decompress(value).decode("utf-8")) == str(reports / "20261203T020000Z-evacuate-abcdef.html")
