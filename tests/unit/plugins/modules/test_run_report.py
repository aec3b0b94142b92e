# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_report end to end: the files it leaves in a temporary folder and the JSON the module prints."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.hostmaint.libvirt.plugins.modules import run_report

RUN_ID = "20261125T180000Z-1a2b3c"

OUTCOME = dict(guest="web1", action="migrate", source="hv1", destination="hv2", wave=1, outcome="migrated", moved=True,
               duration_s=2.1, downtime_ms=36, bytes_transferred=96676954, iterations=3, ladder_steps=[], reason=None,
               runs_on=["hv2"], state_after="running",
               timeline=dict(queued=0.0, started=0.41, switchover=2.51, checked=7.52, done=7.53))


def a_run(**changes):
    evacuate = dict(changed=True, run_id=RUN_ID, outcomes=[OUTCOME], remaining=[], empty=True,
                    maintenance=dict(since="2026-11-25T18:00:00Z", run_id=RUN_ID, reason="evacuate"),
                    plan=dict(kind="evacuate", source="hv1", moves=[], blocked=[], skipped=[], not_home=[]))
    run = dict(run_id=RUN_ID, playbook="evacuate", started="2026-11-25T18:00:00Z", ended="2026-11-25T18:00:09Z",
               hosts=dict(hv1=dict(evacuate=evacuate, gates=[dict(check="tls", ok=True, msg="ok",
                                                                  tls_password="hunter2")])))
    run.update(changes)
    return run


def run_module(capsys, args, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exit_info:
            run_report.RunReport().execute()
    return exit_info.value.code, json.loads(capsys.readouterr().out)


def files(directory):
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else None


def test_writes_the_three_files_with_the_moves_and_the_next_steps(capsys, tmp_path):
    directory = str(tmp_path / "hostmaint-reports")
    code, result = run_module(capsys, dict(directory=directory, run=a_run()))
    assert code == 0 and result["changed"] is True
    assert result["json_path"] == os.path.join(directory, RUN_ID + ".json")
    assert result["markdown_path"] == os.path.join(directory, RUN_ID + ".md")
    assert result["html_path"] == os.path.join(directory, RUN_ID + ".html")
    # no temporary file left behind
    assert files(directory) == [RUN_ID + ".html", RUN_ID + ".json", RUN_ID + ".md"]
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o750
    assert stat.S_IMODE(os.stat(result["json_path"]).st_mode) == 0o640
    with open(result["json_path"]) as handle:
        written = json.load(handle)
    move = written["hosts"]["hv1"]["moves"][0]
    assert (move["guest"], move["destination"], move["downtime_ms"], move["timeline"]["switchover"]) == \
        ("web1", "hv2", 36, 2.51)
    assert written["status"] == "ok" and written["duration_s"] == 9.0
    with open(result["markdown_path"]) as handle:
        summary = handle.read()
    assert "| web1 | hv1 | hv2 | migrated | 36 | 2.1 |" in summary
    assert "hv1 is still in maintenance: run playbooks/restore.yml -l hv1 once it is healthy." in summary
    assert result["next_steps"] == ["hv1 is still in maintenance: run playbooks/restore.yml -l hv1 once it is healthy."]
    assert result["summary"]["status"] == "ok" and result["summary"]["moved"] == 1
    assert result["summary"]["worst_pause"]["guest"] == "web1" and result["summary"]["worst_pause"]["downtime_ms"] == 36
    with open(result["html_path"]) as handle:
        page = handle.read()
    assert page.startswith("<!DOCTYPE html>") and ">web1<" in page and "36 ms pause" in page
    for path in (result["json_path"], result["markdown_path"], result["html_path"]):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
        with open(path) as handle:
            text = handle.read()
        assert "hunter2" not in text and "password" not in text


def test_check_then_real_then_check_again(capsys, tmp_path):
    directory = str(tmp_path / "reports")
    args = dict(directory=directory, run=a_run())
    code, checked = run_module(capsys, args, check_mode=True)
    assert code == 0 and checked["changed"] is True and files(directory) is None  # nothing written, not even the folder
    assert checked["markdown_path"] == os.path.join(directory, RUN_ID + ".md")
    code, real = run_module(capsys, args)
    assert code == 0 and real["changed"] is True and files(directory) == [RUN_ID + ".html", RUN_ID + ".json",
                                                                          RUN_ID + ".md"]
    assert (real["json_path"], real["markdown_path"], real["html_path"]) == (
        checked["json_path"], checked["markdown_path"], checked["html_path"])
    code, again = run_module(capsys, args, check_mode=True)
    assert code == 0 and again["changed"] is False
    code, rerun = run_module(capsys, args)
    assert code == 0 and rerun["changed"] is False


def test_a_changed_run_rewrites_the_report(capsys, tmp_path):
    directory = str(tmp_path)
    run_module(capsys, dict(directory=directory, run=a_run()))
    code, result = run_module(capsys, dict(directory=directory, run=a_run(ended="2026-11-25T18:01:00Z")))
    assert code == 0 and result["changed"] is True
    with open(result["json_path"]) as handle:
        assert json.load(handle)["duration_s"] == 60.0


def test_only_the_json_when_asked(capsys, tmp_path):
    code, result = run_module(capsys, dict(directory=str(tmp_path), formats=["json"], run=a_run()))
    assert code == 0 and result["markdown_path"] is None and result["html_path"] is None
    assert files(str(tmp_path)) == [RUN_ID + ".json"]


def test_only_the_html_when_asked(capsys, tmp_path):
    code, result = run_module(capsys, dict(directory=str(tmp_path), formats=["html"], run=a_run()))
    assert code == 0 and (result["json_path"], result["markdown_path"]) == (None, None)
    assert files(str(tmp_path)) == [RUN_ID + ".html"]


def test_a_run_id_with_slashes_stays_in_the_folder(capsys, tmp_path):
    directory = tmp_path / "reports"
    code, result = run_module(capsys, dict(directory=str(directory), run=a_run(run_id="../../escape/me")))
    assert code == 0 and files(str(directory)) == ["escape-me.html", "escape-me.json", "escape-me.md"]
    assert files(str(tmp_path)) == ["reports"]


@pytest.mark.parametrize("run, message", [
    (dict(playbook="evacuate", hosts={}), "cannot build the run report: the run has no run_id"),
    (dict(run_id=".."), "run id '..' cannot name a report file: it has no letter or digit"),
])
def test_a_run_without_a_usable_id_fails_and_writes_nothing(capsys, tmp_path, run, message):
    code, result = run_module(capsys, dict(directory=str(tmp_path / "reports"), run=run))
    assert code == 1 and result["failed"] is True and result["msg"] == message
    assert files(str(tmp_path)) == []


def test_a_directory_that_is_a_file_fails(capsys, tmp_path):
    path = tmp_path / "reports"
    path.write_text("not a folder")
    code, result = run_module(capsys, dict(directory=str(path), run=a_run()))
    assert code == 1
    assert result["msg"] == "cannot write the run report to %s: it is a file, not a directory" % path
    assert path.read_text() == "not a folder"


def test_a_folder_that_cannot_be_written_fails_with_one_sentence(capsys, tmp_path):
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / (RUN_ID + ".json")).mkdir()  # a folder where the JSON file should go
    code, result = run_module(capsys, dict(directory=str(tmp_path / "reports"), run=a_run()))
    assert code == 1
    assert result["msg"] == "cannot write the run report %s to %s: Is a directory" % (
        RUN_ID, tmp_path / "reports" / (RUN_ID + ".json"))
    assert files(str(tmp_path / "reports")) == [RUN_ID + ".json"]


def test_an_unknown_format_is_rejected(capsys, tmp_path):
    code, result = run_module(capsys, dict(directory=str(tmp_path), formats=["pdf"], run=a_run()))
    assert code == 1 and "pdf" in result["msg"] and files(str(tmp_path)) == []


def test_no_format_is_rejected(capsys, tmp_path):
    code, result = run_module(capsys, dict(directory=str(tmp_path), formats=[], run=a_run()))
    assert code == 1 and result["msg"] == (
        "cannot write the run report: formats is empty, give one or more of json, markdown and html")
