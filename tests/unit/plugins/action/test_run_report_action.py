# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_report's action plugin in a real ansible-playbook: it writes the report in the controller's process (no
module is sent anywhere), judges its options by the module's argument spec, writes nothing in check mode and fails
with one sentence naming the directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Check mode writes nothing
      hostmaint.libvirt.run_report:
        directory: "{dir}"
        run: {{run_id: 20261202T000000Z-aaaaaa, playbook: evacuate, hosts: {{}}}}
      check_mode: true
      register: checked
    - name: Write it
      hostmaint.libvirt.run_report:
        directory: "{dir}"
        formats: [json]
        run: {{run_id: 20261202T000000Z-aaaaaa, playbook: evacuate, hosts: {{}}}}
      register: written
    - name: A file where the directory should be
      hostmaint.libvirt.run_report:
        directory: "{dir}/20261202T000000Z-aaaaaa.json"
        run: {{run_id: 20261202T000000Z-aaaaaa, playbook: evacuate, hosts: {{}}}}
      register: refused
      ignore_errors: true
    - name: An option the module does not have
      hostmaint.libvirt.run_report:
        directory: "{dir}"
        run: {{}}
        colour: red
      register: unknown
      ignore_errors: true
    - name: Say what happened
      ansible.builtin.copy:
        dest: "{dir}/../results.json"
        content: "{{{{ dict(checked=checked, written=written, refused=refused, unknown=unknown) | to_json }}}}"
        mode: "0600"
"""


def test_the_action_writes_on_the_controller_and_judges_its_options(tmp_path):
    directory = tmp_path / "reports"
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK.format(dir=directory))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1")
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    checked, written = results["checked"], results["written"]
    assert checked["changed"] is True and checked["json_path"] == str(directory / "20261202T000000Z-aaaaaa.json")
    assert written["changed"] is True and written["markdown_path"] is None
    assert sorted(os.listdir(directory)) == ["20261202T000000Z-aaaaaa.json"]  # check mode wrote nothing
    assert json.loads((directory / "20261202T000000Z-aaaaaa.json").read_text())["run_id"] == "20261202T000000Z-aaaaaa"
    assert results["refused"]["failed"] is True and results["refused"]["msg"] == (
        "cannot write the run report to %s/20261202T000000Z-aaaaaa.json: it is a file, not a directory" % directory)
    assert results["unknown"]["failed"] is True and "colour" in results["unknown"]["msg"]
