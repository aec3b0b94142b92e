# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine modules' action plugin prints a module's progress while it runs, in a real ansible-playbook with the
default stdout callback over the local connection: lines as they arrive, timed by this test.

The module is replaced (in an action plugin beside the playbook that subclasses the engine's) by a script that
writes its progress with module_utils.progress.Recorder for a few seconds, as evacuate does, and prints its result;
everything else is the plugin's own: its worker thread, its reads of the file (``cat`` through a copy of the
connection), its Follower and Display from the worker process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))

MODULE = """
import json, sys, time, importlib.util
spec = importlib.util.spec_from_file_location("progress", {progress!r})
progress = importlib.util.module_from_spec(spec)
spec.loader.exec_module(progress)
path, seconds = sys.argv[1], float(sys.argv[2])
r = progress.Recorder(path if path != "-" else None, host="hv1", fixed_s=1.0)
if seconds:
    r.plan([dict(key="g1", guest="g1", action="migrate", route="hv1->hv2", total=100 * progress.MIB),
            dict(key="g2", guest="g2", action="migrate", route="hv1->hv3", total=100 * progress.MIB)])
    started = time.monotonic()
    r.event("g1", "started")
    while time.monotonic() - started < seconds:
        done = (time.monotonic() - started) / seconds
        r.copying("g1", int(done * 100 * progress.MIB), 100 * progress.MIB, rung="downtime 50 ms (1/5)")
        time.sleep(0.2)
    r.event("g1", "switchover")
    r.event("g1", "checked")
    r.end("g1", "migrated")
    r.event("g2", "started")
    r.end("g2", "failed", "cannot live-migrate g2 to hv3: it refused", failed=True)
print(json.dumps({{"changed": bool(seconds), "rc": 0, "file": path, progress.RESULT_KEY: r.close()}}))
"""

ACTION = """
import json, sys
from ansible_collections.hostmaint.libvirt.plugins.plugin_utils.engine_action import EngineAction


class ActionModule(EngineAction):
    def run(self, tmp=None, task_vars=None):
        self._task._resolved_action = "hostmaint.libvirt.evacuate"
        return super().run(tmp, task_vars)

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **kwargs):
        found = super()._execute_module(module_name="ansible.builtin.command", module_args=dict(argv=[
            sys.executable, {module!r}, module_args.get("progress_file") or "-", str(self._task.args["seconds"])]),
            task_vars=task_vars)
        return json.loads(found["stdout"])

    @staticmethod
    def _read_progress(reader, path):
        with open({reads!r}, "a") as log:
            log.write(path + "\\n")
        return EngineAction._read_progress(reader, path)
"""

PLAYBOOK = """
- hosts: hv1
  connection: local
  gather_facts: false
  tasks:
    - name: Move
      fake_evacuate:
        seconds: {seconds}
        progress: {progress}
      register: moved
    - name: Keep the result
      ansible.builtin.copy:
        dest: {result}
        content: "{{{{ moved | to_json }}}}"
        mode: "0600"
"""


def play(tmp_path, seconds, progress="true"):
    """[(seconds since start, line)] of ansible-playbook's output, the module's result, the files read."""
    (tmp_path / "action_plugins").mkdir(exist_ok=True)
    module, reads, result = tmp_path / "module.py", tmp_path / "reads.log", tmp_path / "result.json"
    module.write_text(MODULE.format(progress=os.path.join(ROOT, "plugins", "module_utils", "progress.py")))
    (tmp_path / "action_plugins" / "fake_evacuate.py").write_text(ACTION.format(module=str(module), reads=str(reads)))
    (tmp_path / "play.yml").write_text(PLAYBOOK.format(seconds=seconds, progress=progress, result=result))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
    env.pop("ANSIBLE_CONFIG", None)
    started = time.monotonic()
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "hv1,",
                             "-e", "ansible_python_interpreter=" + sys.executable, str(tmp_path / "play.yml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(tmp_path))
    lines = [(time.monotonic() - started, line.rstrip("\n")) for line in proc.stdout]
    assert proc.wait(60) == 0, "\n".join(line for _at, line in lines)
    read = reads.read_text().split() if reads.exists() else []
    return lines, json.loads(result.read_text()), read


def progress_lines(lines):
    return [(at, line) for at, line in lines if line.startswith("[hv1] ")]


@pytest.mark.parametrize("seconds", [13])  # the module may start late: 2 reads 6 s apart still fit
def test_progress_lines_arrive_while_the_module_runs(tmp_path, seconds):
    lines, result, read = play(tmp_path, seconds)
    shown = progress_lines(lines)
    texts = [line for _at, line in shown]
    ended = [at for at, line in lines if line.startswith("changed: [hv1]")][0]
    started = [at for at, line in shown if line == "[hv1] g1 hv1->hv2: started (at 0s)"][0]
    assert started < ended - seconds / 2, lines  # printed while the module ran, not with its result
    beats = [at for at, line in shown if " moves done, " in line and " in flight, " in line]
    assert len(beats) >= 2, texts
    assert any("| g1 hv1->hv2 " in line and "% " in line and "MiB/s downtime 50 ms (1/5)" in line for line in texts)
    gaps = [b - a for (a, _x), (b, _y) in zip(shown, shown[1:])]
    assert max(gaps) <= 10.0, gaps
    # what happened after the last read comes with the result, and the result keeps none of it
    assert texts[-5:] == ["[hv1] g1 hv1->hv2: switched over (at %ds)" % seconds,
                          "[hv1] g1 hv1->hv2: checked: settle check passed (at %ds)" % seconds,
                          "[hv1] g2 hv1->hv3: started (at %ds)" % seconds,
                          "[hv1] g2 hv1->hv3: failed: cannot live-migrate g2 to hv3: it refused (at %ds)" % seconds,
                          "[hv1] 2/2 moves done (1 failed) in %ds" % seconds]
    assert "_hostmaint_progress" not in result
    assert result["file"].startswith("/tmp/hostmaint-progress-") and read and set(read) == {result["file"]}
    assert not os.path.exists(result["file"])


def test_a_run_over_within_two_seconds_reads_nothing_and_with_progress_off_nothing_is_read_or_written(tmp_path):
    lines, result, read = play(tmp_path, 0)
    assert read == [] and progress_lines(lines) == [] and result["file"].startswith("/tmp/hostmaint-progress-")
    lines, result, read = play(tmp_path, 3, progress="false")
    assert read == [] and progress_lines(lines) == [] and result["file"] == "-"
